"""nginx at the edge: every answer nginx gives by itself is a problem
document (the contract's "Errors"), a body nginx has to spool to disk (a
chunked one over its 64 KiB buffer) is refused with 413 and not a 500 from an
unreachable temporary directory, and nginx runs a worker per CPU.

Each status nginx can produce on its own and a client can provoke is
provoked here over a raw socket, so that nothing in between fixes up the
request."""
import json
import os
import socket
import unittest

from harness import Stack, assert_problem


def raw(port, data, timeout=10):
    """Sends bytes as they are; returns (status line, headers text, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    return lines[0].decode("latin-1"), b"\r\n".join(lines[1:]).decode("latin-1").lower(), body


class Edge(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(workers=2)
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def assert_raw_problem(self, data, status, type_):
        line, headers, body = raw(self.stack.port, data)
        self.assertIn(" %d " % status, line + " ", (line, body[:300]))
        self.assertIn("content-type: application/problem+json", headers, (line, headers))
        self.assertIn("x-content-type-options: nosniff", headers)
        doc = json.loads(body.decode("utf-8"))
        self.assertEqual((doc["type"], doc["status"]), (type_, status), doc)
        self.assertTrue(doc["title"] and doc["detail"], doc)
        return doc

    def test_trace_is_a_405_problem(self):
        self.assert_raw_problem(b"TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                405, "method_not_allowed")

    def test_trace_405_names_the_methods_the_workers_allow(self):
        """nginx answers TRACE itself; its Allow header says what the
        workers' own 405 says for the same path."""
        paths = ["/", "/healthz", "/orders", "/orders/", "/orders/019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60",
                 "/docs"]
        for path in paths:
            with self.subTest(path=path):
                workers = self.stack.request("DELETE", path)
                self.assertEqual(workers.status, 405, workers)
                want = sorted(m.strip() for m in workers.headers["allow"].split(","))
                line, headers, _ = raw(self.stack.port, b"TRACE " + path.encode() +
                                       b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                self.assertIn(" 405 ", line)
                allow = [h.split(":", 1)[1] for h in headers.split("\r\n") if h.startswith("allow:")]
                self.assertEqual(len(allow), 1, headers)
                self.assertEqual(sorted(m.strip().upper() for m in allow[0].split(",")), want)

    def test_internal_problem_uri_asked_directly_is_a_404_problem(self):
        for path in ("/_problem/502", "/_problem/404"):
            assert_problem(self, self.stack.request("GET", path), 404, "not_found")

    def test_unknown_transfer_encoding_is_a_501_problem(self):
        self.assert_raw_problem(b"POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                                b"Connection: close\r\n\r\n", 501, "not_implemented")

    def test_unsupported_http_version_is_a_505_problem(self):
        self.assert_raw_problem(b"GET / HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n",
                                505, "http_version_not_supported")

    def test_malformed_request_line_is_a_400_problem(self):
        self.assert_raw_problem(b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request")

    def test_header_too_large_is_a_problem(self):
        self.assert_raw_problem(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 +
                                b"\r\nConnection: close\r\n\r\n", 400, "request_header_too_large")

    def test_uri_too_long_is_a_414_problem(self):
        self.assert_raw_problem(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n"
                                b"Connection: close\r\n\r\n", 414, "uri_too_long")

    def test_declared_body_over_64k_is_a_413_problem(self):
        self.assert_raw_problem(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 65537\r\nConnection: close\r\n\r\n", 413,
                                "payload_too_large")

    CHUNKED = (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n")

    @staticmethod
    def chunked(data, size):
        return b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
                        for i in range(0, len(data), size)) + b"0\r\n\r\n"

    def test_chunked_body_over_64k_is_refused_with_413(self):
        """What curl sends for `--data-binary @100k -H 'Transfer-Encoding:
        chunked'`: a first chunk of 64 KiB that, with its framing, overflows
        nginx's buffer, so nginx spools it to its temporary directory before
        it sees the total.  That directory must be reachable by its workers,
        or the answer is a 500."""
        body = self.chunked(b" " * 100000, 65536)
        self.assert_raw_problem(self.CHUNKED + b"\r\n" + body, 413, "payload_too_large")

    def test_chunked_body_under_64k_in_tiny_chunks_reaches_the_service(self):
        """20 KB of JSON in one-byte chunks: 120 KB on the wire, spooled by
        nginx, then served: a create, 201."""
        doc = json.dumps({"customerId": "chunked", "items": ["x" * 100] * 90}).encode()
        self.assertGreater(len(doc), 8192)
        line, _, out = raw(self.stack.port, self.CHUNKED + b"Authorization: Bearer " +
                           self.stack.token().encode() + b"\r\n\r\n" + self.chunked(doc, 1))
        self.assertIn(" 201 ", line, out[:300])

    def test_nginx_runs_a_worker_per_cpu(self):
        """worker_processes auto: one per CPU this process may run on."""
        workers = [p for p in self.stack.processes() if p[2].startswith("nginx: worker")]
        self.assertEqual(len(workers), len(os.sched_getaffinity(0)), workers)


if __name__ == "__main__":
    unittest.main(verbosity=2)
