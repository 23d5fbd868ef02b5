-- frankly-server schema, version 3 (sqlite): the keys the server keeps in its
-- database are wrapped (ChaCha20-Poly1305) under key chains held outside it
-- (src/keychain.rs), so a dump of the database cannot forge a tag or open a
-- report, and a key that has retired cannot be read from any backup. Tag
-- keys move to tag_keys: on first start the server wraps each row left in
-- platform_keys (plaintext, version 2) into tag_keys and deletes it. Report
-- keys, which were a file, move to report_keys (the file is imported as key 1
-- and removed). The relay stores a message's attachments once
-- (relay_attachments), not in every copy. Usernames become case-insensitive: each is folded to lower
-- case unless that would collide with another account (which then keeps its
-- name and must be renamed by an admin).
CREATE TABLE tag_keys (
    id BIGINT PRIMARY KEY,
    wrapped BLOB NOT NULL,
    active_from_ms BIGINT NOT NULL,
    active_until_ms BIGINT NOT NULL,
    accept_until_ms BIGINT NOT NULL
);

CREATE TABLE report_keys (
    id BIGINT PRIMARY KEY,
    wrapped BLOB NOT NULL,
    created_ms BIGINT NOT NULL,
    open_until_ms BIGINT NOT NULL
);

UPDATE users SET username = lower(username)
WHERE username <> lower(username)
  AND NOT EXISTS (SELECT 1 FROM users AS other
                  WHERE lower(other.username) = lower(users.username) AND other.id <> users.id);

CREATE TABLE relay_attachments (
    server_message_id TEXT PRIMARY KEY,
    attachments BLOB NOT NULL
);
CREATE INDEX messages_server_message_id ON messages (server_message_id);
