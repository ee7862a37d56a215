-- Tollgate store, schema version 1. Timestamps are milliseconds since the Unix epoch; JSON is
-- TEXT. STRICT tables: a value of the wrong type is an error, not silently coerced.

CREATE TABLE runs (
    id               TEXT    PRIMARY KEY,
    workflow_name    TEXT    NOT NULL,
    workflow_version TEXT    NOT NULL,
    workflow_path    TEXT    NOT NULL,
    workflow_digest  TEXT    NOT NULL,
    goal             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    status_detail    TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deadline_at      INTEGER,
    counters         TEXT    NOT NULL,
    options          TEXT    NOT NULL,
    checkpoint       TEXT    NOT NULL,
    version          INTEGER NOT NULL
) STRICT;
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_status ON runs (status, created_at);

CREATE TABLE steps (
    run_id     TEXT    NOT NULL REFERENCES runs (id),
    step       INTEGER NOT NULL,
    agent      TEXT    NOT NULL,
    turn       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
) STRICT;

CREATE TABLE tool_calls (
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    step            INTEGER NOT NULL,
    call_index      INTEGER NOT NULL,
    call_id         TEXT    NOT NULL,
    agent           TEXT    NOT NULL,
    tool            TEXT    NOT NULL,
    input           TEXT    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    decision        TEXT    NOT NULL,
    result          TEXT,
    report          TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (run_id, step, call_index)
) STRICT;

CREATE TABLE approvals (
    id             TEXT    PRIMARY KEY,
    run_id         TEXT    NOT NULL REFERENCES runs (id),
    step           INTEGER NOT NULL,
    call_index     INTEGER NOT NULL,
    agent          TEXT    NOT NULL,
    tool           TEXT    NOT NULL,
    input          TEXT    NOT NULL,
    plugin_digest  TEXT    NOT NULL,
    binding_hash   TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    requested_at   INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    decided_by     TEXT,
    decided_at     INTEGER,
    note           TEXT,
    approved_input TEXT
) STRICT;
CREATE INDEX approvals_by_status ON approvals (status, expires_at);
CREATE INDEX approvals_by_run ON approvals (run_id, requested_at);

-- One row per charge; usage is the sum over a window, so nothing needs resetting.
CREATE TABLE cap_charges (
    id          INTEGER PRIMARY KEY,
    scope       TEXT    NOT NULL,
    run_id      TEXT    NOT NULL REFERENCES runs (id),
    amount      INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    limit_value INTEGER NOT NULL,
    window_ms   INTEGER
) STRICT;
CREATE INDEX cap_charges_by_scope ON cap_charges (scope, at);

CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) STRICT, WITHOUT ROWID;

-- The hash chain. `seq` is assigned by the store inside the writing transaction.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL,
    run_id    TEXT,
    kind      TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_by_run ON audit (run_id, seq);

-- Append-only by construction: the store never updates or deletes audit rows, and these
-- triggers stop anyone else doing it by accident. (Someone set on tampering can drop them;
-- that is what the chain and the signed checkpoints are for.)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TABLE audit_checkpoints (
    seq        INTEGER PRIMARY KEY,
    hash       TEXT    NOT NULL,
    signed_at  INTEGER NOT NULL,
    public_key TEXT    NOT NULL,
    signature  TEXT    NOT NULL
) STRICT;
