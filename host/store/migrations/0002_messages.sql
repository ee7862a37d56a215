-- Schema version 2: each agent's conversation as append-only rows, written by the same commit
-- that moves the run's checkpoint, so the checkpoint carries only a cursor into them.
CREATE TABLE messages (
    run_id  TEXT    NOT NULL REFERENCES runs (id),
    seq     INTEGER NOT NULL,
    agent   TEXT    NOT NULL,
    message TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
CREATE INDEX messages_by_agent ON messages (run_id, agent, seq);
