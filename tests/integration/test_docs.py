"""GET /docs, the interactive API reference (Swagger UI), through the real
stack: nginx serves the page and its assets with the right types and a
Content-Security-Policy, and a real headless Chromium (Debian's `chromium`)
loads the page from the running service, shows the Orders operations, and
executes GET /healthz from the page with a 200, with no request leaving the
service's origin and no policy violation.  A screenshot is kept in
BUILD/test-artifacts/docs.png.

Chromium is driven over the DevTools protocol (a websocket; Debian's
python3-websocket, scripts/install-deps test).

    ORDERS_BUILD_DIR=build python3 tests/integration/test_docs.py
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from harness import BUILD, Stack, assert_problem

try:
    import websocket  # python3-websocket (websocket-client)
except ImportError:  # a python3 other than Debian's: use Debian's package
    sys.path.append("/usr/lib/python3/dist-packages")
    import websocket

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
ORDERS_OPERATIONS = {("POST", "/orders"), ("GET", "/orders"), ("GET", "/orders/{id}"),
                     ("PATCH", "/orders/{id}")}


class Browser:
    """One headless Chromium and a DevTools session on its first page."""

    def __init__(self, timeout=60):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="orders-chromium-")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "--user-data-dir=" + self.profile,
             "--window-size=1280,2000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.next_id = 0
        self.events = []
        try:
            port = self._devtools_port()
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10) as r:
                targets = json.load(r)
            page = next(t for t in targets if t.get("type") == "page")
            self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=10,
                                                  suppress_origin=True)
        except BaseException:
            self.close()
            raise

    def _devtools_port(self):
        # With port 0, Chromium picks a free port and writes it here.
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("chromium exited with %s" % self.proc.returncode)
            try:
                with open(path) as f:
                    first = f.readline().strip()
                if first:
                    return int(first)
            except FileNotFoundError:
                pass
            time.sleep(0.1)
        raise AssertionError("chromium did not open its DevTools port")

    def send(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            # One wait for the answer, however long the page keeps Chromium
            # busy (on a loaded machine, over the socket's own 10 s).
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)
        raise AssertionError("no answer to %s within %ss" % (method, self.timeout))

    def evaluate(self, expression):
        r = self.send("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("page script failed: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def wait_for(self, expression, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.evaluate(expression)
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


class DocsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(workers=2)
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_page_and_assets_have_their_types_and_policy(self):
        s = self.stack
        for path, ctype in [("/docs", "text/html; charset=utf-8"),
                            ("/docs/docs.js", "application/javascript; charset=utf-8"),
                            ("/docs/swagger-ui-bundle.js", "application/javascript; charset=utf-8"),
                            ("/docs/swagger-ui.css", "text/css; charset=utf-8"),
                            ("/docs/favicon-32x32.png", "image/png")]:
            res = s.request("GET", path)
            self.assertEqual(res.status, 200, (path, res))
            self.assertEqual(res.headers.get("content-type"), ctype, path)
            self.assertEqual(res.headers.get("content-security-policy"), DOCS_CSP, path)
            self.assertEqual(res.headers.get("x-content-type-options"), "nosniff", path)
            self.assertEqual(res.headers.get("x-frame-options"), "DENY", path)
            self.assertTrue(res.body, path)
        page = s.request("GET", "/docs").body.decode()
        self.assertIn('src="/docs/swagger-ui-bundle.js"', page)
        self.assertNotIn("<script>", page)  # no inline script: the policy forbids it
        # The API keeps its own, stricter policy.
        self.assertEqual(s.request("GET", "/healthz").headers.get("content-security-policy"),
                         "default-src 'none'; frame-ancestors 'none'")
        # The bundle is compressed for a client that accepts it.
        res = s.request("GET", "/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(res.headers.get("content-encoding"), "gzip")

    def test_errors_under_docs_are_problem_documents(self):
        assert_problem(self, self.stack.request("GET", "/docs/nope.js"), 404, "not_found")
        res = self.stack.request("POST", "/docs", body=b"{}",
                                 headers={"Content-Type": "application/json"})
        assert_problem(self, res, 405, "method_not_allowed")
        self.assertEqual(res.headers.get("allow"), "GET, HEAD")

    def test_in_a_real_browser(self):
        s = self.stack
        b = Browser()
        try:
            b.send("Page.enable")
            b.send("Network.enable")
            # Every policy violation the page meets is recorded.
            b.send("Page.addScriptToEvaluateOnNewDocument", source=(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation', e => "
                "window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"))
            b.send("Page.navigate", url=s.base + "/docs")
            b.wait_for("document.querySelectorAll('.opblock').length >= 8", "the operations")
            ops = b.evaluate(
                "[...document.querySelectorAll('.opblock-summary')].map(e => ["
                "e.querySelector('.opblock-summary-method').textContent,"
                "e.querySelector('.opblock-summary-path').getAttribute('data-path')])")
            listed = {(m, p) for m, p in ops}
            self.assertTrue(ORDERS_OPERATIONS <= listed, listed)

            # GET /healthz, executed from the page: open, "Try it out", "Execute".
            op = "document.querySelector('#operations-health-getHealth')"
            b.evaluate(op + ".querySelector('.opblock-summary-control').click()")
            b.wait_for("!!" + op + ".querySelector('.try-out__btn')", "the Try it out button")
            b.evaluate(op + ".querySelector('.try-out__btn').click()")
            b.wait_for("!!" + op + ".querySelector('.execute')", "the Execute button")
            b.evaluate(op + ".querySelector('.execute').click()")
            status = b.wait_for(
                "(() => { const c = " + op + ".querySelector('.live-responses-table tbody .response-col_status');"
                " return c && c.textContent.trim(); })()", "the response")
            self.assertEqual(status, "200", (b.evaluate(op + ".querySelector('.live-responses-table').textContent"), b.evaluate("window.__violations"), [e["params"]["request"]["url"] for e in b.events if e.get("method") == "Network.requestWillBeSent"]))
            body = b.evaluate(op + ".querySelector('.live-responses-table tbody .microlight, "
                              ".live-responses-table tbody pre').textContent")
            self.assertIn('"status"', body)

            shot = b.send("Page.captureScreenshot", format="png")
            artifacts = os.path.join(BUILD, "test-artifacts")
            os.makedirs(artifacts, exist_ok=True)
            import base64
            with open(os.path.join(artifacts, "docs.png"), "wb") as f:
                f.write(base64.b64decode(shot["data"]))

            self.assertEqual(b.evaluate("window.__violations"), [])
            # Offline: every request the page made went to the service.
            urls = [e["params"]["request"]["url"] for e in b.events
                    if e.get("method") == "Network.requestWillBeSent"]
            self.assertTrue(any(u.endswith("/openapi.json") for u in urls), urls)
            self.assertTrue(any(u.endswith("/healthz") for u in urls), urls)
            foreign = [u for u in urls if not (u.startswith(s.base + "/") or u.startswith("data:"))]
            self.assertEqual(foreign, [])
        finally:
            b.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
