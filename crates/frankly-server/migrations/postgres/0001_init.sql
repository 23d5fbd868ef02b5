-- frankly-server schema, version 1 (PostgreSQL).
CREATE TABLE platform_keys (
    id BIGINT PRIMARY KEY,
    secret BYTEA NOT NULL,
    active_from_ms BIGINT NOT NULL,
    active_until_ms BIGINT NOT NULL,
    accept_until_ms BIGINT NOT NULL
);

CREATE TABLE reports (
    id BIGSERIAL PRIMARY KEY,
    report_id TEXT NOT NULL UNIQUE,
    received_ms BIGINT NOT NULL,
    reporter_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    stage TEXT NOT NULL,
    priority BIGINT NOT NULL,
    status TEXT NOT NULL,
    claimed_by BIGINT,
    claimed_ms BIGINT,
    lease_until_ms BIGINT,
    messages BIGINT NOT NULL,
    verified BIGINT NOT NULL,
    chain_ok BIGINT NOT NULL,
    server_matches BIGINT NOT NULL,
    content BYTEA NOT NULL
);
CREATE INDEX reports_next ON reports (status, queue, priority DESC, id);
CREATE INDEX reports_lease ON reports (status, lease_until_ms);
CREATE INDEX reports_sender ON reports (sender_id);

CREATE TABLE senders (
    sender_id TEXT PRIMARY KEY,
    reports BIGINT NOT NULL
);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    reveal_media BIGINT NOT NULL DEFAULT 0,
    disabled BIGINT NOT NULL DEFAULT 0,
    created_ms BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);

CREATE TABLE decisions (
    id BIGSERIAL PRIMARY KEY,
    report BIGINT NOT NULL REFERENCES reports (id),
    appeal BIGINT,
    moderator BIGINT NOT NULL REFERENCES users (id),
    action TEXT NOT NULL,
    restriction TEXT NOT NULL,
    facts TEXT NOT NULL,
    automated BIGINT NOT NULL,
    ground TEXT NOT NULL,
    ground_reference TEXT NOT NULL,
    redress TEXT NOT NULL,
    decided_ms BIGINT NOT NULL
);
CREATE INDEX decisions_report ON decisions (report);

CREATE TABLE appeals (
    id BIGSERIAL PRIMARY KEY,
    report BIGINT NOT NULL REFERENCES reports (id),
    decision BIGINT NOT NULL REFERENCES decisions (id),
    appellant TEXT NOT NULL,
    statement TEXT NOT NULL,
    filed_ms BIGINT NOT NULL
);

CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash BYTEA NOT NULL
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END;
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TABLE devices (
    token_hash BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    recipient TEXT NOT NULL,
    server_message_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    conversation TEXT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    ciphertext BYTEA NOT NULL,
    attachments BYTEA NOT NULL,
    commitment BYTEA NOT NULL,
    key_id BIGINT NOT NULL,
    mac BYTEA NOT NULL,
    signature BYTEA NOT NULL
);
CREATE INDEX messages_recipient ON messages (recipient, id);
