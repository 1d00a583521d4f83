-- The transactional outbox.  A worker inserts one row in the same
-- transaction as the order change it describes; the publisher delivers rows
-- in seq order.  SQLite has one writer at a time, so seq (AUTOINCREMENT,
-- never reused) is the commit order.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,  -- CloudEvents id (UUIDv7)
    type            TEXT    NOT NULL,         -- order.created | order.updated
    source          TEXT    NOT NULL,
    subject         TEXT    NOT NULL,         -- the order id
    time            TEXT    NOT NULL,         -- RFC 3339, ms, Z
    traceparent     TEXT,                     -- W3C trace context of the request
    data            TEXT    NOT NULL,         -- JSON: the order (+ previousStatus)
    committed_at    INTEGER NOT NULL,         -- ms since epoch
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER,                  -- ms; NULL: now
    delivered_at    INTEGER,                  -- ms; NULL: not yet
    parked_at       INTEGER                   -- ms; set when given up on
);

-- The publisher's scan: undelivered, not parked, in commit order.
CREATE INDEX events_pending ON events (seq)
    WHERE delivered_at IS NULL AND parked_at IS NULL;

-- Retention pruning walks delivered rows by age.
CREATE INDEX events_delivered ON events (delivered_at)
    WHERE delivered_at IS NOT NULL;

-- One publisher at a time: whoever holds an unexpired lease delivers.
CREATE TABLE publisher_lease (
    singleton  INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
