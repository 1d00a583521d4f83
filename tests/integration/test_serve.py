"""The README's run command itself: scripts/serve serves GET /healthz through
nginx within seconds, prints a ready-to-paste example with a working token,
and Ctrl-C (SIGINT) stops every process it started and exits 0; a request
in flight when Ctrl-C comes is answered, not dropped (run-stack stops its
children in order: nginx stops accepting and finishes, then the pool, then
the publisher)."""
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import BUILD, ROOT, Stack, free_port, own_listener, wait_own_server


class Serve(unittest.TestCase):
    def test_serve_answers_prints_a_working_example_and_stops_on_ctrl_c(self):
        tmp = tempfile.mkdtemp(prefix="orders-serve-")
        if os.geteuid() == 0:
            os.chmod(tmp, 0o755)
        port = free_port()
        env = dict(os.environ, PORT=str(port), RUNTIME_DIR=os.path.join(tmp, "var"),
                   BUILD_DIR=BUILD, WORKERS="2", EVENT_SINK="stdout")
        env.pop("JWT_SECRET_KEY", None)  # the dev secret is generated
        out_path = os.path.join(tmp, "serve.out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([os.path.join(ROOT, "scripts", "serve")], env=env, cwd=tmp,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        def output():
            with open(out_path, errors="replace") as f:
                return f.read()
        try:
            # The example printed, by our own stack (scripts/serve waits on
            # /readyz, which another test's server on the port would answer).
            self.assertTrue(wait_own_server(port, {proc.pid}, lambda: "TOKEN=" in output(),
                                            lambda: self.assertIsNone(proc.poll(), output()), 60,
                                            interval=0.1), output())
            text = output()
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
                self.assertEqual(json.load(r), {"status": "ok"})
            secret = os.path.join(tmp, "var", "jwt-secret")
            self.assertEqual(os.stat(secret).st_mode & 0o777, 0o600)
            token = re.search(r"TOKEN=(\S+)", text).group(1)
            req = urllib.request.Request(
                "http://127.0.0.1:%d/orders" % port, method="POST",
                data=b'{"customerId":"customer-123","items":["item-1","item-2"]}',
                headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as r:
                self.assertEqual(r.status, 201)
            self.assertIn("http://127.0.0.1:%d/" % port, text)
            # the stdout sink shows the event in the terminal
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open(out_path, errors="replace") as f:
                    if '"type":"order.created"' in f.read():
                        break
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's group
            rc = proc.wait(30)
        self.assertEqual(rc, 0)
        left = []
        for _ in range(100):
            left = [d for d in os.listdir("/proc") if d.isdigit() and self._in_session(int(d), proc.pid)]
            if not left:
                break
            time.sleep(0.05)
        self.assertEqual(left, [], "processes left behind")
        with open(out_path, errors="replace") as f:
            text = f.read()
        self.assertIn('"type":"order.created"', text)
        subprocess.run(["rm", "-rf", tmp], check=False)

    @staticmethod
    def _in_session(pid, sid):
        try:
            return os.getsid(pid) == sid
        except OSError:
            return False



class CtrlC(unittest.TestCase):
    def test_a_request_in_flight_is_answered(self):
        """SIGINT to run-stack's process group, as a terminal sends it, while
        a POST's body is half sent: the stop waits for it, and the rest of
        the body gets its 201.  Were nginx reached by the SIGINT itself, it
        would stop at once (its fast shutdown) and drop the connection."""
        with Stack(workers=1) as s:
            body = json.dumps({"customerId": "ctrl-c", "items": ["i-1"]}).encode()
            half = len(body) // 2
            with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
                c.sendall(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Authorization: Bearer %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                          % (s.token().encode(), len(body)) + body[:half])
                # Once nginx has read what was sent (its end of the
                # connection has nothing left unread), it is reading the
                # request's body: a request in flight.  Ctrl-C now.
                client_port = c.getsockname()[1]
                s.wait_for(lambda: unread_by_server(s.port, client_port) == 0, timeout=10,
                           what="nginx to read the request's head")
                os.killpg(s.proc.pid, signal.SIGINT)
                # run-stack asks nginx to stop gracefully: once it no
                # longer accepts, the request is the one thing it waits for.
                s.wait_for(lambda: not port_accepts(s.port), timeout=10, what="nginx to stop accepting")
                c.sendall(body[half:])
                got = b""
                while True:
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            status = got.split(b"\r\n", 1)[0].decode("latin-1")
            self.assertIn(" 201 ", status, got[:2000])
            self.assertEqual(s.proc.wait(30), 0)
            with open(s.stderr_path, errors="replace") as f:
                logs = f.read()
        # The supervisor knows the stop is a stop: no restart reported.
        self.assertNotIn("restarting", logs)
        self.assertIn("run-stack: stopped", logs)


class AnotherServerOnThePort(unittest.TestCase):
    def test_the_harness_takes_only_its_own_stacks_answer(self):
        """The port the harness picked was taken, before our nginx bound
        it, by another test's server, which answers /readyz 200.  Stack.start
        must not take that answer for its stack's: our nginx cannot bind,
        run-stack exits, and the stack starts again on another port."""
        class Impostor(http.server.BaseHTTPRequestHandler):
            asked = []

            def do_GET(self):
                Impostor.asked.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.send_header("X-Impostor", "1")
                self.end_headers()

            def log_message(self, fmt, *args):
                pass

        impostor = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
        thread = threading.Thread(target=impostor.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        taken = impostor.server_address[1]
        try:
            with Stack(workers=1, port=taken) as s:
                self.assertNotEqual(s.port, taken)
                r = s.request("GET", "/readyz")
                self.assertEqual(r.status, 200)
                self.assertNotIn("x-impostor", r.headers)
                self.assertIsNotNone(own_listener(s.port, {s.proc.pid}))
            self.assertEqual(Impostor.asked, [], "the impostor was asked")
        finally:
            impostor.shutdown()
            impostor.server_close()
            thread.join(timeout=5)


def unread_by_server(port, client_port):
    """Bytes waiting unread on the server's end of the IPv4 loopback
    connection from client_port to port (/proc/net/tcp); None when there is
    no such connection."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
                return int(queues.split(":")[1], 16)
    return None


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main(verbosity=2)
