"""Real message brokers for the transport tests: rabbitmq-server and
nats-server (with JetStream), each started in its own temporary directory on
free loopback ports, stopped and started again on demand, and removed with
every process they started.

    with RabbitBroker() as rabbit:       # boots once; RabbitMQ is slow to boot
        rabbit.url("exchange=orders")    # amqp://guest:guest@127.0.0.1:PORT/?exchange=orders
        rabbit.stop(); rabbit.start()    # same node, same data
    with NatsBroker() as nats:
        nats.url("subject=orders.events&stream=ORDERS")

As root, RabbitMQ runs as the unprivileged rabbitmq account (the Debian
package's), with its Erlang cookie in a private HOME and its own epmd on a
free port, so nothing is shared with a system broker or another test.
"""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    import pika  # noqa: F401
except ImportError:  # python3 is not Debian's (pyenv, venv): use Debian's pika
    sys.path.append("/usr/lib/python3/dist-packages")
    import pika  # noqa: F401,E402  (python3-pika; scripts/install-deps test installs it)

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


# A port nobody listens on now, outside the range outgoing connections take
# their source ports from (harness.free_port says why).
from harness import free_port, wait_own_server  # noqa: E402,F401


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop_group(proc, timeout):
    """SIGTERM to the process group, then SIGKILL after timeout seconds."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def make_certificates(directory):
    """A throwaway CA and a server certificate it signed for the name
    localhost only (openssl's command line); returns (ca, cert, key)."""
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr = os.path.join(directory, "server.key"), os.path.join(directory, "server.csr")
    cert, ext = os.path.join(directory, "server.pem"), os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost\n")  # an IP address is a name it lacks
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (["req", "-x509"] + ec + ["-keyout", ca_key, "-out", ca, "-days", "2",
                                          "-subj", "/CN=orders-test-ca"],
                ["req"] + ec + ["-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
                ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", cert, "-days", "2", "-extfile", ext]):
        subprocess.run(["openssl"] + cmd, check=True, capture_output=True, timeout=30)
    for path in (ca, cert, key):
        os.chmod(path, 0o644)  # the publisher reads ca.pem as WORKER_USER; the broker reads all
    return ca, cert, key


class HoldingProxy:
    """A TCP proxy in front of a broker that can hold back the broker's
    replies: what a client sends goes through (and is stored by the
    broker), but its confirms do not come back.  That is the window between
    publish and confirm, made as wide as a test needs, without the broker
    itself stopping (a stopped broker may drop what sits unread in its
    socket when the client dies)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.replies = threading.Event()
        self.replies.set()
        self.closing = False
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def hold_replies(self):
        self.replies.clear()

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.replies), daemon=True).start()

    def _pump(self, src, dst, gate):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                # Held replies wait here (a recv may already have been
                # under way when the hold began).
                while gate is not None and not gate.wait(0.05):
                    if self.closing:
                        return
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.listener.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


class RabbitBroker:
    BOOT_TIMEOUT = 120  # a loaded 2-core machine has been seen to take 40 s

    def __init__(self):
        if not os.path.exists(RABBITMQ_SERVER):
            raise AssertionError("rabbitmq-server is missing: run scripts/install-deps test")
        self.dir = tempfile.mkdtemp(prefix="orders-rabbit-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = "orders-test-%d@localhost" % self.port
        self.proc = None
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        self.tls_port = free_port()
        self.ca, cert, key = make_certificates(self.dir)
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write("listeners.tcp.default = 127.0.0.1:%d\n" % self.port)
            f.write("listeners.ssl.default = 127.0.0.1:%d\n" % self.tls_port)
            f.write("ssl_options.cacertfile = %s\nssl_options.certfile = %s\nssl_options.keyfile = %s\n"
                    "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n"
                    % (self.ca, cert, key))
        cookie = os.path.join(self.dir, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write("orders-test-cookie-%d" % self.port)
        os.chmod(cookie, 0o400)
        self.prefix = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("rabbitmq")
            for root, dirs, files in os.walk(self.dir):
                os.chown(root, account.pw_uid, account.pw_gid)
                for name in files:
                    os.chown(os.path.join(root, name), account.pw_uid, account.pw_gid)
            self.prefix = ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", "--"]

    def env(self):
        return {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": self.dir, "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.dir, "rabbitmq"),
            "RABBITMQ_PID_FILE": os.path.join(self.dir, "pid"),
            "RABBITMQ_LOGS": "-",
        }

    def start(self):
        out = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(self.prefix + [RABBITMQ_SERVER], env=self.env(), cwd=self.dir,
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        out.close()
        def alive():
            if self.proc.poll() is not None:
                raise AssertionError("rabbitmq-server exited (%s):\n%s" % (self.proc.returncode, self.log()))

        def ready():
            try:
                self.connection().close()
                return True
            except Exception:  # not accepting AMQP yet
                return False
        # Our broker's answer only (harness.wait_own_server says why).
        if wait_own_server(self.port, {self.proc.pid}, ready, alive, self.BOOT_TIMEOUT, interval=0.2):
            return self
        raise AssertionError("rabbitmq-server not ready within %ds:\n%s" % (self.BOOT_TIMEOUT, self.log()))

    def stop(self):
        _stop_group(self.proc, 60)
        self.proc = None

    def close(self):
        self.stop()
        # Erlang started epmd as a daemon on our private port: end it.
        subprocess.run(self.prefix + ["epmd", "-port", str(self.epmd_port), "-kill"],
                       env=self.env(), capture_output=True, timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def url(self, query="", user="guest", password="guest", scheme="amqp", port=None, host="127.0.0.1"):
        return "%s://%s:%s@%s:%d/%s" % (scheme, user, password, host, port or self.port,
                                        ("?" + query) if query else "")

    def connection(self):
        return pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", self.port, credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1, socket_timeout=2, blocked_connection_timeout=5))


class RabbitQueue:
    """A durable queue bound to an exchange (declared like the publisher
    does), read back with basic.get; what a consumer of the events does."""

    def __init__(self, broker, exchange, name, binding="#"):
        self.broker, self.exchange, self.name, self.binding = broker, exchange, name, binding
        conn = broker.connection()
        try:
            ch = conn.channel()
            ch.exchange_declare(exchange, exchange_type="topic", durable=True)
            ch.queue_declare(name, durable=True)
            ch.queue_bind(name, exchange, routing_key=binding)
        finally:
            conn.close()
        self.messages = []  # (method, properties, body)

    def depth(self):
        """Messages waiting in the queue now (none are consumed)."""
        conn = self.broker.connection()
        try:
            return conn.channel().queue_declare(self.name, passive=True).method.message_count
        finally:
            conn.close()

    def drain(self):
        """Reads everything queued now; returns all messages read so far."""
        conn = self.broker.connection()
        try:
            ch = conn.channel()
            for _ in range(100000):
                method, props, body = ch.basic_get(self.name, auto_ack=True)
                if method is None:
                    break
                self.messages.append((method, props, body))
        finally:
            conn.close()
        return self.messages

    def wait_for(self, count, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(self.drain()) >= count:
                    return self.messages
            except Exception:  # the broker is restarting
                pass
            time.sleep(0.1)
        raise AssertionError("%d of %d messages in %s after %ss" % (len(self.messages), count, self.name, timeout))


class NatsBroker:
    def __init__(self, user=None, password=None, tls=False):
        if shutil.which("nats-server") is None:
            raise AssertionError("nats-server is missing: run scripts/install-deps test")
        self.dir = tempfile.mkdtemp(prefix="orders-nats-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc = None
        self.auth = ["--user", user, "--pass", password] if user else []
        self.ca = None
        if tls:  # TLS required of every client
            self.ca, cert, key = make_certificates(self.dir)
            self.auth += ["--tls", "--tlscert", cert, "--tlskey", key]

    def start(self):
        out = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-sd", os.path.join(self.dir, "jetstream"), "-n", "orders-test-%d" % self.port] + self.auth,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        def alive():
            if self.proc.poll() is not None:
                raise AssertionError("nats-server exited:\n" + self.log())
        # Our server's answer only (harness.wait_own_server says why).
        if wait_own_server(self.port, {self.proc.pid}, lambda: port_open(self.port), alive, 20):
            return self
        raise AssertionError("nats-server not ready:\n" + self.log())

    def stop(self):
        _stop_group(self.proc, 20)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def log(self):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def url(self, query="", userinfo="", port=None):
        return "nats://%s127.0.0.1:%d%s" % (userinfo + "@" if userinfo else "", port or self.port,
                                            ("?" + query) if query else "")


def _nats_example():
    """examples/read-events-nats.py as a module: the tests read streams with
    the same protocol code the README's consumer uses."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "read-events-nats.py")
    spec = importlib.util.spec_from_file_location("read_events_nats", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NATS_EXAMPLE = _nats_example()


class NatsStream:
    """A JetStream stream seen from outside: its state, and every message in
    it, read by a fresh pull consumer from the first one."""

    def __init__(self, broker, name):
        self.broker, self.name, self._readers = broker, name, 0

    def _client(self):
        return NATS_EXAMPLE.Nats("127.0.0.1", self.broker.port)

    def info(self):
        """The stream's info, or None when it does not exist."""
        client = self._client()
        try:
            reply = client.request("$JS.API.STREAM.INFO." + self.name, {})
        finally:
            client.sock.close()
        return None if "error" in reply else reply

    def create(self, subject):
        client = self._client()
        try:
            reply = client.request("$JS.API.STREAM.CREATE." + self.name,
                                   {"name": self.name, "subjects": [subject], "storage": "file"})
        finally:
            client.sock.close()
        assert "error" not in reply, reply

    def messages(self):
        """[(headers, event)] of everything in the stream, in stream order."""
        self._readers += 1
        consumer = "test-reader-%d" % self._readers
        client = self._client()
        out = []
        try:
            created = client.request("$JS.API.CONSUMER.DURABLE.CREATE.%s.%s" % (self.name, consumer), {
                "stream_name": self.name,
                "config": {"durable_name": consumer, "deliver_policy": "all", "ack_policy": "none"}})
            assert "error" not in created, created
            inbox = "_INBOX.test-reader.%d" % self._readers
            client.subscribe(inbox)
            for _ in range(10000):
                client.publish("$JS.API.CONSUMER.MSG.NEXT.%s.%s" % (self.name, consumer),
                               json.dumps({"batch": 256, "no_wait": True}).encode(), inbox)
                got = 0
                for _ in range(256):
                    subject, reply, headers, status, payload = client.next_message()
                    if status is not None:
                        break
                    out.append((headers, NATS_EXAMPLE.event_of(headers, payload)))
                    got += 1
                if got == 0:
                    break
        finally:
            client.sock.close()
        return out

    def wait_for(self, count, timeout):
        deadline = time.monotonic() + timeout
        got = []
        while time.monotonic() < deadline:
            try:
                got = self.messages()
                if len(got) >= count:
                    return got
            except (OSError, AssertionError):  # the server is restarting
                pass
            time.sleep(0.1)
        raise AssertionError("%d of %d messages in stream %s after %ss" % (len(got), count, self.name, timeout))
