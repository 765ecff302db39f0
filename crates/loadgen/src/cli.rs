//! Command-line interface.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::transport::Transport;

#[derive(Debug, Parser)]
#[command(
    name = "sb-loadgen",
    version,
    about = "SIP load generator for Switchboard (paced, open-loop, one thread)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Authenticated registrations at a target rate, then a report.
    /// Exits 1 if any registration failed.
    Register(RegisterArgs),
    /// Write a users CSV for `register` and a `number,name,password` CSV for
    /// `switchboard extension import --tenant DOMAIN`.
    Users(UsersArgs),
    /// A minimal in-memory registrar (challenge + verify, no bindings) to
    /// measure the generator itself.
    FakeRegistrar(FakeArgs),
    /// Calls through a B2BUA: half the users register and answer, the
    /// other half call them at a target rate (or up to `--concurrent`
    /// calls held for `--duration`), optionally with RTP both ways.
    /// Exits 1 if any call failed.
    Calls(CallsArgs),
    /// A tiny in-memory B2BUA (registrar, 407 challenge, second leg, RTP
    /// relay) to try `calls` against without a Switchboard.
    FakePbx(FakePbxArgs),
}

#[derive(Debug, Args)]
pub struct CallsArgs {
    /// Server address, IP:PORT.
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub server: SocketAddr,
    /// Users CSV (as for `register`); the first half call, the second half
    /// answer. All in one domain.
    #[arg(long)]
    pub users: PathBuf,
    /// Domain for a CSV without a domain column.
    #[arg(long)]
    pub domain: Option<String>,
    /// Calls started per second (in `--concurrent` mode: the ramp-up rate).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Sending window; in `--concurrent` mode, how long all calls are held
    /// once the ramp-up is over.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Talk time of each call from its 200 to the BYE (0: BYE right after
    /// the ACK). Ignored with `--concurrent`.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Ramp up to N calls at `--rate`, hold them all for `--duration`,
    /// then hang them all up at once.
    #[arg(long)]
    pub concurrent: Option<usize>,
    /// How long callees ring (180) before they answer (200).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub answer_delay: Duration,
    /// Who sends the BYE: caller or callee.
    #[arg(long, default_value = "caller")]
    pub hangup: crate::scenario::call::Hangup,
    /// Send RTP both ways on every answered call (50 packets/s, 160-byte
    /// G.711 payloads) and report loss and latency through the relay.
    #[arg(long)]
    pub rtp: bool,
    /// UDP sockets shared by all call sides for RTP.
    #[arg(long, default_value_t = 8)]
    pub rtp_sockets: usize,
    /// Media threads sharing the RTP sockets (socket k on thread k mod N).
    /// One keeps the generator's share of a small machine small; more let
    /// one process drive thousands of calls on a bigger one.
    #[arg(long, default_value_t = 1)]
    pub rtp_threads: usize,
    /// IP the RTP sockets bind and SDP announces. Default: the first SIP
    /// source's address.
    #[arg(long)]
    pub rtp_ip: Option<std::net::IpAddr>,
    /// With --rtp: media stops this long before the BYE, so packets in
    /// flight reach a relay that is still open.
    #[arg(long, default_value = "60ms", value_parser = parse_duration)]
    pub media_drain: Duration,
    /// Calls in flight at once; a start above it fails
    /// (`concurrency_limit`). Default: as many as there are caller/callee pairs.
    #[arg(long)]
    pub max_concurrent: Option<usize>,
    /// Callee registrations per second before the calls start.
    #[arg(long, default_value_t = 500.0)]
    pub register_rate: f64,
    #[arg(long, default_value = "udp")]
    pub transport: Transport,
    /// Source IPs (as for `register`). Default: loopback addresses enough
    /// for at most 100 SIP messages/s each.
    #[arg(long)]
    pub sources: Option<String>,
    /// After the last call's hold, how long to wait for calls to end.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Also measure this process's (the server's) CPU and memory over the calls.
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub timeline: bool,
}

#[derive(Debug, Args)]
pub struct FakePbxArgs {
    #[arg(long, default_value = "127.0.0.1:5070")]
    pub listen: SocketAddr,
    #[arg(long)]
    pub users: PathBuf,
    #[arg(long)]
    pub domain: Option<String>,
    /// Exit after this long (default: run until interrupted).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Server address, IP:PORT.
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub server: SocketAddr,
    /// Users CSV: `username,password,domain`, or `number,name,password` with --domain.
    #[arg(long)]
    pub users: PathBuf,
    /// Domain for a CSV without a domain column (or empty domain cells).
    #[arg(long)]
    pub domain: Option<String>,
    /// Registrations started per second, spread round-robin over the users.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Sending window, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, default_value = "udp")]
    pub transport: Transport,
    /// Source IPs: A-B range and/or comma list. Default: enough loopback
    /// addresses from 127.0.0.2 for at most 100 requests/s each (when the
    /// server is on loopback), else the unspecified address.
    #[arg(long)]
    pub sources: Option<String>,
    /// Expires asked for in every REGISTER.
    #[arg(long, default_value_t = 3600)]
    pub expires: u32,
    /// Registrations allowed in flight; a start above it fails
    /// (`concurrency_limit`). Default: one second's worth (at least 100).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How long to wait for in-flight registrations after the window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub grace: Duration,
    /// Also measure this process's CPU (the server's) over the run.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print the report as one JSON object (it always has the timeline).
    #[arg(long)]
    pub json: bool,
    /// Add a per-second table (completed, failed, retransmissions, max
    /// latency) to the text report.
    #[arg(long)]
    pub timeline: bool,
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[arg(long)]
    pub count: u32,
    /// Tenant SIP domain (the digest realm).
    #[arg(long)]
    pub domain: String,
    /// Loadgen CSV to write (`username,password,domain`).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write this `number,name,password` CSV for `switchboard extension import`.
    #[arg(long)]
    pub import_csv: Option<PathBuf>,
    /// First extension number; numbers must stay within 2 to 6 digits.
    #[arg(long, default_value_t = 200_000)]
    pub start: u32,
    #[arg(long, default_value_t = 16)]
    pub password_len: usize,
}

#[derive(Debug, Args)]
pub struct FakeArgs {
    #[arg(long, default_value = "127.0.0.1:5070")]
    pub listen: SocketAddr,
    #[arg(long)]
    pub users: PathBuf,
    #[arg(long)]
    pub domain: Option<String>,
    /// udp, tcp or both.
    #[arg(long, default_value = "both")]
    pub transport: String,
    /// Offer only MD5 challenges.
    #[arg(long)]
    pub md5_only: bool,
    /// Exit after this long (default: run until interrupted).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

/// `10s`, `500ms`, `2m`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}`; use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn calls_parse_the_documented_lines() {
        let cli = Cli::try_parse_from([
            "sb-loadgen",
            "calls",
            "--server",
            "127.0.0.1:5060",
            "--users",
            "u.csv",
            "--rate",
            "2000",
            "--duration",
            "30s",
            "--hold",
            "0",
            "--server-pid",
            "42",
            "--json",
        ])
        .unwrap();
        let Command::Calls(a) = cli.command else {
            panic!("calls expected");
        };
        assert_eq!(
            (a.rate, a.hold, a.concurrent),
            (2000.0, Duration::ZERO, None)
        );
        assert_eq!(a.hangup, crate::scenario::call::Hangup::Caller);
        assert!(!a.rtp && a.json);
        let cli = Cli::try_parse_from([
            "sb-loadgen",
            "calls",
            "--users",
            "u.csv",
            "--concurrent",
            "3000",
            "--rate",
            "200",
            "--duration",
            "60s",
            "--rtp",
            "--rtp-sockets",
            "16",
            "--hangup",
            "callee",
            "--answer-delay",
            "100ms",
        ])
        .unwrap();
        let Command::Calls(a) = cli.command else {
            panic!("calls expected");
        };
        assert_eq!((a.concurrent, a.rtp_sockets), (Some(3000), 16));
        assert_eq!(a.answer_delay, Duration::from_millis(100));
        assert!(a.rtp);
        assert!(
            Cli::try_parse_from(["sb-loadgen", "calls", "--users", "u", "--hangup", "both"])
                .is_err()
        );
    }

    #[test]
    fn cli_is_consistent_and_parses_the_documented_line() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "sb-loadgen",
            "register",
            "--server",
            "127.0.0.1:5060",
            "--users",
            "users.csv",
            "--rate",
            "10000",
            "--duration",
            "10s",
            "--transport",
            "tcp",
            "--sources",
            "127.0.0.2-127.0.0.200",
            "--expires",
            "600",
            "--concurrency",
            "5000",
            "--json",
        ])
        .unwrap();
        let Command::Register(a) = cli.command else {
            panic!("register expected");
        };
        assert_eq!(a.rate, 10_000.0);
        assert_eq!(a.transport, Transport::Tcp);
        assert_eq!(a.concurrency, Some(5000));
        assert!(a.json);
        assert!(
            Cli::try_parse_from([
                "sb-loadgen",
                "register",
                "--users",
                "u",
                "--transport",
                "sctp"
            ])
            .is_err()
        );
    }
}
