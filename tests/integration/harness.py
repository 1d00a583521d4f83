"""The integration harness: the real stack (nginx, spawn-fcgi, the worker
pool, the publisher, SQLite) started by scripts/run-stack, exactly as the
run command starts it, in a temporary directory on a free loopback port.
With ORDERS_TEST_DATABASE=postgres the stack uses a PostgreSQL database of
its own instead (pg.py starts the server).

    with Stack() as s:
        status, headers, body = s.request("GET", "/healthz")

Works as root (CI: workers drop to www-data) and as an ordinary user.  Every
wait is bounded; stop() asserts that the stack exits 0 and leaves no process
behind.
"""
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("ORDERS_BUILD_DIR", os.path.join(ROOT, "build")))
VECTORS_PATH = os.path.join(ROOT, "tests", "data", "jwt-vectors.json")
# The secret of tests/data/jwt-vectors.json (minted by PyJWT; see
# tests/data/make-jwt-vectors.py), so that those tokens apply.
TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef"

# The stacks' reload is SIGHUP, trapped by scripts/run-stack; bash cannot
# trap a signal that was ignored when it started, and a test run started
# under nohup (or a CI runner that ignores SIGHUP) passes that on to every
# child: the reload tests then send a SIGHUP nobody hears.  The tests'
# children get the default disposition whatever the runner's.
signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A loopback port nobody listens on now, for a server started a moment
    later.  Taken below the kernel's ephemeral range (where bind(0) would
    pick it): there, the source port of any outgoing connection (the
    tests' own clients, the publisher's) can take it before the server
    binds.  Random, so that tests running in parallel rarely pick the same
    one; Stack.start still tries another port if nginx finds it taken."""
    import random
    low = min(_ephemeral_low(), 65536)
    if low - 20000 >= 1000:
        for _ in range(200):
            port = random.randrange(20000, low)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sessions):
    """Every process whose session is one of these (ids of the processes
    started with start_new_session=True, their session leaders)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.getsid(int(d)) in sessions:
                pids.append(int(d))
        except OSError:
            pass
    return pids


# Local addresses of /proc/net/tcp{,6} (hex, as the kernel writes them) at
# which a listener takes a connection to 127.0.0.1.
_LOOPBACK_V4 = {"0100007F", "00000000"}
_LOOPBACK_V6 = {"00000000000000000000000000000000", "0000000000000000FFFF00000100007F"}
_TCP_LISTEN = "0A"


def _listening_inodes(port):
    """Inodes of the sockets that take a connection to 127.0.0.1:port."""
    inodes = set()
    for path, addresses in (("/proc/net/tcp", _LOOPBACK_V4), ("/proc/net/tcp6", _LOOPBACK_V6)):
        try:
            with open(path) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == _TCP_LISTEN and int(hex_port, 16) == port and address in addresses:
                inodes.add(fields[9])
    return inodes


def own_listener(port, sessions):
    """The listening sockets (inodes) that answer 127.0.0.1:port, when every
    one of them is held open by a process of these sessions; None when
    nobody listens there or someone else's server does."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    held = set()
    for pid in session_pids(sessions):
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                held.add(link[8:-1])
    return frozenset(inodes) if inodes <= held else None


def wait_own_server(port, sessions, ready, alive, timeout, interval=0.05):
    """Waits for ready(), a probe of 127.0.0.1:port, to say yes about OUR
    server: one that processes of these sessions started.  A free port is
    free only when picked: another test's server may take it before ours
    binds, and would then answer the probe while ours fails to bind.  So
    the probe counts only when the port's listener is ours just before it
    and the same socket just after it (a socket listens until closed: the
    answer came from it), with alive() quiet both times.  alive() raises
    once our server has exited (the caller's account of why, e.g. the port
    was taken).  True once ready, False when timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        held = own_listener(port, sessions)
        if held is not None and ready() and own_listener(port, sessions) == held:
            alive()
            return True
        time.sleep(interval)
    return False


def load_vectors():
    with open(VECTORS_PATH) as f:
        return json.load(f)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value (last wins)
        self.header_list = None
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:300])


class Stack:
    def __init__(self, workers=2, env=None, start_timeout=30, private_dir=False,
                 wait_path="/readyz", port=None):
        """private_dir: leave the temporary directory holding RUNTIME_DIR
        at mode 0700, closed to WORKER_USER (as a clone under /root is).
        wait_path: start() returns once it answers 200 (/healthz for a
        stack that is up but not ready).  port: the port of the first
        attempt (a test of the harness itself); free_port() otherwise and
        for every attempt after it."""
        self.wait_path = wait_path
        self.first_port = port
        self.workers = workers
        self.private_dir = private_dir
        self.extra_env = dict(env or {})
        # Under ORDERS_FCGI_WRAPPER (valgrind's memcheck, some 20-50 times
        # slower) a pool of workers takes a while to start on a busy machine.
        self.start_timeout = start_timeout * (4 if os.environ.get("ORDERS_FCGI_WRAPPER") else 1)
        self.proc = None
        self.dir = None

    # -- life cycle -----------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            # The test failed inside the stack's block: what the stack said
            # is removed with its directory, and a rare failure (a 502 in a
            # fresh-clone run) cannot be explained afterwards without it.
            sys.stderr.write("\n--- the stack's logs when the test failed (%s) ---\n%s\n---\n"
                             % (self.dir, self.logs()))
        self.stop(check=exc[0] is None)

    # nginx cannot bind a port that was free a moment ago (another
    # test's server took it): the stack is started again on another port.
    PORT_TAKEN = "Address already in use"
    START_ATTEMPTS = 3

    def start(self):
        for attempt in range(self.START_ATTEMPTS):
            try:
                return self.start_once()
            except AssertionError as e:
                if self.PORT_TAKEN not in str(e) or attempt + 1 == self.START_ATTEMPTS:
                    raise
                self.stop(check=False)

    def start_once(self):
        self.dir = tempfile.mkdtemp(prefix="orders-it-")
        self.runtime = os.path.join(self.dir, "var")
        os.makedirs(self.runtime)
        if os.geteuid() == 0 and not self.private_dir:
            # The workers run as www-data and must reach their runtime dir.
            os.chmod(self.dir, 0o755)
        self.port, self.first_port = self.first_port or free_port(), None
        self.base = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ)
        self.env.update({
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "RUNTIME_DIR": self.runtime,
            "WORKERS": str(self.workers),
            "JWT_SECRET_KEY": TEST_SECRET,
            "BUILD_DIR": BUILD,
            "EVENT_SINK": "file:" + os.path.join(self.runtime, "events.jsonl"),
            "LOG_LEVEL": "info",
        })
        self.env.update(self.extra_env)
        # ORDERS_TEST_DATABASE=postgres runs the same tests on PostgreSQL:
        # a database of its own per stack, on one server per test process.
        if os.environ.get("ORDERS_TEST_DATABASE") == "postgres" and "DATABASE_URL" not in self.env:
            import pg
            self.env["DATABASE_URL"] = pg.shared().create_database()
        self.stdout_path = os.path.join(self.dir, "stack.stdout")
        self.stderr_path = os.path.join(self.dir, "stack.stderr")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [os.path.join(ROOT, "scripts", "run-stack")], env=self.env, cwd=self.dir,
                stdout=out, stderr=err, start_new_session=True)
        def alive():
            if self.proc.poll() is not None:
                raise AssertionError("run-stack exited early (%s):\n%s" % (self.proc.returncode, self.logs()))

        def ready():
            try:
                return self.request("GET", self.wait_path).status == 200
            except (OSError, http.client.HTTPException):
                return False
        # Only our own nginx's answer counts: when another test's server
        # took the port first, ours fails to bind, run-stack exits with
        # PORT_TAKEN in its logs, and start() tries another port.
        if wait_own_server(self.port, {self.proc.pid}, ready, alive, self.start_timeout):
            return
        self.kill()
        raise AssertionError("stack not ready within %ss:\n%s" % (self.start_timeout, self.logs()))

    def logs(self):
        out = []
        for p in (self.stderr_path, os.path.join(self.runtime, "logs", "nginx-error.log")):
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace")[-4000:])
            except OSError:
                pass
        return "\n".join(out)

    def worker_log_lines(self):
        """The JSON lines the workers wrote (stderr of the stack)."""
        lines = []
        with open(self.stderr_path, "rb") as f:
            for raw in f:
                raw = raw.strip()
                if raw.startswith(b"{"):
                    try:
                        lines.append(json.loads(raw))
                    except ValueError:
                        pass
        return lines

    def process_ids(self):
        """Every process in the stack's session (it started a new one)."""
        return session_pids({self.proc.pid})

    def stop(self, check=True, timeout=20):
        if self.proc is None:
            return
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                if check:
                    raise AssertionError("stack did not stop within %ss" % timeout)
        else:
            rc = self.proc.returncode
        leftover = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            leftover = self.process_ids()
            if not leftover:
                break
            time.sleep(0.05)
        if leftover:
            self.kill()
        logs = self.logs()
        self.proc = None
        if check:
            assert rc == 0, "stack exited %s:\n%s" % (rc, logs)
            assert not leftover, "processes left behind: %s" % leftover
            self.check_tool_reports()
        if os.environ.get("ORDERS_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # What AddressSanitizer, UBSan, LeakSanitizer and valgrind print when
    # they find something; any of it in the stack's output fails the test.
    TOOL_REPORTS = (b"ERROR: AddressSanitizer", b"runtime error:", b"ERROR: LeakSanitizer",
                    b"LeakSanitizer has encountered a fatal error")

    def check_tool_reports(self):
        with open(self.stderr_path, "rb") as f:
            err = f.read()
        for marker in self.TOOL_REPORTS:
            i = err.find(marker)
            assert i < 0, "sanitizer report in the stack's output:\n%s" % err[max(0, i - 200):i + 3000].decode("utf-8", "replace")
        for name in os.listdir(self.runtime):
            if not name.startswith("valgrind-"):
                continue
            with open(os.path.join(self.runtime, name), "rb") as f:
                text = f.read()
            bad = b"ERROR SUMMARY: 0 errors" not in text or re.search(rb"definitely lost: [1-9]", text)
            assert not bad, "valgrind found errors or leaks (%s):\n%s" % (name, text[-6000:].decode("utf-8", "replace"))

    def processes(self):
        """(pid, uid, argv[0] or the process title) of the stack's processes."""
        out = []
        for pid in self.process_ids():
            try:
                with open("/proc/%d/status" % pid) as f:
                    uid = int(next(l for l in f if l.startswith("Uid:")).split()[1])
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().split(b"\0")[0].decode("utf-8", "replace")
            except (OSError, StopIteration):
                continue
            out.append((pid, uid, cmd))
        return out

    def kill(self):
        for pid in self.process_ids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    # -- requests -------------------------------------------------------
    def connection(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, token=None, timeout=10,
                header_list=None):
        """One request on a fresh connection.  body: bytes, str or a JSON
        value (then Content-Type defaults to application/json).
        header_list: extra (name, value) pairs sent as given, repeats kept."""
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        conn = self.connection(timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            for k, v in header_list or []:
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            data = r.read()
            res = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
            res.header_list = r.getheaders()
            return res
        finally:
            conn.close()

    def token(self, scopes="orders.read orders.write", sub="user-123", exp_hours=1):
        args = [os.path.join(BUILD, "tools", "orders-token"), "--sub", sub,
                "--exp-hours", str(exp_hours)]
        if scopes is not None:
            args += ["--scopes"] + scopes.split()
        out = subprocess.run(args, env=self.env, capture_output=True, check=True, timeout=10)
        return out.stdout.decode().strip()

    def events(self):
        """Events the publisher delivered to the file sink so far."""
        path = os.path.join(self.runtime, "events.jsonl")
        try:
            with open(path) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def pool_socket_connections(self, state):
        """Server-side sockets of the pool's unix socket in /proc/net/unix:
        state "02" (connecting) are connections waiting in the listen queue,
        "03" (connected) those a worker accepted."""
        path = os.path.join(self.runtime, "orders.sock")
        # run-stack puts it elsewhere when WORKER_USER cannot reach
        # RUNTIME_DIR (private_dir): then every count would read 0
        assert os.path.exists(path), "no pool socket at %s" % path
        n = 0
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                parts = line.split()
                if len(parts) >= 8 and parts[7] == path and parts[5] == state:
                    n += 1
        return n

    def wait_for(self, predicate, timeout=10, interval=0.05, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = predicate()
            if v:
                return v
            time.sleep(interval)
        # The stack's own account of those seconds: a wait that times out
        # under a loaded suite is otherwise a flake nobody can explain.
        raise AssertionError("timed out after %ss waiting for %s; the stack's logs end with:\n%s"
                             % (timeout, what, self.logs()[-3000:]))

    def db(self):
        """The database, for the few checks a test makes directly: sqlite3,
        or a stand-in with the same execute() on PostgreSQL."""
        if self.env.get("DATABASE_URL"):
            import pg
            return pg.PgConnection(pg.shared(), self.env["DATABASE_URL"])
        import sqlite3
        path = self.env.get("DATABASE_PATH") or os.path.join(self.runtime, "orders.db")
        return sqlite3.connect(path, timeout=10)


def pool_workers(stack):
    """pids of the FastCGI workers (children running --worker)."""
    out = []
    for pid in stack.process_ids():
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if f.read().split(b"\0")[1:2] == [b"--worker"]:
                    out.append(pid)
        except (OSError, IndexError):
            pass
    return out


def assert_problem(test, res, status, type_, instance=None):
    """res is a problem document of this status and type."""
    test.assertEqual(res.status, status, res)
    test.assertTrue(res.headers.get("content-type", "").startswith("application/problem+json"), res.headers)
    doc = res.json()
    test.assertEqual(doc["type"], type_, doc)
    test.assertEqual(doc["status"], status, doc)
    test.assertIsInstance(doc.get("title"), str)
    test.assertIsInstance(doc.get("detail"), str)
    if instance is not None:
        test.assertEqual(doc.get("instance"), instance)
    return doc
