-- The IANA time zone (checked against the tz database by the store) a business's times are
-- shown in by the web admin. Stored times stay UTC.
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Europe/London'
    CONSTRAINT tenants_time_zone_check CHECK (length(time_zone) BETWEEN 1 AND 64);
