-- Trunk interop and hardening (issue #17, issue #10 "Trunk recognition"):
-- a wide inbound source (shorter than /24 or /48) only when forced, digest
-- authentication of inbound calls, a per-trunk call rate, and registration
-- to the provider.
ALTER TABLE trunks ADD COLUMN force_wide_source INTEGER NOT NULL DEFAULT 0 CHECK (force_wide_source IN (0, 1));
ALTER TABLE trunks ADD COLUMN inbound_auth INTEGER NOT NULL DEFAULT 0 CHECK (inbound_auth IN (0, 1));
ALTER TABLE trunks ADD COLUMN calls_per_second INTEGER NOT NULL DEFAULT 10
    CONSTRAINT trunks_calls_per_second_check CHECK (calls_per_second BETWEEN 1 AND 1000);
ALTER TABLE trunks ADD COLUMN register_enabled INTEGER NOT NULL DEFAULT 0 CHECK (register_enabled IN (0, 1));
ALTER TABLE trunks ADD COLUMN registrar TEXT
    CONSTRAINT trunks_registrar_check CHECK (length(registrar) BETWEEN 1 AND 260);
ALTER TABLE trunks ADD COLUMN register_expires INTEGER NOT NULL DEFAULT 3600
    CONSTRAINT trunks_register_expires_check CHECK (register_expires BETWEEN 60 AND 86400);
