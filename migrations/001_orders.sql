-- Orders.  Ids are UUIDv7 text; timestamps are milliseconds since the Unix
-- epoch (UTC), rendered as RFC 3339 by the service.  items is the JSON array
-- exactly as validated.
CREATE TABLE orders (
    id          TEXT    NOT NULL PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    items       TEXT    NOT NULL,
    status      TEXT    NOT NULL
                CHECK (status IN ('pending', 'paid', 'shipped', 'delivered')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- A page of the list is "newest first, ties broken by id": this index gives
-- that order without a sort, so the first page costs the same at a million
-- rows as at ten.
CREATE INDEX orders_by_creation ON orders (created_at DESC, id DESC);

-- count(*) over a million rows is a full index scan on every list request;
-- the total is kept here instead, in the same transaction as the insert.
CREATE TABLE order_count (
    singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    total     INTEGER NOT NULL
);
INSERT INTO order_count (singleton, total) VALUES (1, 0);

CREATE TRIGGER orders_count_insert AFTER INSERT ON orders
BEGIN
    UPDATE order_count SET total = total + 1 WHERE singleton = 1;
END;

CREATE TRIGGER orders_count_delete AFTER DELETE ON orders
BEGIN
    UPDATE order_count SET total = total - 1 WHERE singleton = 1;
END;
