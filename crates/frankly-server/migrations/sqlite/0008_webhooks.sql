-- frankly-server schema, version 8 (SQLite): signed webhooks. An event is
-- written in the same transaction as what it reports (report.created,
-- report.decided, appeal.filed, appeal.decided), so it survives a crash
-- exactly when that does; the deliverer fans each event out to the
-- configured endpoints (one delivery row per endpoint, at most once) and
-- delivers at least once, with exponential backoff, until an endpoint
-- answers 2xx or the attempts run out (then the delivery is a dead letter,
-- listed in the admin UI and retried from there). event_id is the
-- idempotency key receivers deduplicate by.
CREATE TABLE webhook_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    created_ms BIGINT NOT NULL,
    fanned_out_ms BIGINT,
    UNIQUE (event_id)
);
CREATE INDEX webhook_events_pending ON webhook_events (fanned_out_ms);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event BIGINT NOT NULL REFERENCES webhook_events (id),
    endpoint TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    delivered_ms BIGINT,
    dead_ms BIGINT,
    last_error TEXT,
    UNIQUE (event, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (delivered_ms, dead_ms, next_attempt_ms);
