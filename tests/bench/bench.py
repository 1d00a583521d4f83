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
    BENCH_ENGINES      "sqlite postgres" (default when PostgreSQL 15 is
                       installed, else "sqlite", and the report says why);
                       postgres asked for and not installed: a hard stop
    BENCH_PG_SCALES    orders in the PostgreSQL database (the first of
                       BENCH_SCALES)
    PG_BIN             PostgreSQL's binaries (/usr/lib/postgresql/15/bin)
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
     their target ratios are the medians of the per-run ratios.  At the
     first scale the request classes of a mix are also measured apart: two
     wrk processes at once, GET /orders/{id} on 90% of the connections and
     POST /orders on 10%, each also alone at its connections right before;
  4. PostgreSQL (BENCH_ENGINES): a private PostgreSQL 15 in the temporary
     directory (tests/integration/pg.py's, with fsync and synchronous
     commits on: PG_SETTINGS), per BENCH_PG_SCALES a database seeded like
     SQLite's, GET /orders/{id} and POST /orders through one stack, then
     through two stacks (two run-stacks, each its own nginx, pool and
     publisher) on that one database, two wrk processes at once.

CPU per request is the utime+stime the worker pool (master and workers, and
workers that exited, through the master's cutime/cstime) and the publisher
spent between the start of a run and the moment the publisher has drained
the outbox after it, from /proc/PID/stat, divided by the requests; on
PostgreSQL, the server's own (the postmaster and its children) apart.  Peak
RSS is VmHWM from /proc/PID/status: the largest worker's, and the
publisher's; Pss (/proc/PID/smaps_rollup) of every worker, the largest and
the mean, and (as root) the largest counted among the stack's own processes
(stack_pss: what a server running only the stack shows, whatever else runs
on the benchmark machine), read at rest 1.5 s after the last request.
"""
import array
import collections
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
        self.engines, self.pg_missing = engines()
        pg_scales = os.environ.get("BENCH_PG_SCALES") or str(self.scales[0])
        try:
            self.pg_scales = sorted({int(s) for s in pg_scales.split()})
        except ValueError:
            self.pg_scales = []
        if not self.pg_scales or any(s < 1 or s > 50_000_000 for s in self.pg_scales):
            sys.exit("bench: BENCH_PG_SCALES must be integers 1..50000000, e.g. '1000'")
        self.out = os.environ.get("BENCH_OUT") or None
        self.profile = bool(os.environ.get("BENCH_PROFILE"))
        self.screen = env_int("BENCH_SCREEN_SECONDS", 3, 1, 60)


S = None  # the Settings

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")


def pg_installed():
    """The PostgreSQL 15 server binaries (Debian's postgresql-15) and psql."""
    return (all(os.access(os.path.join(PG_BIN, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres"))
            and shutil.which("psql") is not None)


def engines():
    """BENCH_ENGINES ("sqlite postgres", either or both).  Unset: SQLite, and
    PostgreSQL too when its server is installed; otherwise the report says
    that it was not measured and why.  Asked for and missing: a hard stop.
    Returns (engines, why PostgreSQL is missing or None)."""
    spec = os.environ.get("BENCH_ENGINES", "").split()
    if not spec:
        if pg_installed():
            return ["sqlite", "postgres"], None
        return ["sqlite"], ("PostgreSQL 15 is not installed (%s/postgres, psql): not measured;"
                            " `scripts/install-deps test` installs it" % PG_BIN)
    if any(e not in ("sqlite", "postgres") for e in spec):
        sys.exit("bench: BENCH_ENGINES must list sqlite and/or postgres, e.g. 'sqlite postgres'")
    if "postgres" in spec and not pg_installed():
        sys.exit("bench: BENCH_ENGINES asks for postgres, but the PostgreSQL 15 server (%s:"
                 " initdb, pg_ctl, postgres) or psql is not installed: as root run"
                 " apt-get install -y postgresql-15 postgresql-client-15 (or scripts/install-deps test)"
                 % PG_BIN)
    return [e for e in ("sqlite", "postgres") if e in spec], None


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


def proc_kib(pid, name, key):
    """The kB figure of one line ("VmHWM:", "Pss:") of /proc/PID/NAME, or
    None when the process is gone."""
    try:
        with open("/proc/%d/%s" % (pid, name)) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def vm_hwm_kib(pid):
    return proc_kib(pid, "status", "VmHWM:")


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


def pss_kib(pid):
    """Proportional set size (Pss) from /proc/PID/smaps_rollup: the pages
    the process alone uses plus its share of those it shares (the shared
    libraries, the master's pages after fork) with the other processes."""
    return proc_kib(pid, "smaps_rollup", "Pss:")


def private_kib(pid):
    """Uss: the pages no other process maps (smaps_rollup), or None."""
    a, b = proc_kib(pid, "smaps_rollup", "Private_Clean:"), proc_kib(pid, "smaps_rollup",
                                                                       "Private_Dirty:")
    return None if a is None or b is None else a + b


PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def page_frames(pid):
    """The page frames of pid's resident pages, one entry per mapping of a
    frame (from /proc/PID/pagemap), or None when they cannot be read (the
    frame numbers need CAP_SYS_ADMIN: root) or the process is gone."""
    frames = []
    try:
        with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/pagemap" % pid, "rb") as pm:
            for line in maps:
                lo, hi = (int(x, 16) for x in line.split(None, 1)[0].split("-"))
                if line.rstrip().endswith("[vsyscall]"):
                    continue
                pm.seek(lo // 4096 * 8)
                entries = array.array("Q")
                entries.frombytes(pm.read((hi - lo) // 4096 * 8))
                frames.extend(e & ((1 << 55) - 1) for e in entries if e >> 63)
    except (OSError, ValueError):
        return None
    if frames and not any(frames):
        return None
    return frames


def stack_pss(workers, procs):
    """{worker pid: KiB}: each worker's Pss as a machine that runs nothing
    but this stack would show it, a page shared with other processes of the
    stack (the other workers, the master, the publisher, nginx) divided by
    how many of them map it.  The kernel's Pss divides by every process on
    the machine, so it falls when other programs that map the same
    libraries run beside the benchmark (0.7 MiB less per worker measured
    beside other service stacks), and that is not what an operator's server
    shows.  None without root."""
    maps = {}
    for p in procs:
        f = page_frames(p["pid"])
        if f is None and p["pid"] in workers:
            return None
        maps[p["pid"]] = f or []
    count = collections.Counter()
    for f in maps.values():
        count.update(f)
    return {w: sum(PAGE_KIB / count[x] for x in maps[w]) for w in workers}


def rss_breakdown(procs):
    """The pool's workers' memory, in KiB: of the largest worker by peak RSS
    (VmHWM), its resident anonymous and file-backed (shared libraries)
    memory; over every worker, the largest and the mean Pss, the largest
    Pss counted among the stack's processes (stack_pss, as root) and the
    largest private memory (Uss); and the publisher's peak RSS."""
    by_pid = {p["pid"]: p for p in procs}
    best = None
    pss = []
    uss = []
    workers = []
    publisher = None
    for p in procs:
        parent = by_pid.get(p["ppid"])
        if p["comm"] == "orders-fcgi" and parent is not None and parent["comm"] == "orders-fcgi":
            workers.append(p["pid"])
            v = vm_hwm_kib(p["pid"]) or 0
            if best is None or v > best[0]:
                best = (v, p["pid"])
            x = pss_kib(p["pid"])
            if x is not None:
                pss.append(x)
            x = private_kib(p["pid"])
            if x is not None:
                uss.append(x)
        elif p["comm"].startswith("orders-publish"):
            publisher = vm_hwm_kib(p["pid"])
    if best is None:
        return None
    out = {"hwm": best[0], "workers": len(pss), "publisher_hwm": publisher}
    if pss:
        out["pss_max"] = max(pss)
        out["pss_mean"] = sum(pss) / len(pss)
    if uss:
        out["uss_max"] = max(uss)
    own = stack_pss(workers, procs)
    if own:
        out["stack_pss_max"] = max(own.values())
    try:
        with open("/proc/%d/status" % best[1]) as f:
            for line in f:
                k = line.split(":")[0]
                if k in ("RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(line.split()[1])
    except OSError:
        pass
    x = pss_kib(best[1])
    if x is not None:
        out["Pss"] = x
    return out


def memory_at_rest(target):
    """rss_breakdown of target's (a Stack's) processes at rest, 1.5 s after
    its last request (measure() slept 0.5 s of it): every serving thread
    has been quiet past the idle trim (200 ms after its own last event,
    fcgi/adapter.c) and nginx has closed the connections it kept
    (keepalive_timeout 1 s), whose closes wake the threads too.  At 0.5 s
    the trim had been seen as late as 0.4 s after a load, so a reading
    then could fall on either side of it.  The target is about a worker's
    memory at rest, not the last burst's working set."""
    time.sleep(1.0)
    return rss_breakdown(target.procs())


def outbox_pending(db):
    """Undelivered events: db is a SQLite file, or a PgDatabase."""
    if not isinstance(db, str):
        return db.pending()
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
    # PostgreSQL is asked by a psql each time, whose backend's start-up the
    # server's CPU figure counts: less often.
    interval = 0.05 if isinstance(db, str) else 0.2
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        n = outbox_pending(db)
        if n == 0:
            return time.monotonic() - t0
        time.sleep(interval)
    return None


# ---------------------------------------------------------------- wrk

def start_wrk(port, script, env_extra, seconds, threads=None, connections=None):
    env = dict(os.environ, BENCH_LUA=HERE)
    env.update(env_extra)
    cmd = ["wrk", "-t%d" % (threads or S.threads), "-c%d" % (connections or S.connections),
           "-d%ds" % seconds, "--latency", "--timeout", "10s", "-s", os.path.join(HERE, script),
           "http://127.0.0.1:%d/" % port]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True), cmd


def finish_wrk(proc, cmd, seconds, tag):
    try:
        out, _ = proc.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    with open(os.path.join(S.tmp, "wrk.log"), "a") as f:
        f.write("### %s\n$ %s\n%s\n" % (tag, " ".join(cmd), out))
    for line in out.splitlines():
        if line.startswith("BENCH_RESULT "):
            r = json.loads(line[len("BENCH_RESULT "):])
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
            r["socket_errors"] = sum(r["errors_" + k] for k in ("connect", "read", "write", "timeout"))
            if r["non2xx"] is None:
                r["non2xx"] = r["errors_status"]
            return r
    raise RuntimeError("wrk gave no result for %s (exit %s):\n%s" % (tag, proc.returncode, out[-3000:]))


def run_wrk(port, script, env_extra, seconds, tag):
    proc, cmd = start_wrk(port, script, env_extra, seconds)
    return finish_wrk(proc, cmd, seconds, tag)


def split(total, parts):
    """total (threads, connections) shared out over parts, at least 1 each."""
    return [max(1, total // parts + (1 if i < total % parts else 0)) for i in range(parts)]


def run_wrk_jobs(jobs, seconds, tag):
    """Several wrk processes at once (each job: port, script, env, threads,
    connections, name); returns their results in order, and the combined
    result: requests and requests/s summed, latencies the worst of the
    parts (each part's own distribution is in "parts")."""
    started = []
    try:
        for j in jobs:
            started.append(start_wrk(j["port"], j["script"], j["env"], seconds,
                                     min(j["threads"], j["connections"]), j["connections"]))
    except BaseException:
        for proc, _ in started:
            proc.kill()
            proc.wait()
        raise
    parts = []
    for j, (proc, cmd) in zip(jobs, started):
        r = finish_wrk(proc, cmd, seconds, "%s [%s]" % (tag, j["name"]))
        r["name"], r["connections"], r["threads"] = j["name"], j["connections"], j["threads"]
        parts.append(r)
    out = {"requests": sum(r["requests"] for r in parts),
           "duration_us": max(r["duration_us"] for r in parts),
           "rps": sum(r["rps"] for r in parts), "extra": {}, "parts": parts}
    for k in ("p50_us", "p90_us", "p99_us", "max_us"):
        out[k] = max(r[k] for r in parts)
    for k in ("non2xx", "socket_errors", "errors_connect", "errors_read", "errors_write",
              "errors_timeout", "errors_status", "bytes"):
        out[k] = sum(r[k] for r in parts)
    return out


def median_run(runs):
    """The run with the median requests/s (the lower middle for an even count)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    return ordered[(len(ordered) - 1) // 2]


class Hosts:
    """Several stacks measured as one target (PostgreSQL, two hosts)."""

    def __init__(self, stacks):
        self.stacks = stacks

    def procs(self):
        return [p for st in self.stacks for p in st.procs()]


def measure(target, label, script, env_extra, db=None, writes=False, pair=None, runner=None,
            db_cpu=None):
    """Runs one scenario BENCH_RUNS times against target (a Stack, Nginx or
    Hosts).  runner(seconds, tag), when given, runs wrk instead of the one
    wrk against target.port (run_wrk_jobs: several at once); db_cpu(), when
    given, returns the CPU ticks of the database server (PostgreSQL), kept
    apart from the pool's as "db_cpu_us".

    pair, when given, measures the reference a run is compared with (a
    FastCGI ceiling run, a storage-limit run) and returns its rate.  It is
    measured before the first run and after every run, and each run is
    compared with the mean of the references right before and right after
    it: on a shared machine whose speed drifts from one minute (for the
    disk, one second) to the next, that ratio is far steadier than one
    against a ceiling measured minutes earlier.  The result then has
    "pair_ratio", the median of the per-run ratios, and "pair_all"."""
    if runner is None:
        def runner(seconds, tag):
            return run_wrk(target.port, script, env_extra, seconds, tag)
    if S.warmup:
        runner(S.warmup, label + " (warm-up)")
        if writes and db:
            wait_outbox_drained(db)
    runs = []
    refs = [pair()] if pair is not None else []
    for i in range(S.runs):
        before = cpu_snapshot(target.procs())
        db_before = db_cpu() if db_cpu else 0
        r = runner(S.seconds, "%s run %d" % (label, i + 1))
        r["drain_s"] = wait_outbox_drained(db) if (writes and db) else 0.0
        after = cpu_snapshot(target.procs())
        if db_cpu:
            r["db_cpu_us"] = (db_cpu() - db_before) * 1e6 / CLK_TCK / max(r["requests"], 1)
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
        for part in r.get("parts", []):
            say("    %-32s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non-2xx %d"
                % (part["name"], part["rps"], part["p50_us"] / 1000, part["p99_us"] / 1000,
                   part["non2xx"]))
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
    tail = re.search(r"p99_us: ([0-9.]+)", p.stdout)
    if p.returncode != 0 or not m or not tail:
        raise RuntimeError("storage_limit failed: %s %s" % (p.stdout, p.stderr))
    shutil.rmtree(d, ignore_errors=True)
    r = {"tps": float(m.group(1)), "p99_us": float(tail.group(1))}
    say("  %-34s %9.0f transactions/s  p99 %7.2f ms" % ("storage limit (%s)" % tag, r["tps"],
                                                         r["p99_us"] / 1000))
    return r


def storage_limit():
    results = [storage_run("run %d" % (i + 1))["tps"] for i in range(S.runs)]
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


MIX_CLASSES = "mix 90/10 by connections: GET /orders/{id} + POST /orders"


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
            r = storage_run("paired")
            # one commit's own tail (one writer, one fsync each), beside
            # POST's, which queues 32 connections on it
            results.setdefault("storage_pair_p99", []).append(r["p99_us"])
            return r["tps"]

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
            # Each class's own latency in a mix (issue 17: no class starved):
            # wrk reports one distribution per process, so the classes run
            # as two wrk processes at once on this stack, GET /orders/{id}
            # on 90% of the connections and POST /orders on 10%; each is
            # also run alone at its own connections right before, so that
            # its p99 in the mix is compared with the same load without the
            # other class (beside the 32-connection rows above).
            get_c = max(1, round(S.connections * 0.9))
            post_c = max(1, S.connections - get_c)
            jobs = [{"port": st.port, "script": "get_by_id.lua", "name": "GET /orders/{id}",
                     "env": dict(auth, BENCH_IDS=ids), "threads": max(1, S.threads - 1),
                     "connections": get_c},
                    {"port": st.port, "script": "static.lua", "name": "POST /orders",
                     "env": dict(auth, BENCH_METHOD="POST", BENCH_PATH="/orders", BENCH_BODY=body),
                     "threads": 1, "connections": post_c}]
            for j in jobs:
                r = measure(st, "%s alone, %d connections (mix class)" % (j["name"], j["connections"]),
                            None, None, db=st.db, writes=j["name"].startswith("POST"),
                            runner=lambda secs, tag, j=j: run_wrk_jobs([j], secs, tag))
                r["scale"], r["solo_of"] = scale, j["name"]
                rows.append(r)
            r = measure(st, MIX_CLASSES, None, None, db=st.db, writes=True,
                        runner=lambda secs, tag: run_wrk_jobs(jobs, secs, tag))
            r["scale"] = scale
            rows.append(r)
        results.setdefault("memory", []).append((scale, "SQLite", memory_at_rest(st)))
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


# ---------------------------------------------------------------- PostgreSQL

# The server's settings that matter for the figures, stated in the report:
# durable commits as in production (the tests turn fsync off; a benchmark of
# writes must not), a modest cache, room for two stacks' connections
# (workers x WORKER_THREADS each, and the publishers).
PG_SETTINGS = (("fsync", "on"), ("synchronous_commit", "on"), ("full_page_writes", "on"),
               ("shared_buffers", "128MB"), ("max_connections", "100"))


def postgres_server():
    """tests/integration/pg.py's Postgres (initdb and postgres as an
    unprivileged account when run as root, psql for queries), in the
    benchmark's temporary directory and with PG_SETTINGS."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import pg

    class BenchPostgres(pg.Postgres):
        def start(self):
            self.dir = os.path.join(S.tmp, "postgres")
            os.makedirs(self.dir)
            self.data = os.path.join(self.dir, "data")
            if self.account is not None:
                os.chown(self.dir, self.account.pw_uid, self.account.pw_gid)
            self._check([os.path.join(pg.PG_BIN, "initdb"), "-D", self.data, "-U", pg.SUPERUSER,
                         "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            self.port = free_port()
            self._start_server()
            # pg_ctl starts the postmaster in a session of its own: run.sh
            # kills it if this program dies without stopping it.
            pid = self.postmaster()
            if pid and read_stat(pid)["session"] == pid:
                register_session(pid)
            return self

        def _start_server(self):
            opts = "-p %d -k %s -c listen_addresses=127.0.0.1 %s" % (
                self.port, self.dir, " ".join("-c %s=%s" % kv for kv in PG_SETTINGS))
            self._check([os.path.join(pg.PG_BIN, "pg_ctl"), "-D", self.data, "-l",
                         os.path.join(self.dir, "postgres.log"), "-o", opts, "-w", "-t", "60",
                         "start"], timeout=90)

        def postmaster(self):
            try:
                with open(os.path.join(self.data, "postmaster.pid")) as f:
                    return int(f.readline())
            except (OSError, ValueError):
                return None

        def cpu_ticks(self):
            """utime+stime of the postmaster and its processes (backends,
            checkpointer, WAL writer), and of those that exited."""
            pid = self.postmaster()
            total = 0
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    st = read_stat(int(d))
                except (OSError, ValueError, IndexError):
                    continue
                if st["pid"] == pid:
                    total += st["utime"] + st["stime"] + st["cutime"] + st["cstime"]
                elif st["ppid"] == pid:
                    total += st["utime"] + st["stime"]
            return total

        def stop(self):
            if self.dir is not None and os.environ.get("BENCH_KEEP"):
                try:
                    shutil.copy(os.path.join(self.dir, "postgres.log"), S.tmp)
                except OSError:
                    pass
            super().stop()

    return BenchPostgres()


class PgDatabase:
    """One database on the benchmark's server, for a scale."""

    def __init__(self, server, name):
        self.server, self.name = server, name
        self.url = server.url(name)

    def query(self, sql):
        return self.server.query(self.url, sql)

    def pending(self):
        try:
            return int(self.query("SELECT count(*) FROM events WHERE delivered_at IS NULL"
                                  " AND parked_at IS NULL")[0][0])
        except (AssertionError, OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None


# The rows seed.py writes on SQLite, in the PostgreSQL schema
# (migrations/postgres): UUIDv7 ids one millisecond apart in the past, seq
# (the list's order) in that order, version 1, and each order's
# order.created event, delivered (delivered_at within the publisher's
# retention, so it is not pruned during the run).  The schema's counting
# and NOTIFY triggers are skipped for the bulk load (session_replication_role)
# and the counts they keep are set from the rows, then checked.
PG_SEED = """
SET session_replication_role = replica;
BEGIN;
INSERT INTO orders (id, customer_id, items, status, created_at, updated_at)
SELECT lpad(to_hex((:base + i) >> 16), 8, '0') || '-' || lpad(to_hex((:base + i) & 65535), 4, '0')
       || '-7' || lpad(to_hex((random() * 4095)::int), 3, '0')
       || '-' || to_hex(32768 | (random() * 16383)::int)
       || '-' || lpad(to_hex((random() * 281474976710655)::bigint), 12, '0'),
       'customer-' || (i % 9973), '["item-1","item-2"]',
       (ARRAY['pending', 'paid', 'shipped', 'delivered'])[i % 4 + 1],
       :base + i, :base + i
  FROM generate_series(0, :n - 1) AS i ORDER BY i;
INSERT INTO events (id, type, source, subject, time, data, committed_at, delivered_at)
SELECT gen_random_uuid()::text, 'order.created', '/orders', o.id,
       to_char(to_timestamp(o.created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
       json_build_object('id', o.id, 'customerId', o.customer_id, 'items', o.items::json,
                         'status', 'pending', 'version', 1)::text,
       o.created_at, o.created_at
  FROM orders o ORDER BY o.seq;
UPDATE order_count SET total = total + :n WHERE slot = 0;
UPDATE order_status_count c SET total = c.total + s.k
  FROM (SELECT status, count(*) AS k FROM orders GROUP BY status) s
 WHERE c.status = s.status AND c.slot = 0;
UPDATE outbox_counters SET delivered = delivered + :n;
COMMIT;
RESET session_replication_role;
VACUUM ANALYZE orders;
VACUUM ANALYZE events;
SELECT (SELECT sum(total) FROM order_count), (SELECT count(*) FROM orders),
       (SELECT sum(total) FROM order_status_count), (SELECT count(*) FROM events)
"""


def pg_seed(db, scale, ids_path):
    t0 = time.monotonic()
    base = int(time.time() * 1000) - scale - 60_000
    sql = PG_SEED.replace(":base", str(base)).replace(":n", str(scale))
    row = db.query(sql)[-1]
    if len(set(row)) != 1 or int(row[0]) != scale:
        raise RuntimeError("PostgreSQL seed: counts disagree (order_count, orders, order_status_count,"
                           " events): %s, expected %d" % (row, scale))
    ids = [r[0] for r in db.query("SELECT id FROM orders ORDER BY random() LIMIT 10000")]
    with open(ids_path, "w") as f:
        f.write("\n".join(ids) + "\n")
    say("seeded PostgreSQL with %d orders and their events in %.1fs" % (scale, time.monotonic() - t0))


def pg_phase(scale, server, token, results):
    """GET /orders/{id} and POST /orders through one stack on PostgreSQL,
    then through two stacks (two run-stacks: two nginx, two pools, two
    publishers) sharing the one database, with two wrk processes at once,
    half the threads and connections each."""
    server.query(server.url(), "CREATE DATABASE orders_%d" % scale)
    db = PgDatabase(server, "orders_%d" % scale)
    env = dict(os.environ, DATABASE_URL=db.url, JWT_SECRET_KEY=SECRET)
    env.pop("DATABASE_PATH", None)
    subprocess.run([os.path.join(S.build, "fcgi", "orders-fcgi"), "--migrate"], env=env,
                   check=True, stdout=subprocess.DEVNULL, timeout=120)
    ids = os.path.join(S.tmp, "ids-pg-%d.txt" % scale)
    pg_seed(db, scale, ids)
    auth = {"TOKEN": token}
    body = '{"customerId":"customer-bench","items":["item-1","item-2"]}'
    get_env = dict(auth, BENCH_IDS=ids)
    post_env = dict(auth, BENCH_METHOD="POST", BENCH_PATH="/orders", BENCH_BODY=body)
    hosts = [Stack("pg-%d-host-%s" % (scale, h), S.build, {"DATABASE_URL": db.url})
             for h in ("a", "b")]
    rows = []

    def run(label, stacks, script, env, writes=False):
        if len(stacks) == 1:
            target, runner = stacks[0], None
        else:
            threads, conns = split(S.threads, len(stacks)), split(S.connections, len(stacks))
            jobs = [{"port": st.port, "script": script, "env": env, "threads": t,
                     "connections": c, "name": st.name}
                    for st, t, c in zip(stacks, threads, conns)]
            target = Hosts(stacks)

            def runner(secs, tag):
                return run_wrk_jobs(jobs, secs, tag)
        r = measure(target, label, script, env, db=db, writes=writes, runner=runner,
                    db_cpu=server.cpu_ticks)
        r["scale"], r["stacks"] = scale, len(stacks)
        rows.append(r)

    try:
        say("PostgreSQL, one stack, %d orders, %d workers" % (scale, S.workers))
        hosts[0].start()
        run("GET /orders/{id}", hosts[:1], "get_by_id.lua", get_env)
        run("POST /orders", hosts[:1], "static.lua", post_env, writes=True)
        results.setdefault("memory", []).append(
            (scale, "PostgreSQL, one stack", memory_at_rest(hosts[0])))
        say("PostgreSQL, two stacks on the one database")
        hosts[1].start()
        run("GET /orders/{id}", hosts, "get_by_id.lua", get_env)
        run("POST /orders", hosts, "static.lua", post_env, writes=True)
    finally:
        for st in hosts:
            st.stop()
            if not os.environ.get("BENCH_KEEP"):
                shutil.rmtree(st.dir, ignore_errors=True)
    results.setdefault("pg_rows", []).extend(rows)


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


def mix_classes(results):
    """(class, its part of the mix, its run alone at the same connections,
    its row at BENCH_CONNECTIONS or None) for each request class of the
    per-class mix, at the scale where the mix ran."""
    out = []
    for r in results["rows"]:
        if r["label"] != MIX_CLASSES:
            continue
        for part in r["parts"]:
            same = [x for x in results["rows"] if x.get("solo_of") == part["name"]
                    and x["scale"] == r["scale"]]
            full = [x for x in results["rows"] if x["label"] == part["name"]
                    and x["scale"] == r["scale"]]
            if same:
                out.append((part["name"], part, same[0], full[0] if full else None))
    return out


def memory_table(results, w):
    mem = [(sc, st, m) for sc, st, m in results.get("memory", []) if m]
    if not mem:
        return
    w("### Worker memory")
    w("")
    w("| orders | stack | workers | worker peak RSS MiB (largest) | anonymous / file-backed MiB"
      " (largest) | worker Pss MiB (largest) | worker Pss MiB (mean) | worker Pss MiB among the"
      " stack's processes (largest) | worker private MiB (largest) | publisher peak RSS MiB |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scale, stack, m in mem:
        w("| %s | %s | %d | %s | %s / %s | %s | %s | %s | %s | %s |"
          % ("{:,}".format(scale), stack, m.get("workers", 0), fmt_mib(m["hwm"]),
             fmt_mib(m.get("RssAnon")), fmt_mib(m.get("RssFile")), fmt_mib(m.get("pss_max")),
             fmt_mib(m.get("pss_mean")), fmt_mib(m.get("stack_pss_max")),
             fmt_mib(m.get("uss_max")), fmt_mib(m.get("publisher_hwm"))))
    w("")
    w("Taken at the end of each scale's scenarios, 1.5 s after the last request (at rest: past"
      " the workers' idle trim).  Peak RSS is VmHWM; Pss (smaps_rollup) counts"
      " each page shared with other processes (the shared libraries, what the master wrote"
      " before the fork) divided by how many map it, so the Pss of all workers adds up to what"
      " the pool really occupies; RSS counts every shared page in full in every worker."
      "  The kernel divides by every process on the machine, so other programs mapping the"
      " same libraries lower it; \"among the stack's processes\" divides by the stack's own"
      " only, as a server running nothing else shows it (root only: page frames), and is the"
      " figure the target is judged on when present.  Private is the pages no other process"
      " maps (Uss).")
    w("")


def mix_table(results, w):
    classes = mix_classes(results)
    if not classes:
        return
    mix = [r for r in results["rows"] if r["label"] == MIX_CLASSES][0]
    total = max(mix["requests"], 1)
    w("### Request classes in a mix")
    w("")
    w("| orders | class | connections | req/s in the mix | share of requests | p50 ms in the mix"
      " | p99 ms in the mix | p99 ms alone, same connections | p99 vs alone (target <= 3x)"
      " | p99 ms alone, %d connections | non-2xx in the mix |" % S.connections)
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cls, part, same, full in classes:
        w("| %s | %s | %d | %.0f | %.0f%% | %s | %s | %s | %.1fx | %s | %d |"
          % ("{:,}".format(mix["scale"]), cls, part["connections"], part["rps"],
             100.0 * part["requests"] / total, fmt_ms(part["p50_us"]), fmt_ms(part["p99_us"]),
             fmt_ms(same["p99_us"]), part["p99_us"] / same["p99_us"] if same["p99_us"] else 0,
             fmt_ms(full["p99_us"]) if full else "-", part["non2xx"]))
    w("")
    w("wrk gives one latency distribution per process, so the classes run as two wrk processes"
      " at once against the same stack for %ds: GET /orders/{id} on 90%% of the %d connections,"
      " POST /orders on the rest (the median run of the pair by total req/s).  Each class's p99"
      " is its own, by wrk's own timer, and is compared with the same wrk alone at the same"
      " connections, run right before the mix (the rows \"... alone, N connections (mix class)\""
      " above): what the other class's load does to it.  The split is by connections, not by"
      " requests: a POST takes longer (a durable commit), so POSTs are fewer than 10%% of the"
      " requests (the share column); \"mix 90%% read / 10%% write\" above is the mix by requests"
      " (one wrk, each request drawn at random), with one p99 for all."
      % (S.seconds, S.connections))
    w("")


def pg_table(results, w):
    rows = results.get("pg_rows", [])
    if not rows and not S.pg_missing:
        return
    w("### PostgreSQL: one stack, and two stacks on one database")
    w("")
    if not rows:
        w("- " + S.pg_missing + ".")
        w("")
        return
    sqlite = {(r["label"], r["scale"]): r for r in results["rows"]}
    one = {(r["label"], r["scale"]): r for r in rows if r["stacks"] == 1}
    w("| orders | scenario | database, stacks | req/s | p50 ms | p99 ms | non-2xx | socket err |"
      " vs SQLite | vs one stack | CPU µs/req (pool + publisher) | PostgreSQL CPU µs/req |")
    w("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    order = []
    for r in rows:
        if (r["scale"], r["label"]) not in order:
            order.append((r["scale"], r["label"]))
    rows = sorted(rows, key=lambda r: (order.index((r["scale"], r["label"])), r["stacks"]))
    for r in rows:
        key = (r["label"], r["scale"])
        if r["stacks"] == 1 and key in sqlite:
            q = sqlite[key]
            w("| %s | %s | SQLite, one stack | %.0f | %s | %s | %d | %d | 100%% | - | %.1f | - |"
              % ("{:,}".format(q["scale"]), q["label"], q["rps"], fmt_ms(q["p50_us"]),
                 fmt_ms(q["p99_us"]), q["non2xx"], q["socket_errors"], q["cpu_us"]))
        base = sqlite.get(key)
        w("| %s | %s | PostgreSQL, %s | %.0f | %s | %s | %d | %d | %s | %s | %.1f | %.1f |"
          % ("{:,}".format(r["scale"]), r["label"],
             "one stack" if r["stacks"] == 1 else "%d stacks" % r["stacks"], r["rps"],
             fmt_ms(r["p50_us"]), fmt_ms(r["p99_us"]), r["non2xx"], r["socket_errors"],
             fmt_ratio(r["rps"], base["rps"]) if base else "-",
             fmt_ratio(r["rps"], one[key]["rps"]) if r["stacks"] > 1 and key in one else "-",
             r["cpu_us"], r.get("db_cpu_us", 0.0)))
    w("")
    w("- The server: PostgreSQL started by the benchmark in its temporary directory (the same"
      " file system as SQLite's databases), on 127.0.0.1, %s; everything else initdb's defaults."
      "  The database is seeded like SQLite's (the same orders, version 1, each with its"
      " order.created event, delivered)." % ", ".join("%s=%s" % kv for kv in PG_SETTINGS))
    w("- A stack: scripts/run-stack with DATABASE_URL (nginx, %d workers with a connection per"
      " serving thread, the publisher).  Two stacks: a second run-stack, its own nginx on its own"
      " port, its own pool and publisher, on the same database; two wrk processes at once, one"
      " per stack, with half the threads and connections each (%d in all); req/s is their sum,"
      " p50 and p99 the worse of the two." % (S.workers, S.connections))
    w("- On this one machine the two stacks share the same %d CPUs with each other, with"
      " PostgreSQL and with wrk: \"vs one stack\" shows what splitting the load over two stacks"
      " costs or gains here, not the capacity a second machine would add; with a host each,"
      " each stack has the CPUs to itself and the database server is the shared part"
      " (its CPU per request is the last column)." % (os.cpu_count() or 1))
    w("- Not paired with a ceiling (the SQLite rows above are); CPU µs/req as in the first"
      " table; PostgreSQL's is its server processes' (backends, WAL writer, checkpointer).")
    w("")


def report(results, m, token_how, started, notes):
    nginx, fcgi, storage = results["nginx"], results["fcgi"], results.get("storage")
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
    if storage:
        w("| - | storage limit: the write transaction, one process | %.0f tx/s | - | - | - | - | - |"
          " - | - | 100%% | - | - | - |" % storage["tps"])
    for r in results["rows"]:
        is_write = r["label"].startswith(("POST", "PATCH"))
        vs_fcgi = fmt_ratio(r["rps"], fcgi["rps"])
        vs_storage = fmt_ratio(r["rps"], storage["tps"]) if is_write and storage else "-"
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
      " orders; INSERT events; COMMIT in a loop in one process, fresh database, one fsync per"
      " commit: SQLite's synchronous=FULL, where the service's writers share their syncs, so"
      " it can go past 100%); for the PATCH flow every request is one such write transaction"
      " as well.")
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
    if results.get("storage_pair_p99"):
        w("- p99 of one commit in the storage limit's paired runs (one writer, one fsync per"
          " commit, nothing queued) (ms): " + ", ".join(fmt_ms(x) for x in
                                                        results["storage_pair_p99"])
          + ": the disk's own tail, against POST /orders' p99, which adds the wait of %d"
          " connections for the CPUs and the write lock." % S.connections)
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
    w("- nginx CPU µs/req: " + ", ".join(ng) + ("; " if ng else "") + "ceilings: return 200 %.1f, FastCGI best %.1f,"
      " FastCGI 1 conn/req %.1f." % (nginx["nginx_cpu_us"], fcgi["nginx_cpu_us"],
                                     former["nginx_cpu_us"]))
    if S.runs > 1:
        w("- All runs (req/s): " + "; ".join(
            "%s%s: %s" % (r["label"], " @%d" % r["scale"] if "scale" in r else "",
                          ", ".join("%.0f" % x for x in r["all_rps"]))
            for r in [nginx, fcgi] + ([former] if former is not fcgi else []) + results["rows"]) +
          ("; storage limit: " + ", ".join("%.0f" % x for x in storage["all"]) if storage else "")
          + ".")
    for scale, stack, mem in results.get("memory", []):
        if mem and stack == "SQLite":
            w("- Largest worker at %s orders: VmHWM %.1f MiB = anonymous %.1f MiB + file-backed"
              " (shared libraries, shared with the other workers) %.1f MiB; Pss %.1f MiB."
              % ("{:,}".format(scale), mem["hwm"] / 1024, mem.get("RssAnon", 0) / 1024,
                 mem.get("RssFile", 0) / 1024, mem.get("Pss", 0) / 1024))
    w("- Tokens minted by %s." % token_how)
    for n in notes:
        w("- " + n)
    w("")
    memory_table(results, w)
    mix_table(results, w)
    pg_table(results, w)
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
    for scale, stack, mem in results.get("memory", []):
        if mem and "pss_max" in mem and stack == "SQLite":
            judged = mem.get("stack_pss_max", mem["pss_max"])
            w("- worker Pss at %s orders: largest %.1f MiB, mean %.1f MiB over %d workers%s"
              " (target < 3 MiB, judged on the largest%s): **%s**"
              % ("{:,}".format(scale), mem["pss_max"] / 1024, mem["pss_mean"] / 1024,
                 mem["workers"],
                 "; largest among the stack's processes %.1f MiB" % (judged / 1024)
                 if "stack_pss_max" in mem else "",
                 " among the stack's processes" if "stack_pss_max" in mem else "",
                 "met" if judged < 3 * 1024 else "missed"))
    for cls, part, same, full in mix_classes(results):
        ratio = part["p99_us"] / same["p99_us"] if same["p99_us"] else 0.0
        w("- mix 90/10 by connections, %s: p99 %.2f ms, %.1fx its p99 alone at the same %d"
          " connections, %.2f ms (target <= 3x): **%s**"
          % (cls, part["p99_us"] / 1000, ratio, part["connections"], same["p99_us"] / 1000,
             "met" if ratio <= 3 else "missed"))
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
    if results.get("pg_version"):
        w("- %s" % results["pg_version"])
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
    for knob in ("BENCH_ENGINES", "BENCH_PG_SCALES"):
        if os.environ.get(knob):
            settings.append("%s='%s'" % (knob, os.environ[knob]))
    results = {"rows": [], "command": " ".join(settings + ["tests/bench/run.sh"])}
    notes = []
    m = machine()
    if S.profile and not perf_works():
        say("BENCH_PROFILE: perf cannot record here (perf record -e cpu-clock failed); no profile")
        S.profile = False
    token, token_how = mint_token()
    pg_server = None
    try:
        ceilings(results)
        if "sqlite" in S.engines:
            for i, scale in enumerate(S.scales):
                scale_phase(scale, i == 0, token, results, notes)
        if "postgres" in S.engines:
            pg_server = postgres_server()
            say("PostgreSQL: a private server in %s (%s)"
                % (S.tmp, ", ".join("%s=%s" % kv for kv in PG_SETTINGS)))
            pg_server.start()
            results["pg_version"] = cmd_out([os.path.join(PG_BIN, "postgres"), "--version"])
            for scale in S.pg_scales:
                pg_phase(scale, pg_server, token, results)
    finally:
        if pg_server is not None:
            pg_server.stop()
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
