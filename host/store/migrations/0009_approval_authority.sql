-- Schema version 9: approval authority. `authority` is who may decide an approval (approvers,
-- quorum, whether the run's starter may), as its signed request recorded it; `votes` the
-- approvals cast so far (JSON list of {by, at}), so a quorum is counted under the write lock.
ALTER TABLE approvals ADD COLUMN authority TEXT NOT NULL DEFAULT '{"approvers":[],"quorum":1,"self_approval":false}';
ALTER TABLE approvals ADD COLUMN votes TEXT NOT NULL DEFAULT '[]';
