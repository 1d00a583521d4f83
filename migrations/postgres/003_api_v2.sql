-- Version 2 of the API (issue 16), as SQLite's migrations/006_api_v2.sql:
-- the order's version (its ETag), filtered pages, idempotent creates.
ALTER TABLE orders ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- Filtered pages walk these newest first and stop after one page.
CREATE INDEX orders_by_status ON orders (status, seq);
CREATE INDEX orders_by_customer ON orders (customer_id, seq);
CREATE INDEX orders_by_customer_status ON orders (customer_id, status, seq);

-- The total of a page filtered by status, kept by a trigger in slots as
-- order_count is (migrations/postgres/001), so hosts do not queue on one row.
CREATE TABLE order_status_count (
    status text    NOT NULL,
    slot   integer NOT NULL CHECK (slot >= 0 AND slot < 16),
    total  bigint  NOT NULL,
    PRIMARY KEY (status, slot)
);
INSERT INTO order_status_count (status, slot, total)
    SELECT s.status, g, CASE WHEN g = 0 THEN (SELECT count(*) FROM orders o WHERE o.status = s.status)
                             ELSE 0 END
      FROM (VALUES ('pending'), ('paid'), ('shipped'), ('delivered')) AS s (status),
           generate_series(0, 15) AS g;

CREATE FUNCTION orders_status_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE order_status_count SET total = total - 1
         WHERE status = OLD.status AND slot = pg_backend_pid() % 16;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE order_status_count SET total = total + 1
         WHERE status = NEW.status AND slot = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_status_count_insert_delete AFTER INSERT OR DELETE ON orders
    FOR EACH ROW EXECUTE FUNCTION orders_status_count();
CREATE TRIGGER orders_status_count_update AFTER UPDATE OF status ON orders
    FOR EACH ROW WHEN (NEW.status <> OLD.status) EXECUTE FUNCTION orders_status_count();

-- Idempotency-Key: per caller and key, the fingerprint and the order the
-- create made, written in that create's statement.
CREATE TABLE idempotency_keys (
    caller      text   NOT NULL,
    key         text   NOT NULL,
    fingerprint bytea  NOT NULL,
    order_id    text   NOT NULL,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL,
    PRIMARY KEY (caller, key)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
