-- Web app state: login sessions, API tokens and the one-time operator setup link. Secrets are never
-- stored: every token column holds the lowercase hex SHA-256 of a 256-bit random value.

CREATE TABLE web_sessions (
    id_hash      TEXT PRIMARY KEY CONSTRAINT web_sessions_id_hash_check CHECK (length(id_hash) = 64 AND id_hash NOT GLOB '*[^0-9a-f]*'),
    user_id      BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL CONSTRAINT web_sessions_csrf_token_check CHECK (length(csrf_token) BETWEEN 32 AND 128),
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ip           TEXT CONSTRAINT web_sessions_ip_check CHECK (length(ip) <= 64),
    user_agent   TEXT CONSTRAINT web_sessions_user_agent_check CHECK (length(user_agent) <= 512)
) STRICT;
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

CREATE TABLE api_tokens (
    id           BLOB PRIMARY KEY,
    -- NULL: an operator token (platform-wide).
    tenant_id    BLOB REFERENCES tenants (id),
    name         TEXT NOT NULL CONSTRAINT api_tokens_name_check CHECK (length(trim(name)) BETWEEN 1 AND 100),
    token_hash   TEXT NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE
                 CONSTRAINT api_tokens_token_hash_check CHECK (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*'),
    -- The first characters of the token, so a user can tell tokens apart.
    prefix       TEXT NOT NULL CONSTRAINT api_tokens_prefix_check CHECK (length(prefix) BETWEEN 1 AND 16),
    created_by   BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
) STRICT;
CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id, created_at);

CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY CONSTRAINT setup_tokens_token_hash_check CHECK (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*'),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
