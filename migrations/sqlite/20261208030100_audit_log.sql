-- Who changed what and when, written by the web app's service layer (pages and API alike):
-- route changes, deletions, password regenerations, tokens, role changes, suspensions.
-- Append-only; kept after what it names is deleted, so it holds names rather than references.
CREATE TABLE audit_log (
    id         BLOB PRIMARY KEY,
    -- The business the change was in; NULL for platform-wide changes (operator tokens, trunks).
    tenant_id  BLOB REFERENCES tenants (id),
    -- Who: a user's e-mail address, or an API token by name with its creator.
    actor      TEXT NOT NULL CONSTRAINT audit_log_actor_check CHECK (length(trim(actor)) BETWEEN 1 AND 300),
    -- What kind of change, a stable key such as "number.route".
    action     TEXT NOT NULL CONSTRAINT audit_log_action_check CHECK (length(action) BETWEEN 1 AND 64),
    -- What it was done to, by name ("+44 20 7946 0018", "extension 201").
    subject    TEXT NOT NULL CONSTRAINT audit_log_subject_check CHECK (length(subject) <= 300),
    -- What changed, in words ("routed to extension 201; was not routed").
    detail     TEXT NOT NULL CONSTRAINT audit_log_detail_check CHECK (length(detail) <= 1000),
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, created_at);
CREATE INDEX audit_log_created_idx ON audit_log (created_at);
