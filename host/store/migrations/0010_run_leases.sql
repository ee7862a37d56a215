-- Schema version 10: leases on advancing runs, for `tollgate serve` processes sharing a store.
-- `token` is the fencing token: it grows each time the run changes hands, and every commit made
-- under a lease names it, so a process that lost its lease writes nothing more for the run.
CREATE TABLE run_leases (
    run_id     TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- The kill switch's authority is the newest signed `workflow.switched` record of a workflow:
-- found by kind without reading the whole chain.
CREATE INDEX audit_by_kind ON audit (kind, seq);
