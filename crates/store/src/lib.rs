//! Directory: the SQL store behind Switchboard.
