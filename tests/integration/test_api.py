"""The Orders API through the real stack (nginx -> FastCGI -> workers ->
SQLite): every row of the contract's endpoint and error tables, the auth
matrix of the PyJWT vectors (tests/data), iss/aud checks, the racing status update,
and -- at the end -- every captured response checked against openapi.json
by tests/spec/validate-responses.mjs.

    cd /work/main && ORDERS_BUILD_DIR=build python3 tests/integration/test_api.py

Not exercised: 500 internal_error.  It needs the service to fail in a way a
client cannot cause (out of memory, a corrupt database); provoking it would
mean sabotaging the stack from outside, which tests the sabotage rather than
the API.  Its shape is covered by the unit tests of the problem renderer.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import BUILD, ROOT, TEST_SECRET, Stack, assert_problem, load_vectors

UUID_V7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UNKNOWN_ID = "019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60"
ORDER_KEYS = {"id", "customerId", "items", "status", "createdAt", "updatedAt"}
README_ORDER = {"customerId": "customer-123", "items": ["item-1", "item-2"]}


# -- tokens ---------------------------------------------------------------
def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(claims=None, secret=TEST_SECRET, alg="HS256", scope="orders.read orders.write",
         exp_in=3600, header=None):
    """An HS256/384/512 JWT.  claims are merged over sub/iat/exp/scope; a
    claim set to None is left out."""
    now = int(time.time())
    body = {"sub": "user-123", "iat": now, "exp": now + exp_in, "scope": scope}
    body.update(claims or {})
    body = {k: v for k, v in body.items() if v is not None}
    head = {"alg": alg, "typ": "JWT"}
    head.update(header or {})
    signing_input = (b64url(json.dumps(head, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(body, separators=(",", ":")).encode()))
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(sig)


RW = mint()
READ = mint(scope="orders.read")
WRITE = mint(scope="orders.write")


# -- response capture for the schema check -----------------------------------
CAPTURED = []
CAPTURE_LOCK = threading.Lock()


def operation_id(method, path):
    """The openapi.json operation a request addresses, or None for a path
    that is no route (those 404s belong to no operation).  A known path
    with another method is recorded under an operation of that path: each
    one documents 405."""
    path = path.split("?", 1)[0]
    fixed = {"/": "getServiceInfo", "/openapi.json": "getOpenApi",
             "/healthz": "getHealth", "/readyz": "getReadiness"}
    if path in fixed:
        return fixed[path]
    if path in ("/orders", "/orders/"):
        return "createOrder" if method == "POST" else "listOrders"
    if re.fullmatch(r"/orders/[^/]+", path):
        return "updateOrderStatus" if method == "PATCH" else "getOrder"
    return None


def capture(method, path, res):
    op = operation_id(method, path)
    if op is None:
        return
    ctype = res.headers.get("content-type")
    body = None
    if res.body:
        try:
            body = res.json()
        except ValueError:
            body = {"unparsable body": res.body[:200].decode("utf-8", "replace")}
    headers = {}
    for k, v in res.header_list:
        k = k.lower()
        headers[k] = headers[k] + ", " + v if k in headers else v
    with CAPTURE_LOCK:
        CAPTURED.append({"operationId": op, "status": res.status, "contentType": ctype,
                         "headers": headers, "body": body,
                         "request": "%s %s" % (method, path)})


def call(stack, method, path, **kw):
    """stack.request, with the response recorded for the schema check."""
    res = stack.request(method, path, **kw)
    capture(method, path, res)
    return res


def spec_node_modules_ready(spec_dir):
    if os.path.isdir(os.path.join(spec_dir, "node_modules")):
        return True
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                   cwd=spec_dir, check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return True


def tearDownModule():
    """Every response the tests saw must match what openapi.json documents."""
    if not CAPTURED:
        return
    spec_dir = os.path.join(ROOT, "tests", "spec")
    spec_node_modules_ready(spec_dir)
    fd, path = tempfile.mkstemp(prefix="orders-responses-", suffix=".jsonl")
    with os.fdopen(fd, "w") as f:
        for rec in CAPTURED:
            f.write(json.dumps(rec) + "\n")
    try:
        out = subprocess.run(["node", os.path.join(spec_dir, "validate-responses.mjs"), path],
                             cwd=spec_dir, capture_output=True, timeout=60)
        summary = out.stdout.decode("utf-8", "replace").strip().splitlines()[-1:]
        sys.stderr.write("\n%s\n" % " ".join(summary))
        if out.returncode != 0:
            lines = out.stdout.decode("utf-8", "replace").splitlines()
            # Point each mismatch at the request that caused it.
            detail = []
            for line in lines:
                m = re.match(r"^.*:(\d+): ", line)
                if m:
                    rec = CAPTURED[int(m.group(1)) - 1]
                    line += "   <- %s -> %s %s" % (rec["request"], rec["status"],
                                                  json.dumps(rec["body"])[:200])
                detail.append(line)
            raise AssertionError("responses do not match openapi.json:\n" + "\n".join(detail)
                                 + out.stderr.decode("utf-8", "replace"))
    finally:
        if os.environ.get("ORDERS_KEEP_TMP") is None:
            os.unlink(path)


# -- helpers ----------------------------------------------------------------
def created(test, stack, body=None, token=RW):
    res = call(stack, "POST", "/orders", body=README_ORDER if body is None else body, token=token)
    test.assertEqual(res.status, 201, res)
    return res.json()


def event_rows(stack, order_id, type_=None):
    with stack.db() as db:
        sql = "SELECT type, data FROM events WHERE subject = ?"
        args = [order_id]
        if type_ is not None:
            sql += " AND type = ?"
            args.append(type_)
        rows = db.execute(sql + " ORDER BY seq", args).fetchall()
    return rows


def assert_order_shape(test, order):
    test.assertEqual(set(order), ORDER_KEYS, order)
    test.assertRegex(order["id"], UUID_V7)
    test.assertIn(order["status"], ("pending", "paid", "shipped", "delivered"))
    test.assertRegex(order["createdAt"], TIMESTAMP)
    test.assertRegex(order["updatedAt"], TIMESTAMP)
    test.assertGreaterEqual(order["updatedAt"], order["createdAt"])


class ApiCase(unittest.TestCase):
    stack = None
    stack_args = {"workers": 2}

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(**cls.stack_args)
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def req(self, method, path, **kw):
        return call(self.stack, method, path, **kw)

    def problem(self, res, status, type_, instance=None):
        return assert_problem(self, res, status, type_, instance)


# -- endpoints --------------------------------------------------------------
class Endpoints(ApiCase):
    def test_service_documents_and_probes(self):
        r = self.req("GET", "/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["links"]["orders"], "/orders")
        r = self.req("GET", "/openapi.json")
        self.assertEqual(r.status, 200)
        with open(os.path.join(ROOT, "openapi.json"), "rb") as f:
            self.assertEqual(r.body, f.read())
        r = self.req("GET", "/healthz")
        self.assertEqual((r.status, r.json()), (200, {"status": "ok"}))
        r = self.req("GET", "/readyz")
        self.assertEqual((r.status, r.json()["status"]), (200, "ready"))

    def test_readme_examples(self):
        # The README's create / get / update status / list, as written there,
        # with a token from the token tool as the README gets one.
        tool = os.path.join(BUILD, "tools", "orders-token")
        token = self.stack.token() if os.access(tool, os.X_OK) else RW
        r = self.req("POST", "/orders", body=json.dumps(README_ORDER),
                     headers={"Content-Type": "application/json"}, token=token)
        self.assertEqual(r.status, 201, r)
        order = r.json()
        self.assertEqual(order["customerId"], "customer-123")
        self.assertEqual(order["items"], ["item-1", "item-2"])
        r = self.req("GET", "/orders/" + order["id"], token=token)
        self.assertEqual((r.status, r.json()), (200, order))
        r = self.req("PATCH", "/orders/" + order["id"], body={"status": "paid"}, token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "paid")
        r = self.req("GET", "/orders?limit=10&offset=0", token=token)
        self.assertEqual(r.status, 200, r)
        page = r.json()
        self.assertEqual((page["limit"], page["offset"]), (10, 0))
        self.assertIn(order["id"], [o["id"] for o in page["items"]])

    def test_create(self):
        before = int(time.time() * 1000)
        r = self.req("POST", "/orders", body={"customerId": "c-1", "items": ["a", "b", "a"]},
                     token=RW)
        self.assertEqual(r.status, 201, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        order = r.json()
        assert_order_shape(self, order)
        self.assertEqual(r.headers["location"], "/orders/" + order["id"])
        self.assertEqual(order["status"], "pending")
        self.assertEqual(order["customerId"], "c-1")
        self.assertEqual(order["items"], ["a", "b", "a"])  # order and duplicates kept
        self.assertEqual(order["createdAt"], order["updatedAt"])
        # The UUIDv7 carries the creation time in its first 48 bits.
        ms = int(order["id"].replace("-", "")[:12], 16)
        self.assertLessEqual(abs(ms - before), 60_000)
        r = self.req("GET", r.headers["location"], token=READ)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), order)
        rows = event_rows(self.stack, order["id"])
        self.assertEqual([t for t, _ in rows], ["order.created"])
        self.assertEqual(json.loads(rows[0][1]), order)

    def test_create_accepts_limits_and_charset(self):
        body = {"customerId": "c" * 128, "items": ["i" * 128] * 100}
        order = created(self, self.stack, body)
        self.assertEqual(len(order["items"]), 100)
        # Characters, not bytes: 128 two-byte characters are within 128.
        order = created(self, self.stack, {"customerId": "é" * 128, "items": ["ü" * 128]})
        self.assertEqual(order["customerId"], "é" * 128)
        r = self.req("POST", "/orders", body=json.dumps(README_ORDER), token=RW,
                     headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(r.status, 201, r)
        # Unknown fields are ignored, and never echoed.
        order = created(self, self.stack, dict(README_ORDER, status="delivered", id="x"))
        self.assertEqual(order["status"], "pending")
        self.assertNotEqual(order["id"], "x")

    def test_body_of_exactly_64_kib_is_accepted(self):
        text = json.dumps(README_ORDER)
        body = text + " " * (64 * 1024 - len(text))
        r = self.req("POST", "/orders", body=body, token=RW,
                     headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 201, r)

    def test_status_flow(self):
        order = created(self, self.stack)
        previous = order
        for status, was in (("paid", "pending"), ("shipped", "paid"), ("delivered", "shipped")):
            time.sleep(0.005)  # timestamps are in ms: let the clock move
            r = self.req("PATCH", "/orders/" + order["id"], body={"status": status}, token=WRITE)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.headers["content-type"].startswith("application/json"))
            now = r.json()
            assert_order_shape(self, now)
            self.assertEqual(now["status"], status)
            self.assertEqual(now["createdAt"], order["createdAt"])
            self.assertGreater(now["updatedAt"], previous["updatedAt"])
            for k in ("id", "customerId", "items"):
                self.assertEqual(now[k], order[k])
            self.assertEqual(self.req("GET", "/orders/" + order["id"], token=READ).json(), now)
            data = json.loads(event_rows(self.stack, order["id"], "order.updated")[-1][1])
            self.assertEqual(data["previousStatus"], was)
            self.assertEqual(data["status"], status)
            previous = now
        self.assertEqual(len(event_rows(self.stack, order["id"])), 4)

    def test_conflicts_change_nothing(self):
        order = created(self, self.stack)
        oid = order["id"]

        def attempt(to, expected_now):
            n_events = len(event_rows(self.stack, oid))
            r = self.req("PATCH", "/orders/" + oid, body={"status": to}, token=RW)
            doc = self.problem(r, 409, "conflict", "/orders/" + oid)
            self.assertIn(expected_now["status"], doc["detail"])
            self.assertIn(to, doc["detail"])
            self.assertEqual(self.req("GET", "/orders/" + oid, token=RW).json(), expected_now)
            self.assertEqual(len(event_rows(self.stack, oid)), n_events)

        attempt("shipped", order)      # skip
        attempt("delivered", order)    # skip two
        attempt("pending", order)      # same status
        paid = self.req("PATCH", "/orders/" + oid, body={"status": "paid"}, token=RW).json()
        attempt("pending", paid)       # back
        attempt("paid", paid)          # same status
        attempt("delivered", paid)     # skip
        shipped = self.req("PATCH", "/orders/" + oid, body={"status": "shipped"}, token=RW).json()
        delivered = self.req("PATCH", "/orders/" + oid, body={"status": "delivered"},
                             token=RW).json()
        self.assertEqual((shipped["status"], delivered["status"]), ("shipped", "delivered"))
        for to in ("delivered", "shipped", "paid", "pending"):
            attempt(to, delivered)     # nothing after delivered
        self.assertEqual([t for t, _ in event_rows(self.stack, oid)],
                         ["order.created"] + ["order.updated"] * 3)

    def test_not_found(self):
        for oid in (UNKNOWN_ID, "nope", UNKNOWN_ID.upper(), UNKNOWN_ID[:-1],
                    UNKNOWN_ID + "0", UNKNOWN_ID.replace("-", ""), "%20",
                    "{" + UNKNOWN_ID + "}", "1' OR '1'='1".replace(" ", "%20").replace("'", "%27")):
            path = "/orders/" + oid
            self.problem(self.req("GET", path, token=RW), 404, "not_found")
            self.problem(self.req("PATCH", path, body={"status": "paid"}, token=RW),
                         404, "not_found")
        # An existing order's id in another case names no order either.
        order = created(self, self.stack)
        self.problem(self.req("GET", "/orders/" + order["id"].upper(), token=RW), 404, "not_found")
        self.problem(self.req("GET", "/orders/" + order["id"] + "/x", token=RW), 404, "not_found")
        self.problem(self.req("GET", "/no-such-route", token=RW), 404, "not_found",
                     "/no-such-route")

    def test_problem_instance_is_a_uri_reference(self):
        # Characters a URI may not hold, sent raw: the instance escapes them
        # (and the body stays valid UTF-8 JSON even for a raw 0xFF byte).
        for raw, instance in ((b"/orders/{x}", "/orders/%7Bx%7D"),
                              (b"/orders/a|b", "/orders/a%7Cb"),
                              (b"/orders/%7Bx%7D", "/orders/%7Bx%7D"),
                              (b"/orders/\xff\xfe", "/orders/%FF%FE"),
                              (b"/no/\xc3\xa9", "/no/%C3%A9")):
            with socket.create_connection(("127.0.0.1", self.stack.port), timeout=5) as s:
                s.sendall(b"GET " + raw + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          b"Authorization: Bearer " + RW.encode() + b"\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertIn(b" 404 ", head.split(b"\r\n")[0], data)
            doc = json.loads(body.decode("utf-8"))
            self.assertEqual((doc["type"], doc["instance"]), ("not_found", instance))

    def test_method_not_allowed(self):
        cases = [("DELETE", "/orders", "GET, POST"), ("PUT", "/orders", "GET, POST"),
                 ("PATCH", "/orders", "GET, POST"), ("DELETE", "/orders/", "GET, POST"),
                 ("DELETE", "/orders/" + UNKNOWN_ID, "GET, PATCH"),
                 ("POST", "/orders/" + UNKNOWN_ID, "GET, PATCH"),
                 ("PUT", "/orders/" + UNKNOWN_ID, "GET, PATCH")]
        for method, path, allow in cases:
            r = self.req(method, path, token=RW, body=b"{}",
                         headers={"Content-Type": "application/json"})
            self.problem(r, 405, "method_not_allowed")
            self.assertEqual(sorted(m.strip() for m in r.headers["allow"].split(",")),
                             sorted(allow.split(", ")), (method, path))

    def test_payload_too_large(self):
        big = b'{"customerId":"c","items":["' + b"x" * (64 * 1024) + b'"]}'
        for method, path in (("POST", "/orders"), ("PATCH", "/orders/" + UNKNOWN_ID)):
            r = self.req(method, path, body=big, token=RW,
                         headers={"Content-Type": "application/json"})
            self.problem(r, 413, "payload_too_large")
        self.assertEqual(self.req("GET", "/healthz").status, 200)

    def test_unsupported_media_type(self):
        order = created(self, self.stack)
        body = json.dumps({"status": "paid"}).encode()
        for headers in ({}, {"Content-Type": "text/plain"},
                        {"Content-Type": "application/x-www-form-urlencoded"},
                        {"Content-Type": "application/jsonx"},
                        {"Content-Type": "multipart/form-data; boundary=x"}):
            r = self.req("POST", "/orders", body=json.dumps(README_ORDER).encode(),
                         headers=headers, token=RW)
            self.problem(r, 415, "unsupported_media_type", "/orders")
            r = self.req("PATCH", "/orders/" + order["id"], body=body, headers=headers, token=RW)
            self.problem(r, 415, "unsupported_media_type")
        # A form post, as a browser would send it.
        r = self.req("POST", "/orders", body="customerId=c&items=i", token=RW,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.problem(r, 415, "unsupported_media_type")
        # Nothing changed.
        self.assertEqual(self.req("GET", "/orders/" + order["id"], token=RW).json(), order)
        # Authentication comes first: no token is 401, not 415.
        r = self.req("POST", "/orders", body="x", headers={"Content-Type": "text/plain"})
        self.problem(r, 401, "unauthorized")


# -- validation ---------------------------------------------------------------
class Validation(ApiCase):
    def create_invalid(self, body, *phrases, raw=False):
        data = body if raw else json.dumps(body)
        r = self.req("POST", "/orders", body=data, token=RW,
                     headers={"Content-Type": "application/json"})
        doc = self.problem(r, 400, "validation_error", "/orders")
        for p in phrases:
            self.assertIn(p, doc["detail"], body)
        return doc

    def test_contract_example_exactly(self):
        doc = self.create_invalid({"customerId": "", "items": []})
        self.assertEqual(doc["detail"],
                         "customerId should not be empty, items must contain at least 1 elements")
        self.assertEqual(doc["title"], "Validation Error")

    def test_body_not_json_or_not_object(self):
        for raw in ("", "{", "not json", '{"customerId":"c","items":["i"]} trailing',
                    '{"customerId":"c","items":["i"]}{}', "\xff"):
            self.create_invalid(raw, raw=True)
        self.create_invalid("{", "JSON", raw=True)
        for doc in ([], [README_ORDER], "customer-123", 42, None, True):
            self.create_invalid(doc, "object")

    def test_every_violation_is_named(self):
        self.create_invalid({}, "customerId", "items")
        self.create_invalid({"items": ["i"]}, "customerId")
        self.create_invalid({"customerId": "c"}, "items")
        self.create_invalid({"customerId": 7, "items": "i"}, "customerId must be a string",
                            "items must be an array")
        self.create_invalid({"customerId": None, "items": {"0": "i"}}, "customerId", "items")
        self.create_invalid({"customerId": ["c"], "items": None}, "customerId", "items")
        self.create_invalid({"customerId": "c" * 129, "items": ["i" * 129]},
                            "customerId must be shorter than or equal to 128 characters",
                            "items[0] must be shorter than or equal to 128 characters")
        self.create_invalid({"customerId": "é" * 129, "items": ["i"]}, "customerId")
        self.create_invalid({"customerId": "   ", "items": [" ", "\t\n", "ok"]},
                            "customerId should not be empty", "items[0] should not be empty",
                            "items[1] should not be empty")
        doc = self.create_invalid({"customerId": "c", "items": [1, "ok", None, [], {}, True]},
                                  "items[0] must be a string", "items[2] must be a string",
                                  "items[3] must be a string", "items[4] must be a string",
                                  "items[5] must be a string")
        self.assertNotIn("items[1]", doc["detail"])
        self.create_invalid({"customerId": "c", "items": ["i"] * 101},
                            "items must contain no more than 100 elements")
        self.create_invalid({"customerId": "", "items": ["i"] * 101 + [""]},
                            "customerId should not be empty", "no more than 100",
                            "items[101] should not be empty")
        self.create_invalid({"customerId": "c", "items": [""]}, "items[0] should not be empty")

    def test_invalid_body_creates_nothing(self):
        with self.stack.db() as db:
            before = db.execute("SELECT count(*) FROM orders").fetchone()[0]
        self.create_invalid({"customerId": "", "items": []})
        with self.stack.db() as db:
            self.assertEqual(db.execute("SELECT count(*) FROM orders").fetchone()[0], before)

    def test_update_body(self):
        order = created(self, self.stack)
        path = "/orders/" + order["id"]
        for body, phrase in (("", "required"), ("{", "JSON"), ("[]", "object"),
                             ('"paid"', "object"), ("{}", "status is required"),
                             ('{"status":"cancelled"}', "pending, paid, shipped, delivered"),
                             ('{"status":"PAID"}', "status must be one of"),
                             ('{"status":1}', "status must be one of"),
                             ('{"status":null}', "status"),
                             ('{"status":["paid"]}', "status")):
            r = self.req("PATCH", path, body=body, token=RW,
                         headers={"Content-Type": "application/json"})
            doc = self.problem(r, 400, "validation_error", path)
            self.assertIn(phrase, doc["detail"], body)
        self.assertEqual(self.req("GET", path, token=RW).json(), order)

    def test_bad_query_parameters(self):
        cases = {
            "limit=0": ["limit"], "limit=101": ["limit"], "limit=abc": ["limit"],
            "limit=-1": ["limit"], "limit=1.5": ["limit"], "limit=1e1": ["limit"],
            "limit=%2B5": ["limit"], "limit=5%00": ["limit"], "limit=5%00junk": ["limit"], "limit=99999999999999999999999": ["limit"],
            "offset=-1": ["offset"], "offset=x": ["offset"], "offset=1.0": ["offset"],
            "limit=0&offset=-1": ["limit", "offset"], "limit=abc&offset=x": ["limit", "offset"],
        }
        for query, names in cases.items():
            for base in ("/orders", "/orders/"):
                r = self.req("GET", base + "?" + query, token=RW)
                doc = self.problem(r, 400, "validation_error")
                for n in names:
                    self.assertIn(n, doc["detail"], query)
        doc = self.problem(self.req("GET", "/orders?limit=0&offset=-1", token=RW),
                           400, "validation_error")
        self.assertIn("between 1 and 100", doc["detail"])
        self.assertIn("greater than or equal to 0", doc["detail"])
        # Boundaries are accepted; unknown parameters are ignored.
        for query, limit, offset in (("limit=1", 1, 0), ("limit=100", 100, 0),
                                     ("offset=0", 20, 0), ("limit=100&offset=5", 100, 5),
                                     ("foo=bar&limit=3", 3, 0), ("limit=%35", 5, 0)):
            r = self.req("GET", "/orders?" + query, token=RW)
            self.assertEqual(r.status, 200, (query, r))
            self.assertEqual((r.json()["limit"], r.json()["offset"]), (limit, offset))


# -- the list -----------------------------------------------------------------
class Listing(ApiCase):
    """Its own stack, so that the total is exactly what this class created."""

    def page(self, query="", path="/orders"):
        r = self.req("GET", path + query, token=READ)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        doc = r.json()
        self.assertEqual(set(doc), {"items", "total", "limit", "offset", "next"})
        for o in doc["items"]:
            assert_order_shape(self, o)
        return doc

    def test_listing(self):
        empty = self.page()
        self.assertEqual(empty, {"items": [], "total": 0, "limit": 20, "offset": 0, "next": None})
        orders = [created(self, self.stack, {"customerId": "c-%d" % i, "items": ["i"]})
                  for i in range(25)]
        newest_first = [o["id"] for o in reversed(orders)]

        page = self.page()
        self.assertEqual((page["total"], page["limit"], page["offset"]), (25, 20, 0))
        self.assertEqual([o["id"] for o in page["items"]], newest_first[:20])
        self.assertEqual(page["items"][0], orders[-1])
        self.assertEqual(self.page(path="/orders/"), page)
        self.assertEqual(self.page("?", path="/orders/"), page)

        page = self.page("?limit=10&offset=20")
        self.assertEqual((page["total"], page["limit"], page["offset"]), (25, 10, 20))
        self.assertEqual([o["id"] for o in page["items"]], newest_first[20:])
        page = self.page("?offset=3&limit=2", path="/orders/")
        self.assertEqual([o["id"] for o in page["items"]], newest_first[3:5])
        self.assertEqual((page["limit"], page["offset"]), (2, 3))

        # Paging with limit=1 walks the same sequence.
        walked = [self.page("?limit=1&offset=%d" % i)["items"][0]["id"] for i in range(25)]
        self.assertEqual(walked, newest_first)

        for offset in (25, 26, 1000, 10**9):
            page = self.page("?offset=%d" % offset)
            self.assertEqual(page, {"items": [], "total": 25, "limit": 20, "offset": offset,
                                    "next": None})

        # A status change does not move an order in the list (creation order).
        self.req("PATCH", "/orders/" + orders[0]["id"], body={"status": "paid"}, token=RW)
        page = self.page("?limit=100")
        self.assertEqual([o["id"] for o in page["items"]], newest_first)
        self.assertEqual(page["items"][-1]["status"], "paid")

    def test_same_millisecond_in_creation_order(self):
        # Two orders created in the same millisecond cannot be forced over
        # HTTP, so these rows are written straight into the database: same
        # created_at, ids deliberately not in insertion order.  The list
        # follows the order they were made (the store's sequence), not the
        # clock and not the id.  (Runs after test_listing: unittest sorts by
        # name.)
        ms = 4102444800000  # 2100-01-01T00:00:00.000Z
        ids = ["01900000-0000-7000-8000-00000000000b", "01900000-0000-7000-8000-00000000000f",
               "01900000-0000-7000-8000-00000000000a"]
        with self.stack.db() as db:
            for oid in ids:
                db.execute("INSERT INTO orders (id, customer_id, items, status, created_at,"
                           " updated_at) VALUES (?, 'tie', '[\"i\"]', 'pending', ?, ?)",
                           (oid, ms, ms))
        page = self.page("?limit=3")
        self.assertEqual([o["id"] for o in page["items"]], list(reversed(ids)))
        self.assertEqual(page["items"][0]["createdAt"], "2100-01-01T00:00:00.000Z")
        # An order made through the API afterwards leads the list, though
        # its created_at is earlier: creation order, not the clock.
        newer = created(self, self.stack, {"customerId": "after", "items": ["i"]})
        page = self.page("?limit=4")
        self.assertEqual([o["id"] for o in page["items"]], [newer["id"]] + list(reversed(ids)))
        with self.stack.db() as db:
            self.assertEqual(page["total"], db.execute("SELECT count(*) FROM orders").fetchone()[0])


# -- authentication and authorization ---------------------------------------
class Auth(ApiCase):
    def assert_401(self, res, token_given=True):
        self.problem(res, 401, "unauthorized")
        www = res.headers.get("www-authenticate", "")
        self.assertTrue(www.startswith("Bearer"), www)
        if token_given:
            self.assertIn('error="invalid_token"', www)
        else:
            self.assertNotIn("error=", www)

    def assert_403(self, res, scope):
        self.problem(res, 403, "forbidden")
        www = res.headers.get("www-authenticate", "")
        self.assertTrue(www.startswith("Bearer"), www)
        self.assertIn('error="insufficient_scope"', www)
        self.assertIn('scope="%s"' % scope, www)

    def test_vectors(self):
        vectors = load_vectors()
        self.assertEqual(vectors["secret"], TEST_SECRET)
        for v in vectors["vectors"]:
            with self.subTest(v["name"]):
                if v["needs_scope"] == "orders.write":
                    r = self.req("POST", "/orders", body=README_ORDER, token=v["token"])
                    ok = 201
                else:
                    r = self.req("GET", "/orders", token=v["token"])
                    ok = 200
                expect = ok if v["expect"] == 200 else v["expect"]
                self.assertEqual(r.status, expect, (v["name"], v["note"], r))
                if expect == 401:
                    self.assert_401(r)
                elif expect == 403:
                    self.assert_403(r, v["needs_scope"] or "orders.read")

    def test_minted_claims(self):
        now = int(time.time())
        cases = [
            ("valid", mint(), 200),
            ("scope among others", mint(scope="openid orders.read profile"), 200),
            ("scp string", mint(scope=None, claims={"scp": "orders.read"}), 200),
            ("scp array", mint(scope=None, claims={"scp": ["x", "orders.read"]}), 200),
            ("scopes array", mint(scope=None, claims={"scopes": ["orders.read"]}), 200),
            ("nbf within leeway", mint(claims={"nbf": now + 5}), 200),
            ("expired", mint(exp_in=-3600), 401),
            ("nbf in the future", mint(claims={"nbf": now + 3600}), 401),
            ("iat in the future", mint(claims={"iat": now + 3600}), 401),
            ("no exp", mint(claims={"exp": None}), 401),
            ("exp as string", mint(claims={"exp": str(now + 3600)}), 401),
            ("wrong secret", mint(secret="another-secret-0123456789abcdef0123456789"), 401),
            ("HS512", mint(alg="HS512"), 401),
            ("RS256 header over an HS256 signature", mint(header={"alg": "RS256"}), 401),
            ("audience while none is configured", mint(claims={"aud": "orders"}), 401),
        ]
        # A "scope" claim that is not a string is no grant: refused either as
        # a malformed token or as lacking the scope, never served.
        r = self.req("GET", "/orders", token=mint(scope=None, claims={"scope": ["orders.read"]}))
        self.assertIn(r.status, (401, 403), r)
        unsigned = (b64url(b'{"alg":"none","typ":"JWT"}') + "." +
                    b64url(json.dumps({"sub": "u", "exp": now + 3600,
                                       "scope": "orders.read"}).encode()) + ".")
        cases.append(("alg none", unsigned, 401))
        for name, token, expect in cases:
            with self.subTest(name):
                r = self.req("GET", "/orders", token=token)
                self.assertEqual(r.status, expect, (name, r))
                if expect == 401:
                    self.assert_401(r)
                elif expect == 403:
                    self.assert_403(r, "orders.read")

    def test_missing_and_odd_credentials(self):
        self.assert_401(self.req("GET", "/orders"), token_given=False)
        self.assert_401(self.req("GET", "/orders/"), token_given=False)
        r = self.req("GET", "/orders", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        self.problem(r, 401, "unauthorized")
        self.assertTrue(r.headers["www-authenticate"].startswith("Bearer"))
        for value in ("Bearer", "Bearer ", "Token " + RW, RW, "Bearer" + RW,
                      "Bearer " + RW + " extra", "Bearer " + RW + "x"):
            with self.subTest(value[:20]):
                r = self.req("GET", "/orders", headers={"Authorization": value})
                self.problem(r, 401, "unauthorized")
                self.assertTrue(r.headers["www-authenticate"].startswith("Bearer"))
        # The scheme name is case-insensitive (RFC 9110 11.1), and RFC 6750's
        # grammar allows more than one space after it.
        for value in ("bearer " + RW, "BEARER " + RW, "Bearer  " + RW):
            r = self.req("GET", "/orders", headers={"Authorization": value})
            self.assertEqual(r.status, 200, (value[:10], r))

    def test_every_operation_needs_its_scope(self):
        order = created(self, self.stack)
        path = "/orders/" + order["id"]
        ops = [("POST", "/orders", README_ORDER, "orders.write"),
               ("GET", "/orders", None, "orders.read"),
               ("GET", "/orders/", None, "orders.read"),
               ("GET", path, None, "orders.read"),
               ("PATCH", path, {"status": "paid"}, "orders.write")]
        for method, p, body, scope in ops:
            with self.subTest((method, p)):
                self.assert_401(self.req(method, p, body=body), token_given=False)
                self.assert_401(self.req(method, p, body=body, token=mint(exp_in=-60)))
                other = WRITE if scope == "orders.read" else READ
                self.assert_403(self.req(method, p, body=body, token=other), scope)
                self.assert_403(self.req(method, p, body=body, token=mint(scope="")), scope)
        # None of that touched the order.
        self.assertEqual(self.req("GET", path, token=READ).json(), order)
        self.assertEqual(len(event_rows(self.stack, order["id"])), 1)

    def test_authentication_before_validation_and_existence(self):
        bad = {"customerId": "", "items": []}
        self.assert_401(self.req("POST", "/orders", body=bad), token_given=False)
        self.assert_401(self.req("POST", "/orders", body="{", token="garbage",
                                 headers={"Content-Type": "application/json"}))
        self.assert_403(self.req("POST", "/orders", body=bad, token=READ), "orders.write")
        self.assert_401(self.req("GET", "/orders/" + UNKNOWN_ID), token_given=False)
        self.assert_401(self.req("GET", "/orders/not-an-id"), token_given=False)
        self.assert_403(self.req("GET", "/orders/" + UNKNOWN_ID, token=WRITE), "orders.read")
        self.assert_401(self.req("PATCH", "/orders/" + UNKNOWN_ID, body={"status": "x"}),
                        token_given=False)
        self.assert_403(self.req("PATCH", "/orders/" + UNKNOWN_ID, body={"status": "paid"},
                                 token=READ), "orders.write")
        self.assert_401(self.req("GET", "/orders?limit=0"), token_given=False)
        self.assert_403(self.req("GET", "/orders?limit=0", token=WRITE), "orders.read")
        # Probes and documents need no token.
        for p in ("/", "/openapi.json", "/healthz", "/readyz"):
            self.assertEqual(self.req("GET", p).status, 200, p)

    def test_two_authorization_headers_are_refused(self):
        order = created(self, self.stack)
        pairs = [(RW, RW), (RW, "garbage"), ("garbage", RW), (READ, WRITE)]
        for first, second in pairs:
            hl = [("Authorization", "Bearer " + first), ("Authorization", "Bearer " + second)]
            for method, path, body in (("GET", "/orders", None),
                                       ("GET", "/orders/" + order["id"], None),
                                       ("POST", "/orders", README_ORDER),
                                       ("PATCH", "/orders/" + order["id"], {"status": "paid"})):
                with self.subTest((method, path, first[:8], second[:8])):
                    r = self.req(method, path, body=body, header_list=hl)
                    self.assertIn(r.status, (400, 401), r)
                    self.assertTrue(r.headers["content-type"].startswith(
                        "application/problem+json"))
        self.assertEqual(self.req("GET", "/orders/" + order["id"], token=RW).json(), order)

    def test_sub_is_logged_and_token_is_not(self):
        token = mint(claims={"sub": "auditor-42"}, scope="orders.read")
        self.req("GET", "/orders?limit=1", token=token)
        self.stack.wait_for(
            lambda: [l for l in self.stack.worker_log_lines()
                     if l.get("message") == "request" and l.get("sub") == "auditor-42"],
            timeout=5, what="the access log line")
        with open(self.stack.stderr_path, "rb") as f:
            logs = f.read()
        self.assertNotIn(token.encode(), logs)
        self.assertNotIn(token.split(".")[2].encode(), logs)
        self.assertNotIn(TEST_SECRET.encode(), logs)


class IssuerAndAudience(ApiCase):
    stack_args = {"workers": 1, "env": {"JWT_ISSUER": "https://issuer.example",
                                        "JWT_AUDIENCE": "orders-api"}}

    def test_iss_and_aud_checked_when_configured(self):
        iss, aud = "https://issuer.example", "orders-api"
        cases = [
            ("right iss and aud", {"iss": iss, "aud": aud}, 200),
            ("aud array holding ours", {"iss": iss, "aud": ["other", aud]}, 200),
            ("wrong iss", {"iss": "https://evil.example", "aud": aud}, 401),
            ("iss with a trailing slash", {"iss": iss + "/", "aud": aud}, 401),
            ("wrong aud", {"iss": iss, "aud": "other-api"}, 401),
            ("aud array without ours", {"iss": iss, "aud": ["a", "b"]}, 401),
            ("no iss", {"aud": aud}, 401),
            ("no aud", {"iss": iss}, 401),
            ("neither", {}, 401),
        ]
        for name, claims, expect in cases:
            with self.subTest(name):
                r = self.req("GET", "/orders", token=mint(claims=claims))
                self.assertEqual(r.status, expect, (name, r))
                if expect == 401:
                    self.problem(r, 401, "unauthorized")
                    self.assertIn('error="invalid_token"', r.headers["www-authenticate"])
        r = self.req("POST", "/orders", body=README_ORDER,
                     token=mint(claims={"iss": iss, "aud": aud}))
        self.assertEqual(r.status, 201, r)


# -- the race -----------------------------------------------------------------
class Race(ApiCase):
    stack_args = {"workers": 4}
    RACERS = 8
    ROUNDS = 4

    def race(self, order_id, status):
        barrier = threading.Barrier(self.RACERS, timeout=10)
        results = [None] * self.RACERS

        def racer(i):
            conn = self.stack.connection(timeout=15)
            try:
                body = json.dumps({"status": status})
                # Connect before the barrier, so the requests leave together.
                conn.connect()
                barrier.wait()
                conn.request("PATCH", "/orders/" + order_id, body=body,
                             headers={"Content-Type": "application/json",
                                      "Authorization": "Bearer " + RW})
                r = conn.getresponse()
                data = r.read()
                results[i] = (r.status, json.loads(data))
                res = type("R", (), {})()
                res.status, res.headers, res.body = r.status, {
                    k.lower(): v for k, v in r.getheaders()}, data
                res.header_list = r.getheaders()
                res.json = lambda: json.loads(data)
                capture("PATCH", "/orders/" + order_id, res)
            except Exception as e:  # reported below, with the others
                results[i] = ("error", repr(e))
            finally:
                conn.close()

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(self.RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertFalse(any(t.is_alive() for t in threads), "a racer hung")
        return results

    def test_concurrent_updates_one_winner(self):
        for round_ in range(self.ROUNDS):
            order = created(self, self.stack)
            steps = [("paid", "pending")]
            if round_ == 0:  # once, the later steps race too
                steps += [("shipped", "paid"), ("delivered", "shipped")]
            for status, was in steps:
                results = self.race(order["id"], status)
                statuses = sorted(s for s, _ in results)
                self.assertEqual(statuses, [200] + [409] * (self.RACERS - 1),
                                 (round_, status, results))
                for s, doc in results:
                    if s == 409:
                        self.assertEqual(doc["type"], "conflict")
                    else:
                        self.assertEqual(doc["status"], status)
                rows = event_rows(self.stack, order["id"], "order.updated")
                datas = [json.loads(d) for _, d in rows]
                self.assertEqual(sum(1 for d in datas if d["status"] == status), 1,
                                 (round_, status, datas))
                self.assertEqual([d["previousStatus"] for d in datas if d["status"] == status],
                                 [was])
                now = self.req("GET", "/orders/" + order["id"], token=RW).json()
                self.assertEqual(now["status"], status)
            self.assertEqual(len(event_rows(self.stack, order["id"])), 1 + len(steps))


if __name__ == "__main__":
    unittest.main(verbosity=2)
