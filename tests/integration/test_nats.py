#!/usr/bin/env python3
"""NATS JetStream transport (EVENT_SINK=nats://...) against a real
nats-server -js started in a temporary directory for this module, read back
with the README's own consumer code (examples/read-events-nats.py: the NATS
protocol over a socket, a JetStream pull consumer).

- Through the whole stack: every API change is exactly one message in the
  stream, in commit order, a valid CloudEvent (structured and binary modes),
  with Nats-Msg-Id = the event id.
- Faults: the server stopped for seconds under a stream of creates, then
  started (nothing lost, order kept); the publisher killed between publish
  and acknowledgement (the batch comes again with the same ids and the
  stream keeps one copy); no stream for the subject (retried and logged, not
  lost, until one exists); wrong credentials (retried, never logged).
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from brokers import HoldingProxy, NatsBroker, NatsStream  # noqa: E402
from harness import ROOT, Stack  # noqa: E402
import test_events  # noqa: E402  (the module: its test case must not run here)
from test_amqp import make_changes  # noqa: E402
from test_publisher import PublisherTestCase, connect, create_db, insert_events, rows, wait_for  # noqa: E402

BROKER = None


def setUpModule():
    global BROKER
    BROKER = NatsBroker().start()


def tearDownModule():
    if BROKER is not None:
        BROKER.close()


class NatsThroughTheStack(unittest.TestCase):
    def run_mode(self, mode):
        stream = NatsStream(BROKER, "E2E_" + mode.upper())
        sink = BROKER.url("subject=orders.e2e.%s&stream=%s&mode=%s" % (mode, stream.name, mode))
        with Stack(workers=2, env={"EVENT_SINK": sink}) as s:
            expected = make_changes(s)
            got = stream.wait_for(len(expected), 20)
            time.sleep(0.3)  # a duplicate or a stray would show now
            got = stream.messages()
            # The publisher's metrics count them for this transport.
            line = 'orders_publisher_sink_deliveries_total{sink="%s"} %d' % ("nats", len(expected))
            s.wait_for(lambda: line in s.request("GET", "/metrics").body.decode(), timeout=10,
                       what="the per-transport counter")
        self.assertEqual(len(got), len(expected), "exactly one message per change")
        events = []
        for (headers, event), (type_, order, previous) in zip(got, expected):
            events.append(event)
            self.assertEqual(headers["Nats-Msg-Id"], event["id"])
            self.assertEqual(headers["content-type"],
                             "application/json" if mode == "binary" else "application/cloudevents+json")
            self.assertEqual((event["specversion"], event["type"], event["source"], event["subject"]),
                             ("1.0", type_, "/orders", order["id"]))
            self.assertEqual(event["datacontenttype"], "application/json")
            data = dict(event["data"])
            self.assertEqual(data.pop("previousStatus", None), previous)
            self.assertEqual(data, order)
        self.assertEqual(len({e["id"] for e in events}), len(events), "distinct ids")
        status, output = test_events.validate_with_asyncapi(events)
        self.assertEqual(status, 0, output)

    def test_structured_mode(self):
        self.run_mode("structured")

    def test_binary_mode(self):
        self.run_mode("binary")

    def test_server_stopped_under_creates(self):
        stream = NatsStream(BROKER, "OUTAGE")
        created, errors, stop = [], [], threading.Event()
        env = {"EVENT_SINK": BROKER.url("subject=orders.outage&stream=OUTAGE"),
               "PUBLISHER_BACKOFF_CAP_MS": "500"}
        with Stack(workers=2, env=env) as s:
            tok = s.token()

            def creates():
                for i in range(10000):
                    if stop.is_set():
                        return
                    r = s.request("POST", "/orders", token=tok, body={"customerId": "o-%d" % i, "items": ["x"]})
                    if r.status != 201:
                        errors.append(r)
                        return
                    created.append(r.json()["id"])
                    time.sleep(0.02)

            t = threading.Thread(target=creates)
            t.start()
            try:
                s.wait_for(lambda: len(created) >= 10, timeout=10, what="creates before the outage")
                BROKER.stop()
                down_at = len(created)
                time.sleep(3)
                BROKER.start()
                s.wait_for(lambda: len(created) >= down_at + 20, timeout=30, what="creates after the outage")
            finally:
                stop.set()
                t.join(timeout=30)
            self.assertEqual(errors, [])
            got = stream.wait_for(len(created), 30)
            with open(s.stderr_path, encoding="utf-8", errors="replace") as f:
                logs = f.read()
        self.assertEqual([event["subject"] for headers, event in got], created,
                         "nothing lost, commit order kept, no duplicate kept")
        self.assertIn("delivery failed; will retry", logs)


class NatsFaults(PublisherTestCase):
    def env(self, sink, **extra):
        # A broker batch's budget covers connecting too: room for valgrind.
        extra.setdefault("PUBLISHER_HTTP_TIMEOUT_MS", 5000)
        extra.setdefault("PUBLISHER_LEASE_MS", 6000)
        return super().env(sink, **extra)

    def test_sigkill_between_publish_and_ack_is_deduplicated(self):
        create_db(self.db)
        stream = NatsStream(BROKER, "KILL")
        proxy = HoldingProxy(BROKER.port)
        self.addCleanup(proxy.close)
        query = "subject=orders.kill&stream=KILL"
        first = insert_events(self.db, 2)
        p = self.start(BROKER.url(query, port=proxy.port), PUBLISHER_HTTP_TIMEOUT_MS=8000,
                       PUBLISHER_LEASE_MS=10000)
        wait_for(lambda: self.undelivered() == 0, 15, "the first events", log=p.stderr)
        # The stream stores what the publisher sends now, but its
        # acknowledgements are held back: the publisher dies waiting.
        proxy.hold_replies()
        batch = insert_events(self.db, 20, per_transaction=20)
        stream.wait_for(22, 10)
        p.kill()
        self.assertEqual(self.undelivered(), 20, "nothing acknowledged, nothing recorded")
        db = connect(self.db)
        db.execute("DELETE FROM publisher_lease")  # its holder is dead; skip the wait
        db.commit()
        db.close()
        # The restarted publisher sends the 20 again, with the same ids ...
        p2 = self.start(BROKER.url(query))
        wait_for(lambda: self.undelivered() == 0, 20, "redelivery", log=p2.stderr)
        # ... and the stream acknowledged them as duplicates, keeping one copy.
        got = stream.messages()
        self.assertEqual([h["Nats-Msg-Id"] for h, e in got], first + batch, "one copy each, in order")
        self.assertEqual(stream.info()["state"]["last_seq"], 22, "the duplicates were dropped, not stored")
        p2.signal(signal.SIGTERM)
        self.assertEqual(p2.wait(), 0)

    def test_missing_stream_is_retried_and_logged(self):
        create_db(self.db)
        ids = insert_events(self.db, 3)
        p = self.start(BROKER.url("subject=orders.unclaimed"))
        wait_for(lambda: "no JetStream stream captures subject orders.unclaimed" in p.stderr(), 15,
                 "the missing stream in the log")
        self.assertEqual(self.undelivered(), 3)
        self.assertEqual(rows(self.db, "SELECT count(*) FROM events WHERE parked_at IS NOT NULL")[0][0], 0)
        stream = NatsStream(BROKER, "LATE")
        stream.create("orders.unclaimed")
        got = stream.wait_for(3, 20)
        self.assertEqual([h["Nats-Msg-Id"] for h, e in got], ids)
        wait_for(lambda: self.undelivered() == 0, 10, "deliveries recorded")

    def test_wrong_credentials_are_retried_and_never_logged(self):
        with NatsBroker(user="orders", password="right-horse-battery") as guarded:
            create_db(self.db)
            insert_events(self.db, 1)
            p, code = self.run_once(guarded.url("stream=GUARDED", userinfo="orders:wrong-staple-9"))
            self.assertEqual(code, 1)
            self.assertIn("delivery failed", p.stderr())
            self.assertNotIn("wrong-staple-9", p.stderr())
            self.assertNotIn("wrong-staple-9", rows(self.db, "SELECT last_error FROM events")[0][0])
            p, code = self.run_once(guarded.url("stream=GUARDED", userinfo="orders:right-horse-battery"))
            self.assertEqual(code, 0, p.stderr())
            self.assertNotIn("right-horse-battery", p.stderr())
            self.assertEqual(self.undelivered(), 0)

    def test_tls_verifies_the_server(self):
        """tls://: delivered when the server's certificate chains to cacert and
        names the host; refused (retried, never delivered) otherwise."""
        with NatsBroker(tls=True) as secure:
            create_db(self.db)
            insert_events(self.db, 2)
            # The system's CA bundle does not know the test's CA.
            p, code = self.run_once("tls://localhost:%d?stream=TLS" % secure.port)
            self.assertEqual(code, 1, p.stderr())
            self.assertEqual(self.undelivered(), 2)
            # The right CA, but a name the certificate does not carry.
            p, code = self.run_once("tls://127.0.0.1:%d?stream=TLS&cacert=%s" % (secure.port, secure.ca))
            self.assertEqual(code, 1, p.stderr())
            self.assertEqual(self.undelivered(), 2)
            self.assertRegex(p.stderr(), r"(?i)certificate|verif|handshake|SSL|TLS", "a TLS refusal")
            p, code = self.run_once("tls://localhost:%d?stream=TLS&cacert=%s" % (secure.port, secure.ca))
            self.assertEqual(code, 0, p.stderr())
            self.assertEqual(self.undelivered(), 0)

    def test_readme_consumer_example(self):
        """examples/read-events-nats.py, run as the README shows it."""
        create_db(self.db)
        ids = insert_events(self.db, 3)
        p, code = self.run_once(BROKER.url("subject=orders.readme&stream=README"))
        self.assertEqual(code, 0, p.stderr())
        out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "read-events-nats.py"),
                              BROKER.url(), "README", "billing", "3"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual([line.split(" ", 2)[1] for line in lines], ids)
        for line, eid in zip(lines, ids):
            subject, msg_id, event = line.split(" ", 2)
            self.assertEqual(subject, "orders.readme")
            self.assertEqual(json.loads(event)["id"], eid)


if __name__ == "__main__":
    unittest.main(verbosity=2)
