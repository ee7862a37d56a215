-- Schema version 6: API tokens for `tollgate serve`. Only the sha256 of a token's secret is kept;
-- `signature` is the audit key's ed25519 signature over the row's identity (id, name, role,
-- secret hash, times), so a row written into the database file without the key never
-- authenticates anyone.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER,
    signature   TEXT NOT NULL
);
