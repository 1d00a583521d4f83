"""The README's run command itself: scripts/serve serves GET /healthz through
nginx within seconds, prints a ready-to-paste example with a working token,
and Ctrl-C (SIGINT) stops every process it started and exits 0."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import BUILD, ROOT, free_port


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
        try:
            deadline = time.monotonic() + 60
            text = ""
            while time.monotonic() < deadline:
                with open(out_path, errors="replace") as f:
                    text = f.read()
                if "TOKEN=" in text:
                    break
                self.assertIsNone(proc.poll(), text)
                time.sleep(0.1)
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
