-- frankly-server schema, version 5 (SQLite): the matching service's change log, which
-- every instance follows to keep its index current and from which bank
-- bundles and deltas are made; bank versions; content labels; bundles
-- signed offline and published to the server.
ALTER TABLE match_banks ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE match_content ADD COLUMN labels TEXT;
-- 1 while a disable_until_ts in the future has not yet been logged as an
-- enable change (the change is logged once the time has passed).
ALTER TABLE match_content ADD COLUMN enable_pending BIGINT NOT NULL DEFAULT 0;
CREATE INDEX match_content_pending ON match_content (enable_pending, disable_until_ts);

-- One row: the newest change's sequence number. Every writer increments it
-- in its transaction, which serialises writers, so changes commit in
-- sequence order and a reader that has seen seq N has seen every change
-- up to N.
CREATE TABLE match_log_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO match_log_head (id, seq) VALUES (1, 0);

CREATE TABLE match_changes (
    seq BIGINT PRIMARY KEY,
    bank_id BIGINT NOT NULL,
    bank_version BIGINT NOT NULL,
    content_id BIGINT,
    kind TEXT NOT NULL,
    signals TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX match_changes_bank ON match_changes (bank_id, bank_version);

CREATE TABLE match_bundles (
    bank_id BIGINT NOT NULL,
    signal_type TEXT NOT NULL,
    version BIGINT NOT NULL,
    bundle BLOB NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (bank_id, signal_type)
);
