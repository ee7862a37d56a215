-- Schema version 7: pages of approvals by status in the order they were requested (the API's
-- pending list), read from the index a page at a time instead of sorting every pending one.
CREATE INDEX approvals_by_status_requested ON approvals (status, requested_at, id);
