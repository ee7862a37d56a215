-- Schema version 5: what an approval decides. `call`: whether a call may run (a gated call or a
-- fixed approval step). `in_doubt`: a call with an effect whose process stopped while running it
-- — it may have happened — and whether to run it again (approve) or mark it done (deny).
ALTER TABLE approvals ADD COLUMN kind TEXT NOT NULL DEFAULT 'call';
