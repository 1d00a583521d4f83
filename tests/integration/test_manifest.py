"""service.yaml, the service manifest, parses and agrees with the code: the
version everywhere it is stated, the scopes (openapi.json and core/auth.c),
the probes and the metrics endpoint on the real stack, the configuration
table of README.md and the contract, the publisher's settings, the log
fields the workers really write.

Needs python3-yaml (Debian package; scripts/install-deps test)."""
import json
import os
import re
import subprocess
import unittest

from harness import BUILD, ROOT, Stack

try:
    import yaml
except ImportError:  # reported by every test, with the fix
    yaml = None

SPEC_PATH = os.path.join(ROOT, "docs", "contract.md")
COMPONENT_SOURCES = {
    "orders-fcgi": ["core", "fcgi", "common"],
    "orders-publisher": ["publisher", "common"],
    "orders-token": ["tools/orders-token.c", "common"],
    "run-stack": ["scripts/run-stack", "nginx"],
}


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def load_manifest():
    if yaml is None:
        raise AssertionError("python3-yaml is missing: the manifest test needs it "
                             "(apt-get install python3-yaml; scripts/install-deps test installs it)")
    with open(os.path.join(ROOT, "service.yaml"), encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict), "service.yaml is not a mapping"
    return doc


def markdown_section(text, heading):
    """The lines under a '## heading' up to the next heading of that level."""
    out, on = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            on = line[3:].strip() == heading
            continue
        if on:
            out.append(line)
    return out


def markdown_table(lines):
    """Rows (lists of cells) of the first Markdown table in lines, header
    and separator dropped."""
    rows = []
    for line in lines:
        s = line.strip()
        if not s.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        rows.append(cells)
    assert len(rows) >= 2 and set(rows[1][0]) <= set("-: "), "no Markdown table found"
    return rows[2:]


def env_names(cell):
    return re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b", cell)


def readme_configuration():
    """{name: default or None (unset) or ... (not a literal)} from README's
    configuration table."""
    out = {}
    for cells in markdown_table(markdown_section(read("README.md"), "Configuration")):
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        assert names, "configuration row without a variable: %r" % cells
        default = cells[1]
        literals = re.findall(r"`([^`]*)`", default)
        for i, name in enumerate(names):
            if default == "unset":
                out[name] = None
            elif default.startswith("`") and len(literals) == len(names):
                out[name] = literals[i]
            else:
                out[name] = ...  # prose ("number of CPUs", "generated ..."): not compared
    return out


def publisher_comment_settings():
    """{name: default} from the comment block at the top of publisher/main.c."""
    text = read("publisher/main.c")
    block = text[text.index("Environment"):text.index("Exit status")]
    out = {}
    for m in re.finditer(r"^ \*\s+([A-Z][A-Z0-9_]+)\s+(\S+)", block, re.M):
        out[m.group(1)] = m.group(2)
    assert "PUBLISHER_BATCH" in out, "publisher/main.c's settings block not found"
    return out


def strip_c_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)


def sources_of(component):
    texts = []
    for rel in COMPONENT_SOURCES[component]:
        path = os.path.join(ROOT, rel)
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith((".c", ".h", ".in", ".conf")):
                    with open(os.path.join(path, name), encoding="utf-8") as f:
                        texts.append(f.read())
        else:
            with open(path, encoding="utf-8") as f:
                texts.append(f.read())
    return "\n".join(texts)


class Manifest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = load_manifest()
        cls.openapi = json.loads(read("openapi.json"))
        cls.asyncapi = json.loads(read("asyncapi.json"))

    def test_identity(self):
        m = self.m
        for key in ("name", "version", "description", "owner", "lifecycle", "api", "events",
                    "security", "probes", "metrics", "configuration", "dependencies",
                    "runtime", "logs"):
            self.assertIn(key, m)
        self.assertEqual(m["name"], "orders")
        self.assertIsInstance(m["version"], str, "quote the version: YAML would read 1.10 as 1.1")
        self.assertEqual(m["owner"]["team"], "orders-platform")
        self.assertTrue(m["owner"].get("contact"))
        self.assertIn(m["lifecycle"], ("development", "production", "deprecated"))
        self.assertTrue(m["description"].strip())

    def test_version_is_the_same_everywhere(self):
        meson = re.search(r"project\s*\([^)]*?\bversion\s*:\s*'([^']+)'", read("meson.build"), re.S)
        self.assertIsNotNone(meson, "meson.build has no project version")
        version = meson.group(1)
        self.assertEqual(self.m["version"], version, "service.yaml vs meson.build")
        self.assertEqual(self.openapi["info"]["version"], version, "openapi.json vs meson.build")
        self.assertEqual(self.asyncapi["info"]["version"], version, "asyncapi.json vs meson.build")
        out = subprocess.run([os.path.join(BUILD, "publisher", "orders-publisher"), "--version"],
                             capture_output=True, timeout=10)
        self.assertEqual(out.stdout.decode().split(), ["orders-publisher", version])
        # GET / on the real stack: test_stack_agrees below.

    def test_documents(self):
        self.assertEqual(self.m["api"]["openapi"], "openapi.json")
        self.assertEqual(self.m["api"]["served_at"], "/openapi.json")
        self.assertIn("/openapi.json", self.openapi["paths"])
        ev = self.m["events"]
        self.assertEqual(ev["asyncapi"], "asyncapi.json")
        names = {msg["name"] for msg in self.asyncapi["components"]["messages"].values()}
        self.assertEqual(set(ev["types"]), names)
        self.assertEqual(set(ev["types"]), {"order.created", "order.updated"})
        self.assertEqual(ev["delivery"]["guarantee"], "at-least-once")
        self.assertEqual(ev["delivery"]["order"], "commit order")
        sink = [d for d in self.m["dependencies"] if d["name"] == "event-sink"]
        self.assertEqual(len(sink), 1)
        self.assertEqual(set(sink[0]["options"]),
                         {s["protocol"] for s in self.asyncapi["servers"].values()})

    def test_every_document_is_in_the_repository(self):
        """A clone carries all it refers to: the manifest's documents and
        the README's links are files of the repository, nothing beside the clone."""
        self.assertEqual(os.path.realpath(os.path.join(ROOT, self.m["contract"])), os.path.realpath(SPEC_PATH))
        for rel in (self.m["contract"], self.m["api"]["openapi"], self.m["events"]["asyncapi"]):
            path = os.path.realpath(os.path.join(ROOT, rel))
            self.assertTrue(path.startswith(ROOT + os.sep) and os.path.isfile(path), rel)
        for link in re.findall(r"\]\(([^)#\s]+)\)", read("README.md")):
            if "://" in link:
                continue
            path = os.path.realpath(os.path.join(ROOT, link))
            self.assertTrue(path.startswith(ROOT + os.sep) and os.path.exists(path), link)
        self.assertNotIn(os.path.join("..", "shared") + "/", read("README.md"))

    def test_scopes_agree_with_openapi_and_auth(self):
        scopes = {s["name"]: s for s in self.m["security"]["scopes"]}
        oauth = self.openapi["components"]["securitySchemes"]["oauth2"]["flows"]
        declared = {}
        for flow in oauth.values():
            declared.update(flow["scopes"])
        self.assertEqual(set(scopes), set(declared), "service.yaml vs openapi.json's oauth2 scopes")
        for name, desc in declared.items():
            self.assertEqual(scopes[name]["description"], desc)
        auth = set(re.findall(r'"(orders\.[a-z_]+)"', strip_c_comments(read("core/auth.c"))))
        self.assertEqual(set(scopes), auth, "service.yaml vs core/auth.c's scope names")
        # Which operations need which scope, and which need none.
        needs, public = {}, set()
        for path, item in self.openapi["paths"].items():
            for method, op in item.items():
                if method not in ("get", "put", "post", "patch", "delete", "head", "options"):
                    continue
                key = "%s %s" % (method.upper(), path)
                reqs = op.get("security", self.openapi.get("security", []))
                if not reqs:
                    public.add(key)
                for req in reqs:
                    for scope_list in req.values():
                        for scope in scope_list:
                            needs.setdefault(scope, set()).add(key)
        for name, s in scopes.items():
            self.assertEqual(set(s["operations"]), needs.get(name, set()), name)
        self.assertEqual(set(self.m["security"]["public"]), public)

    def test_configuration_is_readmes_table(self):
        env = {e["name"]: e for e in self.m["configuration"]["environment"]}
        readme = readme_configuration()
        self.assertEqual(set(env), set(readme),
                         "service.yaml vs README's configuration table: only in service.yaml %s, only in README %s"
                         % (sorted(set(env) - set(readme)), sorted(set(readme) - set(env))))
        for name, default in readme.items():
            self.assertTrue(env[name].get("description"), name)
            if default is ...:
                continue
            got = env[name].get("default")
            self.assertEqual(None if got is None else str(got), default, "default of %s" % name)
        # The contract's own table ("Running it") is covered too.
        with open(SPEC_PATH, encoding="utf-8") as f:
            spec = markdown_table(markdown_section(f.read(), "Running it"))
        spec_names = {n for cells in spec for n in env_names(cells[0])}
        self.assertTrue(spec_names)
        self.assertLessEqual(spec_names, set(env), "contract variables missing from service.yaml")
        self.assertEqual(env["JWT_SECRET_KEY"].get("default"), None, "the secret has no fixed default")
        self.assertTrue(env["JWT_SECRET_KEY"].get("secret"))
        self.assertIn("JAEGER_ENDPOINT", env["OTEL_EXPORTER_OTLP_ENDPOINT"].get("aliases", []))

    def test_publisher_settings(self):
        env = {e["name"]: e for e in self.m["configuration"]["environment"]}
        pub = {e["name"]: e for e in self.m["configuration"]["publisher"]}
        comment = publisher_comment_settings()
        own = {k: v for k, v in comment.items() if k.startswith("PUBLISHER_")}
        self.assertEqual(set(pub), set(own), "service.yaml vs publisher/main.c's settings")
        for name, default in own.items():
            self.assertEqual(str(pub[name]["default"]), default, name)
            self.assertTrue(pub[name].get("description"), name)
        readme = dict(re.findall(r"`(PUBLISHER_[A-Z_]+)` \((\d+)", read("README.md")))
        self.assertEqual(readme, {k: str(v["default"]) for k, v in pub.items()},
                         "README's publisher settings vs service.yaml")
        # The shared variables the publisher reads are the ones marked so.
        shared = {k: v for k, v in comment.items() if not k.startswith("PUBLISHER_")}
        marked = {k for k, e in env.items() if "orders-publisher" in e.get("used_by", [])}
        self.assertEqual(set(shared), marked, "publisher/main.c's shared variables vs used_by")
        for name, default in shared.items():
            # A setting with no default is "unset" in the comment.
            want = env[name]["default"]
            self.assertEqual("unset" if want is None else str(want), default, name)

    def test_used_by_is_true(self):
        entries = self.m["configuration"]["environment"] + self.m["configuration"]["publisher"]
        cache = {}
        for e in entries:
            self.assertTrue(e.get("used_by"), e["name"])
            for comp in e["used_by"]:
                self.assertIn(comp, COMPONENT_SOURCES, e["name"])
                text = cache.setdefault(comp, sources_of(comp))
                for name in [e["name"]] + e.get("aliases", []):
                    self.assertRegex(text, r"\b%s\b" % name, "%s does not read %s" % (comp, name))

    def test_dependencies_and_binaries(self):
        deps = {d["name"]: d for d in self.m["dependencies"]}
        self.assertEqual(set(deps), {"nginx", "sqlite", "event-sink", "otlp-collector"})
        for name in ("nginx", "sqlite", "event-sink"):
            self.assertIs(deps[name]["required"], True, name)
        self.assertIs(deps["otlp-collector"]["required"], False)
        binaries = {b["name"] for b in self.m["runtime"]["binaries"]}
        self.assertEqual(binaries, {"orders-fcgi", "orders-publisher", "orders-token"})
        for rel in ("fcgi/orders-fcgi", "publisher/orders-publisher", "tools/orders-token"):
            self.assertTrue(os.access(os.path.join(BUILD, rel), os.X_OK), rel)
        self.assertTrue(os.path.exists(os.path.join(ROOT, "scripts", "serve")))

    def test_stack_agrees(self):
        """On the real stack: GET / reports the version and the probes, the
        probes answer 200, the metrics endpoint serves the families listed,
        the workers' log lines have the fields listed."""
        m = self.m
        with Stack(workers=2) as s:
            info = s.request("GET", "/")
            self.assertEqual(info.status, 200)
            info = info.json()
            self.assertEqual(info["name"], m["name"])
            self.assertEqual(info["version"], m["version"])
            self.assertEqual(info["links"]["health"], m["probes"]["liveness"]["path"])
            self.assertEqual(info["links"]["ready"], m["probes"]["readiness"]["path"])
            self.assertEqual(info["links"]["openapi"], m["api"]["served_at"])
            for probe in ("liveness", "readiness"):
                path = m["probes"][probe]["path"]
                self.assertIn(path, self.openapi["paths"])
                r = s.request("GET", path)
                self.assertEqual(r.status, 200, (probe, r))
            doc = s.request("GET", m["api"]["served_at"])
            self.assertEqual(doc.status, 200)
            self.assertEqual(doc.json(), self.openapi, "the served document is openapi.json")

            tok = s.token()
            created = s.request("POST", "/orders", body={"customerId": "c-manifest", "items": ["i"]}, token=tok)
            self.assertEqual(created.status, 201, created)
            oid = created.json()["id"]
            self.assertEqual(s.request("PATCH", "/orders/" + oid, body={"status": "paid"}, token=tok).status, 200)

            r = s.request("GET", m["metrics"]["path"])
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers)
            text = r.body.decode("utf-8")
            served = set(re.findall(r"^# TYPE (\S+) (?:counter|gauge|histogram|summary|untyped)$", text, re.M))
            self.assertEqual(set(m["metrics"]["families"]), served, "service.yaml vs GET /metrics")

            fields = m["logs"]["fields"]
            common = set(fields["common"])
            lines = s.wait_for(lambda: (lambda ls: ls if any(l.get("message") == "Order status changed" for l in ls) else None)(s.worker_log_lines()),
                               timeout=5, what="the domain log lines")
            access = [l for l in lines if l.get("message") == m["logs"]["messages"]["access"]]
            self.assertTrue(access)
            for line in access:
                self.assertEqual(set(line), common | set(fields["access"]), line)
            domain = [l for l in lines if l.get("message") in m["logs"]["messages"]["domain"]]
            self.assertEqual({l["message"] for l in domain}, set(m["logs"]["messages"]["domain"]))
            for line in domain:
                self.assertTrue(common <= set(line), line)
                self.assertLessEqual(set(line) - common, set(fields["domain"]), line)
            changed = [l for l in domain if l["message"] == "Order status changed"][0]
            self.assertEqual(set(changed) - common, set(fields["domain"]))
            nginx_log = os.path.join(s.runtime, "logs", "access.log")
            self.assertTrue(m["logs"]["destination"]["nginx"].startswith("$RUNTIME_DIR/logs/access.log"))
            self.assertTrue(os.path.getsize(nginx_log) > 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
