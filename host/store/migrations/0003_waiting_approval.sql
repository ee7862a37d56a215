-- Schema version 3: one name for "waiting for a human". A tool call that waits for approval
-- has the status `waiting_approval`, as its run does (it was `parked`).
UPDATE tool_calls SET status = 'waiting_approval' WHERE status = 'parked';
