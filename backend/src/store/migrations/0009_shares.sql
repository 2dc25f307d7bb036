-- Share links: one target each (a pair, a view, a report), read-only, expiring, revocable.
-- The token is `seal_shr_<id>_<secret>`; only the SHA-256 of the secret is kept.
CREATE TABLE shares (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    -- The target as JSON (`ShareTarget`).
    target        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);
