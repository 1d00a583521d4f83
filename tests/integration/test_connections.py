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
import os
import socket
import struct
import time
import unittest

from harness import Stack

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
