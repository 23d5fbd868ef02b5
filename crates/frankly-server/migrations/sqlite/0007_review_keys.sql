-- frankly-server schema, version 7 (SQLite): API keys with the `review`
-- scope act for one moderator account (the moderation API under /api/v1/):
-- user_id names it, and the key can do what the account's role may, while
-- the account is enabled. Keys of the other scopes have no account.
ALTER TABLE api_keys ADD COLUMN user_id BIGINT REFERENCES users (id);
