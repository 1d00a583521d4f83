-- Delivery failures as a true counter for /metrics.  Summing `attempts`
-- over the events table would go down when retention prunes old rows, and
-- a Prometheus counter must never decrease.  The trigger runs inside the
-- publisher's own transaction, so the count is exact and the publisher's
-- SQL does not change.
CREATE TABLE outbox_counters (
    singleton         INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    delivery_failures INTEGER NOT NULL
);
INSERT INTO outbox_counters (singleton, delivery_failures)
    SELECT 1, coalesce(sum(attempts), 0) FROM events;

CREATE TRIGGER events_count_failures AFTER UPDATE OF attempts ON events
    WHEN NEW.attempts > OLD.attempts
BEGIN
    UPDATE outbox_counters
       SET delivery_failures = delivery_failures + (NEW.attempts - OLD.attempts)
     WHERE singleton = 1;
END;
