-- The PostgreSQL schema: the same tables as SQLite's migrations/001..004,
-- in one step, plus what several hosts need.  Times are milliseconds since
-- the Unix epoch (UTC), as on SQLite.
CREATE TABLE orders (
    id          text    NOT NULL PRIMARY KEY,
    -- The list's order: drawn at insert, so an order created after another
    -- one was acknowledged (on any host) always has the higher number.
    seq         bigint  GENERATED ALWAYS AS IDENTITY UNIQUE,
    customer_id text    NOT NULL,
    items       text    NOT NULL,
    status      text    NOT NULL
                CHECK (status IN ('pending', 'paid', 'shipped', 'delivered')),
    created_at  bigint  NOT NULL,
    updated_at  bigint  NOT NULL
);

-- The total of the list without count(*) over the table.  One row would make
-- every create on every host queue on its lock; sixteen rows, picked by the
-- backend's pid, spread them, and the total is their sum.
CREATE TABLE order_count (
    slot  integer NOT NULL PRIMARY KEY CHECK (slot >= 0 AND slot < 16),
    total bigint  NOT NULL
);
INSERT INTO order_count (slot, total) SELECT g, 0 FROM generate_series(0, 15) AS g;

-- Kept by triggers, as on SQLite, so a row written by hand counts too.
CREATE FUNCTION orders_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE order_count SET total = total + CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END
     WHERE slot = pg_backend_pid() % 16;
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_count AFTER INSERT OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_count();

-- The transactional outbox.  seq is drawn before commit, so it is NOT
-- commit order across transactions; the publisher never reads "after the
-- last seq" but claims the oldest undelivered event of each order
-- (adapters/store_postgres.c explains why that keeps each order's events
-- in commit order).
CREATE TABLE events (
    seq             bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text    NOT NULL UNIQUE,
    type            text    NOT NULL,
    source          text    NOT NULL,
    subject         text    NOT NULL,
    time            text    NOT NULL,
    traceparent     text,
    data            text    NOT NULL,
    committed_at    bigint  NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at bigint,
    delivered_at    bigint,
    parked_at       bigint
);

-- The head of each order's queue, and the queue in seq order.
CREATE INDEX events_pending_by_order ON events (subject, seq)
    WHERE delivered_at IS NULL AND parked_at IS NULL;
CREATE INDEX events_pending ON events (seq)
    WHERE delivered_at IS NULL AND parked_at IS NULL;
CREATE INDEX events_delivered ON events (delivered_at)
    WHERE delivered_at IS NOT NULL;
CREATE INDEX events_parked ON events (seq)
    WHERE parked_at IS NOT NULL;

-- Counters for /metrics that pruning cannot lower, kept by the publisher in
-- the transaction that records its deliveries and failures.
CREATE TABLE outbox_counters (
    singleton         integer NOT NULL PRIMARY KEY CHECK (singleton = 1),
    delivered         bigint  NOT NULL,
    delivery_failures bigint  NOT NULL
);
INSERT INTO outbox_counters (singleton, delivered, delivery_failures) VALUES (1, 0, 0);

-- Wakes the publishers (LISTEN orders_events) when an event commits; the
-- notice is sent at commit, never for a rolled-back write.
CREATE FUNCTION orders_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orders_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION orders_events_notify();
