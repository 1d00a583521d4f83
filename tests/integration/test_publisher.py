#!/usr/bin/env python3
"""Integration tests of orders-publisher (issue 4, the publisher part).

The real binary runs against a real SQLite database built from
migrations/*.sql and a real sink: an HTTP server in this process
(sink_http.py) or a JSON Lines file.  Event rows are inserted directly, as
the workers would insert them.

    ORDERS_BUILD_DIR=build python3 tests/integration/test_publisher.py

ORDERS_PUBLISHER may name the binary directly.  PUBLISHER_TEST_WRAPPER is
put in front of it, e.g. "valgrind --error-exitcode=99 --leak-check=full".
Only 127.0.0.1 is used; every wait is bounded.
"""

import contextlib
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sink_http import HttpSink, free_port  # noqa: E402

REPO = HERE.parent.parent
MIGRATIONS = sorted((REPO / "migrations").glob("*.sql"))
WRAPPER = shlex.split(os.environ.get("PUBLISHER_TEST_WRAPPER", ""))
SLOW = 4 if WRAPPER else 1  # valgrind and friends: more patience, same checks
SANITIZER_REPORTS = [re.compile(p) for p in (
    r"ERROR: AddressSanitizer", r"ERROR: LeakSanitizer", r"runtime error:",
    r"ERROR SUMMARY: [1-9]", r"definitely lost: [1-9]")]


def publisher_binary():
    explicit = os.environ.get("ORDERS_PUBLISHER")
    if explicit:
        return explicit
    build = Path(os.environ.get("ORDERS_BUILD_DIR", REPO / "build"))
    for candidate in (build / "publisher" / "orders-publisher", build / "orders-publisher"):
        if candidate.exists():
            return str(candidate)
    raise unittest.SkipTest("orders-publisher not found; set ORDERS_BUILD_DIR or ORDERS_PUBLISHER")


def now_ms():
    return int(time.time() * 1000)


def wait_for(predicate, timeout, what, log=None):
    """Polls predicate until true; fails the test after timeout seconds,
    with log() (a publisher's stderr, say) in the message when given."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("timed out after %.1fs waiting for %s%s"
                         % (timeout * SLOW, what, "; log:\n" + log() if log is not None else ""))


# -- the database, as the workers leave it ---------------------------------

@contextlib.contextmanager
def worker_identity():
    """As root, the block runs with the worker user's effective uid and gid
    (the user the publisher drops to); otherwise it runs as it is.

    Why: SQLite creates a WAL database's -wal and -shm files beside it when
    the first connection reads it, and root's connection creates them as
    root, then chowns them to the database's owner.  A publisher (www-data)
    opening them in between cannot open them for writing, falls back to
    read-only for the life of its connection, and never delivers again
    ("attempt to write a readonly database" every second): the flaky NATS
    SIGKILL test, whose root test process polls the database while the
    restarted publisher opens it.  Files made as the worker user are its
    own from the first instant."""
    if os.geteuid() != 0:
        yield
        return
    import pwd
    user = pwd.getpwnam(os.environ.get("WORKER_USER") or "www-data")
    gid = os.getegid()
    os.setegid(user.pw_gid)
    os.seteuid(user.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(gid)


def create_db(path):
    """The schema as the workers' migration leaves it, recorded in
    schema_migrations: the publisher waits until it is at its version.
    Made as the worker user, as the workers make it (the directory must be
    theirs: PublisherTestCase's is).  The migrations are read first, as
    the test's own user: a clone under a 0700 directory (mktemp -d, /root)
    is not readable by the worker user."""
    scripts = [(m.name, m.read_text()) for m in MIGRATIONS]
    with worker_identity():
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                       " name TEXT NOT NULL, applied_at INTEGER NOT NULL)")
            for name, sql in scripts:
                db.executescript(sql)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                           (int(name.split("_")[0]), name, now_ms()))
            db.commit()
        finally:
            db.close()


def connect(path):
    """A connection for the test's own reads and writes.  Its first read,
    which opens (or creates) the -wal and -shm files, is made as the worker
    user (worker_identity); SQLite keeps them open for the connection's
    life, so nothing it does later as root creates a file."""
    with worker_identity():
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("SELECT count(*) FROM sqlite_master").fetchall()
    return db


def order_data(order_id, status="pending", previous=None, secret="s3cret-customer"):
    t = "2026-11-25T12:34:56.789Z"
    data = {"id": order_id, "customerId": secret, "items": ["item-1", "item-2"],
            "status": status, "createdAt": t, "updatedAt": t}
    if previous is not None:
        data["previousStatus"] = previous
    return data


def insert_events(path, count, per_transaction=1, traceparent=True):
    """Inserts count events (an order.created then order.updated pattern);
    returns their ids in commit order."""
    db = connect(path)
    ids = []
    try:
        for start in range(0, count, per_transaction):
            db.execute("BEGIN IMMEDIATE")
            for i in range(start, min(count, start + per_transaction)):
                ids.append(insert_one(db, i, traceparent))
            db.execute("COMMIT")
    finally:
        db.close()
    return ids


def insert_one(db, i, traceparent=True):
    event_id = str(uuid.uuid4())
    order_id = str(uuid.uuid4())
    if i % 2 == 0:
        etype, data = "order.created", order_data(order_id)
    else:
        etype, data = "order.updated", order_data(order_id, "paid", "pending")
    tp = "00-%032x-%016x-01" % (i + 1, i + 1) if traceparent and i % 3 != 2 else None
    db.execute(
        "INSERT INTO events (id, type, source, subject, time, traceparent, data, committed_at)"
        " VALUES (?, ?, '/orders', ?, '2026-11-25T12:34:56.789Z', ?, ?, ?)",
        (event_id, etype, order_id, tp, json.dumps(data), now_ms()))
    return event_id


def rows(path, sql, args=()):
    db = connect(path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def scalar(path, sql, args=()):
    return rows(path, sql, args)[0][0]


def first_occurrences(ids):
    seen, out = set(), []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


# -- the publisher process -------------------------------------------------

def hand_over_to_worker_user(workdir):
    """Started as root, the publisher drops to WORKER_USER (www-data), so the
    database files this test made as root (SQLite creates them 0644 whatever
    the umask) must become that user's before it starts."""
    if os.geteuid() != 0:
        return
    import pwd
    user = pwd.getpwnam(os.environ.get("WORKER_USER") or "www-data")
    for path in [workdir] + [os.path.join(workdir, f) for f in os.listdir(workdir)]:
        os.chown(path, user.pw_uid, user.pw_gid)


class Publisher:
    def __init__(self, workdir, env, args=(), name="pub"):
        hand_over_to_worker_user(workdir)
        self.stderr_path = Path(workdir) / ("%s-%d.stderr" % (name, time.monotonic_ns()))
        self.stdout_path = self.stderr_path.with_suffix(".stdout")
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(WRAPPER + [publisher_binary(), *args], env=env,
                                     stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL)

    def wait(self, timeout=20):
        try:
            return self.proc.wait(timeout=timeout * SLOW)
        finally:
            self._close()

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self):
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close()

    def alive(self):
        return self.proc.poll() is None

    def _close(self):
        for f in (self._err, self._out):
            if not f.closed:
                f.close()

    def stdout(self):
        return self.stdout_path.read_text()

    def stderr(self):
        return self.stderr_path.read_text()

    def logs(self):
        out = []
        for line in self.stderr().splitlines():
            if re.match(r"==\d+==", line):
                continue  # valgrind's own report, when run under it
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"unparsed": line})
        return out

    def logged(self, message_part):
        return any(message_part in str(entry.get("message", "")) for entry in self.logs())


class PublisherTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="orders-publisher-test-")
        self.dir = Path(self._tmp.name)
        if os.geteuid() == 0:
            # Started as root, the publisher drops to WORKER_USER (www-data):
            # it must reach the directory, and the database files this test
            # creates as root must stay writable for it (-wal, -shm included).
            import pwd
            user = pwd.getpwnam(os.environ.get("WORKER_USER") or "www-data")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.db = str(self.dir / "orders.db")
        self.publishers = []
        self.sinks = []

    def tearDown(self):
        for p in self.publishers:
            if p.alive():
                p.kill()
            else:
                p._close()
        for s in self.sinks:
            s.stop()
        try:
            for p in self.publishers:
                text = p.stderr()
                for bad in SANITIZER_REPORTS:
                    self.assertIsNone(bad.search(text), "%s:\n%s" % (bad.pattern, text))
        finally:
            self._tmp.cleanup()

    def env(self, sink, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PUBLISHER_", "EVENT_", "DATABASE_", "RUNTIME_", "DB_", "LOG_"))}
        env.update({
            "DATABASE_PATH": self.db,
            "EVENT_SINK": sink,
            "LOG_LEVEL": "debug",
            "PUBLISHER_LEASE_MS": "2000",
            "PUBLISHER_HTTP_TIMEOUT_MS": "1000",
            "PUBLISHER_CONNECT_TIMEOUT_MS": "500",
            "PUBLISHER_BACKOFF_BASE_MS": "50",
            "PUBLISHER_BACKOFF_CAP_MS": "400",
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start(self, sink, args=(), name="pub", **extra):
        p = Publisher(self.dir, self.env(sink, **extra), args, name)
        self.publishers.append(p)
        return p

    def run_once(self, sink, timeout=30, **extra):
        p = self.start(sink, ["--once"], name="once", **extra)
        return p, p.wait(timeout)

    def http_sink(self, port=None, listen=True):
        s = HttpSink(port)
        self.sinks.append(s)
        return s.start() if listen else s

    def undelivered(self):
        return scalar(self.db, "SELECT count(*) FROM events WHERE delivered_at IS NULL AND parked_at IS NULL")

    def assert_clean_exit(self, p, code):
        self.assertEqual(code, 0, "publisher exited %s; stderr:\n%s" % (code, p.stderr()))

    def wait_started(self, p):
        wait_for(lambda: p.logged("lease acquired") or p.logged("lease taken over"), 10, "the lease")


# -- the tests ---------------------------------------------------------------

class TestCommandLine(PublisherTestCase):
    def test_help(self):
        out = subprocess.run([publisher_binary(), "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0)
        self.assertIn("--once", out.stdout)

    def test_bad_settings_are_refused_by_name(self):
        create_db(self.db)
        for var, value in [("PUBLISHER_BATCH", "lots"), ("EVENT_SINK", "ftp://x"),
                           ("DB_SYNCHRONOUS", "sometimes"), ("LOG_LEVEL", "loud"),
                           ("PUBLISHER_LEASE_MS", "1500")]:
            p, code = self.run_once("stdout", **{var: value})
            self.assertEqual(code, 2, var)
            self.assertIn(var, p.stderr())

    def test_unknown_argument(self):
        out = subprocess.run([publisher_binary(), "--frobnicate"], capture_output=True, timeout=10)
        self.assertEqual(out.returncode, 2)


class TestConfigurationCheck(PublisherTestCase):
    """A bad EVENT_SINK stops the start with one line naming the setting,
    before anything serves, and no line ever shows its credentials."""

    BAD_SINKS = ["ftp://admin:hunter22@127.0.0.1/events",   # unknown scheme
                 "http://admin:hunter22@[::1/events",        # malformed URL
                 "admin:hunter22@127.0.0.1"]                  # not a URL at all

    def test_check_config(self):
        for sink in self.BAD_SINKS:
            out = subprocess.run([publisher_binary(), "--check-config"], env=self.env(sink),
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(out.returncode, 2, sink)
            self.assertEqual(len(out.stderr.splitlines()), 1, out.stderr)
            self.assertIn("EVENT_SINK", out.stderr)
            self.assertNotIn("hunter22", out.stderr + out.stdout)
        out = subprocess.run([publisher_binary(), "--check-config"], env=self.env("http://a:b@127.0.0.1:9/e"),
                             capture_output=True, text=True, timeout=10)
        self.assertEqual((out.returncode, out.stderr), (0, ""))

    def test_run_command_refuses_a_bad_sink(self):
        build = Path(publisher_binary()).resolve().parent.parent
        for sink in self.BAD_SINKS[:2]:
            runtime = Path(self.dir) / ("var-%d" % self.BAD_SINKS.index(sink))
            env = self.env(sink, RUNTIME_DIR=runtime, BUILD_DIR=build, PORT=free_port(), WORKERS=1)
            out = subprocess.run([str(REPO / "scripts" / "run-stack")], env=env, cwd=self.dir,
                                 capture_output=True, text=True, timeout=30)
            self.assertNotEqual(out.returncode, 0)
            lines = out.stderr.splitlines()
            self.assertEqual(len(lines), 1, out.stderr)
            self.assertIn("EVENT_SINK", lines[0])
            self.assertNotIn("hunter22", out.stderr + out.stdout)
            self.assertFalse((runtime / "orders.db").exists(), "nothing may start")

    def test_delivery_errors_never_show_credentials(self):
        create_db(self.db)
        insert_events(self.db, 2)
        sink = self.http_sink(listen=False)
        url = sink.url.replace("http://", "http://admin:hunter22@") + "?token=sesame"
        p, code = self.run_once(url)
        self.assertEqual(code, 1, p.stderr())
        self.assertTrue(p.logged("delivery failed"), p.stderr())
        self.assertNotIn("hunter22", p.stderr())
        self.assertNotIn("sesame", p.stderr())
        self.assertNotIn("admin", p.stderr())
        error = scalar(self.db, "SELECT last_error FROM events WHERE attempts > 0")
        self.assertTrue(error)
        self.assertNotIn("hunter22", error)


class TestDelivery(PublisherTestCase):
    def test_http_envelope_headers_and_order(self):
        create_db(self.db)
        sink = self.http_sink()
        ids = insert_events(self.db, 30)
        p = self.start(sink.url)
        wait_for(lambda: len(sink.delivered()) >= 30, 15, "30 deliveries")
        got = sink.delivered()
        self.assertEqual([r.event_id for r in got], ids)
        stored = {r[0]: r for r in rows(self.db, "SELECT id, type, source, subject, time, traceparent, data FROM events")}
        for r in got:
            self.assertTrue(r.headers["Content-Type"].startswith("application/cloudevents+json"))
            ev = r.event
            eid, etype, source, subject, etime, tp, data = stored[ev["id"]]
            self.assertEqual(ev["specversion"], "1.0")
            self.assertEqual((ev["type"], ev["source"], ev["subject"], ev["time"]),
                             (etype, source, subject, etime))
            self.assertEqual(ev["datacontenttype"], "application/json")
            self.assertEqual(ev["data"], json.loads(data))
            if tp is None:
                self.assertNotIn("traceparent", ev)
            else:
                self.assertEqual(ev["traceparent"], tp)
            expected = {"specversion", "id", "source", "type", "subject", "time",
                        "datacontenttype", "data"} | ({"traceparent"} if tp else set())
            self.assertEqual(set(ev), expected)
            if etype == "order.updated":
                self.assertEqual(ev["data"]["previousStatus"], "pending")
        wait_for(lambda: self.undelivered() == 0, 5, "all marked delivered")
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM publisher_lease"), 0, "lease released")
        self.assertNotIn("s3cret-customer", p.stderr(), "event data must never be logged")
        for entry in p.logs():
            self.assertEqual(entry.get("service"), "orders-publisher", entry)
            self.assertIn("timestamp", entry)
            self.assertIn(entry.get("level"), ("debug", "info", "warn", "error"))

    def test_once_file_sink(self):
        create_db(self.db)
        ids = insert_events(self.db, 50, per_transaction=10)
        out = self.dir / "events.jsonl"
        p, code = self.run_once("file:%s" % out)
        self.assert_clean_exit(p, code)
        lines = out.read_text().splitlines()
        self.assertEqual([json.loads(line)["id"] for line in lines], ids)
        self.assertEqual(self.undelivered(), 0)
        p, code = self.run_once("file:%s" % out)
        self.assert_clean_exit(p, code)
        self.assertEqual(len(out.read_text().splitlines()), 50, "nothing delivered twice")

    def test_file_sink_cuts_a_torn_last_line(self):
        """What a power cut before the fsync can leave: half a line that was
        never acknowledged.  The next batch must not be glued onto it."""
        create_db(self.db)
        ids = insert_events(self.db, 3)
        out = self.dir / "events.jsonl"
        out.write_text('{"complete":"line"}\n{"torn":"li')
        p, code = self.run_once("file:%s" % out)
        self.assert_clean_exit(p, code)
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        self.assertEqual(lines[0], {"complete": "line"})
        self.assertEqual([e["id"] for e in lines[1:]], ids)
        self.assertTrue(p.logged("torn"))

    def test_once_stdout(self):
        create_db(self.db)
        ids = insert_events(self.db, 5)
        p, code = self.run_once("stdout")
        self.assert_clean_exit(p, code)
        self.assertEqual([json.loads(line)["id"] for line in p.stdout().splitlines()], ids)

    def test_once_with_unreachable_sink_fails_and_keeps_events(self):
        create_db(self.db)
        ids = insert_events(self.db, 3)
        sink = self.http_sink(listen=False)
        p, code = self.run_once(sink.url)
        self.assertEqual(code, 1, p.stderr())
        self.assertEqual(self.undelivered(), 3)
        attempts, error, next_at = rows(self.db, "SELECT attempts, last_error, next_attempt_at FROM events WHERE id = ?", (ids[0],))[0]
        self.assertEqual(attempts, 1)
        self.assertTrue(error)
        self.assertGreater(next_at, 0)
        self.assertEqual(scalar(self.db, "SELECT sum(attempts) FROM events"), 1, "later events wait in order")

    def test_waits_for_the_database(self):
        sink = self.http_sink()
        p = self.start(sink.url)
        time.sleep(0.3)
        self.assertTrue(p.alive(), p.stderr())
        # The database appears at once, complete, as the workers' first
        # migration makes it appear (and owned as theirs when root).
        staging = self.dir / "staging"
        staging.mkdir()
        hand_over_to_worker_user(str(staging))
        create_db(str(staging / "orders.db"))
        ids = insert_events(str(staging / "orders.db"), 3)
        hand_over_to_worker_user(str(staging))
        os.rename(staging / "orders.db", self.db)
        wait_for(lambda: len(sink.delivered()) >= 3, 15, "deliveries after the database appeared")
        self.assertEqual(sink.delivered_ids(), ids)
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())


class TestFailures(PublisherTestCase):
    def test_sink_500_then_recovers(self):
        create_db(self.db)
        sink = self.http_sink()
        sink.fail_status = 500
        ids = insert_events(self.db, 20)
        p = self.start(sink.url)
        wait_for(lambda: len(sink.snapshot()) >= 4, 10, "retries against a failing sink")
        self.assertEqual({r.event_id for r in sink.snapshot()}, {ids[0]}, "only the head is tried")
        self.assertEqual(self.undelivered(), 20)
        self.assertIsNone(rows(self.db, "SELECT parked_at FROM events WHERE id = ?", (ids[0],))[0][0],
                          "a failing sink never parks events")
        attempts, error = rows(self.db, "SELECT attempts, last_error FROM events WHERE id = ?", (ids[0],))[0]
        self.assertGreaterEqual(attempts, 3)
        self.assertIn("500", error)
        sink.fail_status = None
        wait_for(lambda: len(sink.delivered()) >= 20, 15, "delivery after recovery")
        self.assertEqual(sink.delivered_ids(), ids)
        wait_for(lambda: self.undelivered() == 0, 5, "all marked delivered")
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())

    def test_sink_wide_4xx_never_parks(self):
        """404 means a wrong URL, not a bad event: parking would empty the
        stream into the parked pile."""
        create_db(self.db)
        sink = self.http_sink()
        sink.fail_status = 404
        ids = insert_events(self.db, 5)
        p = self.start(sink.url, PUBLISHER_MAX_ATTEMPTS=2)
        wait_for(lambda: scalar(self.db, "SELECT attempts FROM events WHERE id = ?", (ids[0],)) >= 4,
                 10, "repeated 404s")
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM events WHERE parked_at IS NOT NULL"), 0)
        sink.fail_status = None
        wait_for(lambda: len(sink.delivered()) >= 5, 15, "delivery after the fix")
        self.assertEqual(sink.delivered_ids(), ids)
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())

    def test_sink_unreachable_then_up(self):
        create_db(self.db)
        sink = self.http_sink(listen=False)
        p = self.start(sink.url)
        ids = insert_events(self.db, 10)
        wait_for(lambda: scalar(self.db, "SELECT attempts FROM events WHERE id = ?", (ids[0],)) >= 2,
                 10, "failed attempts")
        self.assertEqual(self.undelivered(), 10)
        sink.start()
        wait_for(lambda: len(sink.delivered()) >= 10, 15, "delivery once the sink listens")
        self.assertEqual(sink.delivered_ids(), ids)
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())

    def test_sink_going_down_mid_stream(self):
        create_db(self.db)
        sink = self.http_sink()
        p = self.start(sink.url)
        first = insert_events(self.db, 5)
        wait_for(lambda: len(sink.delivered()) >= 5, 10, "first deliveries")
        sink.stop()
        second = insert_events(self.db, 5)
        wait_for(lambda: scalar(self.db, "SELECT attempts FROM events WHERE id = ?", (second[0],)) >= 1,
                 10, "a failed attempt")
        sink.start()
        wait_for(lambda: len(sink.delivered()) >= 10, 15, "delivery after the restart")
        self.assertEqual(sink.delivered_ids(), first + second)
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())

    def test_poison_event_is_parked_and_later_events_proceed(self):
        create_db(self.db)
        sink = self.http_sink()
        ids = insert_events(self.db, 10)
        poison = ids[2]
        sink.reject_ids.add(poison)
        p = self.start(sink.url, PUBLISHER_MAX_ATTEMPTS=3)
        wait_for(lambda: len(sink.delivered()) >= 9, 15, "the other events")
        self.assertEqual(sink.delivered_ids(), [i for i in ids if i != poison])
        tries = [r for r in sink.snapshot() if r.event_id == poison]
        self.assertEqual(len(tries), 3)
        self.assertTrue(all(r.status == 400 for r in tries))
        # Order: the poison event blocked the ones behind it until parked.
        last_try = max(r.at for r in tries)
        after = [r for r in sink.delivered() if ids.index(r.event_id) > 2]
        self.assertTrue(all(r.at > last_try for r in after))
        attempts, parked_at, delivered_at, error = rows(
            self.db, "SELECT attempts, parked_at, delivered_at, last_error FROM events WHERE id = ?", (poison,))[0]
        self.assertEqual(attempts, 3)
        self.assertIsNotNone(parked_at)
        self.assertIsNone(delivered_at)
        self.assertIn("400", error)
        wait_for(lambda: any(e.get("level") == "error" and e.get("event_id") == poison
                             for e in p.logs()), 5, "the parking logged at error level")
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())
        self.assertNotIn("s3cret-customer", p.stderr())


class TestCrashes(PublisherTestCase):
    def test_sigkill_mid_batch_then_restart(self):
        create_db(self.db)
        sink = self.http_sink()
        sink.delay = 0.005
        ids = insert_events(self.db, 200, per_transaction=50)
        p = self.start(sink.url, PUBLISHER_BATCH=50)
        wait_for(lambda: len(sink.delivered()) >= 70, 20, "part of the events")
        p.kill()
        before = len(sink.delivered())
        self.assertLess(before, 200, "killed too late to test anything")
        p2 = self.start(sink.url, PUBLISHER_BATCH=50, name="restart")
        wait_for(lambda: self.undelivered() == 0, 30, "all events after the restart")
        got = sink.delivered()
        self.assertEqual(first_occurrences([r.event_id for r in got]), ids, "nothing lost, order kept")
        self.assertLessEqual(len(got) - len(ids), 50, "duplicates only for the batch in flight")
        bodies = {}
        for r in got:
            self.assertEqual(bodies.setdefault(r.event_id, r.body), r.body, "a duplicate is the same event")
        p2.signal(signal.SIGTERM)
        self.assert_clean_exit(p2, p2.wait())

    def test_sigkill_with_file_sink_leaves_no_torn_lines(self):
        create_db(self.db)
        ids = insert_events(self.db, 5000, per_transaction=500)
        out = self.dir / "events.jsonl"
        p = self.start("file:%s" % out, PUBLISHER_BATCH=100)
        wait_for(lambda: out.exists() and out.stat().st_size > 50000, 20, "some output")
        p.kill()
        p2, code = self.run_once("file:%s" % out, PUBLISHER_BATCH=100)
        self.assert_clean_exit(p2, code)
        events = [json.loads(line) for line in out.read_text().splitlines()]
        self.assertEqual(first_occurrences([e["id"] for e in events]), ids)
        self.assertLessEqual(len(events) - len(ids), 100)

    def test_sigterm_finishes_and_records_the_batch_in_flight(self):
        create_db(self.db)
        sink = self.http_sink()
        sink.delay = 0.03
        ids = insert_events(self.db, 60, per_transaction=60)
        p = self.start(sink.url, PUBLISHER_BATCH=100)
        wait_for(lambda: len(sink.delivered()) >= 5, 10, "a batch under way")
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())
        sent = sink.delivered_ids()
        self.assertLess(len(sent), 60, "stopped before the end of the batch")
        marked = [r[0] for r in rows(self.db, "SELECT id FROM events WHERE delivered_at IS NOT NULL ORDER BY seq")]
        self.assertEqual(marked, sent, "every acknowledged event recorded, nothing else")
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM publisher_lease"), 0)
        sink.delay = 0
        p2, code = self.run_once(sink.url)
        self.assert_clean_exit(p2, code)
        self.assertEqual(sink.delivered_ids(), ids, "no duplicates after a clean stop")


class TestLease(PublisherTestCase):
    def test_two_publishers_one_delivers_then_takeovers(self):
        create_db(self.db)
        sinks = [self.http_sink() for _ in range(3)]
        pubs = [self.start(sinks[0].url, name="a"), self.start(sinks[1].url, name="b")]
        ids = []
        for _ in range(10):  # a trickle, so both have every chance to deliver
            ids += insert_events(self.db, 10)
            time.sleep(0.03)
        wait_for(lambda: self.undelivered() == 0, 15, "the first events")
        counts = [len(s.delivered()) for s in sinks[:2]]
        self.assertEqual(sorted(counts), [0, 100], "exactly one publisher delivers")
        active = 0 if counts[0] else 1
        standby = 1 - active
        self.assertTrue(pubs[standby].alive())

        # kill -9 the active one: the standby takes over once the lease expires.
        pubs[active].kill()
        killed_at = time.monotonic()
        ids += insert_events(self.db, 20)
        wait_for(lambda: self.undelivered() == 0, 15, "takeover after kill -9")
        print("\n  takeover after SIGKILL: %.2fs (lease 2s)" % (
            sinks[standby].delivered()[0].at - killed_at), file=sys.stderr)

        # A third publisher stands by; SIGTERM of the active one hands over at once.
        third = self.start(sinks[2].url, name="c")
        wait_for(lambda: third.logged("standing by"), 10, "the third publisher to stand by")
        pubs[standby].signal(signal.SIGTERM)
        self.assert_clean_exit(pubs[standby], pubs[standby].wait())
        ids += insert_events(self.db, 20)
        wait_for(lambda: self.undelivered() == 0, 15, "takeover after SIGTERM")
        self.assertEqual(len(sinks[2].delivered()), 20)

        # Only one publisher at a time: the sinks' delivery periods do not
        # overlap, and together they saw every event in commit order.
        order = [sinks[active], sinks[standby], sinks[2]]
        spans = [(s.delivered()[0].at, s.delivered()[-1].at) for s in order]
        for earlier, later in zip(spans, spans[1:]):
            self.assertLess(earlier[1], later[0])
        seen = [r.event_id for s in order for r in s.delivered()]
        self.assertEqual(first_occurrences(seen), ids)
        third.signal(signal.SIGTERM)
        self.assert_clean_exit(third, third.wait())

    def test_once_refuses_to_queue_behind_a_live_publisher(self):
        create_db(self.db)
        sink = self.http_sink()
        p = self.start(sink.url)
        self.wait_started(p)
        p2, code = self.run_once(sink.url)
        self.assertEqual(code, 3, p2.stderr())
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())


class TestHousekeeping(PublisherTestCase):
    def test_retention_pruning(self):
        create_db(self.db)
        old = now_ms() - 200 * 3600 * 1000
        recent = now_ms() - 1 * 3600 * 1000
        insert_events(self.db, 2600, per_transaction=2600)
        db = connect(self.db)
        db.execute("UPDATE events SET delivered_at = ? WHERE seq <= 2500", (old,))
        db.execute("UPDATE events SET delivered_at = ? WHERE seq > 2500 AND seq <= 2550", (recent,))
        db.execute("UPDATE events SET parked_at = ?, attempts = 5 WHERE seq > 2550 AND seq <= 2560", (old,))
        db.close()
        out = self.dir / "events.jsonl"

        p, code = self.run_once("file:%s" % out, PUBLISHER_RETENTION_HOURS=0)
        self.assert_clean_exit(p, code)
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM events"), 2600, "0 keeps everything")

        p, code = self.run_once("file:%s" % out)
        self.assert_clean_exit(p, code)
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM events WHERE delivered_at < ?", (recent - 1,)), 0)
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM events WHERE delivered_at = ?", (recent,)), 50)
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM events WHERE parked_at IS NOT NULL"), 10,
                         "parked events are kept for inspection")
        self.assertEqual(scalar(self.db, "SELECT count(*) FROM events"), 2600 - 2500)
        self.assertEqual(len(out.read_text().splitlines()), 40)
        self.assertTrue(p.logged("pruned"))


class TestPerformance(PublisherTestCase):
    """Measured and printed, not judged: timing thresholds make flaky tests."""

    def test_latency(self):
        create_db(self.db)
        sink = self.http_sink()
        p = self.start(sink.url)
        self.wait_started(p)
        insert_events(self.db, 1)
        wait_for(lambda: len(sink.delivered()) >= 1, 10, "the warm-up event")
        db = connect(self.db)
        latencies = []
        try:
            for i in range(40):
                time.sleep(0.02)
                db.execute("BEGIN IMMEDIATE")
                event_id = insert_one(db, i)
                db.execute("COMMIT")
                committed = time.monotonic()
                got = wait_for(lambda: [r for r in sink.delivered() if r.event_id == event_id],
                               10, "event %d" % i)
                latencies.append((got[0].at - committed) * 1000)
        finally:
            db.close()
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print("\n  commit-to-sink latency over %d events: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (len(latencies), latencies[len(latencies) // 2], p99, latencies[-1]), file=sys.stderr)
        p.signal(signal.SIGTERM)
        self.assert_clean_exit(p, p.wait())

    def test_file_throughput(self):
        create_db(self.db)
        n = 20000
        ids = insert_events(self.db, n, per_transaction=5000)
        out = self.dir / "events.jsonl"
        started = time.monotonic()
        p, code = self.run_once("file:%s" % out, timeout=120)
        elapsed = time.monotonic() - started
        self.assert_clean_exit(p, code)
        with open(out) as f:
            got = [json.loads(line)["id"] for line in f]
        self.assertEqual(got, ids)
        print("\n  file sink: %d events in %.2fs, %.0f events/s (process start included)"
              % (n, elapsed, n / elapsed), file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
