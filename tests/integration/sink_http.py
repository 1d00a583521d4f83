"""A CloudEvents HTTP sink for the publisher's integration tests.

Runs http.server on 127.0.0.1 in a thread and records every request: when it
arrived (time.monotonic()), its headers, its body, the status answered.  It
can be told to answer a fixed status for a while (e.g. 500), to reject given
event ids with 400, to be slow, or to stop listening altogether (existing
keep-alive connections included) and listen again on the same port.

Python standard library only.
"""

import http.server
import json
import socket
import threading
import time


# A port nobody listens on now, outside the range outgoing connections take
# their source ports from (harness.free_port says why).
from harness import free_port  # noqa: E402,F401


class Request:
    def __init__(self, at, headers, body, status):
        self.at = at
        self.headers = headers
        self.body = body
        self.status = status
        try:
            self.event = json.loads(body)
        except ValueError:
            self.event = None

    @property
    def event_id(self):
        return self.event.get("id") if isinstance(self.event, dict) else None

    @property
    def ok(self):
        return 200 <= self.status < 300


class HttpSink:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d/events" % self.port
        self.lock = threading.Lock()
        self.requests = []
        self.fail_status = None  # answer this to everything while set
        self.reject_ids = set()  # answer 400 to these event ids
        self.delay = 0.0  # seconds before answering
        self._server = None
        self._thread = None
        self._conns = set()

    # -- listening -------------------------------------------------------

    def start(self):
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the publisher expects
            disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs

            def setup(self):
                super().setup()
                with sink.lock:
                    sink._conns.add(self.connection)

            def finish(self):
                with sink.lock:
                    sink._conns.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if sink.delay:
                    time.sleep(sink.delay)
                status = sink._decide(body)
                with sink.lock:
                    sink.requests.append(
                        Request(time.monotonic(), dict(self.headers.items()), body, status))
                reply = b'{"ok":true}' if 200 <= status < 300 else b'{"error":"test sink says no"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, fmt, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a publisher killed mid-request is what some tests do

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops listening and cuts open connections: the sink is down."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self._server = None

    def _decide(self, body):
        try:
            event_id = json.loads(body).get("id")
        except (ValueError, AttributeError):
            return 400
        if self.fail_status is not None:
            return self.fail_status
        if event_id in self.reject_ids:
            return 400
        return 202

    # -- what was seen ---------------------------------------------------

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def delivered(self):
        """Requests answered 2xx, in arrival order."""
        return [r for r in self.snapshot() if r.ok]

    def delivered_ids(self):
        return [r.event_id for r in self.delivered()]
