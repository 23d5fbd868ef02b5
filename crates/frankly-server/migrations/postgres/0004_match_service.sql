-- frankly-server schema, version 4 (PostgreSQL): the HMA-compatible matching
-- service's banks (curated over /c), their content and signals, and the
-- API keys that authorize /h, /m and /c (stored as SHA-256 of the secret).
CREATE TABLE match_banks (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    matching_enabled_ratio DOUBLE PRECISION NOT NULL,
    negative BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE match_content (
    id BIGSERIAL PRIMARY KEY,
    bank_id BIGINT NOT NULL REFERENCES match_banks (id) ON DELETE CASCADE,
    disable_until_ts BIGINT NOT NULL,
    note TEXT,
    metadata TEXT,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX match_content_bank ON match_content (bank_id);

CREATE TABLE match_signals (
    content_id BIGINT NOT NULL REFERENCES match_content (id) ON DELETE CASCADE,
    signal_type TEXT NOT NULL,
    signal TEXT NOT NULL,
    PRIMARY KEY (content_id, signal_type)
);

CREATE TABLE api_keys (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 BYTEA NOT NULL,
    scopes TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
);
