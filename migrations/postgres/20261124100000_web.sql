-- Web app state: login sessions, API tokens and the one-time operator setup link. Secrets are never
-- stored: every token column holds the lowercase hex SHA-256 of a 256-bit random value.

CREATE TABLE web_sessions (
    id_hash      text PRIMARY KEY CONSTRAINT web_sessions_id_hash_check CHECK (id_hash ~ '^[0-9a-f]{64}$'),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL CONSTRAINT web_sessions_csrf_token_check CHECK (length(csrf_token) BETWEEN 32 AND 128),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ip           text CONSTRAINT web_sessions_ip_check CHECK (length(ip) <= 64),
    user_agent   text CONSTRAINT web_sessions_user_agent_check CHECK (length(user_agent) <= 512)
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    -- NULL: an operator token (platform-wide).
    tenant_id    uuid REFERENCES tenants (id),
    name         text NOT NULL CONSTRAINT api_tokens_name_check CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    token_hash   text NOT NULL CONSTRAINT api_tokens_token_hash_key UNIQUE
                 CONSTRAINT api_tokens_token_hash_check CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    -- The first characters of the token, so a user can tell tokens apart.
    prefix       text NOT NULL CONSTRAINT api_tokens_prefix_check CHECK (length(prefix) BETWEEN 1 AND 16),
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id, created_at);

CREATE TABLE setup_tokens (
    token_hash text PRIMARY KEY CONSTRAINT setup_tokens_token_hash_check CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
