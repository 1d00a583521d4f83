"""A real PostgreSQL 15 for the tests: initdb and postgres from Debian's
postgresql-15 (/usr/lib/postgresql/15/bin), in a temporary directory, on a
free loopback port, run as an unprivileged account when the tests run as
root (postgres refuses to run as root).

    with Postgres() as pg:
        url = pg.create_database()       # postgresql://orders@127.0.0.1:PORT/orders?options=...
        pg.query(url, "SELECT 1")        # [("1",)]
        pg.restart()

Everything is bounded in time; stop() removes the directory.
"""
import atexit
import itertools
import os
import pwd
import select
import shutil
import subprocess
import tempfile
import time

from harness import free_port

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
SUPERUSER = "orders"


def _run_as():
    """The account postgres runs as: ourselves, or when root an
    unprivileged one (postgres, else nobody)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise AssertionError("no unprivileged account to run PostgreSQL as")


class Postgres:
    def __init__(self):
        self.dir = None
        self.port = None
        self.account = _run_as()
        self.counter = itertools.count(1)
        self.orders_db = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _cmd(self, argv):
        if self.account is None:
            return argv
        return ["setpriv", "--reuid=%d" % self.account.pw_uid, "--regid=%d" % self.account.pw_gid,
                "--clear-groups", "--"] + argv

    def _check(self, argv, timeout=60):
        r = subprocess.run(self._cmd(argv), capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("%s failed (%d):\n%s%s" % (argv[0], r.returncode, r.stdout, r.stderr))
        return r.stdout

    def start(self):
        if not os.path.exists(os.path.join(PG_BIN, "initdb")):
            raise AssertionError("PostgreSQL 15 is not installed (%s): scripts/install-deps test" % PG_BIN)
        self.dir = tempfile.mkdtemp(prefix="orders-pg-")
        self.data = os.path.join(self.dir, "data")
        if self.account is not None:
            os.chown(self.dir, self.account.pw_uid, self.account.pw_gid)
        self._check([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", SUPERUSER,
                     "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        self.port = free_port()
        self._start_server()
        atexit.register(self.stop)
        return self

    def _start_server(self):
        # fsync off: the tests are about the service, not about surviving a
        # power cut of the test machine.  Connections: several stacks of a
        # few workers each, and psql.
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
                " -c full_page_writes=off -c max_connections=100 -c shared_buffers=32MB"
                % (self.port, self.dir))
        self._check([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l",
                     os.path.join(self.dir, "postgres.log"), "-o", opts, "-w", "-t", "30", "start"])

    def stop(self):
        if self.dir is None:
            return
        try:
            subprocess.run(self._cmd([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m",
                                      "immediate", "-w", "-t", "30", "stop"]),
                           capture_output=True, timeout=60)
        finally:
            if os.environ.get("ORDERS_KEEP_TMP") is None:  # as harness.Stack keeps its own
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def stop_server(self, mode="fast"):
        self._check([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "30",
                     "stop"])

    def start_server(self):
        self._start_server()

    def restart(self, mode="fast"):
        self.stop_server(mode)
        self._start_server()

    def url(self, dbname="postgres"):
        return "postgresql://%s@127.0.0.1:%d/%s" % (SUPERUSER, self.port, dbname)

    def create_database(self):
        """A database of its own for one stack: a schema in the one
        database "orders", named by the URL's search_path (CREATE DATABASE
        takes a second or two; a schema takes nothing)."""
        if not self.orders_db:
            self.query(self.url(), "CREATE DATABASE orders")
            self.orders_db = True
        name = "stack_%d_%d" % (os.getpid(), next(self.counter))
        self.query(self.url("orders"), "CREATE SCHEMA %s" % name)
        return self.url("orders") + "?options=-c%%20search_path%%3D%s" % name

    def query(self, url, sql):
        """Rows of the last statement, as tuples of strings (None for NULL)."""
        r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\x1f",
                            "-P", "null=\x1e", "-d", url, "-f", "-"],
                           input=sql + ";\n", capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("psql: %s\n%s" % (sql, r.stderr))
        rows = []
        for line in r.stdout.split("\n")[:-1] if r.stdout else []:
            rows.append(tuple(None if v == "\x1e" else v for v in line.split("\x1f")))
        return rows


class Session:
    """One psql kept open: its statements run on one connection, and run()
    returns once psql has finished them (a psql of its own per statement
    takes most of a second to start on a loaded machine)."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        self.marks = itertools.count(1)

    def run(self, sql, timeout=30, what=None):
        """The statements' output lines; psql is killed and the test fails
        when they fail or do not finish in time."""
        mark = "done %d" % next(self.marks)
        self.proc.stdin.write(("%s;\n\\echo %s\n" % (sql, mark)).encode())
        self.proc.stdin.flush()
        deadline, out = time.monotonic() + timeout, b""
        while (mark + "\n").encode() not in out:  # the statements' rows, then ours
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                break
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
        if (mark + "\n").encode() not in out:
            self.proc.kill()
            raise AssertionError("psql: %s (%s): %r %r"
                                 % (what or "statements failed or hung", sql, out, self.proc.stderr.read()))
        text = out.decode()
        return text[:text.index(mark + "\n")].splitlines()

    def execute(self, sql):
        """Sent without waiting for it."""
        self.proc.stdin.write((sql + ";\n").encode())
        self.proc.stdin.flush()

    def close(self):
        try:
            self.proc.communicate(b"\\q\n", timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


class Holder(Session):
    """A transaction left open in a psql of its own, holding the locks its
    statement took until execute("ROLLBACK"), then close()."""

    def __init__(self, url, sql, timeout=30):
        super().__init__(url)
        self.run("BEGIN;\n" + sql, timeout, what="did not take the lock")


def sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


class PgConnection:
    """Enough of sqlite3's connection for the tests' few direct queries:
    execute(sql, params) with ? placeholders, fetchone(), fetchall().
    Integers come back as int."""

    def __init__(self, pg, url):
        self.pg, self.url = pg, url

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass

    def commit(self):
        pass

    @staticmethod
    def _bind(sql, params):
        parts = sql.split("?")
        if len(parts) - 1 != len(params):
            raise AssertionError("parameter count: %s" % sql)
        return parts[0] + "".join(sql_literal(p) + rest for p, rest in zip(params, parts[1:]))

    def executemany(self, sql, rows):
        """One transaction.  Rows given their own orders.seq (as tests do on
        SQLite) override the identity, which is then moved past them."""
        statements = [self._bind(sql, params) for params in rows]
        if "INSERT INTO orders (seq," in sql:
            statements = [s.replace(") VALUES", ") OVERRIDING SYSTEM VALUE VALUES", 1) for s in statements]
            statements.append("SELECT setval(pg_get_serial_sequence('orders', 'seq'), max(seq)) FROM orders")
        self.pg.query(self.url, "BEGIN;\n" + ";\n".join(statements) + ";\nCOMMIT")
        return _Cursor([])

    def execute(self, sql, params=()):
        text = self._bind(sql, params)
        rows = [tuple(int(v) if v is not None and v.lstrip("-").isdigit() else v for v in row)
                for row in self.pg.query(self.url, text)]
        return _Cursor(rows)


class _Cursor:
    def __init__(self, rows):
        self.rows = rows

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self):
        return self.rows

    def __iter__(self):
        return iter(self.rows)


_shared = None


def shared():
    """One server per test process, started on first use."""
    global _shared
    if _shared is None:
        _shared = Postgres().start()
    return _shared
