//! The `switchboard` binary's library half: configuration, the command-line
//! layout, and the pieces of the provisioning CLI that need no database.

pub mod cli;
pub mod config;
pub mod csv_rows;
pub mod healthcheck;
pub mod secrets;
