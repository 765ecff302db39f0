-- Admin changes for running servers in other processes (the CLI, a second server): every
-- mutation of the service layer appends one row and sends it with NOTIFY on the channel
-- `switchboard_changes` in the same transaction; servers LISTEN. The table keeps a short history.
CREATE TABLE change_log (
    seq        BIGSERIAL PRIMARY KEY,
    -- The process that made the change (it applies its own changes without reading them back).
    origin     UUID NOT NULL,
    -- The change as JSON (store::changes::Change).
    payload    TEXT NOT NULL CONSTRAINT change_log_payload_check CHECK (length(payload) BETWEEN 2 AND 4000),
    created_at TIMESTAMPTZ NOT NULL
);
