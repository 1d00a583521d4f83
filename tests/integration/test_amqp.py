#!/usr/bin/env python3
"""RabbitMQ transport (EVENT_SINK=amqp://...) against a real rabbitmq-server
started once for this module (it boots slowly), read back by a real
consumer (pika: a durable queue bound to the exchange, as the README tells
consumers to do).

- Through the whole stack: every API change is exactly one message, in
  commit order, a valid CloudEvent (structured and binary modes), with the
  AMQP properties the contract lists.
- Faults: the broker stopped for seconds under a stream of creates, then
  started (nothing lost, order kept); the publisher killed between publish
  and confirm (the batch comes again with the same ids); an exchange with no
  queue bound (returned messages are retried, not lost, until a queue is
  bound).
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
from brokers import HoldingProxy, RabbitBroker, RabbitQueue  # noqa: E402
from harness import ROOT, Stack  # noqa: E402
import test_events  # noqa: E402  (the module: its test case must not run here)
from test_publisher import (PublisherTestCase, connect, create_db, insert_events, rows,  # noqa: E402
                            scalar, wait_for)

BROKER = None


def setUpModule():
    global BROKER
    BROKER = RabbitBroker().start()


def tearDownModule():
    if BROKER is not None:
        BROKER.close()


def make_changes(s, creates=3, patches=("paid", "shipped")):
    """Creates orders and moves the first through patches; returns what the
    events must say, in commit order: (type, order as returned, previous)."""
    tok = s.token()
    expected, orders = [], []
    for i in range(creates):
        r = s.request("POST", "/orders", token=tok, body={"customerId": "c-%d" % i, "items": ["i-%d" % i]})
        assert r.status == 201, r
        orders.append(r.json())
        expected.append(("order.created", r.json(), None))
    previous = "pending"
    for st in patches:
        r = s.request("PATCH", "/orders/" + orders[0]["id"], token=tok, body={"status": st})
        assert r.status == 200, r
        expected.append(("order.updated", r.json(), previous))
        previous = st
    return expected


def binary_to_event(props, body):
    """A binary-mode message back into a CloudEvent (the AMQP binding)."""
    event = {k[len("cloudEvents_"):]: v for k, v in (props.headers or {}).items()
             if k.startswith("cloudEvents_")}
    event["datacontenttype"] = props.content_type
    event["data"] = json.loads(body)
    return event


class AmqpThroughTheStack(unittest.TestCase):
    def check_messages(self, messages, expected, binary):
        self.assertEqual(len(messages), len(expected), "exactly one message per change")
        events = []
        for (method, props, body), (type_, order, previous) in zip(messages, expected):
            event = binary_to_event(props, body) if binary else json.loads(body)
            events.append(event)
            self.assertEqual(props.content_type, "application/json" if binary else "application/cloudevents+json")
            self.assertEqual(props.delivery_mode, 2, "persistent")
            self.assertEqual(props.message_id, event["id"])
            self.assertEqual(props.type, type_)
            self.assertEqual(props.app_id, "orders-publisher")
            self.assertAlmostEqual(props.timestamp, time.time(), delta=600)
            self.assertEqual(method.routing_key, type_)
            self.assertEqual((event["specversion"], event["type"], event["source"], event["subject"]),
                             ("1.0", type_, "/orders", order["id"]))
            self.assertEqual(event["datacontenttype"], "application/json")
            data = dict(event["data"])
            self.assertEqual(data.pop("previousStatus", None), previous)
            self.assertEqual(data, order)
        self.assertEqual(len({e["id"] for e in events}), len(events), "distinct ids")
        status, output = test_events.validate_with_asyncapi(events)
        self.assertEqual(status, 0, output)

    def run_mode(self, mode):
        exchange = "orders-e2e-" + mode
        queue = RabbitQueue(BROKER, exchange, "consumer-" + mode)
        with Stack(workers=2, env={"EVENT_SINK": BROKER.url("exchange=%s&mode=%s" % (exchange, mode))}) as s:
            expected = make_changes(s)
            messages = queue.wait_for(len(expected), 20)
            time.sleep(0.3)  # a duplicate or a stray would show now
            messages = queue.drain()
            # The publisher's metrics count them for this transport.
            line = 'orders_publisher_sink_deliveries_total{sink="%s"} %d' % ("amqp", len(expected))
            s.wait_for(lambda: line in s.request("GET", "/metrics").body.decode(), timeout=10,
                       what="the per-transport counter")
            with open(s.stderr_path, encoding="utf-8", errors="replace") as f:
                logs = f.read()
        self.assertNotIn("guest:guest", logs, "credentials never reach a log line")
        self.check_messages(messages, expected, mode == "binary")

    def test_structured_mode(self):
        self.run_mode("structured")

    def test_binary_mode(self):
        self.run_mode("binary")

    def test_broker_stopped_under_creates(self):
        exchange = "orders-outage"
        queue = RabbitQueue(BROKER, exchange, "consumer-outage")
        created, errors, stop = [], [], threading.Event()
        env = {"EVENT_SINK": BROKER.url("exchange=" + exchange), "PUBLISHER_BACKOFF_CAP_MS": "500"}
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
            self.assertEqual(errors, [], "the API keeps acknowledging writes while the broker is down")
            self.assertGreater(down_at, 0)
            queue.wait_for(len(created), 60)
            with open(s.stderr_path, encoding="utf-8", errors="replace") as f:
                logs = f.read()
        subjects = []
        for method, props, body in queue.drain():
            subject = json.loads(body)["subject"]
            if subject not in subjects:  # at least once: a duplicate keeps its place
                subjects.append(subject)
        self.assertEqual(subjects, created, "nothing lost, commit order kept")
        self.assertIn("delivery failed; will retry", logs)


class AmqpFaults(PublisherTestCase):
    def env(self, sink, **extra):
        # A broker batch's budget covers connecting too: room for valgrind.
        extra.setdefault("PUBLISHER_HTTP_TIMEOUT_MS", 5000)
        extra.setdefault("PUBLISHER_LEASE_MS", 6000)
        return super().env(sink, **extra)

    def test_unroutable_is_retried_not_lost(self):
        create_db(self.db)
        ids = insert_events(self.db, 3)
        p = self.start(BROKER.url("exchange=orders-nobody"))
        wait_for(lambda: "NO_ROUTE" in p.stderr(), 15, "a returned message")
        self.assertEqual(self.undelivered(), 3, "returned means not delivered")
        queue = RabbitQueue(BROKER, "orders-nobody", "late-consumer")
        got = queue.wait_for(3, 20)
        self.assertEqual([props.message_id for m, props, b in got][:3], ids)
        wait_for(lambda: self.undelivered() == 0, 10, "deliveries recorded")

    def test_sigkill_between_publish_and_confirm(self):
        create_db(self.db)
        queue = RabbitQueue(BROKER, "orders-kill", "kill-consumer")
        proxy = HoldingProxy(BROKER.port)
        self.addCleanup(proxy.close)
        first = insert_events(self.db, 2)
        p = self.start(BROKER.url("exchange=orders-kill", port=proxy.port),
                       PUBLISHER_HTTP_TIMEOUT_MS=8000, PUBLISHER_LEASE_MS=10000)
        wait_for(lambda: self.undelivered() == 0, 15, "the first events", log=p.stderr)
        # The broker routes what the publisher sends now, but its confirms
        # are held back: the publisher dies waiting for them.
        proxy.hold_replies()
        batch = insert_events(self.db, 20, per_transaction=20)
        wait_for(lambda: queue.depth() >= 22, 10, "the batch in the queue")
        p.kill()
        self.assertEqual(self.undelivered(), 20, "nothing confirmed, nothing recorded")
        db = connect(self.db)
        db.execute("DELETE FROM publisher_lease")  # its holder is dead; skip the wait
        db.commit()
        db.close()
        p2 = self.start(BROKER.url("exchange=orders-kill"))
        wait_for(lambda: self.undelivered() == 0, 20, "redelivery", log=p2.stderr)
        got = queue.wait_for(42, 20)
        ids = [props.message_id for m, props, b in got]
        self.assertEqual(ids, first + batch + batch, "the unconfirmed batch came again, in order")
        bodies = {}
        for m, props, body in got:
            self.assertEqual(bodies.setdefault(props.message_id, body), body, "a redelivery is the same event")
        p2.signal(signal.SIGTERM)
        self.assertEqual(p2.wait(), 0)

    def test_bad_credentials_retry_without_showing_them(self):
        create_db(self.db)
        insert_events(self.db, 1)
        p, code = self.run_once(BROKER.url(user="guest", password="not-the-password"))
        self.assertEqual(code, 1)
        self.assertIn("ACCESS_REFUSED", p.stderr())
        self.assertNotIn("not-the-password", p.stderr())
        self.assertEqual(self.undelivered(), 1)
        error = rows(self.db, "SELECT last_error FROM events")[0][0]
        self.assertNotIn("not-the-password", error)
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM events WHERE parked_at IS NOT NULL"), 0)

    def test_amqps_verifies_the_broker(self):
        """amqps://: delivered when the broker's certificate chains to cacert
        and names the host; refused (retried, never delivered) otherwise."""
        create_db(self.db)
        ids = insert_events(self.db, 2)
        queue = RabbitQueue(BROKER, "orders-tls", "tls-consumer")
        query = "exchange=orders-tls"
        # The system's CA bundle does not know the test's CA.
        p, code = self.run_once(BROKER.url(query, scheme="amqps", port=BROKER.tls_port, host="localhost"))
        self.assertEqual(code, 1, p.stderr())
        self.assertEqual(self.undelivered(), 2)
        # The right CA, but a name the certificate does not carry.
        p, code = self.run_once(BROKER.url(query + "&cacert=" + BROKER.ca, scheme="amqps",
                                           port=BROKER.tls_port, host="127.0.0.1"))
        self.assertEqual(code, 1, p.stderr())
        self.assertEqual(self.undelivered(), 2)
        self.assertRegex(p.stderr(), r"(?i)certificate|verif|handshake|SSL|TLS", "a TLS refusal")
        p, code = self.run_once(BROKER.url(query + "&cacert=" + BROKER.ca, scheme="amqps",
                                           port=BROKER.tls_port, host="localhost"))
        self.assertEqual(code, 0, p.stderr())
        self.assertEqual([props.message_id for m, props, b in queue.wait_for(2, 10)], ids)

    def test_readme_consumer_example(self):
        """examples/read-events-amqp.py, run as the README shows it."""
        create_db(self.db)
        ids = insert_events(self.db, 3)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), "/usr/lib/python3/dist-packages"]))
        url = BROKER.url()  # amqp://guest:guest@127.0.0.1:PORT/
        consumer = subprocess.Popen([sys.executable, os.path.join(ROOT, "examples", "read-events-amqp.py"),
                                     url + "%2f", "readme-billing", "3"],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            def bound():
                conn = BROKER.connection()
                try:
                    conn.channel().queue_declare("readme-billing", passive=True)
                    return True
                except Exception:
                    return False
                finally:
                    if conn.is_open:
                        conn.close()
            wait_for(bound, 15, "the example's queue")
            p, code = self.run_once(BROKER.url("exchange=orders"))
            self.assertEqual(code, 0, p.stderr())
            out, err = consumer.communicate(timeout=20)
        finally:
            if consumer.poll() is None:
                consumer.kill()
                consumer.wait()
        self.assertEqual(consumer.returncode, 0, err)
        lines = out.splitlines()
        self.assertEqual([line.split(" ", 2)[1] for line in lines], ids)
        for line, eid in zip(lines, ids):
            key, message_id, event = line.split(" ", 2)
            self.assertEqual(json.loads(event)["id"], eid)
            self.assertEqual(json.loads(event)["type"], key)


if __name__ == "__main__":
    unittest.main(verbosity=2)
