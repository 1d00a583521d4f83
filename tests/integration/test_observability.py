"""Observability on the real stack: one request followed by its trace id
through nginx's access log, the workers' log lines, the exported OTLP spans
and the delivered event; strict trace-context parsing; a dead or stuck
collector costs nothing; what is never logged; LOG_LEVEL; /metrics summed
over the pool, checked by promtool, refused to non-loopback clients.

Needs promtool (Debian package prometheus; scripts/install-deps test).
Traffic stays on 127.0.0.1 and 127.0.0.2; every wait is bounded."""
import http.client
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import BUILD, TEST_SECRET, Stack, free_port

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DECIMAL = re.compile(r"^(0|[1-9][0-9]*)$")


# -- an OTLP/HTTP receiver ------------------------------------------------


def worker_is_sanitized():
    """True when orders-fcgi was built with AddressSanitizer (scripts/test's
    build-asan/): its malloc is then the sanitizer's, not glibc's."""
    with open(os.path.join(BUILD, "fcgi", "orders-fcgi"), "rb") as f:
        return b"__asan_init" in f.read()

class OtlpReceiver:
    """A collector on 127.0.0.1 that accepts POST /v1/traces with JSON
    bodies (OTLP/HTTP, JSON encoding), answers 200 {} and keeps what came."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (method, path, content-type, raw body)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with receiver.lock:
                    receiver.requests.append(("POST", self.path, self.headers.get("Content-Type"), body))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                out = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def payloads(self):
        with self.lock:
            return list(self.requests)

    def spans(self):
        """Every span received so far, each with its resource attached."""
        out = []
        for _, path, _, body in self.payloads():
            if path != "/v1/traces":
                continue
            doc = json.loads(body)
            for rs in doc.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        out.append(dict(span, _resource=rs.get("resource")))
        return out


def any_value(test, v, where):
    """An OTLP AnyValue: exactly one of its members."""
    test.assertIsInstance(v, dict, where)
    kinds = set(v) & {"stringValue", "boolValue", "intValue", "doubleValue",
                      "arrayValue", "kvlistValue", "bytesValue"}
    test.assertEqual(len(kinds), 1, "%s: %r" % (where, v))
    test.assertEqual(set(v), kinds, "%s: unknown members %r" % (where, v))
    if "stringValue" in v:
        test.assertIsInstance(v["stringValue"], str, where)
        return v["stringValue"]
    if "intValue" in v:
        # int64 in the JSON mapping of protobuf: a decimal string (a
        # number is tolerated by receivers, but we emit strings).
        test.assertIsInstance(v["intValue"], str, where)
        test.assertRegex(v["intValue"], r"^-?(0|[1-9][0-9]*)$", where)
        return int(v["intValue"])
    return v[next(iter(kinds))]


def key_values(test, attrs, where):
    """OTLP KeyValue list -> dict, each checked."""
    test.assertIsInstance(attrs, list, where)
    out = {}
    for kv in attrs:
        test.assertIsInstance(kv, dict, where)
        test.assertEqual(set(kv), {"key", "value"}, "%s: %r" % (where, kv))
        test.assertIsInstance(kv["key"], str, where)
        test.assertNotIn(kv["key"], out, "%s: attribute %s twice" % (where, kv["key"]))
        out[kv["key"]] = any_value(test, kv["value"], "%s.%s" % (where, kv["key"]))
    return out


SPAN_MEMBERS = {"traceId", "spanId", "traceState", "parentSpanId", "flags", "name", "kind",
                "startTimeUnixNano", "endTimeUnixNano", "attributes", "droppedAttributesCount",
                "events", "droppedEventsCount", "links", "droppedLinksCount", "status"}


def check_otlp_payload(test, doc):
    """ExportTraceServiceRequest in the OTLP/HTTP JSON encoding
    (opentelemetry-proto, lowerCamelCase members, hex trace and span ids,
    enums as integers, 64-bit integers as decimal strings)."""
    test.assertIsInstance(doc, dict)
    test.assertEqual(set(doc), {"resourceSpans"})
    test.assertIsInstance(doc["resourceSpans"], list)
    test.assertTrue(doc["resourceSpans"])
    for rs in doc["resourceSpans"]:
        test.assertLessEqual(set(rs), {"resource", "scopeSpans", "schemaUrl"})
        test.assertLessEqual(set(rs["resource"]), {"attributes", "droppedAttributesCount"})
        res = key_values(test, rs["resource"]["attributes"], "resource")
        test.assertEqual(res.get("service.name"), "orders")
        test.assertIsInstance(rs["scopeSpans"], list)
        test.assertTrue(rs["scopeSpans"])
        for ss in rs["scopeSpans"]:
            test.assertLessEqual(set(ss), {"scope", "spans", "schemaUrl"})
            if "scope" in ss:
                test.assertLessEqual(set(ss["scope"]), {"name", "version", "attributes",
                                                        "droppedAttributesCount"})
            test.assertIsInstance(ss["spans"], list)
            for span in ss["spans"]:
                check_span(test, span)


def check_span(test, span):
    where = "span %r" % span.get("name")
    test.assertLessEqual(set(span), SPAN_MEMBERS, where)
    test.assertRegex(span["traceId"], HEX32, where)
    test.assertNotEqual(span["traceId"], "0" * 32, where)
    test.assertRegex(span["spanId"], HEX16, where)
    test.assertNotEqual(span["spanId"], "0" * 16, where)
    if span.get("parentSpanId"):  # "" or absent: a root span
        test.assertRegex(span["parentSpanId"], HEX16, where)
    test.assertIsInstance(span["name"], str, where)
    test.assertTrue(span["name"], where)
    test.assertIsInstance(span["kind"], int, where)
    test.assertIn(span["kind"], range(0, 6), where)
    for k in ("startTimeUnixNano", "endTimeUnixNano"):
        test.assertIsInstance(span[k], str, where)
        test.assertRegex(span[k], DECIMAL, where)
    start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    test.assertGreaterEqual(end, start, where)
    # Wall-clock nanoseconds of this hour, not microseconds or a monotonic clock.
    test.assertLess(abs(start / 1e9 - time.time()), 3600, where)
    key_values(test, span.get("attributes", []), where)
    if "status" in span:
        test.assertLessEqual(set(span["status"]), {"code", "message"}, where)
        test.assertIn(span["status"].get("code", 0), (0, 1, 2), where)


# -- helpers --------------------------------------------------------------

def nginx_access_lines(stack):
    path = os.path.join(stack.runtime, "logs", "access.log")
    try:
        with open(path, "rb") as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def raw_logs(stack):
    """Everything the stack wrote that is a log: its stdout and stderr (the
    workers', the publisher's, run-stack's) and nginx's logs."""
    out = {}
    paths = [stack.stdout_path, stack.stderr_path]
    logs = os.path.join(stack.runtime, "logs")
    paths += [os.path.join(logs, n) for n in sorted(os.listdir(logs))]
    for p in paths:
        with open(p, "rb") as f:
            out[p] = f.read()
    return out


def metric_samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def metrics(stack):
    r = stack.request("GET", "/metrics")
    assert r.status == 200, r
    return r.body.decode("utf-8")


def request_from(stack, source, method, path):
    """A request from another loopback source address."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


ORDER = {"customerId": "customer-obs", "items": ["item-1", "item-2"]}


# -- the tests ------------------------------------------------------------

class TraceFollowed(unittest.TestCase):
    def test_request_followed_by_its_trace_id_everywhere(self):
        """The 'done when' test: access log, worker lines, spans, event."""
        trace_id = secrets.token_hex(16)
        parent_id = secrets.token_hex(8)
        traceparent = "00-%s-%s-01" % (trace_id, parent_id)
        with OtlpReceiver() as otlp, Stack(workers=2, env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint}) as s:
            tok = s.token(sub="user-trace")
            r = s.request("POST", "/orders", body=ORDER, token=tok, headers={"traceparent": traceparent})
            self.assertEqual(r.status, 201, r)
            order_id = r.json()["id"]

            # nginx's JSON access log: the caller's traceparent and nginx's request id.
            ngx = s.wait_for(lambda: [l for l in nginx_access_lines(s) if l.get("traceparent") == traceparent],
                             timeout=5, what="nginx's access line")
            self.assertEqual(len(ngx), 1, ngx)
            ngx = ngx[0]
            self.assertEqual((ngx["method"], ngx["path"], ngx["status"]), ("POST", "/orders", 201), ngx)
            self.assertRegex(ngx["request_id"], HEX32)

            # The workers' lines: same trace, a new span id of the worker's own.
            def traced():
                ls = [l for l in s.worker_log_lines() if l.get("trace_id") == trace_id]
                return ls if {"request", "Order created"} <= {l.get("message") for l in ls} else None
            lines = s.wait_for(traced, timeout=5, what="the worker's lines of the request")
            access = [l for l in lines if l["message"] == "request"]
            domain = [l for l in lines if l["message"] == "Order created"]
            self.assertEqual(len(access), 1, lines)
            self.assertEqual(len(domain), 1, lines)
            access, domain = access[0], domain[0]
            span_id = access["span_id"]
            self.assertRegex(span_id, HEX16)
            self.assertNotEqual(span_id, parent_id, "the worker must not reuse the caller's span id")
            self.assertNotEqual(span_id, "0" * 16)
            self.assertEqual(domain["span_id"], span_id)
            self.assertEqual(access["method"], "POST")
            self.assertEqual(access["path"], "/orders")
            self.assertEqual(access["route"], "POST /orders")
            self.assertEqual(access["status"], 201)
            self.assertIsInstance(access["duration_ms"], (int, float))
            self.assertEqual(access["request_id"], ngx["request_id"], "the worker logs nginx's request id")
            self.assertEqual(access["sub"], "user-trace")
            self.assertEqual(access["service"], "orders")
            self.assertEqual(access["level"], "info")
            self.assertEqual(domain["order_id"], order_id)
            self.assertEqual(domain["customer_id"], ORDER["customerId"])

            # The exported spans (the exporter posts at least once a second).
            def exported():
                spans = [sp for sp in otlp.spans() if sp["traceId"] == trace_id]
                server = [sp for sp in spans if sp.get("kind") == 2]
                client = [sp for sp in spans if sp.get("kind") == 3]
                return (server, client) if server and client else None
            server, client = s.wait_for(exported, timeout=8, what="the exported spans")
            for method, path, ctype, body in otlp.payloads():
                self.assertEqual((method, path), ("POST", "/v1/traces"))
                self.assertEqual(ctype.split(";")[0].strip().lower(), "application/json")
                check_otlp_payload(self, json.loads(body))
            self.assertEqual(len(server), 1, server)
            server = server[0]
            self.assertEqual(server["spanId"], span_id, "the server span is the logged span")
            self.assertEqual(server["parentSpanId"], parent_id, "the server span's parent is the caller's")
            self.assertEqual(server["name"], "POST /orders")
            attrs = key_values(self, server["attributes"], "server span")
            self.assertEqual(attrs["http.request.method"], "POST")
            self.assertEqual(attrs["http.route"], "/orders")
            self.assertEqual(attrs["http.response.status_code"], 201)
            res = key_values(self, server["_resource"]["attributes"], "resource")
            self.assertEqual(res["service.name"], "orders")
            engine = "postgresql " if os.environ.get("ORDERS_TEST_DATABASE") == "postgres" else "sqlite "
            self.assertTrue(any(sp["name"].startswith(engine) for sp in client), client)
            for child in client:
                self.assertTrue(child["name"].startswith(engine), child)
                self.assertEqual(child["parentSpanId"], server["spanId"])
                self.assertNotEqual(child["spanId"], server["spanId"])
                self.assertGreaterEqual(int(child["startTimeUnixNano"]), int(server["startTimeUnixNano"]))
                self.assertLessEqual(int(child["endTimeUnixNano"]), int(server["endTimeUnixNano"]))

            # The delivered event carries the worker's span as its parent.
            ev = s.wait_for(lambda: [e for e in s.events() if e.get("subject") == order_id],
                            timeout=10, what="the delivered event")
            self.assertEqual(len(ev), 1, ev)
            self.assertEqual(ev[0]["type"], "order.created")
            self.assertEqual(ev[0]["traceparent"], "00-%s-%s-01" % (trace_id, span_id))

    def test_invalid_traceparent_starts_a_new_trace(self):
        tid, pid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        shapes = [
            "00-%s-%s-01" % (tid.upper(), pid),           # upper-case hex
            "00-%s-%s-01" % ("0" * 32, pid),              # all-zero trace id
            "00-%s-%s-01" % (tid, "0" * 16),              # all-zero parent id
            "ff-%s-%s-01" % (tid, pid),                   # version ff
            "00-%s-%s-01-extra" % (tid, pid),             # version 00 with more
            "00-%s-%s-1" % (tid, pid),                    # short flags
            "00-%s-%s-01" % (tid[:31], pid),              # short trace id
            "00-%s-%s-01" % (tid, pid[:15]),              # short parent id
            "00-%s-%s-0g" % (tid, pid),                   # non-hex flags
            "00-%sx-%s-01" % (tid[:31], pid),             # non-hex trace id
            "00_%s_%s_01" % (tid, pid),                   # wrong separators
            "0-0%s-%s-01" % (tid, pid),                   # misplaced separator
            "00-%s%s-01" % (tid, pid),                    # a missing field
            "garbage",
        ]
        valid = "00-%s-%s-01" % (tid, pid)
        with Stack(workers=2) as s:
            for i, tp in enumerate(shapes + [valid, None]):
                headers = {} if tp is None else {"traceparent": tp}
                r = s.request("GET", "/probe-%d" % i, headers=headers)
                self.assertEqual(r.status, 404, r)
            lines = s.wait_for(lambda: (lambda ls: ls if len(ls) == len(shapes) + 2 else None)(
                [l for l in s.worker_log_lines() if l.get("message") == "request" and l.get("path", "").startswith("/probe-")]),
                timeout=5, what="the access lines")
            by_path = {l["path"]: l for l in lines}
            seen = set()
            for i, tp in enumerate(shapes + [None]):
                line = by_path["/probe-%d" % (i if tp is not None else len(shapes) + 1)]
                self.assertRegex(line["trace_id"], HEX32, tp)
                self.assertNotEqual(line["trace_id"], "0" * 32, tp)
                self.assertNotEqual(line["trace_id"], tid, "%r was accepted" % tp)
                self.assertRegex(line["span_id"], HEX16, tp)
                self.assertNotIn(line["trace_id"], seen, "a new trace each time")
                seen.add(line["trace_id"])
            # The control: the valid header is continued.
            line = by_path["/probe-%d" % len(shapes)]
            self.assertEqual(line["trace_id"], tid)
            self.assertNotEqual(line["span_id"], pid)


class DeadCollector(unittest.TestCase):
    def check_no_cost(self, endpoint, requests=30):
        """Requests succeed fast with the collector at endpoint; the spans
        are counted as dropped, none as exported."""
        with Stack(workers=2, env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}) as s:
            tok = s.token()
            slowest = 0.0
            for i in range(requests):
                t0 = time.monotonic()
                if i % 3 == 0:
                    r = s.request("POST", "/orders", body=ORDER, token=tok)
                    self.assertEqual(r.status, 201, r)
                else:
                    r = s.request("GET", "/healthz")
                    self.assertEqual(r.status, 200, r)
                slowest = max(slowest, time.monotonic() - t0)
            # The exporter's curl time limit is 2 s: a request waiting on it
            # would take that long.
            self.assertLess(slowest, 1.0, "a request waited for the collector")

            def dropped():
                samples = metric_samples(metrics(s))
                return sample(samples, "orders_trace_spans_dropped_total")
            first = s.wait_for(lambda: dropped() or None, timeout=10, what="dropped spans counted")
            self.assertGreater(first, 0)
            for _ in range(10):
                self.assertEqual(s.request("GET", "/healthz").status, 200)
            s.wait_for(lambda: dropped() > first, timeout=10, what="the dropped count to grow")
            samples = metric_samples(metrics(s))
            self.assertEqual(sample(samples, "orders_trace_spans_exported_total"), 0)

    def test_dead_collector_adds_no_failure(self):
        self.check_no_cost("http://127.0.0.1:%d" % free_port())

    def test_stuck_collector_adds_no_latency(self):
        # Accepts connections (the kernel's backlog) and never answers.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stuck:
            stuck.bind(("127.0.0.1", 0))
            stuck.listen(64)
            self.check_no_cost("http://127.0.0.1:%d" % stuck.getsockname()[1], requests=15)


class Logs(unittest.TestCase):
    def test_no_token_secret_or_body_in_any_log(self):
        marker = "mk" + secrets.token_hex(12)
        with Stack(workers=2, env={"LOG_LEVEL": "debug"}) as s:
            tok = s.token()
            bad_token = "eyJhbGciOiJIUzI1NiJ9.%s.%s" % (marker + "tok", marker + "sig")
            sent = [
                ("POST", "/orders?note=%s-q1" % marker, {"customerId": "customer-log", "items": [marker + "-item"]}, tok),
                ("POST", "/orders", {"customerId": "", "items": [marker + "-bad"], "x": marker}, tok),
                ("POST", "/orders", '{"customerId":"c","items":["%s-broken"' % marker, tok),
                ("GET", "/orders?customerId=%s-q2&limit=5" % marker, None, tok),
                ("GET", "/orders?limit=%s" % marker, None, tok),
                ("GET", "/orders", None, bad_token),
                ("POST", "/orders", {"customerId": "c", "items": [marker + "-unauth"]}, bad_token),
            ]
            for method, path, body, token in sent:
                r = s.request(method, path, body=body, token=token)
                self.assertLess(r.status, 500, r)
            oid = s.request("GET", "/orders?limit=1", token=tok).json()["items"][0]["id"]
            r = s.request("PATCH", "/orders/%s?secret=%s-q3" % (oid, marker),
                          body={"status": "paid", "comment": marker}, token=tok)
            self.assertIn(r.status, (200, 400), r)
            r = s.request("GET", "/healthz", header_list=[("Authorization", "Bearer " + marker + "-hdr")])
            self.assertEqual(r.status, 200)
            s.wait_for(lambda: len([l for l in s.worker_log_lines() if l.get("message") == "request"]) >= len(sent) + 3,
                       timeout=5, what="the access lines")
            time.sleep(0.3)  # nginx writes its access line after the answer
            logs = raw_logs(s)
            self.assertTrue(any(b"Order created" in v for v in logs.values()), "the logs were read")
            forbidden = {"the marker": marker.encode(), "the token": tok.encode(),
                         "the token's signature": tok.rsplit(".", 1)[1].encode(),
                         "the secret": TEST_SECRET.encode()}
            for path, text in logs.items():
                for what, needle in forbidden.items():
                    i = text.find(needle)
                    self.assertLess(i, 0, "%s in %s: %r" % (what, path, text[max(0, i - 300):i + 100]))
            # The access lines' paths are the paths, without the query.
            for line in s.worker_log_lines():
                if line.get("message") == "request":
                    self.assertNotIn("?", line["path"], line)
            for line in nginx_access_lines(s):
                self.assertNotIn("?", line["path"], line)

    def test_log_level_warn_suppresses_info(self):
        with Stack(workers=2, env={"LOG_LEVEL": "warn"}) as s:
            tok = s.token()
            r = s.request("POST", "/orders", body=ORDER, token=tok)
            self.assertEqual(r.status, 201, r)
            for _ in range(5):
                self.assertEqual(s.request("GET", "/healthz").status, 200)
            self.assertEqual(s.request("GET", "/nope").status, 404)
            # A warn line would come at once; give the workers a moment.
            time.sleep(0.5)
            lines = s.worker_log_lines()
            self.assertEqual([l for l in lines if l.get("message") in ("request", "Order created")], [], lines)
            self.assertEqual([l for l in lines if l.get("level") not in ("warn", "error")], [], lines)

    def test_log_level_debug_works(self):
        with Stack(workers=2, env={"LOG_LEVEL": "debug"}) as s:
            self.assertEqual(s.request("GET", "/healthz").status, 200)
            line = s.wait_for(lambda: [l for l in s.worker_log_lines()
                                       if l.get("message") == "request" and l.get("path") == "/healthz"],
                              timeout=5, what="the access line")[0]
            self.assertEqual(line["level"], "info")
            for l in s.worker_log_lines():
                self.assertIn(l.get("level"), ("debug", "info", "warn", "error"), l)

    def test_a_quiet_worker_gives_freed_memory_back_once(self):
        """A worker in which no request ended for a moment trims its heap
        and its threads' arenas (fcgi/adapter.c) once, and says so at debug
        level with the requests since its last trim: every request is
        counted in exactly one such line, and a worker that stays quiet
        trims no more."""
        with Stack(workers=1, env={"LOG_LEVEL": "debug"}) as s:
            tok = s.token()
            for _ in range(10):
                self.assertEqual(s.request("POST", "/orders", body=ORDER, token=tok).status, 201)
            # the harness's own /readyz requests come before ours
            lines = self.trims_after_lists(s, tok, 10, counted=21)
            for line in lines:
                self.assertEqual(line["level"], "debug", line)
                self.assertGreater(line["requests"], 0, line)
                self.assertGreater(line["anon_kib_before"], 0, line)
                # Under a sanitizer malloc is the sanitizer's, malloc_trim
                # gives nothing back, and its quarantine may grow between
                # the two readings (16 KiB once in an ASan run): the trim's
                # effect is glibc's to show.
                if not worker_is_sanitized():
                    self.assertLessEqual(line["anon_kib_after"], line["anon_kib_before"], line)
                    # Requests were served since the last trim, so a
                    # thread took a block from its arena when it went idle,
                    # and the trim freed it to shorten that arena
                    # (fcgi_trim_arenas).
                    self.assertGreaterEqual(line["arena_blocks_freed"], 1, line)
                else:
                    self.assertEqual(line["arena_blocks_freed"], 0, line)
            # No request since: a thread's idle tick (1 s) passes and no
            # other trim comes.
            time.sleep(1.5)
            self.assertEqual(idle_trim_lines(s), lines)

    def test_an_operators_malloc_settings_are_kept(self):
        """glibc's trim settings set by the operator (here
        MALLOC_TRIM_THRESHOLD_) are not overridden by the idle trim: the
        threads' arenas are then left to glibc (no block is freed)."""
        with Stack(workers=1, env={"LOG_LEVEL": "debug",
                                   "MALLOC_TRIM_THRESHOLD_": "262144"}) as s:
            lines = self.trims_after_lists(s, s.token(), 5, counted=5)
            self.assertEqual([l["arena_blocks_freed"] for l in lines], [0] * len(lines))

    def trims_after_lists(self, s, tok, lists, counted):
        """GET /orders?limit=100 `lists` times, then the idle trims' debug
        lines once they have counted `counted` requests in all."""
        for _ in range(lists):
            self.assertEqual(s.request("GET", "/orders?limit=100", token=tok).status, 200)
        s.wait_for(lambda: sum(l["requests"] for l in idle_trim_lines(s)) >= counted,
                   timeout=10, what="trim lines counting %d requests" % counted)
        return idle_trim_lines(s)


def idle_trim_lines(stack):
    return [l for l in stack.worker_log_lines()
            if l.get("message") == "idle worker gave freed memory back"]


class Metrics(unittest.TestCase):
    def promtool(self, text):
        tool = shutil.which("promtool")
        self.assertIsNotNone(tool, "promtool is missing: apt-get install prometheus "
                                   "(scripts/install-deps test installs it)")
        out = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        self.assertEqual(out.returncode, 0, "promtool check metrics:\n%s%s" % (
            out.stdout.decode(errors="replace"), out.stderr.decode(errors="replace")))

    def test_counters_add_up_over_the_pool(self):
        with Stack(workers=4) as s:
            tok = s.token()
            ready = metric_samples(metrics(s))
            readyz = sample(ready, "orders_http_requests_total", route="GET /readyz", status="200") or 0

            # 40 GET /healthz from 4 threads at once, each on a fresh
            # connection, so that the pool's workers share them.
            threads_out = []
            lock = threading.Lock()

            def worker(n):
                for _ in range(n):
                    st = s.request("GET", "/healthz").status
                    with lock:
                        threads_out.append(st)
            threads = [threading.Thread(target=worker, args=(10,)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(threads_out, [200] * 40)
            ids = []
            for i in range(5):
                r = s.request("POST", "/orders", body={"customerId": "c-%d" % i, "items": ["i"]}, token=tok)
                self.assertEqual(r.status, 201, r)
                ids.append(r.json()["id"])
            self.assertEqual(s.request("PATCH", "/orders/" + ids[0], body={"status": "paid"}, token=tok).status, 200)
            self.assertEqual(s.request("PATCH", "/orders/" + ids[0], body={"status": "shipped"}, token=tok).status, 200)
            s.wait_for(lambda: len(s.events()) == 7, timeout=10, what="the 7 events delivered")
            # The sink has them once fsync'ed; the outbox marks them delivered just after.
            s.wait_for(lambda: sample(metric_samples(metrics(s)), "orders_events_pending") == 0,
                       timeout=10, what="the outbox to mark the events delivered")

            # Several scrapes, answered by whichever workers: the same figures.
            scrapes = []
            for _ in range(8):
                text = metrics(s)
                samples = metric_samples(text)
                # (the pool's own figures move with each scrape: the scrape
                # is a connection, memory is resampled)
                scrapes.append({k: v for k, v in samples.items() if dict(k[1]).get("route") != "GET /metrics"
                                and not k[0].startswith(("orders_pool_", "orders_worker_memory_"))})
            text_last = text
            for sc in scrapes[1:]:
                diff = {k: (scrapes[0].get(k), sc.get(k)) for k in set(sc) | set(scrapes[0]) if sc.get(k) != scrapes[0].get(k)}
                self.assertEqual(diff, {}, "scrapes disagree: not the pool's sum")
            m = scrapes[0]

            def req(route, status):
                return sample(m, "orders_http_requests_total", route=route, status=status)
            self.assertEqual(req("GET /healthz", "200"), 40)
            self.assertEqual(req("POST /orders", "201"), 5)
            self.assertEqual(req("PATCH /orders/{id}", "200"), 2)
            self.assertEqual(req("GET /readyz", "200"), readyz)
            for route, n in (("GET /healthz", 40), ("POST /orders", 5), ("PATCH /orders/{id}", 2)):
                self.assertEqual(sample(m, "orders_http_request_duration_seconds_count", route=route), n, route)
                self.assertEqual(sample(m, "orders_http_request_duration_seconds_bucket", route=route, le="+Inf"), n, route)
                buckets = sorted((float(dict(k[1])["le"]), v) for k, v in m.items()
                                 if k[0] == "orders_http_request_duration_seconds_bucket" and dict(k[1])["route"] == route)
                counts = [v for _, v in buckets]
                self.assertEqual(counts, sorted(counts), "buckets are cumulative")
                total = sample(m, "orders_http_request_duration_seconds_sum", route=route)
                self.assertGreater(total, 0, route)
                self.assertLess(total, n * 5, route)
            self.assertEqual(sample(m, "orders_orders_created_total"), 5)
            self.assertEqual(sample(m, "orders_order_status_changes_total", to="paid"), 1)
            self.assertEqual(sample(m, "orders_order_status_changes_total", to="shipped"), 1)
            self.assertEqual(sample(m, "orders_order_status_changes_total", to="delivered"), 0)
            self.assertEqual(sample(m, "orders_worker_restarts_total"), 0)
            self.assertEqual(sample(m, "orders_events_pending"), 0)
            self.assertEqual(sample(m, "orders_events_oldest_pending_age_seconds"), 0)
            self.assertEqual(sample(m, "orders_events_parked"), 0)
            self.assertEqual(sample(m, "orders_publisher_deliveries_total"), 7)
            self.assertEqual(sample(m, "orders_database_up"), 1)
            self.promtool(text_last)
            # Seven events delivered at the first try: no failure.  (Fails as
            # of this writing: core/store.c's store_outbox_stats computes
            # sum(attempts - delivered) but the publisher's attempts counts
            # failures only, so each clean delivery counts -1 and the
            # unsigned counter wraps to 2^64 - 7.)
            self.assertEqual(sample(m, "orders_publisher_failures_total"), 0)

    def test_pending_events_while_the_sink_is_down(self):
        # An HTTP sink on a closed port: every delivery fails, the events wait.
        sink = "http://127.0.0.1:%d/events" % free_port()
        with Stack(workers=2, env={"EVENT_SINK": sink}) as s:
            tok = s.token()
            for _ in range(3):
                self.assertEqual(s.request("POST", "/orders", body=ORDER, token=tok).status, 201)
            time.sleep(0.3)
            first = metric_samples(metrics(s))
            self.assertEqual(sample(first, "orders_events_pending"), 3)
            age = sample(first, "orders_events_oldest_pending_age_seconds")
            self.assertGreaterEqual(age, 0.3)
            self.assertLess(age, 60)
            self.assertEqual(sample(first, "orders_publisher_deliveries_total"), 0)
            self.assertEqual(sample(first, "orders_events_parked"), 0, "an unreachable sink never parks")
            time.sleep(0.5)
            text = metrics(s)
            later = metric_samples(text)
            self.assertEqual(sample(later, "orders_events_pending"), 3)
            self.assertGreaterEqual(sample(later, "orders_events_oldest_pending_age_seconds"), age + 0.4)
            failures = sample(later, "orders_publisher_failures_total")
            self.assertGreaterEqual(failures, 1, "the failed attempts are counted")
            self.assertLess(failures, 1000)
            self.promtool(text)

    def test_metrics_format(self):
        with Stack(workers=2) as s:
            r = s.request("GET", "/metrics")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
            self.promtool(r.body.decode("utf-8"))

    def test_metrics_refused_from_a_non_loopback_address(self):
        with Stack(workers=2) as s:
            for path in ("/metrics", "/metrics?x=1", "//metrics", "/%6detrics", "/metrics/",
                         "/status", "/status?full", "/status/"):
                status, headers, body = request_from(s, "127.0.0.2", "GET", path)
                # (Fails as of this writing for "/metrics/": nginx's
                # "location = /metrics" does not match it, so it goes to
                # "location /" and the worker's router takes the trailing
                # slash as /metrics: the metrics are served to anyone.)
                self.assertFalse(status == 200 or b"orders_http_requests_total" in body
                                 or b"accepted_connections" in body,
                                 "GET %s from 127.0.0.2 was answered %d with the metrics" % (path, status))
                if path in ("/metrics", "/status"):
                    self.assertEqual(status, 403, body)
                    self.assertTrue(headers["content-type"].startswith("application/problem+json"), headers)
                    doc = json.loads(body)
                    self.assertEqual((doc["type"], doc["status"]), ("forbidden", 403), doc)
                    self.assertIsInstance(doc["title"], str)
                    self.assertIsInstance(doc["detail"], str)
            # The rest of the API answers that address as usual.
            status, _, _ = request_from(s, "127.0.0.2", "GET", "/healthz")
            self.assertEqual(status, 200)
            # and loopback gets the metrics and the status
            self.assertEqual(s.request("GET", "/metrics").status, 200)
            self.assertEqual(s.request("GET", "/status").status, 200)


class Background:
    """One request in a thread; .result once it is done."""

    def __init__(self, fn):
        self.result = None
        self.thread = threading.Thread(target=self.run, args=(fn,))
        self.thread.start()

    def run(self, fn):
        self.result = fn()

    def join(self):
        self.thread.join(40)
        assert not self.thread.is_alive(), "request still running"
        return self.result


POOL_FIELDS = ("pool", "start_time", "start_since_s", "accepted_connections", "listen_queue",
               "listen_queue_max", "listen_queue_len", "idle_workers", "active_workers",
               "total_workers", "max_active_workers", "saturated", "slow_requests",
               "worker_restarts")
WORKER_FIELDS = ("pid", "state", "retiring", "start_time", "requests", "memory_pss_bytes", "request")


class PoolStatus(unittest.TestCase):
    def test_saturated_pool_shows_active_workers_and_its_listen_queue(self):
        """Worker A holds a create that waits for the database lock, worker
        B is stopped: GET /status and three health checks queue up.  B,
        continued, takes /status first (the queue is FIFO) and reports both
        workers active and the three connections still waiting.  One serving
        thread per worker, so that one held request saturates it, and one
        connection per request, so that the others wait in the listen queue
        rather than on a connection nginx keeps to the held worker."""
        with Stack(workers=2, env={"DB_BUSY_TIMEOUT_MS": "15000", "WORKER_THREADS": "1",
                                   "UPSTREAM_KEEPALIVE": "0"}) as s:
            tok = s.token()
            idle = s.request("GET", "/status?full")
            self.assertEqual(idle.status, 200, idle)
            self.assertEqual(idle.headers["content-type"], "application/json")
            doc = idle.json()
            for key in POOL_FIELDS:
                self.assertIn(key, doc)
            self.assertEqual(doc["total_workers"], 2)
            self.assertEqual(doc["active_workers"], 1)  # the one answering
            self.assertEqual(len(doc["workers"]), 2)
            for w in doc["workers"]:
                for key in WORKER_FIELDS:
                    self.assertIn(key, w)
                self.assertIsInstance(w["memory_pss_bytes"], int)
                self.assertGreater(w["memory_pss_bytes"], 0)
            self.assertNotIn("workers", s.request("GET", "/status").json(), "?full only")

            db = s.db()
            db.isolation_level = None
            db.execute("BEGIN IMMEDIATE")
            stopped = None
            try:
                create = Background(lambda: s.request("POST", "/orders", body=ORDER, token=tok, timeout=30))

                def busy_worker():
                    for w in s.request("GET", "/status?full").json()["workers"]:
                        r = w["request"]
                        if w["state"] == "active" and r and r["route"] == "POST /orders":
                            return w
                a = s.wait_for(busy_worker, timeout=10, what="a worker busy with the create")
                self.assertEqual(a["request"]["method"], "POST")
                self.assertTrue(a["request"]["running"])
                pids = [w["pid"] for w in s.request("GET", "/status?full").json()["workers"]]
                b = [p for p in pids if p != a["pid"]]
                self.assertEqual(len(b), 1, pids)
                os.kill(b[0], signal.SIGSTOP)
                stopped = b[0]
                # Each request is queued before the next is sent, so the
                # queue holds them in this order.
                status = Background(lambda: s.request("GET", "/status?full", timeout=30))
                s.wait_for(lambda: s.pool_socket_connections("02") == 1, timeout=10,
                           what="GET /status in the listen queue")
                health = []
                for n in range(2, 5):
                    health.append(Background(lambda: s.request("GET", "/healthz", timeout=30)))
                    s.wait_for(lambda: s.pool_socket_connections("02") == n, timeout=10,
                               what="%d connections in the listen queue" % n)
                os.kill(stopped, signal.SIGCONT)
                stopped = None
                r = status.join()
                self.assertEqual(r.status, 200, r)
                doc = r.json()
                self.assertEqual(doc["listen_queue"], 3, doc)
                self.assertGreaterEqual(doc["listen_queue_max"], 3)
                self.assertGreater(doc["listen_queue_len"], 0)
                self.assertEqual(doc["active_workers"], 2, doc)
                self.assertEqual(doc["idle_workers"], 0, doc)
                self.assertEqual(doc["max_active_workers"], 2, doc)
                self.assertGreaterEqual(doc["saturated"], 1, doc)
                by_pid = {w["pid"]: w for w in doc["workers"]}
                self.assertEqual(by_pid[a["pid"]]["state"], "active")
                self.assertEqual(by_pid[a["pid"]]["request"]["route"], "POST /orders")
                self.assertGreater(by_pid[a["pid"]]["request"]["duration_ms"], 0)
                self.assertEqual(by_pid[b[0]]["request"]["route"], "GET /status")
            finally:
                if stopped is not None:
                    os.kill(stopped, signal.SIGCONT)
                db.execute("ROLLBACK")
                db.close()
            self.assertEqual(create.join().status, 201)
            self.assertEqual([h.join().status for h in health], [200] * 3)
            m = metric_samples(metrics(s))
            self.assertGreaterEqual(sample(m, "orders_pool_saturated_total"), 1)
            self.assertEqual(sample(m, "orders_pool_max_active_workers"), 2)
            self.assertGreaterEqual(sample(m, "orders_pool_listen_queue_max"), 3)
            self.assertGreaterEqual(sample(m, "orders_pool_accepted_connections_total"), 10)
            self.assertEqual(sample(m, "orders_pool_workers", state="active"), 1)  # this scrape
            self.assertEqual(sample(m, "orders_pool_workers", state="idle"), 1)
            for pid in pids:
                self.assertGreater(sample(m, "orders_worker_memory_pss_bytes", pid=str(pid)), 0)
            self.assertGreater(sample(m, "orders_pool_start_time_seconds"), time.time() - 600)


class SlowLog(unittest.TestCase):
    def test_a_slow_request_is_logged_with_its_time_in_the_database(self):
        """On either engine (slowlog-postgres runs it on PostgreSQL): a
        write waits for a lock another connection holds.  On SQLite a create
        waits for the write lock; on PostgreSQL a status change waits for
        the order's row lock (its conditional update)."""
        with Stack(workers=2, env={"SLOW_REQUEST_MS": "250"}) as s:
            tok = s.token()
            trace = secrets.token_hex(16)
            traceparent = "00-%s-%s-01" % (trace, secrets.token_hex(8))
            for _ in range(5):
                self.assertEqual(s.request("GET", "/healthz").status, 200)
            if s.env.get("DATABASE_URL"):
                import pg
                r = s.request("POST", "/orders", body=ORDER, token=tok)
                self.assertEqual(r.status, 201, r)
                oid = r.json()["id"]
                route, expected = "PATCH /orders/{id}", 200
                db = pg.Holder(s.env["DATABASE_URL"],
                               "SELECT 1 FROM orders WHERE id = '%s' FOR UPDATE" % oid)
                write = lambda: s.request("PATCH", "/orders/" + oid, body=json.dumps({"status": "paid"}),
                                          token=tok, timeout=30, headers={"traceparent": traceparent,
                                                                   "Content-Type": "application/json"})
            else:
                route, expected = "POST /orders", 201
                db = s.db()
                db.isolation_level = None
                db.execute("BEGIN IMMEDIATE")  # the create waits for this lock
                write = lambda: s.request("POST", "/orders", body=ORDER, token=tok, timeout=30,
                                          headers={"traceparent": traceparent})
            try:
                waiting = Background(write)

                def waited_long_enough():
                    for w in s.request("GET", "/status?full").json()["workers"]:
                        r = w["request"]
                        if r and r["route"] == route and r["running"] and r["duration_ms"] >= 400:
                            return True
                s.wait_for(waited_long_enough, timeout=10, what="the write waiting 400 ms")
            finally:
                db.execute("ROLLBACK")
                db.close()
            self.assertEqual(waiting.join().status, expected)
            slow = s.wait_for(lambda: [l for l in s.worker_log_lines() if l.get("message") == "slow request"],
                              timeout=5, what="the slow log line")
            self.assertEqual(len(slow), 1, "only the waiting write was slow: %s" % slow)
            line = slow[0]
            self.assertEqual(line["level"], "warn")
            self.assertEqual(line["trace_id"], trace)
            self.assertEqual(line["route"], route)
            self.assertEqual(line["method"], route.split()[0])
            self.assertEqual(line["status"], expected)
            self.assertEqual(line["slow_request_ms"], 250)
            self.assertGreaterEqual(line["duration_ms"], 400)
            # most of it was the wait for the lock; the transaction itself is short
            self.assertGreaterEqual(line["db_lock_wait_ms"], 350)
            self.assertLessEqual(line["db_lock_wait_ms"], line["duration_ms"])
            self.assertGreater(line["db_transaction_ms"], 0)
            self.assertLess(line["db_lock_wait_ms"] + line["db_transaction_ms"], line["duration_ms"] + 1)
            self.assertEqual(sample(metric_samples(metrics(s)), "orders_slow_requests_total"), 1)
            self.assertEqual(s.request("GET", "/status").json()["slow_requests"], 1)

    def test_slow_request_ms_is_checked_at_start(self):
        s = Stack(workers=1, env={"SLOW_REQUEST_MS": "soon"}, start_timeout=10)
        # Stopped however start() ends: a stack that started after all
        # must not be left running.
        self.addCleanup(s.stop, check=False)
        with self.assertRaises(AssertionError) as cm:
            s.start()
        self.assertIn("SLOW_REQUEST_MS", str(cm.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
