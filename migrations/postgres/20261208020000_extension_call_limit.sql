-- Concurrent calls one extension may take part in (made and received);
-- over it a new call gets 486 and an incoming one is treated as busy.
ALTER TABLE extensions ADD COLUMN max_concurrent_calls INTEGER NOT NULL DEFAULT 8
    CONSTRAINT extensions_max_concurrent_calls_check CHECK (max_concurrent_calls BETWEEN 1 AND 1000);
