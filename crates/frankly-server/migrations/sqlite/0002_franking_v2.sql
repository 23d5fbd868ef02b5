-- frankly-server schema, version 2 (sqlite): franking v2. Devices have ids and
-- their own mailboxes; conversations have members and a sequence counter;
-- reports record the authenticated reporter device and the reported
-- commitment (re-reports of one message by one device are deduplicated),
-- and a sender's priority rises once per distinct reporter. The relay's
-- mailboxes hold only undelivered v1 ciphertexts, which v2 devices cannot
-- open, so they are dropped; reports are kept.
DROP TABLE messages;
DROP TABLE devices;

CREATE TABLE devices (
    token_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    UNIQUE (user_id, device_id)
);

CREATE TABLE conversations (
    conversation_id TEXT PRIMARY KEY,
    last_sequence BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE members (
    conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id),
    user_id TEXT NOT NULL,
    joined_ms BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient_user TEXT NOT NULL,
    recipient_device TEXT NOT NULL,
    conversation TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    server_message_id TEXT NOT NULL,
    sender_user TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    ciphertext BLOB NOT NULL,
    attachments BLOB NOT NULL,
    commitment BLOB NOT NULL,
    key_id BIGINT NOT NULL,
    mac BLOB NOT NULL,
    delivery_mac BLOB NOT NULL
);
CREATE INDEX messages_recipient ON messages (recipient_user, recipient_device, id);

ALTER TABLE reports ADD COLUMN franking_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE reports ADD COLUMN reporter_device TEXT NOT NULL DEFAULT '';
ALTER TABLE reports ADD COLUMN reported_commitment TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX reports_once_per_reporter ON reports (reporter_id, reporter_device, reported_commitment)
    WHERE franking_version = 2;

CREATE TABLE sender_reporters (
    sender_id TEXT NOT NULL,
    reporter_id TEXT NOT NULL,
    PRIMARY KEY (sender_id, reporter_id)
);
