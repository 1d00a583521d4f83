"""Two hosts on one PostgreSQL (issue 13): two complete stacks (two nginx,
two worker pools, two publishers) started by scripts/run-stack with the same
DATABASE_URL, both publishers delivering to one HTTP sink.

Shows: creates through both hosts listed in creation order; a race on one
order across hosts has exactly one winner; every change is exactly one
event per order, in commit order, at the sink; a database restart under
load loses nothing acknowledged and service returns within seconds.
"""
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import pg  # noqa: E402
from harness import Stack, assert_problem  # noqa: E402
from sink_http import HttpSink  # noqa: E402

JSON = {"Content-Type": "application/json"}


class TwoHosts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg.shared()
        cls.url = cls.pg.create_database()
        cls.sink = HttpSink().start()
        env = {"DATABASE_URL": cls.url, "EVENT_SINK": cls.sink.url}
        cls.hosts = []
        try:
            for _ in range(2):
                cls.hosts.append(Stack(workers=2, env=env))
                cls.hosts[-1].start()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.token = cls.hosts[0].token()

    @classmethod
    def tearDownClass(cls):
        for s in cls.hosts:
            if s.proc is not None:
                s.stop()
        cls.sink.stop()

    # -- helpers ----------------------------------------------------------

    def create(self, host, customer="c"):
        r = host.request("POST", "/orders", body=json.dumps({"customerId": customer, "items": ["i"]}),
                         headers=JSON, token=self.token)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def patch(self, host, oid, status):
        return host.request("PATCH", "/orders/" + oid, body=json.dumps({"status": status}),
                            headers=JSON, token=self.token)

    def events_of(self, oid):
        return [r.event for r in self.sink.delivered() if r.event.get("subject") == oid]

    def wait_out_reconnect_throttle(self):
        """Called once the database accepts again.  A thread whose
        connection attempt failed while it was down or starting tries
        again only PG_RECONNECT_MS (500 ms) after that attempt, and until
        then answers 503 with Retry-After: 1, as designed
        (adapters/store_postgres.c); /readyz answered by one thread says
        nothing of the others.  Every such attempt came before the server
        accepted, so after this every thread connects on its next
        request."""
        time.sleep(0.6)

    def wait_events(self, oid, count, timeout=15):
        self.hosts[0].wait_for(lambda: len(self.events_of(oid)) >= count, timeout=timeout,
                               what="%d events of %s" % (count, oid))
        time.sleep(0.2)  # a duplicate would arrive right behind
        return self.events_of(oid)

    # -- the tests --------------------------------------------------------

    def test_1_creates_through_both_hosts_list_in_order(self):
        a, b = self.hosts
        made = [self.create(a if i % 2 == 0 else b, "list-%d" % i)["id"] for i in range(12)]
        for host in (a, b):
            page = host.request("GET", "/orders?limit=100", token=self.token).json()
            listed = [o["id"] for o in page["items"] if o["id"] in made]
            self.assertEqual(listed, list(reversed(made)))

    def test_2_race_across_hosts_has_one_winner(self):
        a, b = self.hosts
        for round_ in range(3):
            oid = self.create(a, "race-%d" % round_)["id"]
            results, start = [], threading.Event()

            def go(host):
                start.wait()
                results.append(self.patch(host, oid, "paid").status)

            threads = [threading.Thread(target=go, args=(h,)) for h in (a, b, a, b, a, b)]
            for t in threads:
                t.start()
            start.set()
            for t in threads:
                t.join(timeout=30)
            self.assertEqual(sorted(results), [200] + [409] * 5, results)
            events = self.wait_events(oid, 2)
            self.assertEqual([e["type"] for e in events], ["order.created", "order.updated"])
            self.assertEqual(events[1]["data"]["status"], "paid")

    def test_3_every_change_one_event_in_commit_order(self):
        a, b = self.hosts
        flow = ["paid", "shipped", "delivered"]
        orders = [self.create(a if i % 2 else b, "flow-%d" % i)["id"] for i in range(8)]
        for step, status in enumerate(flow):
            for i, oid in enumerate(orders):
                host = self.hosts[(i + step) % 2]
                r = self.patch(host, oid, status)
                self.assertEqual(r.status, 200, r)
        for oid in orders:
            events = self.wait_events(oid, 4)
            self.assertEqual([e["data"]["status"] for e in events],
                             ["pending"] + flow, "order %s: %s" % (oid, events))
            self.assertEqual(len({e["id"] for e in events}), 4)

    def test_4_database_restart_under_load_loses_nothing(self):
        a, b = self.hosts
        acked, errors, stop = [], [], threading.Event()

        def load(host, name):
            n = 0
            while not stop.is_set() and n < 2000:
                n += 1
                try:
                    r = host.request("POST", "/orders", body=json.dumps(
                        {"customerId": "load-%s" % name, "items": ["i"]}), headers=JSON,
                        token=self.token, timeout=10)
                except OSError as e:
                    errors.append(repr(e))
                    continue
                if r.status == 201:
                    acked.append(r.json()["id"])
                else:
                    errors.append(r.status)
                    if r.status == 503:
                        self.assertIn("retry-after", r.headers)
                    time.sleep(0.05)

        threads = [threading.Thread(target=load, args=(h, i)) for i, h in enumerate((a, b, a, b))]
        for t in threads:
            t.start()
        time.sleep(1.0)
        before = len(acked)
        self.pg.restart("fast")
        restarted = time.monotonic()
        # Service back within seconds on both hosts.
        for host in (a, b):
            host.wait_for(lambda: host.request("GET", "/readyz").status == 200, timeout=10,
                          what="ready again")
        count = len(acked)
        host = a
        host.wait_for(lambda: len(acked) > count + 10, timeout=10, what="writes after the restart")
        back_in = time.monotonic() - restarted
        stop.set()
        for t in threads:
            t.join(timeout=30)
        self.assertGreater(before, 0)
        self.assertTrue(all(e in (503,) for e in errors), "unexpected answers: %s" % errors[:10])
        self.assertLess(back_in, 10)
        # Nothing acknowledged lost: every 201 is stored and has its event.
        with a.db() as db:
            stored = {row[0] for row in db.execute(
                "SELECT id FROM orders WHERE customer_id IN ('load-0', 'load-1', 'load-2', 'load-3')"
            ).fetchall()}
        self.assertTrue(set(acked) <= stored, set(acked) - stored)
        a.wait_for(lambda: set(acked) <= {r.event["subject"] for r in self.sink.delivered()},
                   timeout=20, what="an event for every acknowledged create")
        print("\n  restart under load: %d creates acknowledged, %d answered 503, back in %.1f s"
              % (len(acked), len(errors), back_in), file=sys.stderr)


    def test_4b_first_request_per_thread_after_restart(self):
        """Once a restarted database is back, no request is answered 503:
        each serving thread finds its connection closed by the restart
        before it sends anything, and reconnects then.  Twice as many
        sequential requests per host as it has serving threads, creates
        (writes) and reads alternately, all on connections the restart broke
        (pg_ctl returns once the old server is gone and the new one
        accepts)."""
        threads = int(os.environ.get("WORKER_THREADS", "4"))
        self.wait_out_reconnect_throttle()  # after test 4's restart
        for host in self.hosts:  # every thread has a connection before
            for _ in range(host.workers * threads):
                self.assertEqual(host.request("GET", "/orders?limit=1", token=self.token).status, 200)
        self.pg.restart("fast")
        answers = []
        for host in self.hosts:
            made = None
            for i in range(host.workers * threads * 2):
                if i % 2 == 0:
                    r = host.request("POST", "/orders", body=json.dumps(
                        {"customerId": "first-after-restart", "items": ["i"]}), headers=JSON,
                        token=self.token)
                    if r.status == 201:
                        made = r.json()["id"]
                elif made is not None:
                    r = host.request("GET", "/orders/" + made, token=self.token)
                else:
                    r = host.request("GET", "/orders?limit=1", token=self.token)
                answers.append((r.status, r.body[:200] if r.status >= 400 else ""))
        self.assertEqual([a for a in answers if a[0] not in (200, 201)], [], answers)
        # What the server said as it closed the connections is a JSON log
        # line, not libpq's raw "FATAL:  terminating connection" on stderr.
        for host in self.hosts:
            with open(host.stderr_path, "rb") as f:
                raw = [l for l in f if l.startswith((b"FATAL:", b"NOTICE:", b"WARNING:"))]
            self.assertEqual(raw, [])
            said = [l for l in host.worker_log_lines() if l.get("message") == "database message"]
            self.assertIn("57P01", {l.get("sqlstate") for l in said})

    def test_4c_connection_lost_right_after_connecting(self):
        """A connection lost moments after it was made is replaced at once,
        so no 503 while the server accepts connections.  The reconnect
        throttle holds back only an attempt after a failed one: 4b failed
        when the thread answering it had reconnected in the warm-up (its
        connection broken by test 4's restart) less than PG_RECONNECT_MS
        before the restart, and then answered 503 without trying.  Here the
        server ends the connection itself (pg_terminate_backend, waiting
        until it is gone), at once and while it accepts; one serving
        thread, so each request meets the connection the one before made."""
        url = self.pg.create_database() + "&application_name=orders-4c"
        one = Stack(workers=1, env={"DATABASE_URL": url, "WORKER_THREADS": "1"})
        self.addCleanup(one.stop)
        one.start()
        session = pg.Session(self.pg.url("orders"))
        self.addCleanup(session.close)
        terminate = ("SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
                     " WHERE application_name = 'orders-4c' AND backend_type = 'client backend'")
        answers = []  # (status, ms since the connection was ended)
        for _ in range(4):
            # The worker's connection (made at its start, then by the
            # request before), and the publisher's when it has one.
            self.assertGreaterEqual(int(session.run(terminate)[0]), 1, answers)
            ended = time.monotonic()
            r = one.request("POST", "/orders", body=json.dumps({"customerId": "4c", "items": ["i"]}),
                            headers=JSON, token=self.token)
            answers.append((r.status, round((time.monotonic() - ended) * 1000)))
            self.assertEqual(r.status, 201, answers)
        lost = [l for l in one.worker_log_lines()
                if l.get("service") == "orders" and l.get("message") == "database message"]
        self.assertGreaterEqual(len(lost), 4, "each request found its connection ended")

    def test_5_database_down_then_back(self):
        """Unreachable database: 503 problems with Retry-After and /readyz
        503 on both hosts, no process restarted (no crash loop), and service
        back by itself once the database returns.  A stack started while the
        database is down serves 503 too, and migrates when it comes back."""
        a, b = self.hosts
        known = self.create(a, "down")["id"]
        pids = {id(h): set(h.process_ids()) for h in (a, b)}
        late_url = self.pg.create_database()  # an empty schema, not migrated
        self.pg.stop_server()
        late = None
        try:
            for host in (a, b):
                r = host.request("GET", "/readyz")
                assert_problem(self, r, 503, "service_unavailable")
                self.assertIn("retry-after", r.headers)
                r = host.request("POST", "/orders", body=json.dumps({"customerId": "c", "items": ["i"]}),
                                 headers=JSON, token=self.token)
                assert_problem(self, r, 503, "service_unavailable")
                self.assertEqual(r.headers.get("retry-after"), "1")
                r = host.request("GET", "/orders/" + known, token=self.token)
                assert_problem(self, r, 503, "service_unavailable")
            # A third host started now: it cannot migrate, but it serves.
            late = Stack(workers=1, env={"DATABASE_URL": late_url, "EVENT_SINK": self.sink.url},
                         start_timeout=60)
            # Stopped (and checked) whatever the outcome: a failed assertion
            # below must not leave the third stack running.
            self.addCleanup(late.stop)
            starting = threading.Thread(target=late.start)
            starting.start()

            def late_readyz():
                try:
                    return getattr(late, "port", None) and late.request("GET", "/readyz").status
                except OSError:
                    return None
            a.wait_for(lambda: late_readyz() == 503, timeout=20, what="the late stack answering 503")
            self.assertIsNone(late.proc.poll(), "a stack must not exit while the database is down")
            time.sleep(1.0)
            for host in (a, b):
                self.assertEqual(set(host.process_ids()), pids[id(host)], "processes restarted")
        finally:
            self.pg.start_server()
            if late is not None:
                starting.join(timeout=70)
        for host in (a, b) + ((late,) if late is not None else ()):
            host.wait_for(lambda: host.request("GET", "/readyz").status == 200, timeout=10,
                          what="ready again")
        self.wait_out_reconnect_throttle()
        r = self.create(b, "after")
        self.assertEqual(self.hosts[0].request("GET", "/orders/" + r["id"], token=self.token).status, 200)
        if late is not None:
            self.assertEqual(late.request("POST", "/orders", body=json.dumps(
                {"customerId": "late", "items": ["i"]}), headers=JSON, token=self.token).status, 201)


if __name__ == "__main__":
    unittest.main(verbosity=2)
