-- Sign-in attempts per key (the web app's "address + account hash" and "address" keys), in a
-- fixed window from the first attempt. Shared by every process on the database.
CREATE TABLE login_attempts (
    key          text PRIMARY KEY CONSTRAINT login_attempts_key_check CHECK (length(key) BETWEEN 1 AND 200),
    failures     bigint NOT NULL,
    window_start timestamptz NOT NULL
);
CREATE INDEX login_attempts_window_idx ON login_attempts (window_start);
