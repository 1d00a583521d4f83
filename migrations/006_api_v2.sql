-- Version 2 of the API (issue 16): conditional requests, idempotent
-- creates, filtered pages.

-- The version the store increments with every change of an order: the
-- order's ETag ("v<version>").  Existing orders start at 1.
ALTER TABLE orders ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- Filtered pages walk these newest first (seq descending) and stop after
-- one page: a page costs the same at any depth of a cursor walk, at any
-- table size.  customer_id alone and with status: a customer with many
-- orders of one status is not sorted on the fly.
CREATE INDEX orders_by_status ON orders (status, seq);
CREATE INDEX orders_by_customer ON orders (customer_id, seq);
CREATE INDEX orders_by_customer_status ON orders (customer_id, status, seq);

-- total of a page filtered by status alone, without counting millions of
-- index entries: kept by triggers, as order_count is (migrations/001).
CREATE TABLE order_status_count (
    status TEXT    NOT NULL PRIMARY KEY,
    total  INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO order_status_count (status, total)
    SELECT s.status, (SELECT count(*) FROM orders WHERE orders.status = s.status)
      FROM (SELECT 'pending' AS status UNION ALL SELECT 'paid'
            UNION ALL SELECT 'shipped' UNION ALL SELECT 'delivered') AS s;

CREATE TRIGGER orders_status_count_insert AFTER INSERT ON orders
BEGIN
    UPDATE order_status_count SET total = total + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER orders_status_count_update AFTER UPDATE OF status ON orders
    WHEN NEW.status <> OLD.status
BEGIN
    UPDATE order_status_count SET total = total - 1 WHERE status = OLD.status;
    UPDATE order_status_count SET total = total + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER orders_status_count_delete AFTER DELETE ON orders
BEGIN
    UPDATE order_status_count SET total = total - 1 WHERE status = OLD.status;
END;

-- Idempotency-Key: per caller (the token's sub) and key, the fingerprint
-- (SHA-256 of the canonical body) and the order a create that succeeded
-- made, written in that create's transaction.  A row past expires_at is
-- forgotten, and pruned a few at a time by later keyed creates.
CREATE TABLE idempotency_keys (
    caller      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    fingerprint BLOB    NOT NULL,
    order_id    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,  -- ms since epoch
    expires_at  INTEGER NOT NULL,  -- ms since epoch
    PRIMARY KEY (caller, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
