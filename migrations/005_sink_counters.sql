-- Deliveries and failed attempts per transport, for /metrics
-- (orders_publisher_sink_*_total{sink="amqp"}).  The publisher adds to its
-- transport's row in the same transaction that records a batch, so the
-- figures are exact, and unlike the events table they are never pruned:
-- true counters.  sink is the adapter's name (stdout, file, http, amqp,
-- nats), never the URL, which may hold credentials.
CREATE TABLE publisher_sink_counters (
    sink       TEXT    NOT NULL PRIMARY KEY,
    deliveries INTEGER NOT NULL DEFAULT 0,
    failures   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
