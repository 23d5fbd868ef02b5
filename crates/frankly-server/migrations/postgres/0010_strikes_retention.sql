-- frankly-server schema, version 10 (PostgreSQL): strikes against reported
-- users, legal holds and the retention purge.
CREATE TABLE strikes (
    id BIGSERIAL PRIMARY KEY,
    subject TEXT NOT NULL,
    report BIGINT NOT NULL REFERENCES reports (id),
    decision BIGINT NOT NULL UNIQUE REFERENCES decisions (id),
    action TEXT NOT NULL,
    issued_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    lifted_ms BIGINT,
    lifted_by BIGINT REFERENCES decisions (id)
);
CREATE INDEX strikes_subject ON strikes (subject, expires_ms);
ALTER TABLE reports ADD COLUMN legal_hold_ms BIGINT;
ALTER TABLE reports ADD COLUMN legal_hold_by TEXT;
ALTER TABLE reports ADD COLUMN legal_hold_reason TEXT;
ALTER TABLE reports ADD COLUMN purged_ms BIGINT;
CREATE INDEX reports_retention ON reports (status, purged_ms, id);
