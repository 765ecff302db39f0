//! `sb-loadgen`: Switchboard's own SIP load generator (sipp is not packaged
//! here). Shared pieces (pacing, metrics, transports, users) sit beside one
//! module per scenario: `register`, and `calls` (with RTP in `rtp`).

pub mod call_report;
pub mod calls_cmd;
pub mod cli;
pub mod commands;
pub mod cpu;
pub mod fake_pbx;
pub mod fake_registrar;
pub mod histogram;
pub mod pacing;
pub mod report;
pub mod rtp;
pub mod runner;
pub mod scenario;
pub mod sdp;
pub mod sources;
pub mod transport;
pub mod users;
