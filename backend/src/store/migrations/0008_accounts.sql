-- Accounts, API tokens, browser sessions and the audit log. Times are Unix seconds (UTC).
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    -- argon2id PHC string; NULL for users signed in by the reverse proxy only.
    password_hash TEXT,
    source        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
-- A token is `seal_pat_<id>_<secret>`: found by id, checked against the SHA-256 of the secret.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL,
    label         TEXT,
    role_cap      TEXT,
    secret_sha256 TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT
);
-- A session cookie's value is stored only as its SHA-256.
CREATE TABLE sessions (
    id_sha256   TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL,
    csrf_token  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
-- Append-only: nothing updates or deletes its rows.
CREATE SEQUENCE audit_ids START 1;
CREATE TABLE audit_log (
    id          BIGINT PRIMARY KEY DEFAULT nextval('audit_ids'),
    occurred_at BIGINT NOT NULL,
    actor       TEXT,
    action      TEXT NOT NULL,
    target      TEXT,
    detail      TEXT,
    peer        TEXT
);
