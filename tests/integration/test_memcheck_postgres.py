"""The worker and the publisher on PostgreSQL under valgrind's memcheck
(meson test valgrind-postgres, which sets ORDERS_FCGI_WRAPPER and
ORDERS_PUBLISHER_WRAPPER): a handful of requests through every path of the
PostgreSQL adapter a request takes, and the publisher draining their
events; the harness fails the test on any error or definite leak in the
processes' valgrind logs when the stack stops.  Lean on purpose: one
worker of two threads, a dozen requests."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import pg  # noqa: E402
from harness import Stack, assert_problem  # noqa: E402

JSON = {"Content-Type": "application/json"}


class MemcheckPostgres(unittest.TestCase):
    def test_requests_and_publisher_on_postgres(self):
        for var in ("ORDERS_FCGI_WRAPPER", "ORDERS_PUBLISHER_WRAPPER"):
            self.assertIn("valgrind", os.environ.get(var, ""), "run by meson test valgrind-postgres")
        url = pg.shared().create_database()
        with Stack(workers=1, env={"DATABASE_URL": url, "WORKER_THREADS": "2"}) as s:
            tok = s.token()
            body = json.dumps({"customerId": "memcheck", "items": ["i"]})
            r = s.request("POST", "/orders", body=body, headers=JSON, token=tok)
            self.assertEqual(r.status, 201, r)
            oid = r.json()["id"]
            keyed = dict(JSON, **{"Idempotency-Key": "memcheck-1"})
            first = s.request("POST", "/orders", body=body, headers=keyed, token=tok)
            self.assertEqual(first.status, 201, first)
            again = s.request("POST", "/orders", body=body, headers=keyed, token=tok)
            self.assertEqual(again.json()["id"], first.json()["id"])
            self.assertEqual(s.request("GET", "/orders/" + oid, token=tok).status, 200)
            r = s.request("PATCH", "/orders/" + oid, body=json.dumps({"status": "paid"}),
                          headers=JSON, token=tok)
            self.assertEqual(r.status, 200, r)
            r = s.request("PATCH", "/orders/" + oid, body=json.dumps({"status": "pending"}),
                          headers=JSON, token=tok)
            self.assertEqual(r.status, 409, r)
            page = s.request("GET", "/orders?limit=2&customerId=memcheck", token=tok)
            self.assertEqual(page.status, 200, page)
            self.assertEqual(len(page.json()["items"]), 2)
            self.assertEqual(s.request("GET", "/orders?status=paid", token=tok).status, 200)
            r = s.request("GET", "/orders/00000000-0000-7000-8000-000000000000", token=tok)
            assert_problem(self, r, 404, "not_found")
            self.assertEqual(s.request("GET", "/readyz").status, 200)
            self.assertEqual(s.request("GET", "/metrics").status, 200)
            # created, created (keyed), updated: drained by the publisher
            s.wait_for(lambda: len(s.events()) >= 3, timeout=60, what="the publisher draining")
            # A database restart: every connection is lost and made again
            # (the worker's before its next request, the publisher's on its
            # own), without a leak.
            pg.shared().restart("fast")
            self.assertEqual(s.request("GET", "/orders/" + oid, token=tok).status, 200)
            r = s.request("POST", "/orders", body=body, headers=JSON, token=tok)
            self.assertEqual(r.status, 201, r)
            s.wait_for(lambda: len(s.events()) >= 4, timeout=60, what="the publisher back")
            self.assertEqual(sorted(e["type"] for e in s.events()),
                             ["order.created"] * 3 + ["order.updated"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
