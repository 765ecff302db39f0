//! The `switchboard` binary's library half: configuration, the command-line
//! layout, the provisioning CLI and the `serve` wiring.

pub mod cli;
pub mod config;
pub mod csv_rows;
pub mod healthcheck;
pub mod metrics;
pub mod output;
pub mod provision;
pub mod secrets;
pub mod serve;
