-- Admin changes for running servers in other processes (the CLI, a second server): every
-- mutation of the service layer appends one row; servers poll for rows past the last they saw.
-- AUTOINCREMENT: a sequence number is never reused, so a reader's cursor stays meaningful
-- after old rows are pruned.
CREATE TABLE change_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The process that made the change (it applies its own changes without reading them back).
    origin     BLOB NOT NULL,
    -- The change as JSON (store::changes::Change).
    payload    TEXT NOT NULL CONSTRAINT change_log_payload_check CHECK (length(payload) BETWEEN 2 AND 4000),
    created_at TEXT NOT NULL
) STRICT;
