-- API tokens may carry an expiry; NULL: valid until revoked.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
