"""The service behind nginx: probes, documents, routing errors, nginx's own
errors as problem documents, a second instance beside the first, clean stop."""
import os
import socket
import unittest

from harness import ROOT, TEST_SECRET, Stack, assert_problem


def program_of(argv):
    """(basename of the program, run under a wrapper) of a process's argv:
    a valgrind process's argv[0] is the tool, its program the first
    argument after the tool's options."""
    name = os.path.basename(argv[0])
    if not name.startswith(b"valgrind"):
        return name, False
    program = next((a for a in argv[1:] if not a.startswith(b"-")), b"")
    return os.path.basename(program), True


class Foundation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(workers=2)
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_healthz(self):
        r = self.stack.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})
        self.assertTrue(r.headers["content-type"].startswith("application/json"))

    def test_readyz(self):
        r = self.stack.request("GET", "/readyz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["status"], "ready")

    def test_service_info(self):
        info = self.stack.request("GET", "/").json()
        self.assertEqual(info["name"], "orders")
        self.assertRegex(info["version"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(info["links"]["openapi"], "/openapi.json")
        self.assertEqual(info["links"]["health"], "/healthz")

    def test_openapi_byte_for_byte(self):
        r = self.stack.request("GET", "/openapi.json")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        with open(os.path.join(ROOT, "openapi.json"), "rb") as f:
            self.assertEqual(r.body, f.read())

    def test_unknown_path_is_404_problem(self):
        assert_problem(self, self.stack.request("GET", "/no/such/thing"), 404, "not_found",
                       "/no/such/thing")

    def test_wrong_method_is_405_with_allow(self):
        r = self.stack.request("DELETE", "/orders")
        assert_problem(self, r, 405, "method_not_allowed")
        self.assertEqual(sorted(m.strip() for m in r.headers["allow"].split(",")), ["GET", "POST"])
        r = self.stack.request("PUT", "/orders/019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60")
        assert_problem(self, r, 405, "method_not_allowed")
        self.assertEqual(sorted(m.strip() for m in r.headers["allow"].split(",")), ["GET", "PATCH"])
        r = self.stack.request("POST", "/healthz", body=b"{}")
        self.assertEqual(r.headers["allow"], "GET")

    def test_oversized_body_is_413_problem_from_nginx(self):
        r = self.stack.request("POST", "/orders", body=b"x" * (64 * 1024 + 1),
                               headers={"Content-Type": "application/json"})
        assert_problem(self, r, 413, "payload_too_large")

    def test_uri_too_long_is_problem(self):
        r = self.stack.request("GET", "/" + "a" * 9000)
        self.assertIn(r.status, (400, 414))
        self.assertTrue(r.headers["content-type"].startswith("application/problem+json"))
        self.assertIn(r.json()["type"], ("uri_too_long", "request_header_too_large"))

    def test_malformed_request_is_400_problem_from_nginx(self):
        with socket.create_connection(("127.0.0.1", self.stack.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b" 400 ", head.split(b"\r\n")[0])
        self.assertIn(b"application/problem+json", head)
        self.assertIn(b'"type":"bad_request"', body)

    def test_no_version_banner_and_security_headers(self):
        r = self.stack.request("GET", "/healthz")
        self.assertEqual(r.headers.get("server"), "nginx")
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff")
        r = self.stack.request("GET", "/nope")
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff")

    def test_request_id_reaches_worker_logs(self):
        self.stack.request("GET", "/healthz?probe=request-id")
        lines = [l for l in self.stack.worker_log_lines()
                 if l.get("message") == "request" and l.get("path") == "/healthz"]
        self.assertTrue(lines)
        self.assertRegex(lines[-1]["request_id"], r"^[0-9a-f]{32}$")
        for key in ("timestamp", "level", "service", "trace_id", "span_id", "status", "duration_ms"):
            self.assertIn(key, lines[-1])

    def test_secret_not_left_in_the_environment(self):
        """Issue 11: the JWT secret is not in any worker's (nor the pool
        master's, nor the publisher's) /proc/PID/environ, although the stack
        was started with JWT_SECRET_KEY; the workers still verify tokens.

        Under ORDERS_FCGI_WRAPPER (valgrind) a process's argv[0] is the
        tool's and the program is its first argument after the tool's
        options.  The process the wrapper itself was started as (the pool
        master) shows in /proc/PID/environ the block the tool was started
        with, of which the program only gets a copy: what the master
        scrubs is invisible there, so only its workers (exec'ed by the
        master with its environment, hence started by the tool afresh) and
        the publisher are checked in that run; the run without a wrapper
        checks the master too."""
        self.assertEqual(self.stack.request("GET", "/orders", token=self.stack.token()).status, 200)
        seen = {}
        for pid in self.stack.process_ids():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
                name, wrapped = program_of(argv)
                if name not in (b"orders-fcgi", b"orders-publisher"):
                    continue
                with open("/proc/%d/environ" % pid, "rb") as f:
                    environ = f.read()
            except (OSError, IndexError):
                continue  # exited meanwhile
            seen[pid] = name
            if wrapped and b"--worker" not in argv:
                continue  # the tool's own environment block (see above)
            self.assertNotIn(TEST_SECRET.encode(), environ, "pid %d (%s)" % (pid, name))
            self.assertNotIn(b"JWT_SECRET_KEY=", environ, "pid %d (%s)" % (pid, name))
        # the master, two workers and the publisher
        self.assertEqual(sorted(seen.values()).count(b"orders-fcgi"), 3, seen)
        self.assertIn(b"orders-publisher", seen.values())

    def test_keepalive_connection_serves_many(self):
        conn = self.stack.connection()
        try:
            for _ in range(50):
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
        finally:
            conn.close()


class StartupChecks(unittest.TestCase):
    def test_short_jwt_secret_is_refused_at_start(self):
        import subprocess
        from harness import BUILD
        env = dict(os.environ, JWT_SECRET_KEY="too-short-secret", RUNTIME_DIR="/nonexistent")
        r = subprocess.run([os.path.join(BUILD, "fcgi", "orders-fcgi")], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("JWT_SECRET_KEY is 16 bytes; at least 32 are required", r.stderr)

    def test_timeouts_that_disagree_are_refused_at_start(self):
        """Issue 11: a write allowed to wait for the database as long as
        nginx waits for the answer could commit after the client got 504."""
        import subprocess
        from harness import BUILD
        env = dict(os.environ, JWT_SECRET_KEY="k" * 40, RUNTIME_DIR="/nonexistent",
                   REQUEST_TIMEOUT="5", DB_BUSY_TIMEOUT_MS="5000")
        r = subprocess.run([os.path.join(BUILD, "fcgi", "orders-fcgi")], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("DB_BUSY_TIMEOUT_MS (5000) must be at most REQUEST_TIMEOUT", lines[0])


class SecondInstance(unittest.TestCase):
    def test_two_instances_side_by_side_and_clean_stop(self):
        with Stack(workers=1) as a, Stack(workers=1) as b:
            self.assertNotEqual(a.port, b.port)
            self.assertEqual(a.request("GET", "/healthz").status, 200)
            self.assertEqual(b.request("GET", "/healthz").status, 200)
            self.assertTrue(a.process_ids())
        # __exit__ asserted exit status 0 and no process left behind.


if __name__ == "__main__":
    unittest.main(verbosity=2)
