-- Deliveries and failed attempts per transport, for /metrics
-- (orders_publisher_sink_*_total{sink="amqp"}), as SQLite's
-- migrations/005_sink_counters.sql: added to in the publisher's own commit,
-- never pruned.  sink is the adapter's name, never the URL.
CREATE TABLE publisher_sink_counters (
    sink       text   NOT NULL PRIMARY KEY,
    deliveries bigint NOT NULL DEFAULT 0,
    failures   bigint NOT NULL DEFAULT 0
);
