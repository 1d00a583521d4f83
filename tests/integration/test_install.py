"""The installed service (deploy/): `meson install --destdir` into a
temporary root, every file in its FHS place under the prefix, the systemd
units checked by `systemd-analyze verify`, the nginx site checked by
`nginx -t` (alone and inside Debian's own nginx.conf), then the installed
binaries started by hand, with the units' own command lines, behind the
installed site (paths rewritten into the temporary root): /readyz answers
200, an order is created, its event is published, /metrics is loopback
only, and everything stops with nothing left behind.  deploy/install.sh
(the container's build) and deploy/entrypoint.sh (the container's PID 1)
run the same way.

Environment: ORDERS_BUILD_DIR, the meson build directory (built already:
the install uses --no-rebuild).  Needs systemd-analyze (Debian package
systemd), nginx and spawn-fcgi.  Works as root (the services run as
www-data, standing in for the account orders) and as an ordinary user.
Every wait is bounded.
"""
import base64
import glob
import hashlib
import hmac
import http.client
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, BUILD, TEST_SECRET, free_port, wait_own_server  # noqa: E402

IS_ROOT = os.geteuid() == 0
# The account the units run as (User=orders) does not exist on a build
# machine: as root the test runs them as www-data instead.
SERVICE_USER = "www-data"
UNITS = ["orders-migrate.service", "orders-fcgi.service", "orders-publisher.service"]
BINARIES = ["orders-fcgi", "orders-publisher", "orders-token", "orders-nginx-site"]
KEEP = os.environ.get("ORDERS_KEEP_TMP") is not None


def run(args, timeout=120, check=True, **kw):
    """Runs a command with a bound; on failure the assertion shows its output."""
    try:
        p = subprocess.run(args, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s: no exit within %ss" % (args, timeout)) from e
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (
            args, p.returncode, p.stdout.decode(errors="replace")[-6000:],
            p.stderr.decode(errors="replace")[-6000:]))
    return p


def directories(build):
    """The build's installation directories, absolute, as meson resolves
    them (a relative option is relative to the prefix)."""
    out = run(["meson", "introspect", "--buildoptions", build]).stdout
    opts = {o["name"]: o["value"] for o in json.loads(out) if o["section"] == "directory"}
    prefix = opts["prefix"]
    return {k: (v if k == "prefix" else os.path.join(prefix, v)) for k, v in opts.items()}


def meson_install(build, destdir):
    old = os.umask(0o022)  # installed directories as a package has them
    try:
        run(["meson", "install", "-C", build, "--no-rebuild", "--destdir", destdir,
             "--quiet"], timeout=300)
    finally:
        os.umask(old)


def make_reachable(path, top):
    """As root the services run as www-data: every directory from the
    temporary root down to path must be traversable by it."""
    while True:
        os.chmod(path, os.stat(path).st_mode | 0o755)
        if os.path.samefile(path, top) or path == "/":
            return
        path = os.path.dirname(path)


def unit_settings(text):
    """The [Service] settings of a unit file: name -> list of values."""
    settings = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            k, v = line.split("=", 1)
            settings.setdefault(k.strip(), []).append(v.strip())
    return settings


def unit_command(value):
    """An Exec line as systemd runs it: without the prefixes (-@:+!), quotes
    split as the shell does, $$ a literal dollar (the units use no other
    expansion)."""
    value = value.lstrip("-@:+!")
    return [w.replace("$$", "$") for w in shlex.split(value)]


def unit_environment(settings):
    env = {}
    for v in settings.get("Environment", []):
        for assignment in shlex.split(v):
            k, val = assignment.split("=", 1)
            env[k] = val
    return env


def hs256_token(secret, sub="user-123", scopes="orders.read orders.write"):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=")
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "scope": scopes, "iat": now,
                           "exp": now + 3600}).encode())
    sig = b64(hmac.new(secret.encode(), head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + sig).decode()


def request(port, method, path, body=None, token=None, source=None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        headers = {}
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def describe(pid):
    """pid (state) command line, for a message."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "%d (gone)" % pid
    return "%d (%s) %s" % (pid, state, cmd)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = predicate()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Installed:
    """A `meson install --destdir` of a build into a fresh temporary root."""

    def __init__(self, build):
        self.build = build
        self.tmp = tempfile.mkdtemp(prefix="orders-install-")
        if IS_ROOT:
            os.chmod(self.tmp, 0o755)
        self.destdir = os.path.join(self.tmp, "root")
        try:
            self.dirs = directories(build)
            meson_install(build, self.destdir)
        except BaseException:
            self.cleanup()
            raise

    def staged(self, path):
        """Where an absolute installed path is under the temporary root."""
        return os.path.join(self.destdir, path.lstrip("/"))

    @property
    def share(self):
        return self.staged(os.path.join(self.dirs["datadir"], "orders"))

    def bin(self, name):
        return self.staged(os.path.join(self.dirs["bindir"], name))

    def rewrite(self, text, state_dir, run_dir, log_dir):
        """A unit or site as it would be on a host, pointed into the
        temporary root: binaries, state, runtime directory, logs."""
        for b in BINARIES:
            text = text.replace(os.path.join(self.dirs["bindir"], b), self.bin(b))
        text = text.replace("/var/lib/orders", state_dir)
        text = text.replace("/run/orders", run_dir)
        return text.replace("/var/log/nginx/", log_dir + "/")

    def cleanup(self):
        if not KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Stack:
    """nginx with the installed site and the installed binaries, in a
    directory of the temporary root; processes in their own sessions."""

    def __init__(self, inst, name):
        self.inst = inst
        self.dir = os.path.join(inst.tmp, name)
        self.state = os.path.join(self.dir, "var", "lib", "orders")
        self.run_dir = os.path.join(self.dir, "run", "orders")
        self.logs = os.path.join(self.dir, "logs")
        self.nginx_dir = os.path.join(self.dir, "nginx")
        for d in (self.state, self.run_dir, self.logs, self.nginx_dir):
            os.makedirs(d)
        os.chmod(self.state, 0o700)
        os.chmod(self.run_dir, 0o750)
        if IS_ROOT:
            make_reachable(self.dir, inst.tmp)
            pw = pwd.getpwnam(SERVICE_USER)
            for d in (self.state, self.run_dir):
                os.chown(d, pw.pw_uid, pw.pw_gid)
        self.socket = os.path.join(self.run_dir, "orders.sock")
        self.port = free_port()
        self.procs = {}  # name -> Popen
        self.sessions = set()
        self.secret = TEST_SECRET

    # -- nginx ------------------------------------------------------------
    def site(self):
        with open(os.path.join(self.inst.share, "nginx", "orders.conf")) as f:
            text = self.inst.rewrite(f.read(), self.state, self.run_dir, self.logs)
        text = text.replace("listen 80;", "listen 127.0.0.1:%d;" % self.port)
        text = text.replace("listen [::]:80;", "")
        path = os.path.join(self.nginx_dir, "orders-site.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def nginx_conf(self):
        """A minimal nginx.conf around the site: what Debian's nginx.conf
        gives a site, with every path nginx writes in the stack's dir."""
        site = self.site()
        d = self.nginx_dir
        conf = "\n".join([
            "user %s;" % SERVICE_USER if IS_ROOT else "",
            "worker_processes 1;",
            "pid %s/nginx.pid;" % d,
            "error_log %s/nginx-error.log warn;" % self.logs,
            "events { worker_connections 64; }",
            "http {",
            "    client_body_temp_path %s/client_body;" % d,
            "    fastcgi_temp_path %s/fastcgi;" % d,
            "    proxy_temp_path %s/proxy;" % d,
            "    uwsgi_temp_path %s/uwsgi;" % d,
            "    scgi_temp_path %s/scgi;" % d,
            "    access_log off;",
            "    include %s;" % site,
            "}",
            ""])
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        return path

    def nginx_args(self, conf):
        return ["nginx", "-p", self.nginx_dir, "-e", os.path.join(self.logs, "nginx-error.log"),
                "-c", conf]

    # -- processes --------------------------------------------------------
    def env(self, extra=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("JWT_", "DATABASE_", "EVENT_", "WORKER", "RUNTIME_DIR"))}
        env.update({
            "JWT_SECRET_KEY": self.secret,
            "EVENT_SINK": "file:" + os.path.join(self.state, "events.jsonl"),
            "LOG_LEVEL": "info",
        })
        env.update(extra or {})
        return env

    def start(self, name, args, env, as_service_user=False):
        if as_service_user and IS_ROOT:
            args = ["setpriv", "--reuid=" + SERVICE_USER, "--regid=" + SERVICE_USER,
                    "--init-groups", "--"] + args
        out = open(os.path.join(self.logs, name + ".out"), "wb")
        err = open(os.path.join(self.logs, name + ".err"), "wb")
        with out, err:
            p = subprocess.Popen(args, env=env, stdout=out, stderr=err, cwd=self.dir,
                                 start_new_session=True, preexec_fn=lambda: os.umask(0o027))
        self.procs[name] = p
        self.sessions.add(p.pid)
        return p

    def log_text(self):
        out = []
        for p in sorted(glob.glob(os.path.join(self.logs, "*"))):
            try:
                with open(p, "rb") as f:
                    data = f.read().decode("utf-8", "replace")[-3000:]
            except OSError:
                continue
            if data.strip():
                out.append("--- %s\n%s" % (os.path.basename(p), data))
        return "\n".join(out)

    def check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise AssertionError("%s exited early (%s):\n%s" % (name, p.returncode,
                                                                    self.log_text()))

    def wait_ready(self, timeout=30):
        def ready():
            try:
                return request(self.port, "GET", "/readyz", timeout=2)[0] == 200
            except (OSError, http.client.HTTPException):
                return False
        # Our nginx's answer only (harness.wait_own_server says why).
        if not wait_own_server(self.port, self.sessions, ready, self.check_alive, timeout):
            raise AssertionError("timed out after %ss waiting for GET /readyz == 200 from our nginx\n%s"
                                 % (timeout, self.log_text()))

    def leftovers(self):
        """Processes of the stack's sessions, or running a binary of the
        temporary root."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            pid = int(d)
            try:
                if os.getsid(pid) in self.sessions:
                    pids.append(pid)
                    continue
                exe = os.readlink("/proc/%d/exe" % pid)
                if exe.startswith(self.inst.tmp + "/"):
                    pids.append(pid)
            except OSError:
                pass
        return pids

    def stop(self, timeout=30):
        """SIGTERM to each process, bounded; returns their exit statuses and
        the processes still there afterwards (killed)."""
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = {}
        deadline = time.monotonic() + timeout
        for name, p in self.procs.items():
            try:
                codes[name] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[name] = "no exit within %ss" % timeout
        left = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = self.leftovers()
            if not left:
                break
            time.sleep(0.05)
        left = [describe(pid) for pid in left]
        self.kill()
        return codes, left

    def kill(self):
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass

    # -- the service ------------------------------------------------------
    def token(self, env):
        tool = self.inst.bin("orders-token")
        if os.access(tool, os.X_OK):
            p = run([tool, "--scopes", "orders.read", "orders.write", "--sub", "user-123",
                     "--exp-hours", "1"], timeout=10, env=env)
            return p.stdout.decode().strip()
        return hs256_token(self.secret)

    def exercise(self, test, env):
        """/readyz, an order created and read back, its event published,
        /metrics from loopback only, nginx's errors as problems."""
        status, _, body = request(self.port, "GET", "/readyz")
        test.assertEqual(status, 200, body)
        token = self.token(env)
        status, headers, body = request(self.port, "POST", "/orders", token=token,
                                        body={"customerId": "customer-123",
                                              "items": ["item-1", "item-2"]})
        test.assertEqual(status, 201, body)
        order = json.loads(body)
        test.assertEqual(order["status"], "pending")
        test.assertEqual(headers.get("location"), "/orders/" + order["id"])
        test.assertEqual(headers.get("x-content-type-options"), "nosniff")
        status, _, body = request(self.port, "GET", "/orders/" + order["id"], token=token)
        test.assertEqual(status, 200, body)
        test.assertEqual(json.loads(body)["id"], order["id"])

        # /metrics: passed to the pool from 127.0.0.1, a problem from any
        # other address (127.0.0.2 stands in for one).
        status, _, body = request(self.port, "GET", "/metrics")
        test.assertNotEqual(status, 403, body)
        test.assertNotIn(status, (502, 504), body)
        status, headers, body = request(self.port, "GET", "/metrics", source="127.0.0.2")
        test.assertEqual(status, 403, body)
        test.assertTrue(headers["content-type"].startswith("application/problem+json"))
        test.assertEqual(json.loads(body)["type"], "forbidden")
        # An nginx error is a problem document too.
        status, headers, body = request(self.port, "POST", "/orders", token=token,
                                        body={"items": ["x" * (65 * 1024)]})
        test.assertEqual(status, 413, body)
        test.assertTrue(headers["content-type"].startswith("application/problem+json"))

        def published():
            try:
                with open(os.path.join(self.state, "events.jsonl")) as f:
                    return any(order["id"] in line for line in f)
            except FileNotFoundError:
                return False
        try:
            wait_for(published, 15, "the order's event in the file sink")
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.log_text())) from None
        return order

    def assert_stopped(self, test, codes, left, expect_zero):
        test.assertEqual(left, [], "processes left behind:\n" + self.log_text())
        for name in expect_zero:
            test.assertEqual(codes[name], 0, "%s: exit %s\n%s" % (name, codes[name],
                                                                 self.log_text()))


class InstallLayout(unittest.TestCase):
    """The files meson installs, the units, the nginx site, and the
    installed binaries serving behind the installed site."""

    @classmethod
    def setUpClass(cls):
        cls.inst = Installed(BUILD)

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

    def installed_files(self):
        out = []
        for top, _, files in os.walk(self.inst.destdir):
            out += [os.path.join(top, f) for f in files]
        return out

    def test_files_in_fhs_places(self):
        inst = self.inst
        for b in BINARIES:
            path = inst.bin(b)
            self.assertTrue(os.path.isfile(path), path)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o755, path)
        share = inst.share
        migrations = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "migrations", "*.sql")))
        self.assertTrue(migrations)
        self.assertEqual(sorted(os.listdir(os.path.join(share, "migrations"))), migrations)
        # The alerting rules, their unit tests and the dashboard, as in deploy/.
        for rel in ["prometheus/orders-alerts.yml", "prometheus/orders-alerts.test.yml",
                    "grafana/orders.json"]:
            with open(os.path.join(ROOT, "deploy", rel), "rb") as a, open(os.path.join(share, rel), "rb") as b:
                self.assertEqual(a.read(), b.read(), rel)
        for doc in ["openapi.json", "asyncapi.json", "service.yaml"] + \
                   [os.path.join("migrations", m) for m in migrations]:
            src = os.path.join(ROOT, doc)
            if not os.path.exists(src):
                self.assertFalse(os.path.exists(os.path.join(share, doc)), doc)
                continue
            with open(src, "rb") as a, open(os.path.join(share, doc), "rb") as b:
                self.assertEqual(a.read(), b.read(), doc)
        for rel in ["nginx/orders.conf", "sysusers.d/orders.conf", "default/orders"] + \
                   ["systemd/" + u for u in UNITS]:
            path = os.path.join(share, rel)
            self.assertTrue(os.path.isfile(path), path)
            with open(path) as f:
                text = f.read()
            self.assertNotRegex(text, r"@[A-Z_]+@", "unsubstituted in " + rel)
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o644, path)
        # Everything under the prefix: nothing written to /etc, /lib/systemd
        # or /var by the install (enabling is the operator's step).
        prefix = inst.staged(inst.dirs["prefix"]) + "/"
        outside = [p for p in self.installed_files() if not p.startswith(prefix)]
        self.assertEqual(outside, [])

    def test_units_reference_the_installed_layout(self):
        d = self.inst.dirs
        for unit in UNITS:
            with open(os.path.join(self.inst.share, "systemd", unit)) as f:
                s = unit_settings(f.read())
            cmd = " ".join(unit_command(s["ExecStart"][0]))
            self.assertIn(os.path.join(d["bindir"], "orders-"), cmd, unit)
            self.assertEqual(s["User"], ["orders"], unit)
            self.assertEqual(s["EnvironmentFile"],
                             ["-" + os.path.join(d["sysconfdir"], "default", "orders")], unit)
            self.assertEqual(s["StateDirectory"], ["orders"], unit)
            self.assertEqual(s["ReadWritePaths"], ["/var/lib/orders"], unit)
            for setting, value in [("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                                   ("PrivateTmp", "yes"), ("ProtectHome", "yes"),
                                   ("PrivateDevices", "yes"), ("CapabilityBoundingSet", ""),
                                   ("SystemCallFilter", "@system-service")]:
                self.assertEqual(s.get(setting), [value], "%s: %s" % (unit, setting))
            self.assertEqual(unit_environment(s)["DATABASE_PATH"], "/var/lib/orders/orders.db")
            # The token secret reaches the pool only, as a credential; no
            # unit passes it through its environment.
            self.assertEqual(s.get("UnsetEnvironment"), ["JWT_SECRET_KEY"], unit)
            want = ["jwt-secret:" + os.path.join(d["sysconfdir"], "orders", "jwt-secret")] \
                if unit == "orders-fcgi.service" else None
            self.assertEqual(s.get("LoadCredential"), want, unit)
        with open(os.path.join(self.inst.share, "default", "orders")) as f:
            self.assertNotRegex(f.read(), r"(?m)^\s*JWT_SECRET_KEY=", "the settings file holds no secret")
        with open(os.path.join(self.inst.share, "systemd", "orders-fcgi.service")) as f:
            text = f.read()
        self.assertIn("Requires=orders-migrate.service", text)
        self.assertIn("RuntimeDirectory=orders", text)
        self.assertIn("-s /run/orders/orders.sock -M 0660", text)
        # nginx's kept connections to the pool can outnumber systemd's
        # default of 1024 descriptors in one worker
        self.assertEqual(unit_settings(text).get("LimitNOFILE"), ["65536"])

    def test_site_renderer_takes_the_services_timeout(self):
        """orders-nginx-site renders the installed template, as the run
        command does; the timeout comes from the service's settings file."""
        inst = self.inst
        tool = inst.bin("orders-nginx-site")
        docs = os.path.join(inst.dirs["datadir"], "orders", "docs")
        env = {k: v for k, v in os.environ.items()
               if k not in ("REQUEST_TIMEOUT", "UPSTREAM_KEEPALIVE", "WORKERS")}
        # With the defaults it is the site meson installed: one template.
        p = run([tool, "--settings", "/dev/null", "--docs", docs], env=env)
        with open(os.path.join(inst.share, "nginx", "orders.conf"), "rb") as f:
            self.assertEqual(p.stdout, f.read())
        settings = os.path.join(inst.tmp, "orders.settings")
        with open(settings, "w") as f:
            f.write("# a host's /etc/default/orders\nREQUEST_TIMEOUT=7\nWORKERS=4\nUPSTREAM_KEEPALIVE=2\n")
        text = run([tool, "--settings", settings], env=env).stdout.decode()
        self.assertIn("fastcgi_read_timeout 7s;", text)
        self.assertIn("fastcgi_send_timeout 7s;", text)
        self.assertIn("keepalive 2;", text)
        self.assertIn("alias %s/index.html;" % os.path.join(inst.share, "docs"), text)
        self.assertNotRegex(text, r"@[A-Z_]+@")
        for bad, name in (("REQUEST_TIMEOUT=30s", "REQUEST_TIMEOUT"),
                          ("REQUEST_TIMEOUT=5\nUPSTREAM_KEEPALIVE=eight", "UPSTREAM_KEEPALIVE")):
            with open(settings, "w") as f:
                f.write(bad + "\n")
            p = run([tool, "--settings", settings], env=env, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertEqual(p.stdout, b"")
            err = p.stderr.decode().strip()
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn(name, err)
        # --output replaces the site only when the rendering succeeded.
        site = os.path.join(inst.tmp, "sites-available-orders")
        with open(site, "w") as f:
            f.write("the site in service\n")
        self.assertEqual(run([tool, "--settings", settings, "--output", site], env=env,
                             check=False).returncode, 1)
        with open(site) as f:
            self.assertEqual(f.read(), "the site in service\n")
        with open(settings, "w") as f:
            f.write("REQUEST_TIMEOUT=9\n")
        run([tool, "--settings", settings, "--output", site], env=env)
        with open(site) as f:
            self.assertIn("fastcgi_read_timeout 9s;", f.read())
        self.assertEqual(os.stat(site).st_mode & 0o777, 0o644)
        self.assertEqual([n for n in os.listdir(inst.tmp) if n.startswith("sites-available-orders.")], [])

    def verify_copies(self):
        """The units with their binaries' paths rewritten into the temporary
        root: systemd-analyze verify checks that ExecStart= is executable."""
        out = os.path.join(self.inst.tmp, "verify")
        os.makedirs(out, exist_ok=True)
        paths = []
        for unit in UNITS:
            with open(os.path.join(self.inst.share, "systemd", unit)) as f:
                text = f.read()
            for b in BINARIES:
                text = text.replace(os.path.join(self.inst.dirs["bindir"], b), self.inst.bin(b))
            paths.append(os.path.join(out, unit))
            with open(paths[-1], "w") as f:
                f.write(text)
        return paths

    def test_units_verify(self):
        tool = shutil.which("systemd-analyze")
        self.assertIsNotNone(tool, "systemd-analyze is missing: install the Debian package systemd")
        paths = self.verify_copies()
        p = run([tool, "verify", "--man=no"] + paths, timeout=60, check=False)
        output = (p.stdout + p.stderr).decode(errors="replace")
        self.assertEqual(p.returncode, 0, output)
        ours = [l for l in output.splitlines() if any(u in l for u in UNITS)]
        self.assertEqual(ours, [], output)

    def test_units_sandbox_exposure(self):
        tool = shutil.which("systemd-analyze")
        self.assertIsNotNone(tool, "systemd-analyze is missing: install the Debian package systemd")
        for path in self.verify_copies():
            # "OK" (< 3.0) on systemd's 0-10 exposure scale; the network
            # (traces, an HTTP sink) and a real user are what remain.
            p = run([tool, "security", "--offline=yes", "--threshold=30", "--no-pager", path],
                    timeout=60, check=False)
            self.assertEqual(p.returncode, 0, (p.stdout + p.stderr).decode(errors="replace")[-3000:])

    def test_sysusers_creates_the_account(self):
        """systemd-sysusers, on copies of the account databases: the user
        orders (home /var/lib/orders, no shell) and www-data in its group."""
        tool = shutil.which("systemd-sysusers")
        self.assertIsNotNone(tool, "systemd-sysusers is missing: install the Debian package systemd")
        root = os.path.join(self.inst.tmp, "sysusers-root")
        os.makedirs(os.path.join(root, "etc"))
        for name in ["passwd", "group", "shadow", "gshadow"]:
            target = os.path.join(root, "etc", name)
            try:
                shutil.copyfile(os.path.join("/etc", name), target)
            except (FileNotFoundError, PermissionError):
                open(target, "w").close()
        conf = os.path.join(self.inst.share, "sysusers.d", "orders.conf")
        run([tool, "--root=" + root, conf], timeout=30)
        with open(os.path.join(root, "etc", "passwd")) as f:
            users = {l.split(":")[0]: l.strip().split(":") for l in f if l.strip()}
        with open(os.path.join(root, "etc", "group")) as f:
            groups = {l.split(":")[0]: l.strip().split(":") for l in f if l.strip()}
        self.assertIn("orders", users)
        self.assertEqual(users["orders"][5:], ["/var/lib/orders", "/usr/sbin/nologin"])
        self.assertEqual(users["orders"][3], groups["orders"][2])
        self.assertIn("www-data", groups["orders"][3].split(","))

    def test_nginx_t_minimal(self):
        stack = Stack(self.inst, "nginx-t")
        conf = stack.nginx_conf()
        run(stack.nginx_args(conf) + ["-t", "-q"], timeout=30)

    def test_nginx_t_in_debians_nginx_conf(self):
        """The site inside Debian's own nginx.conf, beside its default site:
        no clash of map, upstream, log_format or listen."""
        if not os.path.isfile("/etc/nginx/nginx.conf"):
            self.skipTest("no /etc/nginx/nginx.conf")
        stack = Stack(self.inst, "nginx-debian")
        site = stack.site()
        d = stack.nginx_dir
        with open("/etc/nginx/nginx.conf") as f:
            conf = f.read()
        conf = re.sub(r"(?m)^\s*include\s+/etc/nginx/sites-enabled/\*;",
                      "include %s;\ninclude %s;" % (site, os.path.join(d, "default-site")), conf)
        conf = re.sub(r"(?m)^\s*include\s+/etc/nginx/modules-enabled/\*\.conf;", "", conf)
        conf = re.sub(r"(?m)^\s*pid\s+\S+;", "pid %s/nginx.pid;" % d, conf)
        conf = conf.replace("/var/log/nginx/", stack.logs + "/")
        conf = re.sub(r"(?m)^http\s*\{", "http {\n client_body_temp_path %s/cb;\n"
                      " fastcgi_temp_path %s/fc;\n proxy_temp_path %s/px;\n"
                      " uwsgi_temp_path %s/uw;\n scgi_temp_path %s/sc;\n" % ((d,) * 5), conf)
        self.assertIn(site, conf)
        default = "/etc/nginx/sites-available/default"
        text = "server { listen 127.0.0.1:%d default_server; return 404; }\n" % stack.port
        if os.path.isfile(default):
            with open(default) as f:
                text = re.sub(r"(?m)^\s*listen\s+\[::\].*$", "", f.read())
            text = re.sub(r"(?m)^(\s*)listen\s+80\s+default_server",
                          r"\1listen 127.0.0.1:%d default_server" % stack.port, text)
        with open(os.path.join(d, "default-site"), "w") as f:
            f.write(text)
        path = os.path.join(d, "debian-nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        run(stack.nginx_args(path) + ["-t", "-q"], timeout=30)

    def test_installed_stack_from_the_units(self):
        """orders-migrate, orders-fcgi and orders-publisher started with the
        commands and environment of their units (as www-data when root,
        standing in for User=orders), nginx with the installed site."""
        inst = self.inst
        stack = Stack(inst, "stack")
        units = {}
        for unit in UNITS:
            with open(os.path.join(inst.share, "systemd", unit)) as f:
                text = inst.rewrite(f.read(), stack.state, stack.run_dir, stack.logs)
            units[unit] = unit_settings(text)
        try:
            def service_env(unit):
                env = stack.env(unit_environment(units[unit]))
                for name in units[unit].get("UnsetEnvironment", []):
                    env.pop(name, None)
                # LoadCredential=jwt-secret:...: systemd's copy of the file in
                # a directory of the service's own, owned by its user.
                for cred in units[unit].get("LoadCredential", []):
                    name = cred.split(":", 1)[0]
                    creds = os.path.join(stack.dir, "credentials", unit)
                    os.makedirs(creds, exist_ok=True)
                    with open(os.path.join(creds, name), "w") as f:
                        f.write(stack.secret)
                    os.chmod(os.path.join(creds, name), 0o400)
                    if IS_ROOT:
                        pw = pwd.getpwnam(SERVICE_USER)
                        for path in (creds, os.path.join(creds, name)):
                            os.chown(path, pw.pw_uid, pw.pw_gid)
                    env["CREDENTIALS_DIRECTORY"] = creds
                # The units' default pool size is twice the CPUs; bounded
                # here whatever the machine.
                if len(os.sched_getaffinity(0)) > 4:
                    env["WORKERS"] = "4"
                return env

            migrate = units["orders-migrate.service"]
            self.assertEqual(migrate["Type"], ["oneshot"])
            run(unit_command(migrate["ExecStart"][0]) if not IS_ROOT else
                ["setpriv", "--reuid=" + SERVICE_USER, "--regid=" + SERVICE_USER,
                 "--init-groups", "--"] + unit_command(migrate["ExecStart"][0]),
                timeout=30, env=service_env("orders-migrate.service"), cwd=stack.dir)
            db = os.path.join(stack.state, "orders.db")
            self.assertTrue(os.path.isfile(db))
            self.assertEqual(os.stat(db).st_mode & 0o007, 0, "the database is world-readable")
            if IS_ROOT:
                self.assertEqual(os.stat(db).st_uid, pwd.getpwnam(SERVICE_USER).pw_uid)

            fcgi_env = service_env("orders-fcgi.service")
            pool = stack.start("pool", unit_command(units["orders-fcgi.service"]["ExecStart"][0]),
                               fcgi_env, as_service_user=True)
            wait_for(lambda: (stack.check_alive(), os.path.exists(stack.socket))[1], 15,
                     "the pool's socket")
            st = os.stat(stack.socket)
            self.assertEqual(st.st_mode & 0o777, 0o660)
            self.assertNotIn("JWT_SECRET_KEY", fcgi_env)  # the credential it is
            publisher = stack.start("publisher",
                                    unit_command(units["orders-publisher.service"]["ExecStart"][0]),
                                    service_env("orders-publisher.service"), as_service_user=True)
            with open("/proc/%d/environ" % publisher.pid, "rb") as f:
                self.assertNotIn(b"JWT_SECRET_KEY=", f.read())
            conf = stack.nginx_conf()
            run(stack.nginx_args(conf) + ["-t", "-q"], timeout=30)
            stack.start("nginx", stack.nginx_args(conf) + ["-g", "daemon off;"], stack.env())
            stack.wait_ready()

            if "WORKERS" not in fcgi_env:
                # The unit's shell wrapper set WORKERS to twice the CPUs.
                want = 2 * len(os.sched_getaffinity(0))
                def workers():
                    kids = []
                    for d in os.listdir("/proc"):
                        try:
                            with open("/proc/%s/stat" % d) as f:
                                if int(f.read().rsplit(")", 1)[1].split()[1]) == pool.pid:
                                    kids.append(d)
                        except (OSError, ValueError, IndexError):
                            pass
                    return len(kids) == want
                wait_for(workers, 10, "%d workers under the pool's master" % want)

            stack.exercise(self, stack.env())
            # The unit's ExecReload: SIGHUP brings fresh workers, the socket
            # stays, the service keeps answering.
            reload = unit_command(units["orders-fcgi.service"]["ExecReload"][0])
            self.assertEqual(reload[:2], ["/bin/kill", "-HUP"])
            os.kill(pool.pid, signal.SIGHUP)
            time.sleep(0.5)
            stack.wait_ready()
        except BaseException:
            stack.kill()
            raise
        codes, left = stack.stop()
        stack.assert_stopped(self, codes, left, ["pool", "publisher", "nginx"])

    def test_entrypoint_against_the_install(self):
        """deploy/entrypoint.sh, the container's PID 1, started with the
        staged install's paths: serves, and SIGTERM stops everything, 0."""
        inst = self.inst
        stack = Stack(inst, "entrypoint")
        conf = stack.nginx_conf()
        env = stack.env({
            "ORDERS_BINDIR": inst.staged(inst.dirs["bindir"]),
            "STATE_DIR": stack.state,
            "SOCKET": stack.socket,
            "NGINX_CONF": conf,
            "NGINX_ERROR_LOG": os.path.join(stack.logs, "nginx-error.log"),
            "ORDERS_USER": SERVICE_USER,
            "WORKERS": "2",
            # The image's NGINX_SITE: rendered at start with the container's
            # REQUEST_TIMEOUT, into the site the nginx.conf above includes.
            "NGINX_SITE": os.path.join(stack.nginx_dir, "orders-site.conf"),
            "NGINX_LISTEN": "127.0.0.1:%d" % stack.port,
            "NGINX_LOG_DIR": stack.logs,
            "REQUEST_TIMEOUT": "12",
        })
        # The image generates a secret into the volume when none is given.
        del env["JWT_SECRET_KEY"]
        ep = stack.start("entrypoint", [os.path.join(ROOT, "deploy", "entrypoint.sh")], env)
        try:
            stack.wait_ready()
            with open(env["NGINX_SITE"]) as f:
                site = f.read()
            self.assertIn("fastcgi_read_timeout 12s;", site)
            self.assertIn("server unix:%s;" % stack.socket, site)
            secret_file = os.path.join(stack.state, "jwt-secret")
            self.assertEqual(os.stat(secret_file).st_mode & 0o777, 0o600)
            with open(secret_file) as f:
                stack.secret = f.read().strip()
            tok_env = dict(env, RUNTIME_DIR=stack.state)
            stack.exercise(self, tok_env)
        except BaseException:
            stack.kill()
            raise
        ep.send_signal(signal.SIGTERM)
        try:
            rc = ep.wait(30)
        except subprocess.TimeoutExpired:
            rc = "no exit within 30s"
        codes, left = stack.stop()
        self.assertEqual(rc, 0, stack.log_text())
        stack.assert_stopped(self, codes, left, [])


class InstallScript(unittest.TestCase):
    """deploy/install.sh, the build the Dockerfile runs, into a staging
    root with the container's prefix (/usr): a fresh release build."""

    def test_install_sh_stages_a_usr_install(self):
        if os.environ.get("ORDERS_SKIP_INSTALL_SH") == "1":
            self.skipTest("ORDERS_SKIP_INSTALL_SH=1")
        tmp = tempfile.mkdtemp(prefix="orders-install-sh-")
        try:
            dest = os.path.join(tmp, "root")
            env = dict(os.environ, BUILD_DIR=os.path.join(tmp, "build"), DESTDIR=dest)
            env.pop("PREFIX", None)
            run([os.path.join(ROOT, "deploy", "install.sh")], timeout=900, env=env)
            for b in BINARIES:
                self.assertTrue(os.access(os.path.join(dest, "usr", "bin", b), os.X_OK), b)
            share = os.path.join(dest, "usr", "share", "orders")
            with open(os.path.join(share, "systemd", "orders-fcgi.service")) as f:
                s = unit_settings(f.read())
            # With prefix /usr, meson's sysconfdir is /etc.
            self.assertEqual(s["EnvironmentFile"], ["-/etc/default/orders"])
            self.assertIn("/usr/bin/orders-fcgi", " ".join(unit_command(s["ExecStart"][0])))
            self.assertTrue(os.path.isfile(os.path.join(share, "nginx", "orders.conf")))
            top = sorted(os.listdir(dest))
            self.assertEqual(top, ["usr"])
            self.check_documented_paths(dest)
            # The release build is the one a host runs: it answers --help.
            p = run([os.path.join(dest, "usr", "bin", "orders-fcgi"), "--help"], timeout=10,
                    check=False)
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            if not KEEP:
                shutil.rmtree(tmp, ignore_errors=True)

    def check_documented_paths(self, dest):
        """Every installed path the Dockerfile and the deployment docs name
        is where the /usr install put it."""
        texts = {}
        for rel in ["deploy/Dockerfile", "deploy/README.md", "README.md"]:
            try:
                with open(os.path.join(ROOT, rel)) as f:
                    texts[rel] = f.read()
            except FileNotFoundError:
                pass
        named = 0
        for rel, text in texts.items():
            for path in set(re.findall(r"/usr/(?:share/orders|bin/orders-)[\w./*-]*", text)):
                path = path.rstrip(".")
                named += 1
                self.assertTrue(glob.glob(os.path.join(dest, path.lstrip("/"))),
                                "%s names %s, which the install does not have" % (rel, path))
        self.assertGreater(named, 5)
        # The Dockerfile renders the site with the installed renderer,
        # IPv4 only (a container may have no IPv6), as the entrypoint does.
        self.assertIn("orders-nginx-site --settings /dev/null --listen 80 --output "
                      "/etc/nginx/sites-available/orders", texts["deploy/Dockerfile"])
        self.assertIn("NGINX_SITE=/etc/nginx/sites-available/orders", texts["deploy/Dockerfile"])
        self.assertTrue(os.access(os.path.join(dest, "usr/bin/orders-nginx-site"), os.X_OK))


if __name__ == "__main__":
    unittest.main(verbosity=2)
