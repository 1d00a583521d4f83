#!/usr/bin/env python3
"""Reads the Orders Service's events from RabbitMQ, as a consumer would.

    python3 examples/read-events-amqp.py [AMQP_URL] [QUEUE] [COUNT]

AMQP_URL defaults to amqp://guest:guest@127.0.0.1:5672/%2f and must name
the broker the publisher uses (EVENT_SINK=amqp://...?exchange=orders).
The queue (default orders-example) is durable and bound to the exchange
with routing key "#" (every event type; bind "order.updated" for status
changes only), so events published while this program is not running wait
in it.  Bind it before the first event: until some queue is bound, the
broker returns the publisher's messages and the publisher retries them.

Prints one line per event: routing key, message_id (the event id: drop
duplicates by it, delivery is at least once) and the CloudEvent.  Stops
after COUNT events (default: never), acknowledging each after printing.
Needs pika (Debian: python3-pika).
"""
import json
import sys

import pika

url = sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672/%2f"
queue = sys.argv[2] if len(sys.argv) > 2 else "orders-example"
count = int(sys.argv[3]) if len(sys.argv) > 3 else 0
exchange = "orders"

connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
# Declared exactly as the publisher declares it, so either may come first.
channel.exchange_declare(exchange, exchange_type="topic", durable=True)
channel.queue_declare(queue, durable=True)
channel.queue_bind(queue, exchange, routing_key="#")
seen = 0
for method, props, body in channel.consume(queue):
    if props.content_type == "application/cloudevents+json":  # structured mode
        event = json.loads(body)
    else:  # binary mode: attributes in cloudEvents_* headers, data as the body
        event = {k[len("cloudEvents_"):]: v for k, v in (props.headers or {}).items()
                 if k.startswith("cloudEvents_")}
        event["datacontenttype"] = props.content_type
        event["data"] = json.loads(body)
    print(method.routing_key, props.message_id, json.dumps(event, separators=(",", ":")), flush=True)
    channel.basic_ack(method.delivery_tag)
    seen += 1
    if count and seen >= count:
        break
channel.cancel()
connection.close()
