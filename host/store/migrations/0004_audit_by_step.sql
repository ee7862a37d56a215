-- Schema version 4: find the audit records of one step of a run without reading the whole run
-- (the runtime checks every call's authorisation against them before the call runs).
CREATE INDEX audit_by_run_step ON audit (run_id, json_extract(body, '$.step'));
