#!/usr/bin/env python3
"""The Orders Service benchmark's orchestrator (run it through run.sh).

run.sh installs what is missing, builds build-bench/ and then runs this with
the environment below; everything here is standard library.

    BENCH_TMP          the temporary directory (made and removed by run.sh)
    BENCH_BUILD_DIR    the meson build of the service (build-bench/)
    BENCH_RESPONDER    the compiled empty libfcgi responder
    BENCH_STORAGE      the compiled storage-limit program
    BENCH_SECONDS      wrk -d per run (default 10)
    BENCH_RUNS         runs per scenario; the median run is reported (1)
    BENCH_WARMUP       seconds of unmeasured wrk before each scenario (1)
    BENCH_SCALES       orders in the database for the read scenarios
                       ("1000 1000000"); the write scenarios run at the first
    BENCH_THREADS, BENCH_CONNECTIONS   wrk -t / -c (2, 32)
    BENCH_OUT          also write the report to this file (optional)
    BENCH_SCREEN_SECONDS  the short run screening each ceiling setup (3)
    BENCH_CEILING_SETUPS  "P:T:K ..." the ceiling setups to screen
                       (processes, threads each, nginx upstream keepalive)
    BENCH_PROFILE      1: profile the workers with perf (cpu-clock, DWARF call
                       graphs) during one extra run of GET /orders/{id} and of
                       POST /orders, and add the top functions to the report
    WORKERS            pool size (default: nproc), DB_SYNCHRONOUS (full)

What runs, in order, all on 127.0.0.1 with the same wrk settings:
  1. the FastCGI ceilings: scripts/run-stack itself, pointed at a build
     directory whose fcgi/orders-fcgi is ceiling-orders-fcgi (empty libfcgi
     responders), so nginx config, socket and spawn-fcgi are the real
     stack's, in several setups (processes, threads, upstream keepalive:
     ceiling_setups) screened with a short run each; the best is measured in
     full and stays up, idle, until the end, for the paired runs below, and
     the project's former setup (WORKERS processes, a new connection per
     request) is measured in full beside it;
  2. the nginx ceiling: that same rendered nginx config with `location /`
     replaced by `return 200 '{"status":"ok"}'`;
  3. per scale: a fresh database seeded by seed.py, the real stack started
     by scripts/run-stack (pool + nginx + publisher with a file sink), and
     the scenarios; at the first scale, right before the write scenarios,
     the storage limit: storage_limit.c, one process doing the write
     transaction in a loop against a fresh migrated database.
     GET /orders/{id} and POST /orders are paired (measure(): a FastCGI
     ceiling run, or a storage-limit run, before and after each run), and
     their target ratios are the medians of the per-run ratios.

CPU per request is the utime+stime the worker pool (master and workers, and
workers that exited, through the master's cutime/cstime) and the publisher
spent between the start of a run and the moment the publisher has drained
the outbox after it, from /proc/PID/stat, divided by the requests.  Peak RSS
is VmHWM from /proc/PID/status: the largest worker's, and the publisher's.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")
IS_ROOT = os.geteuid() == 0
WORKER_USER = os.environ.get("WORKER_USER") or "www-data"
SECRET = "bench-secret-0123456789abcdef0123456789abcdef-not-for-production"


def say(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class Stop(Exception):
    """SIGTERM (run.sh forwards Ctrl-C as SIGTERM)."""


def on_term(signum, frame):
    raise Stop("signal %d" % signum)


def env_int(name, default, lo, hi):
    v = os.environ.get(name, "")
    if v == "":
        return default
    try:
        n = int(v)
    except ValueError:
        n = lo - 1
    if not lo <= n <= hi:
        sys.exit("bench: %s must be an integer from %d to %d" % (name, lo, hi))
    return n


class Settings:
    def __init__(self):
        self.tmp = os.environ["BENCH_TMP"]
        self.build = os.environ["BENCH_BUILD_DIR"]
        self.responder = os.environ["BENCH_RESPONDER"]
        self.storage = os.environ["BENCH_STORAGE"]
        self.seconds = env_int("BENCH_SECONDS", 10, 1, 3600)
        self.runs = env_int("BENCH_RUNS", 1, 1, 25)
        self.warmup = env_int("BENCH_WARMUP", 1, 0, 60)
        self.threads = env_int("BENCH_THREADS", 2, 1, 64)
        self.connections = env_int("BENCH_CONNECTIONS", 32, 1, 10000)
        self.workers = env_int("WORKERS", os.cpu_count() or 1, 1, 256)
        self.sync = (os.environ.get("DB_SYNCHRONOUS") or "full").lower()
        if self.sync not in ("full", "normal"):
            sys.exit("bench: DB_SYNCHRONOUS must be full or normal")
        scales = (os.environ.get("BENCH_SCALES") or "1000 1000000").split()
        try:
            self.scales = [int(s) for s in scales]
        except ValueError:
            sys.exit("bench: BENCH_SCALES must be integers, e.g. '1000 1000000'")
        if not self.scales or any(s < 1 or s > 50_000_000 for s in self.scales):
            sys.exit("bench: each of BENCH_SCALES must be 1..50000000")
        self.out = os.environ.get("BENCH_OUT") or None
        self.profile = bool(os.environ.get("BENCH_PROFILE"))
        self.screen = env_int("BENCH_SCREEN_SECONDS", 3, 1, 60)


S = None  # the Settings


# ---------------------------------------------------------------- processes

def register_session(pid):
    """run.sh's trap kills every session listed here, whatever happens."""
    with open(os.path.join(S.tmp, "sessions"), "a") as f:
        f.write("%d\n" % pid)


def read_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    rp = s.rindex(")")
    fields = s[rp + 2:].split()
    return {
        "pid": pid, "comm": s[s.index("(") + 1:rp], "ppid": int(fields[1]),
        "session": int(fields[3]), "utime": int(fields[11]), "stime": int(fields[12]),
        "cutime": int(fields[13]), "cstime": int(fields[14]),
    }


def session_procs(sid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = read_stat(int(d))
        except (OSError, ValueError, IndexError):
            continue
        if st["session"] == sid:
            out.append(st)
    return out


def kill_session(sid, grace=3.0):
    """TERM, then KILL, whatever is left in a session; returns what was left."""
    left = [p for p in session_procs(sid)]
    names = sorted({p["comm"] for p in left})
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        procs = session_procs(sid)
        if not procs:
            break
        for p in procs:
            try:
                os.kill(p["pid"], sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and session_procs(sid):
            time.sleep(0.05)
    return names


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path, timeout=2.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def wait_http_ok(port, path, proc, what, logs, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited early (%s):\n%s" % (what, proc.returncode, tail(logs)))
        try:
            if http_status(port, path) == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s not ready within %ss:\n%s" % (what, timeout, tail(logs)))


def tail(paths, n=3000):
    out = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                out.append("== %s\n%s" % (p, f.read().decode("utf-8", "replace")[-n:]))
        except OSError:
            pass
    return "\n".join(out)


def as_worker(argv):
    if IS_ROOT:
        return ["setpriv", "--reuid=" + WORKER_USER, "--regid=" + WORKER_USER,
                "--init-groups", "--"] + argv
    return argv


def make_worker_dir(path):
    os.makedirs(path, exist_ok=True)
    if IS_ROOT:
        shutil.chown(path, WORKER_USER, WORKER_USER)


def migrate(db_path):
    env = dict(os.environ, DATABASE_PATH=db_path, JWT_SECRET_KEY=SECRET,
               DB_SYNCHRONOUS=S.sync)
    subprocess.run([os.path.join(S.build, "fcgi", "orders-fcgi"), "--migrate"], env=env,
                   check=True, stdout=subprocess.DEVNULL, timeout=60)


class Stack:
    """scripts/run-stack in its own session, as the integration harness runs it."""

    def __init__(self, name, build, env=None):
        self.name = name
        self.build = build
        self.dir = os.path.join(S.tmp, name)
        self.runtime = os.path.join(self.dir, "var")
        self.db = os.path.join(self.runtime, "orders.db")
        self.port = free_port()
        self.extra_env = dict(env or {})
        self.proc = None
        self.leftovers = []

    def start(self):
        make_worker_dir(self.runtime)
        self.env = dict(os.environ)
        self.env.update({
            "HOST": "127.0.0.1", "PORT": str(self.port), "RUNTIME_DIR": self.runtime,
            "WORKERS": str(S.workers), "JWT_SECRET_KEY": SECRET, "BUILD_DIR": self.build,
            "DB_SYNCHRONOUS": S.sync, "LOG_LEVEL": "info",
            "EVENT_SINK": "file:" + os.path.join(self.runtime, "events.jsonl"),
        })
        self.env.update(self.extra_env)
        self.log = os.path.join(self.dir, "stack.log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([os.path.join(ROOT, "scripts", "run-stack")],
                                         env=self.env, cwd=self.dir, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        register_session(self.proc.pid)
        wait_http_ok(self.port, "/readyz", self.proc, "the %s stack" % self.name,
                     [self.log, os.path.join(self.runtime, "logs", "nginx-error.log")])
        # every worker has opened the database and prepared its statements
        time.sleep(0.5)

    def procs(self):
        return session_procs(self.proc.pid)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and self.procs():
            time.sleep(0.05)
        self.leftovers = kill_session(self.proc.pid)
        if self.leftovers:
            say("%s stack: still running after run-stack stopped, killed: %s"
                % (self.name, ", ".join(self.leftovers)))
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


class Nginx:
    """nginx alone, from a config file, in its own session."""

    def __init__(self, prefix, conf, port):
        self.prefix, self.conf, self.port = prefix, conf, port
        self.proc = None

    def start(self):
        err = os.path.join(self.prefix, "..", "logs", "nginx-error.log")
        self.proc = subprocess.Popen(["nginx", "-e", err, "-p", self.prefix, "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        register_session(self.proc.pid)
        wait_http_ok(self.port, "/", self.proc, "the nginx ceiling", [err])

    def procs(self):
        return session_procs(self.proc.pid)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        kill_session(self.proc.pid)
        self.proc = None


# ---------------------------------------------------------------- accounting

POOL_COMMS = ("orders-fcgi", "empty_responder")


def cpu_snapshot(procs):
    by_pid = {p["pid"]: p for p in procs}
    pool = pub = ngx = 0
    for p in procs:
        own = p["utime"] + p["stime"]
        if p["comm"] in POOL_COMMS:
            pool += own
            parent = by_pid.get(p["ppid"])
            if parent is None or parent["comm"] not in POOL_COMMS:
                # the pool master: workers that exited in the interval
                pool += p["cutime"] + p["cstime"]
        elif p["comm"].startswith("orders-publish"):
            pub += own
        elif p["comm"] == "nginx":
            ngx += own
    return {"pool": pool, "publisher": pub, "nginx": ngx}


def peak_rss(procs):
    by_pid = {p["pid"]: p for p in procs}
    worker = publisher = None
    for p in procs:
        if p["comm"] == "orders-fcgi":
            parent = by_pid.get(p["ppid"])
            if parent is not None and parent["comm"] == "orders-fcgi":
                v = vm_hwm_kib(p["pid"])
                if v is not None:
                    worker = max(worker or 0, v)
        elif p["comm"].startswith("orders-publish"):
            publisher = vm_hwm_kib(p["pid"])
    return worker, publisher


def rss_breakdown(procs):
    """Of the largest worker: resident anonymous and file-backed (shared
    libraries) memory and its proportional share (Pss), in KiB."""
    by_pid = {p["pid"]: p for p in procs}
    best = None
    for p in procs:
        parent = by_pid.get(p["ppid"])
        if p["comm"] == "orders-fcgi" and parent is not None and parent["comm"] == "orders-fcgi":
            v = vm_hwm_kib(p["pid"]) or 0
            if best is None or v > best[0]:
                best = (v, p["pid"])
    if best is None:
        return None
    out = {"hwm": best[0]}
    try:
        with open("/proc/%d/status" % best[1]) as f:
            for line in f:
                k = line.split(":")[0]
                if k in ("RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(line.split()[1])
        with open("/proc/%d/smaps_rollup" % best[1]) as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def outbox_pending(db):
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM events WHERE delivered_at IS NULL"
                               " AND parked_at IS NULL").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None


def wait_outbox_drained(db, timeout=60.0):
    """Seconds until the publisher delivered every event (None: not within timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        n = outbox_pending(db)
        if n == 0:
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


# ---------------------------------------------------------------- wrk

def run_wrk(port, script, env_extra, seconds, tag):
    env = dict(os.environ, BENCH_LUA=HERE)
    env.update(env_extra)
    cmd = ["wrk", "-t%d" % S.threads, "-c%d" % S.connections, "-d%ds" % seconds,
           "--latency", "--timeout", "10s", "-s", os.path.join(HERE, script),
           "http://127.0.0.1:%d/" % port]
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=seconds + 120)
    with open(os.path.join(S.tmp, "wrk.log"), "a") as f:
        f.write("### %s\n$ %s\n%s\n" % (tag, " ".join(cmd), p.stdout))
    for line in p.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            r = json.loads(line[len("BENCH_RESULT "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
            r["socket_errors"] = sum(r["errors_" + k] for k in ("connect", "read", "write", "timeout"))
            if r["non2xx"] is None:
                r["non2xx"] = r["errors_status"]
            return r
    raise RuntimeError("wrk gave no result for %s (exit %s):\n%s" % (tag, p.returncode, p.stdout[-3000:]))


def median_run(runs):
    """The run with the median requests/s (the lower middle for an even count)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    return ordered[(len(ordered) - 1) // 2]


def measure(target, label, script, env_extra, db=None, writes=False, pair=None):
    """Runs one scenario BENCH_RUNS times against target (a Stack or Nginx).

    pair, when given, measures the reference a run is compared with (a
    FastCGI ceiling run, a storage-limit run) and returns its rate.  It is
    measured before the first run and after every run, and each run is
    compared with the mean of the references right before and right after
    it: on a shared machine whose speed drifts from one minute (for the
    disk, one second) to the next, that ratio is far steadier than one
    against a ceiling measured minutes earlier.  The result then has
    "pair_ratio", the median of the per-run ratios, and "pair_all"."""
    if S.warmup:
        run_wrk(target.port, script, env_extra, S.warmup, label + " (warm-up)")
        if writes and db:
            wait_outbox_drained(db)
    runs = []
    refs = [pair()] if pair is not None else []
    for i in range(S.runs):
        before = cpu_snapshot(target.procs())
        r = run_wrk(target.port, script, env_extra, S.seconds, "%s run %d" % (label, i + 1))
        r["drain_s"] = wait_outbox_drained(db) if (writes and db) else 0.0
        after = cpu_snapshot(target.procs())
        procs = target.procs()
        r["rss_worker"], r["rss_publisher"] = peak_rss(procs)
        n = max(r["requests"], 1)
        r["cpu_us"] = (after["pool"] + after["publisher"] - before["pool"] - before["publisher"]) \
            * 1e6 / CLK_TCK / n
        r["nginx_cpu_us"] = (after["nginx"] - before["nginx"]) * 1e6 / CLK_TCK / n
        runs.append(r)
        say("  %-34s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %d%s"
            % (label, r["rps"], r["p50_us"] / 1000, r["p99_us"] / 1000, r["non2xx"],
               "  socket errors %d" % r["socket_errors"] if r["socket_errors"] else ""))
        time.sleep(0.5)
        if pair is not None:
            refs.append(pair())
            r["ref"] = (refs[-2] + refs[-1]) / 2
            r["ratio"] = r["rps"] / r["ref"] if r["ref"] else 0.0
    m = dict(median_run(runs))
    m["all_rps"] = [r["rps"] for r in runs]
    m["label"] = label
    if pair is not None:
        ratios = sorted(r["ratio"] for r in runs)
        m["pair_ratio"] = ratios[(len(ratios) - 1) // 2]
        m["pair_all"] = [(r["ref"], r["rps"]) for r in runs]
    return m


# ---------------------------------------------------------------- profile

def perf_works():
    try:
        p = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "--",
                            "true"], capture_output=True, timeout=30)
        return p.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def profile(target, label, script, env_extra, db=None, writes=False):
    """perf record on the pool's workers during one extra (unmeasured) run;
    returns the top of `perf report`, inclusive (children) and self."""
    procs = target.procs()
    by_pid = {p["pid"]: p for p in procs}
    workers = [str(p["pid"]) for p in procs if p["comm"] == "orders-fcgi"
               and by_pid.get(p["ppid"], {}).get("comm") == "orders-fcgi"]
    if not workers:
        return None
    data = os.path.join(S.tmp, "perf-%s.data" % re.sub(r"[^a-z]+", "-", label.lower()).strip("-"))
    rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "499",
                            "--call-graph", "dwarf,16384", "-p", ",".join(workers), "-o", data],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        run_wrk(target.port, script, env_extra, S.seconds, label + " (profiled)")
    finally:
        rec.send_signal(signal.SIGINT)
        try:
            rec.wait(60)
        except subprocess.TimeoutExpired:
            rec.kill()
            rec.wait()
    if writes and db:
        wait_outbox_drained(db)

    def top(args, n):
        p = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none",
                            "--percent-limit", "0.5"] + args, capture_output=True, text=True,
                           timeout=300)
        lines = [re.sub(r"(\s+-)+\s*$", "", l) for l in p.stdout.splitlines()
                 if l.strip() and not l.startswith("#")]
        return lines[:n]
    return {"children": top(["--children", "--sort", "dso,symbol"], 32),
            "self": top(["--no-children", "--sort", "dso,symbol"], 20)}


# ---------------------------------------------------------------- tokens

def cursor_at(position):
    """The cursor the service writes for a position (core/cursor.c): version
    1, the position big-endian, HMAC-SHA-256 truncated to 16 bytes with the
    key HMAC-SHA-256(secret, "orders cursor key v1"), unpadded base64url.
    Written out here so that the benchmark can start a walk in the middle."""
    import base64
    import hashlib
    import hmac
    key = hmac.new(SECRET.encode(), b"orders cursor key v1", hashlib.sha256).digest()
    body = bytes([1]) + position.to_bytes(8, "big")
    tag = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode()


def mint_token():
    tool = os.path.join(S.build, "tools", "orders-token")
    if os.access(tool, os.X_OK):
        env = dict(os.environ, JWT_SECRET_KEY=SECRET)
        for k in ("JWT_ALGORITHM", "JWT_ISSUER", "JWT_AUDIENCE"):
            env.pop(k, None)
        p = subprocess.run([tool, "--scopes", "orders.read", "orders.write", "--sub",
                            "bench", "--exp-hours", "12"], env=env, capture_output=True,
                           text=True, timeout=30)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip(), os.path.relpath(tool, ROOT)
        say("orders-token failed (%s); minting in Python" % p.stderr.strip())
    import base64
    import hashlib
    import hmac

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps({"sub": "bench", "scope": "orders.read orders.write", "iat": now,
                           "exp": now + 12 * 3600}, separators=(",", ":")).encode())
    sig = hmac.new(SECRET.encode(), (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64(sig), "Python (hmac, HS256)"


# ---------------------------------------------------------------- phases

def storage_run(tag):
    """One run of the storage-limit program on a fresh migrated database."""
    d = os.path.join(S.tmp, "storage")
    shutil.rmtree(d, ignore_errors=True)
    make_worker_dir(d)
    db = os.path.join(d, "orders.db")
    migrate(db)
    env = dict(os.environ, DB_SYNCHRONOUS=S.sync)
    p = subprocess.run(as_worker([S.storage, db, str(S.seconds)]), env=env,
                       capture_output=True, text=True, timeout=S.seconds + 120)
    m = re.search(r"transactions/s: ([0-9.]+)", p.stdout)
    if p.returncode != 0 or not m:
        raise RuntimeError("storage_limit failed: %s %s" % (p.stdout, p.stderr))
    shutil.rmtree(d, ignore_errors=True)
    say("  %-34s %9.0f transactions/s" % ("storage limit (%s)" % tag, float(m.group(1))))
    return float(m.group(1))


def storage_limit():
    results = [storage_run("run %d" % (i + 1)) for i in range(S.runs)]
    ordered = sorted(results)
    return {"tps": ordered[(len(ordered) - 1) // 2], "all": results}


CEILING_PUBLISHER = """#!/bin/sh
# Stand-in for orders-publisher in the FastCGI ceiling's build directory:
# there is no database to publish from; it passes run-stack's configuration
# check and waits to be stopped.
[ "${1:-}" = --check-config ] && exit 0
exec sleep 86400
"""


def fake_build():
    """A build directory whose orders-fcgi starts empty responders (and whose
    publisher does nothing), for scripts/run-stack."""
    d = os.path.join(S.tmp, "ceiling-build")
    for sub in ("fcgi", "publisher"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    dst = os.path.join(d, "fcgi", "orders-fcgi")
    shutil.copy(os.path.join(HERE, "ceiling-orders-fcgi"), dst)
    os.chmod(dst, 0o755)
    pub = os.path.join(d, "publisher", "orders-publisher")
    with open(pub, "w") as f:
        f.write(CEILING_PUBLISHER)
    os.chmod(pub, 0o755)
    return d


def nginx_ceiling_conf(fcgi_runtime, runtime, port):
    """The real stack's rendered nginx config (nginx.conf and the site it
    includes, from the FastCGI ceiling's runtime dir), answering from nginx
    itself."""
    src = os.path.join(fcgi_runtime, "nginx")
    for sub in ("nginx", "logs"):
        os.makedirs(os.path.join(runtime, sub), exist_ok=True)
    for name in os.listdir(src):
        path = os.path.join(src, name)
        if name == "nginx.pid" or not os.path.isfile(path):
            continue
        with open(path) as f:
            text = f.read().replace(fcgi_runtime, runtime)
        if name == "orders-site.conf":
            text, n = re.subn(r"listen 127\.0\.0\.1:\d+;", "listen 127.0.0.1:%d;" % port, text)
            if n != 1:
                raise RuntimeError("nginx ceiling: no 'listen 127.0.0.1:PORT;' in the stack's site")
            text, n = re.subn(r"\n([ \t]*)location / \{\n.*?\n\1\}",
                              lambda m: "\n%(i)slocation / {\n%(i)s    return 200 '{\"status\":\"ok\"}';\n%(i)s}"
                              % {"i": m.group(1)}, text, count=1, flags=re.S)
            if n != 1:
                raise RuntimeError("nginx ceiling: no 'location / { ... }' block in the stack's site")
        with open(os.path.join(runtime, "nginx", name), "w") as f:
            f.write(text)
    if not os.path.isfile(os.path.join(runtime, "nginx", "orders-site.conf")):
        raise RuntimeError("nginx ceiling: the stack rendered no orders-site.conf")
    return os.path.join(runtime, "nginx", "nginx.conf")


def ceiling_setups():
    """The empty-responder setups the benchmark tries for the best FastCGI
    ceiling: (processes, threads per process, nginx upstream keepalive).
    BENCH_CEILING_SETUPS="P:T:K ..." replaces the list.  The first is the
    project's former configuration: WORKERS processes, one connection per
    request."""
    spec = os.environ.get("BENCH_CEILING_SETUPS")
    if spec:
        try:
            out = [tuple(int(x) for x in item.split(":")) for item in spec.split()]
        except ValueError:
            out = []
        if not out or any(len(t) != 3 or t[0] < 1 or t[1] < 1 or t[2] < 0 for t in out):
            sys.exit("bench: BENCH_CEILING_SETUPS must be 'P:T:K ...' (processes, threads,"
                     " keepalive), e.g. '2:1:0 8:1:2'")
        return out
    w = S.workers
    return [(w, 1, 0), (4 * w, 1, 0), (4 * w, 1, 2), (8 * w, 1, 4), (w, 8, 4), (w, 4, 8)]


def setup_name(setup):
    p, t, k = setup
    return "%d process%s x %d thread%s, %s" % (
        p, "es" if p > 1 else "", t, "s" if t > 1 else "",
        "keepalive %d" % k if k else "one connection per request")


def ceiling_stack(setup):
    p, t, k = setup
    return Stack("fcgi-ceiling-%d-%d-%d" % setup, fake_build(),
                 {"BENCH_RESPONDER": S.responder, "WORKERS": str(p),
                  "RESPONDER_THREADS": str(t), "UPSTREAM_KEEPALIVE": str(k)})


def ceilings(results):
    """Measures the ceilings.  Every setup of ceiling_setups() is screened
    with one short run; the best by requests/s becomes the FastCGI ceiling
    every GET /orders/{id} run is paired with (its stack stays up, idle,
    until main() stops it), and the project's former configuration (one
    connection per request) is measured in full beside it."""
    setups = ceiling_setups()
    say("FastCGI ceilings: the real nginx config in front of empty libfcgi responders;"
        " screening %d setups, %ds each" % (len(setups), S.screen))
    stacks, screen = {}, []
    try:
        for setup in setups:
            st = ceiling_stack(setup)
            stacks[setup] = st
            st.start()
            run_wrk(st.port, "static.lua", {"BENCH_PATH": "/healthz"}, 1,
                    "screen %s (warm-up)" % setup_name(setup))
            r = run_wrk(st.port, "static.lua", {"BENCH_PATH": "/healthz"}, S.screen,
                        "screen %s" % setup_name(setup))
            screen.append((setup, r["rps"], r["p99_us"]))
            say("  %-52s %9.0f req/s  p99 %7.2f ms" % (setup_name(setup), r["rps"],
                                                      r["p99_us"] / 1000))
            if setup != setups[0]:
                st.stop()
                del stacks[setup]
        # The best by requests/s among the setups whose tail is not a
        # starvation's (a blocking responder parked on kept connections
        # answers fast on those and leaves fresh ones waiting for seconds):
        # p99 at most 3 times the lowest of the screen.
        low = min(p99 for _, _, p99 in screen)
        best = max((x for x in screen if x[2] <= 3 * low), key=lambda x: x[1])[0]
        results["screen"] = screen
        results["best_setup"] = best
        if best not in stacks:
            stacks[best] = ceiling_stack(best)
            stacks[best].start()
        results["fcgi_stack"] = stacks[best]
        results["fcgi"] = measure(stacks[best], "FastCGI ceiling, best (%s)" % setup_name(best),
                                  "static.lua", {"BENCH_PATH": "/healthz"})
        former = stacks[setups[0]]
        if setups[0] != best:
            results["fcgi_former"] = measure(former, "FastCGI ceiling, %s" % setup_name(setups[0]),
                                             "static.lua", {"BENCH_PATH": "/healthz"})
        else:
            results["fcgi_former"] = results["fcgi"]
        results["former_setup"] = setups[0]
        say("nginx ceiling: the same config, location / answering with return 200")
        runtime = os.path.join(S.tmp, "nginx-ceiling", "var")
        port = free_port()
        conf = nginx_ceiling_conf(former.runtime, runtime, port)
        ng = Nginx(os.path.join(runtime, "nginx"), conf, port)
        try:
            ng.start()
            results["nginx"] = measure(ng, "nginx ceiling (return 200)", "static.lua",
                                       {"BENCH_PATH": "/"})
        finally:
            ng.stop()
    finally:
        for setup, st in stacks.items():
            if st is not results.get("fcgi_stack"):
                st.stop()


def scale_phase(scale, first, token, results, notes):
    name = "scale-%d" % scale
    st = Stack(name, S.build)
    make_worker_dir(st.runtime)
    migrate(st.db)
    ids = os.path.join(S.tmp, "ids-%d.txt" % scale)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, os.path.join(HERE, "seed.py"), st.db, str(scale), ids],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("seeding failed: %s" % (p.stdout + p.stderr))
    say("%s (%.1fs)" % (p.stdout.strip(), time.monotonic() - t0))
    if IS_ROOT:
        for f in os.listdir(st.runtime):
            shutil.chown(os.path.join(st.runtime, f), WORKER_USER, WORKER_USER)
    say("the real stack, %d orders, %d workers, DB_SYNCHRONOUS=%s" % (scale, S.workers, S.sync))
    auth = {"TOKEN": token}
    rows = []
    try:
        st.start()

        def ceiling_pair():
            r = run_wrk(results["fcgi_stack"].port, "static.lua", {"BENCH_PATH": "/healthz"},
                        S.seconds, "FastCGI ceiling (paired)")
            say("  %-34s %9.0f req/s  p99 %7.2f ms" % ("FastCGI ceiling (paired)", r["rps"],
                                                        r["p99_us"] / 1000))
            # the ceiling's own tail, next to the scenario's, in the report
            results.setdefault("ceiling_pair_p99", {}).setdefault(scale, []).append(r["p99_us"])
            return r["rps"]

        def storage_pair():
            return storage_run("paired")

        def run(label, script, env, writes=False, prof=False, pair=None):
            r = measure(st, label, script, dict(auth, **env), db=st.db, writes=writes,
                        pair=pair)
            r["scale"] = scale
            rows.append(r)
            if prof and S.profile:
                say("  profiling the workers during one more run of %s" % label)
                results.setdefault("profiles", []).append(
                    (label, profile(st, label, script, dict(auth, **env), st.db, writes)))
            return r

        if first:
            run("GET /healthz", "static.lua", {"BENCH_PATH": "/healthz", "TOKEN": ""})
        run("GET /orders/{id}", "get_by_id.lua", {"BENCH_IDS": ids}, prof=first,
            pair=ceiling_pair)
        run("GET /orders?limit=20", "static.lua", {"BENCH_PATH": "/orders?limit=20"})
        # A cursor page in the middle of the list (seed.py's rows have the
        # sequence 1..N): keyset pagination should cost what the first page
        # does.  The deepest offset the service allows is beside it.
        middle = "/orders?limit=20&cursor=" + cursor_at(scale // 2)
        run("GET /orders?limit=20&cursor=(N/2)", "static.lua", {"BENCH_PATH": middle})
        run("GET /orders?limit=20&status=paid&cursor=(N/2)", "static.lua",
            {"BENCH_PATH": middle + "&status=paid"})
        deep = min(scale // 2, 10000)
        run("GET /orders?limit=20&offset=%d" % deep, "static.lua",
            {"BENCH_PATH": "/orders?limit=20&offset=%d" % deep})
        if first:
            # fsync times drift with whatever else the disk is doing, so the
            # storage limit is measured right before the write scenarios.
            say("storage limit: the write transaction alone, %ds per run" % S.seconds)
            results["storage"] = storage_limit()
            body = '{"customerId":"customer-bench","items":["item-1","item-2"]}'
            run("POST /orders", "static.lua",
                {"BENCH_METHOD": "POST", "BENCH_PATH": "/orders", "BENCH_BODY": body},
                writes=True, prof=True, pair=storage_pair)
            run("PATCH flow (POST + 3 PATCH)", "patch_flow.lua", {}, writes=True)
            run("mix 90% read / 10% write", "mix.lua", {"BENCH_IDS": ids}, writes=True)
        results.setdefault("memory", []).append((scale, rss_breakdown(st.procs())))
    finally:
        st.stop()
        if st.leftovers:
            notes.append("%s: after run-stack stopped, %s was still running and had to be"
                         " signalled by the benchmark." % (name, ", ".join(st.leftovers)))
        if os.environ.get("BENCH_KEEP"):
            # the logs stay for reading; a million-order database does not
            for f in os.listdir(st.runtime):
                if f.startswith("orders.db"):
                    os.unlink(os.path.join(st.runtime, f))
        else:
            shutil.rmtree(st.dir, ignore_errors=True)
    results["rows"].extend(rows)


# ---------------------------------------------------------------- report

def cmd_out(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    fs = " ".join(cmd_out(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", S.tmp]).split()) or "?"
    rev = cmd_out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = cmd_out(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    return {
        "nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release, "mem": mem,
        "nginx": cmd_out(["nginx", "-v"]).replace("nginx version: ", ""),
        "sqlite": cmd_out(["pkg-config", "--modversion", "sqlite3"]),
        "fcgi": cmd_out(["pkg-config", "--modversion", "fcgi"]),
        "wrk": (cmd_out(["wrk", "-v"]).splitlines() or ["?"])[0].split(" Copyright")[0],
        "fs": fs, "commit": rev + (" (with uncommitted changes)" if dirty else ""),
        "load": open("/proc/loadavg").read().split()[:3],
    }


def fmt_ms(us):
    return "%.2f" % (us / 1000.0)


def fmt_ratio(x, base):
    return "%.0f%%" % (100.0 * x / base) if base else "-"


def fmt_mib(kib):
    return "%.1f" % (kib / 1024.0) if kib else "-"


def report(results, m, token_how, started, notes):
    nginx, fcgi, storage = results["nginx"], results["fcgi"], results["storage"]
    L = []
    w = L.append
    w("## Orders Service benchmark")
    w("")
    w("`%s`: wrk -t%d -c%d -d%ds --latency, %d run(s) per scenario (the median run by"
      " requests/s is shown), %ds warm-up, WORKERS=%d, DB_SYNCHRONOUS=%s, %s/"
      " (meson --buildtype=release)." % (results["command"], S.threads, S.connections,
                                          S.seconds, S.runs, S.warmup, S.workers, S.sync,
                                          os.path.relpath(S.build, ROOT)))
    w("")
    w("| orders | scenario | req/s | p50 ms | p99 ms | non-2xx | socket err | vs nginx | vs FastCGI"
      " best | vs FastCGI 1 conn/req | vs storage | CPU µs/req | worker RSS MiB | publisher RSS MiB |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    former = results["fcgi_former"]
    ceiling_rows = [(nginx, "ceiling: nginx `return 200`", False),
                    (fcgi, "ceiling: empty libfcgi responder, best: %s"
                     % setup_name(results["best_setup"]), True)]
    if former is not fcgi:
        ceiling_rows.append((former, "ceiling: empty libfcgi responder, %s"
                             % setup_name(results["former_setup"]), True))
    for r, name, responder in ceiling_rows:
        w("| - | %s | %.0f | %s | %s | %d | %d | %s | %s | %s | - | %s | - | - |"
          % (name, r["rps"], fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]), r["non2xx"],
             r["socket_errors"], fmt_ratio(r["rps"], nginx["rps"]),
             fmt_ratio(r["rps"], fcgi["rps"]), fmt_ratio(r["rps"], former["rps"]),
             "%.1f" % r["cpu_us"] if responder else "-"))
    w("| - | storage limit: the write transaction, one process | %.0f tx/s | - | - | - | - | - | - |"
      " - | 100%% | - | - | - |" % storage["tps"])
    for r in results["rows"]:
        is_write = r["label"].startswith(("POST", "PATCH"))
        vs_fcgi = fmt_ratio(r["rps"], fcgi["rps"])
        vs_storage = fmt_ratio(r["rps"], storage["tps"]) if is_write else "-"
        if "pair_ratio" in r:  # paired runs: the median of the per-run ratios
            paired = "**%.0f%%** (paired)" % (100 * r["pair_ratio"])
            if is_write:
                vs_storage = paired
            else:
                vs_fcgi = paired
        w("| %s | %s | %.0f | %s | %s | %d | %d | %s | %s | %s | %s | %.1f | %s | %s |"
          % ("{:,}".format(r["scale"]), r["label"], r["rps"], fmt_ms(r["p50_us"]),
             fmt_ms(r["p99_us"]), r["non2xx"], r["socket_errors"],
             fmt_ratio(r["rps"], nginx["rps"]), vs_fcgi, fmt_ratio(r["rps"], former["rps"]),
             vs_storage, r["cpu_us"],
             fmt_mib(r["rss_worker"]), fmt_mib(r["rss_publisher"])))
    w("")
    w("- FastCGI ceilings: the empty responder (tests/bench/empty_responder.c) behind the"
      " real stack's nginx config, in the setups screened with one %ds run each (req/s, p99"
      " ms): %s.  The best by req/s among those whose p99 is at most 3 times the lowest is the"
      " reference (\"vs FastCGI best\", paired below); the first"
      " setup is the project's former configuration, a new upstream connection per request."
      % (S.screen, "; ".join("%s %.0f, %s" % (setup_name(su), rps, fmt_ms(p99))
                              for su, rps, p99 in results["screen"])))
    w("- CPU µs/req: user+system time of the worker pool (master, workers) and the publisher"
      " from the start of the run until the publisher has drained the outbox, per request;"
      " nginx's own share is listed below.  RSS: VmHWM (peak resident set) of the largest"
      " worker and of the publisher, as of the end of that scenario.")
    w("- vs storage: requests/s over the storage limit (the same BEGIN IMMEDIATE; INSERT"
      " orders; INSERT events; COMMIT in a loop in one process, same pragmas, fresh database);"
      " for the PATCH flow every request is one such write transaction as well.")
    w("- (paired): each run of GET /orders/{id} is compared with the mean of two runs of the"
      " FastCGI ceiling right before and right after it (its stack stays up, idle, for the"
      " whole benchmark), each run of POST /orders with two runs of the storage limit; the"
      " ratio shown is the median of the per-run ratios, which on a shared machine whose"
      " speed drifts is steadier than a ratio to a ceiling measured minutes earlier.  The"
      " other ratios are to the ceilings in the first rows.")
    pairs = ["%s @%d: %s" % (r["label"], r["scale"], ", ".join(
        "%.0f/%.0f" % (rps, ref) for ref, rps in r["pair_all"]))
        for r in results["rows"] if "pair_all" in r]
    if pairs:
        w("- Paired runs (scenario/mean reference): " + "; ".join(pairs) + ".")
    tails = results.get("ceiling_pair_p99", {})
    if tails:
        w("- p99 of the FastCGI ceiling itself in those paired runs (ms): " + "; ".join(
            "@%d: %s" % (sc, ", ".join(fmt_ms(x) for x in v)) for sc, v in sorted(tails.items()))
          + ": the empty responder's own tail, on this machine, against the p99 target.")
    w("- Deep pages: a cursor page reads one index range from its position, so the page at N/2"
      " should cost what the first page does; offsets walk their entries first and are refused"
      " past 10000 (the row at offset min(N/2, 10000) is the deepest allowed).")
    for r in results["rows"]:
        ex = r.get("extra") or {}
        if "flows" in ex:
            w("- PATCH flow: %d POST, %d PATCH, %d orders walked to delivered (median run)."
              % (ex.get("posts", 0), ex.get("patches", 0), ex.get("flows", 0)))
    drains = ["%s %s" % (r["label"], "%.1fs" % r["drain_s"] if r["drain_s"] is not None
                         else "not within 60 s") for r in results["rows"]
              if r.get("drain_s", 0) != 0]
    if drains:
        w("- Publisher catch-up after the run (outbox empty): " + ", ".join(drains) + ".")
    ng = ["%s %.1f" % (r["label"] + (" @%d" % r["scale"]), r["nginx_cpu_us"])
          for r in results["rows"]]
    w("- nginx CPU µs/req: " + ", ".join(ng) + "; ceilings: return 200 %.1f, FastCGI best %.1f,"
      " FastCGI 1 conn/req %.1f." % (nginx["nginx_cpu_us"], fcgi["nginx_cpu_us"],
                                     former["nginx_cpu_us"]))
    if S.runs > 1:
        w("- All runs (req/s): " + "; ".join(
            "%s%s: %s" % (r["label"], " @%d" % r["scale"] if "scale" in r else "",
                          ", ".join("%.0f" % x for x in r["all_rps"]))
            for r in [nginx, fcgi] + ([former] if former is not fcgi else []) + results["rows"]) +
          "; storage limit: " + ", ".join("%.0f" % x for x in storage["all"]) + ".")
    for scale, mem in results.get("memory", []):
        if mem:
            w("- Largest worker at %s orders: VmHWM %.1f MiB = anonymous %.1f MiB + file-backed"
              " (shared libraries, shared with the other workers) %.1f MiB; Pss %.1f MiB."
              % ("{:,}".format(scale), mem["hwm"] / 1024, mem.get("RssAnon", 0) / 1024,
                 mem.get("RssFile", 0) / 1024, mem.get("Pss", 0) / 1024))
    w("- Tokens minted by %s." % token_how)
    for n in notes:
        w("- " + n)
    w("")
    w("### Targets")
    w("")
    for r in results["rows"]:
        if r["label"] == "GET /orders/{id}":
            ratio = r.get("pair_ratio", r["rps"] / fcgi["rps"])
            ok = ratio >= 0.75 and r["p99_us"] < 5000
            w("- GET /orders/{id} at %s orders: %.0f%% of the best FastCGI ceiling%s (target >= 75%%),"
              " p99 %.2f ms (target < 5 ms): **%s**"
              % ("{:,}".format(r["scale"]), 100 * ratio,
                 " (paired)" if "pair_ratio" in r else "", r["p99_us"] / 1000,
                 "met" if ok else "missed"))
    for r in results["rows"]:
        if r["label"] == "POST /orders":
            ratio = r.get("pair_ratio", r["rps"] / storage["tps"])
            ok = ratio >= 0.60
            w("- POST /orders: %.0f%% of the storage limit%s (target >= 60%%): **%s**"
              % (100 * ratio, " (paired)" if "pair_ratio" in r else "",
                 "met" if ok else "missed"))
    for scale, mem in results.get("memory", []):
        if mem and "Pss" in mem:
            w("- worker Pss at %s orders %.1f MiB (target < 3 MiB): **%s**"
              % ("{:,}".format(scale), mem["Pss"] / 1024,
                 "met" if mem["Pss"] < 3 * 1024 else "missed"))
    w("")
    for label, prof in results.get("profiles", []):
        if not prof:
            continue
        w("### Profile of the workers: %s" % label)
        w("")
        w("perf record -e cpu-clock -F 499 --call-graph dwarf on every worker during one extra"
          " run; `perf report --children` (inclusive), then self time.  In a VM, cpu-clock"
          " samples taken while a worker sleeps land on the kernel's finish_task_switch.")
        w("")
        w("```")
        w("inclusive:")
        w("\n".join(prof["children"]))
        w("self:")
        w("\n".join(prof["self"]))
        w("```")
        w("")
    w("### Machine")
    w("")
    w("- %d CPUs, %s, %s RAM, Linux %s" % (m["nproc"], m["cpu"], m["mem"], m["kernel"]))
    w("- nginx %s, SQLite %s, libfcgi %s, %s" % (m["nginx"], m["sqlite"], m["fcgi"], m["wrk"]))
    w("- database on %s; load average at start %s, at end %s; commit %s"
      % (m["fs"], " ".join(m["load"]), " ".join(open("/proc/loadavg").read().split()[:3]),
         m["commit"]))
    w("- total time %.0fs" % (time.monotonic() - started))
    return "\n".join(L) + "\n"


def main():
    global S
    signal.signal(signal.SIGTERM, on_term)
    S = Settings()
    started = time.monotonic()
    settings = ["BENCH_SECONDS=%d" % S.seconds, "BENCH_RUNS=%d" % S.runs]
    if S.scales != [1000, 1000000]:
        settings.append("BENCH_SCALES='%s'" % " ".join(map(str, S.scales)))
    results = {"rows": [], "command": " ".join(settings + ["tests/bench/run.sh"])}
    notes = []
    m = machine()
    if S.profile and not perf_works():
        say("BENCH_PROFILE: perf cannot record here (perf record -e cpu-clock failed); no profile")
        S.profile = False
    token, token_how = mint_token()
    try:
        ceilings(results)
        for i, scale in enumerate(S.scales):
            scale_phase(scale, i == 0, token, results, notes)
    finally:
        if results.get("fcgi_stack") is not None:
            results["fcgi_stack"].stop()
    text = report(results, m, token_how, started, notes)
    path = os.path.join(S.tmp, "report.md")
    with open(path, "w") as f:
        f.write(text)
    if S.out:
        with open(S.out, "w") as f:
            f.write(text)
    sys.stdout.write("\n" + text)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Stop, KeyboardInterrupt):
        say("interrupted")
        sys.exit(130)
