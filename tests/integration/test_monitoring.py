"""What reads the metrics: the Prometheus alerting rules
(deploy/prometheus/orders-alerts.yml) pass `promtool check rules` and their
unit tests (`promtool test rules`), and every query of the Grafana dashboard
(deploy/grafana/orders.json) returns data from a real service.

For the second part a real Prometheus (Debian's `prometheus`) scrapes the
running stack's /metrics every second, with the alerting rules loaded,
while a little load runs (creates, reads, updates, lists, some 4xx); then
each panel query, with Grafana's variables filled in, goes through
Prometheus's HTTP API and must return at least one series with a number.
Every rule must also have been evaluated by that Prometheus without error.
Every wait is bounded."""
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from harness import ROOT, Stack, free_port, wait_own_server

RULES = os.path.join(ROOT, "deploy", "prometheus", "orders-alerts.yml")
RULE_TESTS = os.path.join(ROOT, "deploy", "prometheus", "orders-alerts.test.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "orders.json")
# The alerts the rules must define (issue 18): one per condition.
ALERTS = {"OrdersHigh5xxRatio", "OrdersHighLatencyP99", "OrdersEventsPendingTooLong",
          "OrdersEventsParked", "OrdersPublisherNotDelivering", "OrdersWorkersRestarting",
          "OrdersPoolSaturated", "OrdersNotReady", "OrdersDown"}
# Grafana's variables as Grafana would fill them for this scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$instance": ".+", "${instance}": ".+"}


def tool(name):
    path = shutil.which(name)
    if path is None:
        raise AssertionError("%s is missing: install the Debian package prometheus "
                             "(scripts/install-deps test installs it)" % name)
    return path


def dashboard_queries():
    """[(panel title, expr)] of every target of every panel, rows included."""
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
    walk(dash["panels"])
    return out


def fill(expr):
    for k, v in GRAFANA_VARIABLES.items():
        expr = expr.replace(k, v)
    assert "$" not in expr, "an unknown Grafana variable in: " + expr
    return expr


def metric_names(text):
    """orders_* metric names a rule file or dashboard uses."""
    names = set(re.findall(r"\b(orders_[a-z0-9_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if "duration_seconds" in n else n for n in names}


class Rules(unittest.TestCase):
    def test_rules_check_and_unit_tests_pass(self):
        promtool = tool("promtool")
        p = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run([promtool, "test", "rules", os.path.basename(RULE_TESTS)], capture_output=True,
                           text=True, timeout=120, cwd=os.path.dirname(RULE_TESTS))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout + p.stderr)

    def test_the_manifest_names_them(self):
        import yaml  # python3-yaml, as the manifest test
        with open(os.path.join(ROOT, "service.yaml")) as f:
            metrics = yaml.safe_load(f)["metrics"]
        self.assertEqual(os.path.join(ROOT, metrics["alerts"]), RULES)
        self.assertEqual(os.path.join(ROOT, metrics["dashboard"]), DASHBOARD)

    def test_every_alert_is_defined_and_unit_tested_both_ways(self):
        with open(RULES) as f:
            rules = f.read()
        with open(RULE_TESTS) as f:
            tests = f.read()
        defined = set(re.findall(r"^\s*- alert: (\S+)", rules, re.M))
        self.assertEqual(defined, ALERTS)
        for name in ALERTS:
            # a case expecting it to fire, and one expecting silence
            fired = re.search(r"alertname: %s\n\s*exp_alerts:\n\s*- exp_labels" % name, tests)
            silent = re.search(r"alertname: %s\n\s*exp_alerts: \[\]" % name, tests)
            self.assertTrue(fired and silent, name)


class DashboardOnARealService(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prometheus = tool("prometheus")
        cls.stack = Stack(workers=2)
        cls.stack.start()
        cls.dir = tempfile.mkdtemp(prefix="orders-prom-")
        cls.port = free_port()
        cls.base = "http://127.0.0.1:%d" % cls.port
        config = os.path.join(cls.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n  - job_name: orders\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % (json.dumps(RULES), cls.stack.port))
        cls.log = open(os.path.join(cls.dir, "prometheus.log"), "wb")
        cls.proc = subprocess.Popen(
            [cls.prometheus, "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(cls.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % cls.port, "--storage.tsdb.retention.time=1h"],
            stdout=cls.log, stderr=subprocess.STDOUT, cwd=cls.dir, start_new_session=True)
        cls.stop_load = threading.Event()
        cls.load_errors = []
        cls.load = threading.Thread(target=cls.run_load, daemon=True)
        try:
            def alive():
                if cls.proc.poll() is not None:
                    with open(os.path.join(cls.dir, "prometheus.log"), errors="replace") as f:
                        raise AssertionError("prometheus exited (%s):\n%s" % (cls.proc.returncode, f.read()[-3000:]))

            def ready():
                try:
                    return cls.api("/-/ready", raw=True)
                except OSError:
                    return False
            # Our Prometheus's answer only (harness.wait_own_server says why).
            if not wait_own_server(cls.port, {cls.proc.pid}, ready, alive, 30, interval=0.2):
                raise AssertionError("timed out after 30s waiting for Prometheus ready")
            cls.load.start()
            # Enough scrapes for a rate over GRAFANA_VARIABLES' window, and
            # the rules evaluated at least once.
            cls.wait(lambda: cls.query_values("count_over_time(orders_orders_created_total[10s])", ">=", 5),
                     30, "five scrapes during the load")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stop_load.set()
        if cls.load.is_alive():
            cls.load.join(10)
        if cls.proc.poll() is None:
            cls.proc.terminate()
            try:
                cls.proc.wait(15)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait(5)
        cls.log.close()
        cls.stack.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def run_load(cls):
        """Creates, reads, updates and lists, plus a few 4xx, on two
        connections at a time, until told to stop (at most 120 s)."""
        s = cls.stack
        token = s.token()
        deadline = time.monotonic() + 120

        def client():
            try:
                while not cls.stop_load.is_set() and time.monotonic() < deadline:
                    r = s.request("POST", "/orders", {"customerId": "c", "items": ["i"]}, token=token)
                    oid = r.json()["id"]
                    s.request("GET", "/orders/" + oid, token=token)
                    s.request("PATCH", "/orders/" + oid, {"status": "paid"}, token=token)
                    s.request("GET", "/orders?limit=5", token=token)
                    s.request("GET", "/orders/not-an-id", token=token)
                    s.request("POST", "/orders", {"customerId": ""}, token=token)
                    time.sleep(0.02)
            except Exception as e:  # reported by the test that reads it
                cls.load_errors.append(repr(e))
        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @classmethod
    def api(cls, path, params=None, raw=False):
        url = cls.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
        return body if raw else json.loads(body)

    @classmethod
    def query(cls, expr):
        doc = cls.api("/api/v1/query", {"query": expr})
        assert doc["status"] == "success", doc
        return doc["data"]["result"]

    @classmethod
    def query_values(cls, expr, op, n):
        vals = [float(r["value"][1]) for r in cls.query(expr)]
        return vals and (max(vals) >= n if op == ">=" else False)

    @staticmethod
    def wait(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))

    def test_every_panel_query_returns_a_series(self):
        queries = dashboard_queries()
        self.assertGreaterEqual(len(queries), 10)
        self.assertEqual(self.load_errors, [])
        for title, expr in queries:
            with self.subTest(panel=title, expr=expr):
                result = self.query(fill(expr))
                self.assertTrue(result, "no series")
                values = [float(r["value"][1]) for r in result]
                self.assertTrue(any(math.isfinite(v) for v in values), "only NaN: %s" % values)

    def test_the_load_shows_on_the_request_panels(self):
        """The queries read what the load did, not only zeros."""
        rate = self.query(fill('sum(rate(orders_http_requests_total{route="POST /orders",status="201"}'
                               '[$__rate_interval]))'))
        self.assertGreater(float(rate[0]["value"][1]), 0)
        errors = self.query(fill('sum by (route) (rate(orders_http_requests_total{status=~"4.."}'
                                 '[$__rate_interval]))'))
        self.assertEqual({r["metric"]["route"] for r in errors}, {"GET /orders/{id}", "POST /orders"})

    def test_every_metric_the_rules_and_dashboard_read_is_served(self):
        exposed = {n for n, in (l.split()[:1] for l in
                                self.stack.request("GET", "/metrics").body.decode().splitlines()
                                if l and not l.startswith("#"))}
        exposed = {re.sub(r"\{.*", "", n) for n in exposed}
        exposed = {re.sub(r"_(bucket|sum|count)$", "", n) if "duration_seconds" in n else n for n in exposed}
        for path in (RULES, DASHBOARD):
            with open(path) as f:
                used = metric_names(f.read())
            self.assertTrue(used)
            self.assertLessEqual(used, exposed, "%s reads metrics the service does not serve" % path)

    def test_prometheus_evaluates_every_rule_without_error(self):
        def evaluated():
            groups = self.api("/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules if rules and all(r.get("lastEvaluation", "").startswith("20") and
                                          not r["lastEvaluation"].startswith("0001") for r in rules) else None
        self.wait(evaluated, 20, "every rule evaluated")
        rules = evaluated()
        self.assertEqual({r["name"] for r in rules}, ALERTS)
        for r in rules:
            self.assertEqual(r["health"], "ok", r)
        # A healthy service under light load fires nothing.
        self.assertEqual([r["name"] for r in rules if r["state"] == "firing"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
