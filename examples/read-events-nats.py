#!/usr/bin/env python3
"""Reads the Orders Service's events from a NATS JetStream stream, as a
consumer would, with nothing but the Python standard library (the NATS
client protocol over a socket).

    python3 examples/read-events-nats.py [NATS_URL] [STREAM] [CONSUMER] [COUNT]

NATS_URL defaults to nats://127.0.0.1:4222 (user:password@ in it is sent in
CONNECT); STREAM (default ORDERS) is the stream the publisher writes to
(EVENT_SINK=nats://...?stream=ORDERS creates it); CONSUMER (default
orders-example) is a durable pull consumer, created if missing, that starts
at the stream's first event and remembers, across runs, what was acked.

Prints one line per event: the NATS subject, Nats-Msg-Id (the event id;
the stream already dropped redeliveries inside its duplicate window) and the
CloudEvent, then acks it.  Stops after COUNT events (default: never).
"""
import json
import socket
import sys
import urllib.parse

class Nats:
    def __init__(self, host, port, user=None, password=None):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.buf = b""
        self.sid = 0
        self.line()  # INFO {...}
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "name": "orders-example-consumer"}
        if user:
            connect.update(user=urllib.parse.unquote(user), password=urllib.parse.unquote(password or ""))
        self.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        while self.line() != b"PONG":
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        if line.startswith(b"-ERR"):
            raise ConnectionError(line.decode())
        return line

    def take(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def subscribe(self, subject):
        self.sid += 1
        self.send(b"SUB %s %d\r\n" % (subject.encode(), self.sid))

    def publish(self, subject, payload=b"", reply=None):
        head = b"PUB " + subject.encode() + (b" " + reply.encode() if reply else b"")
        self.send(head + b" %d\r\n" % len(payload) + payload + b"\r\n")

    def next_message(self):
        """(subject, reply, headers dict, status, payload) of the next message."""
        while True:
            line = self.line()
            if line == b"PING":
                self.send(b"PONG\r\n")
                continue
            parts = line.split(b" ")
            if parts[0] == b"MSG":
                reply = parts[3].decode() if len(parts) == 5 else None
                return parts[1].decode(), reply, {}, None, self.take(int(parts[-1]))
            if parts[0] == b"HMSG":
                reply = parts[3].decode() if len(parts) == 6 else None
                header_len, total = int(parts[-2]), int(parts[-1])
                raw = self.take(total)
                head, payload = raw[:header_len].decode(), raw[header_len:]
                lines = head.split("\r\n")
                status = lines[0][len("NATS/1.0"):].strip() or None
                headers = {}
                for h in lines[1:]:
                    if ":" in h:
                        k, v = h.split(":", 1)
                        headers[k.strip()] = v.strip()
                return parts[1].decode(), reply, headers, status, payload

    def request(self, subject, body):
        inbox = "_INBOX.orders-example.%d" % (self.sid + 1)
        self.subscribe(inbox)
        self.publish(subject, json.dumps(body).encode(), inbox)
        return json.loads(self.next_message()[4])


def event_of(headers, payload):
    """The CloudEvent in a message: structured or binary mode."""
    if headers.get("content-type", "").startswith("application/cloudevents+json"):
        return json.loads(payload)
    event = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    event["datacontenttype"] = headers.get("content-type")
    event["data"] = json.loads(payload)
    return event


def main():
    url = urllib.parse.urlsplit(sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222")
    stream = sys.argv[2] if len(sys.argv) > 2 else "ORDERS"
    consumer = sys.argv[3] if len(sys.argv) > 3 else "orders-example"
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    nats = Nats(url.hostname or "127.0.0.1", url.port or 4222, url.username, url.password)
    created = nats.request("$JS.API.CONSUMER.DURABLE.CREATE.%s.%s" % (stream, consumer), {
        "stream_name": stream,
        "config": {"durable_name": consumer, "deliver_policy": "all", "ack_policy": "explicit"}})
    if "error" in created:
        sys.exit("cannot create the consumer: %s" % created["error"].get("description"))
    inbox = "_INBOX.orders-example.fetch"
    nats.subscribe(inbox)
    seen = 0
    while not count or seen < count:
        # Up to 100 events, waiting at most 5 s for the first (in nanoseconds).
        nats.publish("$JS.API.CONSUMER.MSG.NEXT.%s.%s" % (stream, consumer),
                     json.dumps({"batch": 100, "expires": 5000000000}).encode(), inbox)
        for _ in range(100):
            subject, reply, headers, status, payload = nats.next_message()
            if status is not None:  # 404 no messages / 408 request expired: ask again
                break
            event = event_of(headers, payload)
            print(subject, headers.get("Nats-Msg-Id"), json.dumps(event, separators=(",", ":")), flush=True)
            nats.publish(reply, b"+ACK")
            seen += 1
            if count and seen >= count:
                break


if __name__ == "__main__":
    main()
