"""The stack runs from anywhere: with RUNTIME_DIR inside a directory closed
to everyone else (mode 0700, as a clone under /root is), as root or as an
ordinary user, and it keeps the token secret out of the publisher.

As root, WORKER_USER cannot reach such a RUNTIME_DIR: the FastCGI workers
and the publisher then keep root, nginx's workers still drop to WORKER_USER,
and run-stack says so in one log line.  As an ordinary user everything runs
as that user and no such line appears."""
import json
import os
import pwd
import re
import socket
import subprocess
import unittest

from harness import BUILD, Stack

PRIVILEGE_LINE = "cannot reach"


def chunked_post(port, data):
    """A chunked POST /orders whose first chunk overflows nginx's buffer,
    so nginx spools it to its temporary directory; the status line."""
    body = b"%x\r\n%s\r\n" % (len(data), data) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return got.split(b"\r\n")[0].decode("latin-1")


class PrivateRuntimeDir(unittest.TestCase):
    def test_serves_from_a_0700_directory(self):
        with Stack(workers=2, private_dir=True) as s:
            self.assertEqual(os.stat(s.dir).st_mode & 0o777, 0o700)
            token = s.token()
            r = s.request("POST", "/orders", {"customerId": "c-1", "items": ["i-1"]}, token=token)
            self.assertEqual(r.status, 201, r)
            oid = r.json()["id"]
            self.assertEqual(s.request("GET", "/orders/" + oid, token=token).status, 200)
            s.wait_for(lambda: [e for e in s.events() if e["subject"] == oid], what="the event")
            self.assertIn(" 413 ", chunked_post(s.port, b" " * 100000))
            # nginx's workers read the /docs files (when this build has them)
            built_docs = os.path.isfile(os.path.join(BUILD, "docs", "index.html"))
            self.assertEqual(s.request("GET", "/docs").status, 200 if built_docs else 404)
            procs = s.processes()
            nginx_workers = [p for p in procs if p[2].startswith("nginx: worker")]
            fcgi = [p for p in procs if p[2].endswith("orders-fcgi")]
            publisher = [p for p in procs if p[2].endswith("orders-publisher")]
            self.assertTrue(nginx_workers and fcgi and publisher, procs)
            with open(s.stderr_path, errors="replace") as f:
                lines = [l for l in f if l.startswith("run-stack:") and PRIVILEGE_LINE in l]
            if os.geteuid() == 0:
                www = pwd.getpwnam(os.environ.get("WORKER_USER") or "www-data").pw_uid
                self.assertEqual({p[1] for p in nginx_workers}, {www}, "nginx's workers stay unprivileged")
                self.assertEqual({p[1] for p in fcgi + publisher}, {0})
                self.assertEqual(len(lines), 1, lines)
                self.assertIn("run as root", lines[0])
                self.assertIn(s.runtime, lines[0])
            else:
                self.assertEqual({p[1] for p in procs}, {os.geteuid()})
                self.assertEqual(lines, [])
            # The database and the events are where RUNTIME_DIR says.
            self.assertTrue(os.path.isfile(os.path.join(s.runtime, "orders.db")))
            front = re.search(r"temporary files in (\S+)\)", lines[0]).group(1) if lines else None
        # stop() asserted exit 0 and nothing left behind; nginx's private
        # directory is gone too.
        if front is not None:
            self.assertFalse(os.path.exists(front), front)

    def test_reachable_runtime_dir_drops_everything(self):
        """The usual case as root: every process that talks to clients runs
        as WORKER_USER, and no privilege line is written."""
        with Stack(workers=1) as s:
            procs = s.processes()
            with open(s.stderr_path, errors="replace") as f:
                lines = [l for l in f if l.startswith("run-stack:") and PRIVILEGE_LINE in l]
            self.assertEqual(lines, [])
            self.assertIn(" 413 ", chunked_post(s.port, b" " * 100000))
            if os.geteuid() == 0:
                www = pwd.getpwnam(os.environ.get("WORKER_USER") or "www-data").pw_uid
                # the publisher starts last and drops right after its start
                pub = s.wait_for(lambda: [p for p in s.processes()
                                          if p[2].endswith("orders-publisher") and p[1] != 0],
                                 what="an unprivileged publisher")
                self.assertEqual(pub[0][1], www)
                fcgi_workers = [p for p in procs if p[2].endswith("orders-fcgi") and p[1] != 0]
                self.assertEqual({p[1] for p in fcgi_workers}, {www}, procs)
                nginx_workers = [p for p in procs if p[2].startswith("nginx: worker")]
                self.assertEqual({p[1] for p in nginx_workers}, {www}, procs)
                # What root's nginx master reads (its configuration) and
                # opens (its pid file, its logs) sits in root's directories,
                # which the workers, who write in RUNTIME_DIR, cannot put
                # directories of their own in place of.
                st = os.stat(s.runtime)
                self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o1770))
                for sub in ("nginx", "logs"):
                    self.assertEqual(os.lstat(os.path.join(s.runtime, sub)).st_uid, 0, sub)
                    swap = subprocess.run(
                        ["setpriv", "--reuid=%d" % www, "--regid=%d" % pwd.getpwuid(www).pw_gid,
                         "--init-groups", "--", "mv", os.path.join(s.runtime, sub),
                         os.path.join(s.runtime, sub + ".theirs")],
                        capture_output=True, text=True, timeout=10)
                    self.assertNotEqual(swap.returncode, 0, "the worker user moved %s away" % sub)
                    self.assertTrue(os.path.isfile(os.path.join(s.runtime, "nginx", "nginx.conf")))
                # and they still write theirs there: the database is theirs
                self.assertEqual(os.stat(os.path.join(s.runtime, "orders.db")).st_uid, www)


class Secrets(unittest.TestCase):
    def test_the_publisher_does_not_receive_the_token_secret(self):
        with Stack(workers=1) as s:
            publisher = s.wait_for(lambda: [p for p in s.processes() if p[2].endswith("orders-publisher")],
                                   what="the publisher")
            with open("/proc/%d/environ" % publisher[0][0], "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            self.assertIn(b"DATABASE_PATH", env)  # it is the publisher's environment
            self.assertNotIn(b"JWT_SECRET_KEY", env)
            self.assertNotIn(s.env["JWT_SECRET_KEY"].encode(), b"".join(env.values()))
            # and it still delivers
            r = s.request("POST", "/orders", {"customerId": "c", "items": ["i"]}, token=s.token())
            self.assertEqual(r.status, 201)
            oid = r.json()["id"]
            s.wait_for(lambda: [e for e in s.events() if e["subject"] == oid], what="the event")
            self.assertEqual(json.loads(json.dumps(s.events()[-1]))["type"], "order.created")


if __name__ == "__main__":
    unittest.main(verbosity=2)
