-- Schema version 8: deployed workflow versions for `tollgate serve`, and the idempotency keys
-- of run starts.
--
-- A deployment row is immutable but for its kill switch (`enabled`, `switched_at`); `signature`
-- is the audit key's ed25519 signature over the whole row, so a row written, edited or
-- re-enabled in the database file without the key is not deployed at all.
CREATE TABLE workflow_deployments (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    digest      TEXT NOT NULL,
    plugins     TEXT NOT NULL,
    path        TEXT NOT NULL,
    deployed_at INTEGER NOT NULL,
    deployed_by TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    switched_at INTEGER NOT NULL,
    signature   TEXT NOT NULL,
    PRIMARY KEY (name, version)
);

-- One row per (caller, Idempotency-Key): the run the key started and a hash of the request,
-- written in the run's own creating transaction.
CREATE TABLE run_starts (
    caller       TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (caller, key)
);
