-- The list's order is a sequence the store assigns at creation, not the
-- clock: ids of one millisecond are random, so (created_at, id) put two
-- orders made one after the other in the same millisecond in either order.
-- Existing orders are numbered in the order the list showed them.
ALTER TABLE orders ADD COLUMN seq INTEGER;

UPDATE orders SET seq = numbered.n
  FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM orders) AS numbered
 WHERE orders.id = numbered.id;

-- Unique: a page walks it newest first, and an insert draws max(seq) + 1
-- from it under the write lock.
CREATE UNIQUE INDEX orders_by_seq ON orders (seq);
DROP INDEX orders_by_creation;

-- /metrics counts parked events on a request worker: through this index it
-- reads only the parked rows, not the whole table.
CREATE INDEX events_parked ON events (seq) WHERE parked_at IS NOT NULL;

-- A row written without a seq (by hand, with the sqlite3 shell) still gets
-- the next one, so it cannot drop out of the list's order.  The service's
-- own insert names seq, so this never runs on the request path.
CREATE TRIGGER orders_seq_default AFTER INSERT ON orders WHEN NEW.seq IS NULL
BEGIN
    UPDATE orders SET seq = (SELECT coalesce(max(seq), 0) + 1 FROM orders)
     WHERE rowid = NEW.rowid;
END;
