-- frankly-server schema, version 12 (PostgreSQL): Coop's action webhooks as
-- taken, by the SHA-256 of their body (Coop sends no delivery id), so the
-- same callback twice is answered with its first outcome.
CREATE TABLE coop_actions (
    id BIGSERIAL PRIMARY KEY,
    body_sha256 TEXT NOT NULL UNIQUE,
    report BIGINT NOT NULL REFERENCES reports (id),
    decision BIGINT NOT NULL REFERENCES decisions (id),
    outcome TEXT NOT NULL,
    received_ms BIGINT NOT NULL
);
