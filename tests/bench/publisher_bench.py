#!/usr/bin/env python3
"""Publisher throughput per transport: events per second that
`orders-publisher --once` delivers from a backlog of BENCH_EVENTS (100,000)
undelivered events, to each of BENCH_TRANSPORTS (file http amqp nats):

    tests/bench/publisher_bench.py            # or BENCH_EVENTS=20000 ... for a quick look

- file: JSON Lines on the benchmark's temporary directory (one fsync per batch)
- http: the integration tests' HTTP sink (Python http.server in this process,
  one POST per event: it measures the sink as much as the publisher)
- amqp: a real rabbitmq-server, a durable queue bound to the exchange,
  persistent messages, publisher confirms per batch
- nats: a real nats-server -js, a file-backed stream (stream=), the stream's
  acknowledgements per batch

Each transport gets the same freshly migrated database (the real
migrations), the publisher's defaults (PUBLISHER_BATCH 256,
DB_SYNCHRONOUS full), and is checked afterwards: every event delivered,
nothing parked, and the broker holding that many messages.  Prints a
Markdown table on stdout.  Uses ORDERS_BUILD_DIR (default build/); the
brokers come from tests/integration/brokers.py (temporary directories, free
loopback ports, stopped at the end).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from brokers import NatsBroker, NatsStream, RabbitBroker, RabbitQueue  # noqa: E402
from sink_http import HttpSink  # noqa: E402
from test_publisher import (create_db, hand_over_to_worker_user, insert_events,  # noqa: E402
                            publisher_binary, scalar)

EVENTS = int(os.environ.get("BENCH_EVENTS", "100000"))
TRANSPORTS = os.environ.get("BENCH_TRANSPORTS", "file http amqp nats").split()


def say(msg):
    print("publisher-bench: " + msg, file=sys.stderr, flush=True)


def backlog(workdir):
    """A migrated database holding EVENTS undelivered events."""
    db = os.path.join(workdir, "orders.db")
    create_db(db)
    insert_events(db, EVENTS, per_transaction=EVENTS)
    hand_over_to_worker_user(workdir)
    return db


def run_once(db, sink, workdir):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PUBLISHER_", "EVENT_", "DATABASE_", "RUNTIME_", "DB_", "LOG_"))}
    env.update(DATABASE_PATH=db, EVENT_SINK=sink, LOG_LEVEL="warn", PUBLISHER_RETENTION_HOURS="0")
    with open(os.path.join(workdir, "publisher.log"), "wb") as log:
        start = time.monotonic()
        code = subprocess.run([publisher_binary(), "--once"], env=env, stdout=subprocess.DEVNULL,
                              stderr=log, timeout=1800).returncode
        seconds = time.monotonic() - start
    if code != 0:
        with open(os.path.join(workdir, "publisher.log"), encoding="utf-8", errors="replace") as f:
            raise SystemExit("publisher exited %d for %s:\n%s" % (code, sink.split("?")[0], f.read()[-2000:]))
    left = scalar(db, "SELECT count(*) FROM events WHERE delivered_at IS NULL")
    if left:
        raise SystemExit("%d events left undelivered" % left)
    return seconds


def bench(transport, workdir, brokers):
    db = backlog(workdir)
    if transport == "file":
        path = os.path.join(workdir, "events.jsonl")
        seconds = run_once(db, "file:" + path, workdir)
        with open(path, "rb") as f:
            held = sum(1 for _ in f)
    elif transport == "http":
        sink = HttpSink().start()
        try:
            seconds = run_once(db, sink.url, workdir)
            held = len({r.event_id for r in sink.delivered()})
        finally:
            sink.stop()
    elif transport == "amqp":
        if "amqp" not in brokers:
            brokers["amqp"] = RabbitBroker().start()
        broker = brokers["amqp"]
        queue = RabbitQueue(broker, "orders-bench", "bench-%d" % time.monotonic_ns())
        seconds = run_once(db, broker.url("exchange=orders-bench"), workdir)
        conn = broker.connection()
        try:
            held = conn.channel().queue_declare(queue.name, passive=True).method.message_count
            conn.channel().queue_delete(queue.name)
        finally:
            conn.close()
    elif transport == "nats":
        if "nats" not in brokers:
            brokers["nats"] = NatsBroker().start()
        broker = brokers["nats"]
        name = "BENCH%d" % time.monotonic_ns()
        seconds = run_once(db, broker.url("subject=orders.bench.%s&stream=%s" % (name, name)), workdir)
        held = NatsStream(broker, name).info()["state"]["messages"]
    else:
        raise SystemExit("unknown transport %r" % transport)
    if held != EVENTS:
        raise SystemExit("%s holds %d messages, expected %d" % (transport, held, EVENTS))
    return seconds


def main():
    brokers, rows = {}, []
    try:
        for transport in TRANSPORTS:
            workdir = tempfile.mkdtemp(prefix="orders-pubbench-")
            os.chmod(workdir, 0o755)
            try:
                say("%s: %d events" % (transport, EVENTS))
                seconds = bench(transport, workdir, brokers)
                rows.append((transport, seconds, EVENTS / seconds))
                say("%s: %.1f s, %.0f events/s" % (transport, seconds, EVENTS / seconds))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    finally:
        for b in brokers.values():
            b.close()
    print("| transport | events | seconds | events/s |")
    print("|---|---:|---:|---:|")
    for transport, seconds, rate in rows:
        print("| %s | %d | %.1f | %.0f |" % (transport, EVENTS, seconds, rate))
    print()
    print("machine: %d CPUs, load average %.1f at the end (`uptime`); PUBLISHER_BATCH 256, "
          "DB_SYNCHRONOUS full" % (os.cpu_count(), os.getloadavg()[0]))


if __name__ == "__main__":
    main()
