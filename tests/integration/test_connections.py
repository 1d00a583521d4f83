"""The worker's FastCGI connections, spoken to directly on the pool's
socket (no nginx in between, so that the test chooses when a connection's
first request arrives).

A worker accepts a connection and, when its first request is already there
(nginx writes it right after connecting), serves it in the thread that
accepted it; a connection whose first request comes later waits in the
worker's set, and the worker accepts no other connection until that
request has been taken (fcgi/adapter.c, fcgi_accept_one).  Both ways the
connection is kept for the next request, and the worker accepts again
afterwards.  One worker of one thread, so that a worker that stopped
accepting would leave nginx's requests unanswered."""
import errno
import os
import select
import socket
import struct
import subprocess
import time
import unittest

from harness import Stack, pool_workers

FCGI_VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6
RESPONDER, KEEP_CONN = 1, 1


def record(kind, request_id, content=b""):
    return struct.pack(">BBHHBx", FCGI_VERSION, kind, request_id, len(content), 0) + content


def name_value(name, value):
    def length(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode()
    return length(len(name)) + length(len(value)) + name + value


def fcgi_get(path, request_id=1):
    """A FastCGI GET as nginx's site sends it (the params the worker reads)."""
    params = b"".join(name_value(k, v) for k, v in (
        ("REQUEST_METHOD", "GET"), ("ORDERS_PATH", path), ("DOCUMENT_URI", path),
        ("REQUEST_URI", path), ("QUERY_STRING", ""), ("CONTENT_LENGTH", ""),
        ("REQUEST_ID", "0123456789abcdef0123456789abcdef")))
    return (record(BEGIN_REQUEST, request_id, struct.pack(">HB5x", RESPONDER, KEEP_CONN))
            + record(PARAMS, request_id, params) + record(PARAMS, request_id)
            + record(STDIN, request_id))


def read_exact(sock, n):
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            raise AssertionError("the worker closed the connection mid-response")
        got += chunk
    return got


def fcgi_response(sock):
    """The STDOUT of one request, up to its END_REQUEST record."""
    out = b""
    while True:
        _, kind, _, length, padding = struct.unpack(">BBHHBx", read_exact(sock, 8))
        content = read_exact(sock, length + padding)[:length]
        if kind == STDOUT:
            out += content
        elif kind == END_REQUEST:
            return out


def healthz_on(sock, request_id=1):
    """GET /healthz on sock; the status the worker answered."""
    sock.sendall(fcgi_get("/healthz", request_id=request_id))
    return status_of(fcgi_response(sock))


def status_of(cgi_response):
    head = cgi_response.split(b"\r\n", 1)[0].decode("latin-1")
    assert head.startswith("Status: "), cgi_response[:200]
    return int(head.split()[1])


def cpu_seconds(pid):
    """utime + stime of all of pid's threads (/proc/PID/stat), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        after_name = f.read().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def open_files(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def open_files_limit(pid):
    """pid's (soft, hard) RLIMIT_NOFILE, from /proc/PID/limits (readable
    whoever runs the process, unlike prlimit's answer)."""
    with open("/proc/%d/limits" % pid) as f:
        line = next(l for l in f if l.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


def set_open_files_limit(pid, soft, hard):
    """prlimit (util-linux) on pid.  A process may change the limits of
    another whose user and group ids are all its own real ones; anything
    else takes CAP_SYS_RESOURCE, which root may lack (a container's root
    here does).  So as root, for a worker that runs as WORKER_USER, the
    tool runs as the worker's user and group.  Fails the test, naming why,
    when that is refused too."""
    with open("/proc/%d/status" % pid) as f:
        ids = {l.split(":")[0]: int(l.split()[1]) for l in f if l.startswith(("Uid:", "Gid:"))}
    as_worker = {}
    if os.geteuid() == 0 and ids["Uid"] != 0:
        as_worker = {"user": ids["Uid"], "group": ids["Gid"], "extra_groups": []}
    done = subprocess.run(["prlimit", "--pid", str(pid), "--nofile=%d:%d" % (soft, hard)],
                          capture_output=True, timeout=10, **as_worker)
    assert done.returncode == 0, (
        "cannot set the worker's (pid %d) open files limit: %s" % (pid, done.stderr.decode().strip()))


def answered(sock):
    """Something (a response, or the close) is there to read on sock."""
    return bool(select.select([sock], [], [], 0)[0])


ACCEPT_PAUSED = "cannot accept a connection; accepting again after a pause or a close"


class Connections(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(workers=1, env={"WORKER_THREADS": "1"})
        cls.stack.start()
        cls.socket_path = os.path.join(cls.stack.runtime, "orders.sock")
        assert os.path.exists(cls.socket_path), cls.stack.logs()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def connect_unanswered(self):
        """A connection the worker has accepted with nothing on it yet: the
        pool's listen queue is empty again (unix sockets queue on connect,
        so right after it the connection is either queued or accepted)."""
        sock = self.connect()
        self.stack.wait_for(lambda: self.stack.pool_socket_connections("02") == 0,
                            timeout=10, what="the silent connection accepted")
        # The accepting thread looks for a request right after accept4: a
        # moment's wait so that it has looked before anything is sent (had
        # it not, it serves the request at once, and the test still passes,
        # only through the other path).
        time.sleep(0.2)
        return sock

    def served_on_a_new_connection(self):
        """A request on a connection of its own, sent with the connect:
        answered only by a worker that accepts."""
        return healthz_on(self.connect())

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(20)
        sock.connect(self.socket_path)
        self.addCleanup(sock.close)
        return sock

    def accept_pause_warnings(self):
        return [l for l in self.stack.worker_log_lines() if l.get("message") == ACCEPT_PAUSED]

    def test_at_its_open_files_limit_the_worker_pauses_accepting_and_recovers(self):
        """A worker at its RLIMIT_NOFILE (EMFILE) leaves the connection in
        the backlog and pauses accepting, rather than trying again at once:
        the connection stays ready, so retrying spun on accept4 at full CPU
        until a descriptor came free.  The soft limit only, so that the
        test can set it back even as an ordinary user (who may lower
        another process's limits, of the same user, but never raise its
        hard limit)."""
        [pid] = self.stack.wait_for(lambda: pool_workers(self.stack), what="the worker")
        soft, hard = open_files_limit(pid)
        # counted once the worker holds no connection: the other tests' (and
        # nginx's, kept a second) are closed when nginx or they close them
        self.stack.wait_for(lambda: self.stack.pool_socket_connections("03") == 0,
                            timeout=10, what="the worker's connections closed")
        spare = 3
        limit = open_files(pid) + spare
        set_open_files_limit(pid, limit, hard)
        self.addCleanup(set_open_files_limit, pid, soft, hard)
        self.assertEqual(open_files_limit(pid), (limit, hard))

        # Connections, each with its request, until one is not accepted:
        # it waits in the backlog while the worker is at its limit.
        kept = []
        for _ in range(spare + 5):
            waiting = self.connect()
            waiting.sendall(fcgi_get("/healthz"))
            self.stack.wait_for(
                lambda: answered(waiting) or (open_files(pid) >= limit and
                                              self.stack.pool_socket_connections("02") >= 1),
                timeout=10, what="the request answered, or left in the backlog")
            if not answered(waiting):
                break
            self.assertEqual(status_of(fcgi_response(waiting)), 200)
            kept.append(waiting)
        else:
            self.fail("the worker accepted %d connections with %d descriptors to spare"
                      % (len(kept), spare))
        self.assertTrue(kept, "no connection accepted with %d descriptors to spare" % spare)

        # A spin on accept4 burns a whole CPU second per second: under a
        # fifth of that is no busy loop, whatever the machine's load.
        cpu_before, warned_before = cpu_seconds(pid), len(self.accept_pause_warnings())
        began = time.monotonic()
        # the connections the worker has are still served meanwhile
        self.assertEqual(healthz_on(kept[0], request_id=2), 200)
        time.sleep(1.0)
        cpu, elapsed = cpu_seconds(pid) - cpu_before, time.monotonic() - began
        self.assertLess(cpu, 0.2, "the worker used %.2f s of CPU in %.2f s at its open "
                        "files limit: a busy loop on accept" % (cpu, elapsed))
        self.assertFalse(answered(waiting), "accepted past the open files limit")
        self.assertLessEqual(len(self.accept_pause_warnings()) - warned_before, 2,
                             "more than one warning line a second")

        # One warning a second at most, naming the error and counting the
        # failed accepts since the one before: one a pause (100 ms), so
        # about ten a second; a spin counts thousands.
        warnings = self.stack.wait_for(lambda: (lambda w: w if len(w) >= 2 else None)(
            self.accept_pause_warnings()), timeout=5, what="a second warning line")
        self.assertEqual(warnings[0]["level"], "warn")
        self.assertEqual(warnings[0]["error"], os.strerror(errno.EMFILE))
        self.assertEqual(warnings[0]["open_files_limit"], limit)
        self.assertTrue(all(1 <= w["failed_accepts"] <= 30 for w in warnings), warnings)

        # Closing the connections frees descriptors: the worker accepts the
        # waiting connection, answers it, and serves new ones again.
        for sock in kept:
            sock.close()
        self.assertEqual(status_of(fcgi_response(waiting)), 200)
        self.assertEqual(self.served_on_a_new_connection(), 200)
        self.assertEqual(self.stack.request("GET", "/healthz").status, 200)
        self.assertEqual(pool_workers(self.stack), [pid], "the worker was replaced")

    def test_first_request_sent_with_the_connect_is_served_and_the_connection_kept(self):
        sock = self.connect()
        self.assertEqual(healthz_on(sock), 200)
        # kept: a second request on the same connection
        self.assertEqual(healthz_on(sock, request_id=2), 200)
        self.assertEqual(self.served_on_a_new_connection(), 200)

    def test_first_request_sent_after_the_accept_is_served_and_accepting_resumes(self):
        sock = self.connect_unanswered()
        self.assertEqual(healthz_on(sock), 200)
        self.assertEqual(healthz_on(sock, request_id=2), 200)
        # taking that first request armed the listening socket again
        self.assertEqual(self.served_on_a_new_connection(), 200)

    def test_a_connection_closed_before_any_request_leaves_the_worker_accepting(self):
        self.connect_unanswered().close()
        self.assertEqual(self.served_on_a_new_connection(), 200)

    def test_a_burst_of_new_connections_is_served_in_full(self):
        socks = [self.connect() for _ in range(16)]
        # all sent before any is read: the first round on new connections,
        # the second on the same ones, kept
        for request_id in (1, 2):
            for sock in socks:
                sock.sendall(fcgi_get("/healthz", request_id=request_id))
            self.assertEqual([status_of(fcgi_response(s)) for s in socks], [200] * 16)


if __name__ == "__main__":
    unittest.main()
