"""The contract's "Version 2" through the real stack (nginx -> FastCGI ->
workers -> SQLite): idempotent creates, conditional requests, cursor pages
and filters.  Every response is checked against openapi.json at the end, as
test_api.py does (its capture and tearDownModule are reused).

    ORDERS_BUILD_DIR=build python3 tests/integration/test_api_v2.py
"""
import json
import os
import threading
import time
import unittest
import urllib.parse

from harness import Stack, assert_problem
from test_api import RW, call, mint, tearDownModule  # noqa: F401 (unittest calls it)

ORDER = {"customerId": "customer-v2", "items": ["item-1", "item-2"]}


class V2Case(unittest.TestCase):
    stack = None
    stack_env = {}

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(workers=2, env=cls.stack_env)
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def req(self, method, path, **kw):
        kw.setdefault("token", RW)
        return call(self.stack, method, path, **kw)

    def create(self, body=None, key=None, token=RW, headers=None):
        h = dict(headers or {})
        if key is not None:
            h["Idempotency-Key"] = key
        return self.req("POST", "/orders", body=body or ORDER, headers=h, token=token)

    def problem(self, res, status, type_):
        return assert_problem(self, res, status, type_)

    def orders_of(self, customer):
        with self.stack.db() as db:
            return [r[0] for r in db.execute("SELECT id FROM orders WHERE customer_id = ?", (customer,))]

    def created_events(self, order_id, want, timeout=10):
        """Waits until the publisher delivered want order.created events for
        the order, then checks no more come within a short grace."""
        def count():
            return sum(1 for e in self.stack.events()
                       if e["type"] == "order.created" and e["subject"] == order_id)
        self.stack.wait_for(lambda: count() >= want, timeout=timeout, what="the events")
        return count()


# -- Idempotency-Key -----------------------------------------------------------
class Idempotency(V2Case):
    def test_replay_returns_the_first_answer_and_creates_nothing(self):
        body = {"customerId": "idem-replay", "items": ["a"]}
        first = self.create(body, key="replay-1")
        self.assertEqual(first.status, 201, first)
        self.assertNotIn("idempotent-replayed", first.headers)
        for _ in range(3):
            again = self.create(body, key="replay-1")
            self.assertEqual(again.status, 201)
            self.assertEqual(again.headers["location"], first.headers["location"])
            self.assertEqual(again.headers["etag"], first.headers["etag"])
            self.assertEqual(again.body, first.body)
            self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        # The same order in another spelling is the same request.
        spelled = json.dumps({"items": ["a"], "customerId": "idem-replay"}, indent=2)
        again = self.create(spelled, key="replay-1",
                            headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual((again.status, again.body), (201, first.body))
        # The quoted form names the same key.
        again = self.create(body, key='"replay-1"')
        self.assertEqual((again.status, again.headers.get("idempotent-replayed")), (201, "true"))
        oid = first.json()["id"]
        self.assertEqual(self.orders_of("idem-replay"), [oid])
        self.assertEqual(self.created_events(oid, 1), 1)
        # Still the first answer after the order changed.
        self.assertEqual(self.req("PATCH", "/orders/" + oid, body={"status": "paid"}).status, 200)
        again = self.create(body, key="replay-1")
        self.assertEqual((again.status, again.body), (201, first.body))
        self.assertEqual(again.json()["status"], "pending")

    def test_another_body_under_the_same_key_is_422(self):
        first = self.create({"customerId": "idem-422", "items": ["a"]}, key="k-422")
        self.assertEqual(first.status, 201)
        for other in ({"customerId": "idem-422", "items": ["b"]},
                      {"customerId": "idem-422-x", "items": ["a"]},
                      {"customerId": "idem-422", "items": ["a", "a"]}):
            self.problem(self.create(other, key="k-422"), 422, "idempotency_key_reused")
        self.assertEqual(len(self.orders_of("idem-422")), 1)
        self.assertEqual(self.orders_of("idem-422-x"), [])

    def test_keys_belong_to_their_caller(self):
        alice = mint({"sub": "alice"})
        bob = mint({"sub": "bob"})
        body = {"customerId": "idem-callers", "items": ["a"]}
        a = self.create(body, key="shared-key", token=alice)
        b = self.create(body, key="shared-key", token=bob)
        self.assertEqual((a.status, b.status), (201, 201))
        self.assertNotEqual(a.headers["location"], b.headers["location"])
        self.assertNotIn("idempotent-replayed", b.headers)
        # Bob's other body under the key is no business of Alice's.
        self.assertEqual(self.create({"customerId": "idem-callers", "items": ["z"]},
                                     key="shared-key2", token=bob).status, 201)
        self.assertEqual(self.create(body, key="shared-key2", token=alice).status, 201)
        self.assertEqual(len(self.orders_of("idem-callers")), 4)

    def test_a_failed_request_is_not_remembered(self):
        bad = self.create({"customerId": "", "items": []}, key="retry-me")
        self.problem(bad, 400, "validation_error")
        no_json = self.req("POST", "/orders", body="{}", token=RW,
                           headers={"Content-Type": "text/plain", "Idempotency-Key": "retry-me"})
        self.problem(no_json, 415, "unsupported_media_type")
        ok = self.create({"customerId": "idem-retry", "items": ["a"]}, key="retry-me")
        self.assertEqual(ok.status, 201)
        self.assertNotIn("idempotent-replayed", ok.headers)
        again = self.create({"customerId": "idem-retry", "items": ["a"]}, key="retry-me")
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")

    def test_malformed_keys_are_400_after_authentication(self):
        for key in ["", "a b", "x" * 256, "caf\u00e9".encode("utf-8").decode("latin-1"), '"a b"', '""',
                    '"a"b"', '"' + "x" * 256 + '"']:
            res = self.create({"customerId": "idem-bad", "items": ["a"]}, key=key)
            doc = self.problem(res, 400, "validation_error")
            self.assertIn("Idempotency-Key", doc["detail"])
        self.assertEqual(self.create({"customerId": "idem-bad", "items": ["a"]}, key="x" * 255).status, 201)
        res = self.req("POST", "/orders", body={"customerId": "idem-bad", "items": ["a"]},
                       header_list=[("Idempotency-Key", "one"), ("Idempotency-Key", "two")])
        self.problem(res, 400, "validation_error")
        # Authentication first: no token with a bad key is 401.
        res = self.req("POST", "/orders", body=ORDER, token=None, headers={"Idempotency-Key": ""})
        self.problem(res, 401, "unauthorized")
        self.assertEqual(len(self.orders_of("idem-bad")), 1)

    def test_concurrent_duplicates_make_one_order_and_one_event(self):
        body = {"customerId": "idem-race", "items": ["a", "b"]}
        start = threading.Barrier(16)
        results = []
        lock = threading.Lock()

        def post():
            start.wait(10)
            r = self.create(body, key="race-key")
            with lock:
                results.append(r)
        threads = [threading.Thread(target=post) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 16)
        ok = [r for r in results if r.status == 201]
        for r in results:
            if r.status != 201:
                self.problem(r, 409, "idempotency_key_in_progress")
        self.assertTrue(ok)
        self.assertEqual(len({r.headers["location"] for r in ok}), 1)
        self.assertEqual(len({r.body for r in ok}), 1)
        self.assertEqual(sum(1 for r in ok if "idempotent-replayed" not in r.headers), 1)
        ids = self.orders_of("idem-race")
        self.assertEqual(len(ids), 1)
        self.assertEqual(self.created_events(ids[0], 1), 1)
        time.sleep(0.5)
        self.assertEqual(self.created_events(ids[0], 1), 1)


class IdempotencyExpiry(V2Case):
    # 0.0005 h = 1.8 s
    stack_env = {"IDEMPOTENCY_TTL_HOURS": "0.0005"}

    def test_a_key_is_forgotten_after_its_ttl(self):
        body = {"customerId": "idem-ttl", "items": ["a"]}
        first = self.create(body, key="ttl-key")
        again = self.create(body, key="ttl-key")
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        time.sleep(2.2)
        later = self.create(body, key="ttl-key")
        self.assertEqual(later.status, 201)
        self.assertNotIn("idempotent-replayed", later.headers)
        self.assertNotEqual(later.headers["location"], first.headers["location"])
        self.assertEqual(len(self.orders_of("idem-ttl")), 2)
        # Expired keys are pruned as new keyed creates come in.
        time.sleep(2.2)
        self.create({"customerId": "idem-ttl", "items": ["b"]}, key="ttl-other")
        with self.stack.db() as db:
            keys = [r[0] for r in db.execute("SELECT key FROM idempotency_keys")]
        self.assertEqual(keys, ["ttl-other"])


# -- ETag, If-None-Match, If-Match ---------------------------------------------
class Conditional(V2Case):
    def new_order(self):
        r = self.create({"customerId": "cond", "items": ["a"]})
        self.assertEqual(r.status, 201)
        return r.json()["id"], r.headers["etag"]

    def test_etag_follows_the_version(self):
        oid, tag = self.new_order()
        self.assertEqual(tag, '"v1"')
        got = self.req("GET", "/orders/" + oid)
        self.assertEqual(got.headers["etag"], tag)
        patched = self.req("PATCH", "/orders/" + oid, body={"status": "paid"})
        self.assertEqual(patched.headers["etag"], '"v2"')
        self.assertEqual(self.req("GET", "/orders/" + oid).headers["etag"], '"v2"')
        # A refused change changes nothing, the tag included.
        self.problem(self.req("PATCH", "/orders/" + oid, body={"status": "paid"}), 409, "conflict")
        self.assertEqual(self.req("GET", "/orders/" + oid).headers["etag"], '"v2"')

    def test_if_none_match_gives_304(self):
        oid, tag = self.new_order()
        for value in [tag, "*", 'W/"v1"', '"zzz", "v1"']:
            r = self.req("GET", "/orders/" + oid, headers={"If-None-Match": value})
            self.assertEqual(r.status, 304, value)
            self.assertEqual(r.body, b"")
            self.assertEqual(r.headers["etag"], tag)
        r = self.req("GET", "/orders/" + oid, headers={"If-None-Match": '"v9"'})
        self.assertEqual((r.status, r.headers["etag"]), (200, tag))
        self.problem(self.req("GET", "/orders/" + oid, headers={"If-None-Match": "v1"}),
                     400, "validation_error")
        # Not found stays 404; no token stays 401.
        self.problem(self.req("GET", "/orders/019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60",
                              headers={"If-None-Match": "*"}), 404, "not_found")
        self.problem(self.req("GET", "/orders/" + oid, token=None, headers={"If-None-Match": tag}),
                     401, "unauthorized")

    def test_if_match(self):
        oid, tag = self.new_order()
        # Stale, weak, or another order's tag: 412, and nothing changes.
        for value in ['"v2"', 'W/"v1"', '"v0", "v3"']:
            r = self.req("PATCH", "/orders/" + oid, body={"status": "paid"},
                         headers={"If-Match": value})
            self.problem(r, 412, "precondition_failed")
        got = self.req("GET", "/orders/" + oid)
        self.assertEqual((got.json()["status"], got.headers["etag"]), ("pending", '"v1"'))
        with self.stack.db() as db:
            n = db.execute("SELECT count(*) FROM events WHERE subject = ?", (oid,)).fetchone()[0]
        self.assertEqual(n, 1)
        # A list naming it, or *: the change is made.
        r = self.req("PATCH", "/orders/" + oid, body={"status": "paid"},
                     headers={"If-Match": '"v7", ' + tag})
        self.assertEqual((r.status, r.headers["etag"]), (200, '"v2"'))
        r = self.req("PATCH", "/orders/" + oid, body={"status": "shipped"}, headers={"If-Match": "*"})
        self.assertEqual((r.status, r.headers["etag"]), (200, '"v3"'))
        # Two If-Match headers: nginx refuses the request (400) rather than
        # pick one; nothing changes.
        r = self.req("PATCH", "/orders/" + oid, body={"status": "delivered"},
                     header_list=[("If-Match", '"v1"'), ("If-Match", '"v3"')])
        self.problem(r, 400, "bad_request")
        self.assertEqual(self.req("GET", "/orders/" + oid).headers["etag"], '"v3"')
        r = self.req("PATCH", "/orders/" + oid, body={"status": "delivered"},
                     headers={"If-Match": '"v3"'})
        self.assertEqual((r.status, r.headers["etag"]), (200, '"v4"'))
        # A matching precondition does not bypass the status rule.
        self.problem(self.req("PATCH", "/orders/" + oid, body={"status": "paid"},
                              headers={"If-Match": '"v4"'}), 409, "conflict")
        # Malformed: 400; unknown order: 404; no token: 401.
        self.problem(self.req("PATCH", "/orders/" + oid, body={"status": "paid"},
                              headers={"If-Match": "v4"}), 400, "validation_error")
        self.problem(self.req("PATCH", "/orders/019378a2-8a1e-7c3d-9a5e-1b2c3d4e5f60",
                              body={"status": "paid"}, headers={"If-Match": "*"}), 404, "not_found")
        self.problem(self.req("PATCH", "/orders/" + oid, body={"status": "paid"}, token=None,
                              headers={"If-Match": "*"}), 401, "unauthorized")

    def test_racing_writers_with_the_same_tag(self):
        """Of two writers holding the same ETag, exactly one wins."""
        oid, tag = self.new_order()
        start = threading.Barrier(8)
        statuses = []
        lock = threading.Lock()

        def patch():
            start.wait(10)
            r = self.req("PATCH", "/orders/" + oid, body={"status": "paid"}, headers={"If-Match": tag})
            with lock:
                statuses.append(r.status)
        threads = [threading.Thread(target=patch) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(statuses), [200] + [412] * 7)


# -- pages ------------------------------------------------------------------------
class Pages(V2Case):
    stack_env = {"DB_SYNCHRONOUS": "normal"}

    def page(self, query, status=200):
        r = self.req("GET", "/orders" + query)
        self.assertEqual(r.status, status, r)
        return r.json()

    def fill(self, n, customer, threads=4):
        ids = []
        lock = threading.Lock()

        def work(count):
            for _ in range(count):
                r = self.create({"customerId": customer, "items": ["x"]})
                assert r.status == 201, r
                with lock:
                    ids.append(r.json()["id"])
        ts = [threading.Thread(target=work, args=(n // threads + (i < n % threads),)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(len(ids), n)
        return ids

    def walk(self, first, limit=1000):
        seen = []
        page = self.page(first)
        for _ in range(limit):
            seen += [o["id"] for o in page["items"]]
            if page["next"] is None:
                return seen
            page = self.page(page["next"][len("/orders"):])
        raise AssertionError("walk did not end")

    def test_walk_next_over_1000_orders_while_others_are_created(self):
        before = set(self.fill(1000, "walk"))
        stop = threading.Event()
        made = []

        def creator():
            while not stop.is_set() and len(made) < 2000:
                r = self.create({"customerId": "walk", "items": ["new"]})
                if r.status == 201:
                    made.append(r.json()["id"])
        t = threading.Thread(target=creator)
        t.start()
        try:
            seen = self.walk("?limit=37&customerId=walk")
        finally:
            stop.set()
            t.join(30)
        self.assertGreater(len(made), 0, "no order was created during the walk")
        self.assertEqual(len(seen), len(set(seen)), "an order was visited twice")
        self.assertEqual(before - set(seen), set(), "an order that existed was skipped")
        # Newest first, in creation order: the walk ends at the oldest.
        page_all = self.walk("?limit=100&customerId=walk")
        self.assertEqual(len(page_all), 1000 + len(made))
        self.assertEqual(seen, [i for i in page_all if i in set(seen)])

    def test_next_on_every_page_and_filters_kept(self):
        ids = self.fill(7, "filters-1", threads=1)
        for oid in ids[:3]:
            self.assertEqual(self.req("PATCH", "/orders/" + oid, body={"status": "paid"}).status, 200)
        p = self.page("?customerId=filters-1&limit=5")
        self.assertEqual((p["total"], p["limit"], p["offset"], len(p["items"])), (7, 5, 0, 5))
        self.assertEqual([o["id"] for o in p["items"]], ids[::-1][:5])
        self.assertTrue(p["next"].startswith("/orders?limit=5&cursor="), p["next"])
        self.assertTrue(p["next"].endswith("&customerId=filters-1"), p["next"])
        q = self.page(p["next"][len("/orders"):])
        self.assertEqual([o["id"] for o in q["items"]], ids[::-1][5:])
        self.assertEqual((q["total"], q["next"]), (7, None))
        self.assertNotIn("offset", q)
        # status and customerId together, on both kinds of page
        p = self.page("?customerId=filters-1&status=paid&limit=2")
        self.assertEqual(p["total"], 3)
        self.assertEqual([o["id"] for o in p["items"]], ids[:3][::-1][:2])
        self.assertIn("&status=paid&customerId=filters-1", p["next"])
        q = self.page(p["next"][len("/orders"):])
        self.assertEqual([o["id"] for o in q["items"]], [ids[0]])
        self.assertIsNone(q["next"])
        p = self.page("?customerId=filters-1&status=pending&offset=2")
        self.assertEqual((p["total"], [o["id"] for o in p["items"]]), (4, ids[3:][::-1][2:]))
        self.assertIsNone(p["next"])
        # An offset page's next is a cursor link to what follows it.
        p = self.page("?customerId=filters-1&offset=1&limit=2")
        q = self.page(p["next"][len("/orders"):])
        self.assertEqual([o["id"] for o in q["items"]], ids[::-1][3:5])
        # A customerId that needs encoding survives the round trip.
        odd = "c+1 &=%/\u00e9"
        self.assertEqual(self.create({"customerId": odd, "items": ["a"]}).status, 201)
        self.assertEqual(self.create({"customerId": odd, "items": ["b"]}).status, 201)
        p = self.page("?limit=1&customerId=" + urllib.parse.quote(odd, safe=""))
        self.assertEqual((p["total"], p["items"][0]["customerId"]), (2, odd))
        q = self.page(p["next"][len("/orders"):])
        self.assertEqual((len(q["items"]), q["items"][0]["items"], q["next"]), (1, ["a"], None))
        # No match: an empty page.
        p = self.page("?customerId=nobody-at-all&status=delivered")
        self.assertEqual((p["items"], p["total"], p["next"]), ([], 0, None))

    def test_bad_values_are_400(self):
        for query in ["?status=lost", "?status=PAID", "?status=", "?customerId=",
                      "?customerId=" + "x" * 129, "?customerId=%20", "?status=paid&status=paid",
                      "?cursor=", "?cursor=abc", "?offset=0&cursor=x"]:
            doc = self.problem(self.req("GET", "/orders" + query), 400, "validation_error")
            self.assertTrue(doc["detail"], query)

    def test_a_cursor_with_one_byte_changed_is_400(self):
        self.fill(3, "tamper", threads=1)
        nxt = self.page("?limit=1&customerId=tamper")["next"]
        cursor = urllib.parse.parse_qs(urllib.parse.urlsplit(nxt).query)["cursor"][0]
        self.assertEqual(self.req("GET", nxt).status, 200)
        for i in range(len(cursor)):
            c = "A" if cursor[i] != "A" else "B"
            bad = cursor[:i] + c + cursor[i + 1:]
            doc = self.problem(self.req("GET", "/orders?limit=1&cursor=" + bad), 400, "validation_error")
            self.assertIn("cursor", doc["detail"])
        doc = self.problem(self.req("GET", nxt + "&offset=0"), 400, "validation_error")
        self.assertIn("cursor and offset", doc["detail"])

    def test_deep_offsets(self):
        total = self.page("?limit=1")["total"]
        # At or past total: an empty page, however deep.
        for offset in (total, total + 1, 10 ** 9):
            p = self.page("?offset=%d" % offset)
            self.assertEqual((p["items"], p["next"], p["offset"]), ([], None, offset))
        # Past the bound with orders there: 400 pointing to cursor.  The rows
        # are put in directly: 10,002 creates through the API would take
        # long, and this is about the read.
        with self.stack.db() as db:
            seq = db.execute("SELECT coalesce(max(seq), 0) FROM orders").fetchone()[0]
            db.executemany(
                "INSERT INTO orders (seq, id, customer_id, items, status, created_at, updated_at)"
                " VALUES (?, ?, 'deep', '[\"x\"]', 'pending', 0, 0)",
                [(seq + 1 + i, "00000000-0000-7000-8000-%012d" % i) for i in range(10002)])
        total = self.page("?limit=1")["total"]
        self.assertGreater(total, 10002)
        p = self.page("?offset=10000&limit=2")
        self.assertEqual(len(p["items"]), 2)
        doc = self.problem(self.req("GET", "/orders?offset=10001"), 400, "validation_error")
        self.assertIn("cursor", doc["detail"])
        p = self.page("?offset=%d" % total)
        self.assertEqual(p["items"], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
