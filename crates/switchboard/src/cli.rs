//! Command-line layout: global settings (flag or environment) and the
//! subcommands operators script against.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{
    CookieSecure, DatabaseUrl, PortRange, PublicAddr, SipDigest, SipExempt, TrustedProxies,
};
use crate::secrets::Secret;

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Switchboard: a multi-tenant hosted PBX",
    long_about = "Switchboard: a multi-tenant hosted PBX.\n\nWith no subcommand, runs `serve`."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings shared by every subcommand. Each one can be given as a flag or
/// through its environment variable.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Directory database: sqlite://PATH (created if missing) or postgres://USER:PASSWORD@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_DATABASE_URL",
        default_value = "sqlite://switchboard.db",
        hide_env_values = true,
        value_name = "URL",
        value_parser = with_env::<DatabaseUrl>("SWITCHBOARD_DATABASE_URL")
    )]
    pub database_url: DatabaseUrl,

    /// Address the web app (admin, API, health checks) listens on.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_HTTP_ADDR",
        default_value = "127.0.0.1:8080",
        value_name = "IP:PORT",
        value_parser = socket_addr("SWITCHBOARD_HTTP_ADDR")
    )]
    pub http_addr: SocketAddr,

    /// Address the SIP service listens on, UDP and TCP.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_SIP_ADDR",
        default_value = "127.0.0.1:5060",
        value_name = "IP:PORT",
        value_parser = socket_addr("SWITCHBOARD_SIP_ADDR")
    )]
    pub sip_addr: SocketAddr,

    /// UDP port range for RTP media (an audio call takes 2 even/odd pairs).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_RTP_PORTS",
        default_value = "16384-32767",
        value_name = "LOW-HIGH",
        value_parser = with_env::<PortRange>("SWITCHBOARD_RTP_PORTS")
    )]
    pub rtp_ports: PortRange,

    /// Address (IP or host name) phones reach us at, written into SDP and Contact behind NAT.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_PUBLIC_ADDR",
        value_name = "IP|HOST",
        value_parser = with_env::<PublicAddr>("SWITCHBOARD_PUBLIC_ADDR")
    )]
    pub public_addr: Option<PublicAddr>,

    /// Address of the Prometheus metrics endpoint (off when unset).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_METRICS_ADDR",
        value_name = "IP:PORT",
        value_parser = socket_addr("SWITCHBOARD_METRICS_ADDR")
    )]
    pub metrics_addr: Option<SocketAddr>,

    /// Digest algorithms a 401 challenge offers, in order: `md5` (default, like
    /// Asterisk and FreeSWITCH; every phone answers it), `md5,sha256` or
    /// `sha256,md5` (RFC 8760; some clients read only the first challenge or
    /// refuse a 401 naming an algorithm they lack).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_SIP_DIGEST",
        default_value = "md5",
        value_name = "ALGS",
        value_parser = with_env::<SipDigest>("SWITCHBOARD_SIP_DIGEST")
    )]
    pub sip_digest: SipDigest,

    /// Seconds without RTP from either party before an answered call is hung up.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_MEDIA_TIMEOUT",
        default_value = "60",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(5..=86_400)
    )]
    pub media_timeout: u64,

    /// How often a server on SQLite reads the change log for admin changes made by other
    /// processes (the CLI, another server). PostgreSQL delivers them at once (LISTEN/NOTIFY).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_CHANGE_POLL_MS",
        default_value = "200",
        value_name = "MILLISECONDS",
        value_parser = clap::value_parser!(u64).range(10..=60_000)
    )]
    pub change_poll_ms: u64,

    /// Percent of the RTP port pairs only emergency calls (999/112) may use.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_EMERGENCY_PORT_RESERVE",
        default_value = "5",
        value_name = "PERCENT",
        value_parser = clap::value_parser!(u8).range(0..=50)
    )]
    pub emergency_port_reserve: u8,

    /// Seconds an answered call may last before it is hung up (both legs get BYE).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_MAX_CALL_DURATION",
        default_value = "14400",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(60..=604_800)
    )]
    pub max_call_duration: u64,

    /// Seconds a call may stay on hold before it is hung up.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_MAX_HOLD_DURATION",
        default_value = "3600",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(60..=604_800)
    )]
    pub max_hold_duration: u64,

    /// Seconds between OPTIONS keepalives to each enabled trunk (0: off). A
    /// trunk that does not answer within 4 s is shown down and tried last.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_TRUNK_KEEPALIVE",
        default_value = "30",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(0..=86_400)
    )]
    pub trunk_keepalive: u64,

    /// File where call records that could not be written (database away at
    /// shutdown) wait for the next start. Default: beside the SQLite file, or
    /// `switchboard-cdr-spill.jsonl` in the working directory with Postgres.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_CDR_SPILL",
        value_name = "PATH"
    )]
    pub cdr_spill: Option<std::path::PathBuf>,

    /// When the web session cookie is marked `Secure`: `on` (always; behind a TLS proxy),
    /// `off` (plain-HTTP development), or `auto` (when the request came over HTTPS, as the
    /// URI or a trusted proxy's `X-Forwarded-Proto` says).
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_COOKIE_SECURE",
        default_value = "auto",
        value_name = "on|off|auto",
        value_parser = with_env::<CookieSecure>("SWITCHBOARD_COOKIE_SECURE")
    )]
    pub cookie_secure: CookieSecure,

    /// Reverse proxies in front of the web app (addresses or CIDRs, comma-separated) whose
    /// `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed. From any
    /// other peer those headers are ignored and the socket peer is the client. Default: none.
    #[arg(
        long,
        global = true,
        env = "SWITCHBOARD_TRUSTED_PROXIES",
        default_value = "",
        value_name = "CIDRS",
        value_parser = with_env::<TrustedProxies>("SWITCHBOARD_TRUSTED_PROXIES")
    )]
    pub trusted_proxies: TrustedProxies,

    #[command(flatten)]
    pub sip_guard: SipGuardSettings,
}

/// The SIP guard: who is never banned, how fast one source may send, and what bans it.
#[derive(Debug, Clone, Args)]
pub struct SipGuardSettings {
    /// Source addresses or CIDR blocks (comma-separated) never banned nor rate limited: an
    /// SBC, a Kamailio dispatcher or an office NAT in front of Switchboard. Trunk addresses
    /// are exempt automatically.
    #[arg(
        long = "sip-exempt",
        global = true,
        env = "SWITCHBOARD_SIP_EXEMPT",
        default_value = "",
        value_name = "CIDRS",
        value_parser = with_env::<SipExempt>("SWITCHBOARD_SIP_EXEMPT")
    )]
    pub exempt: SipExempt,

    /// Sustained SIP requests per second from one source (IPv6: one /64); bursts of twice
    /// this are allowed. Excess requests are dropped.
    #[arg(
        long = "sip-rate",
        global = true,
        env = "SWITCHBOARD_SIP_RATE",
        default_value = "200",
        value_name = "PER_SECOND",
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub rate: u32,

    /// Authentication failures from one source within the ban window that ban it.
    #[arg(
        long = "sip-ban-failures",
        global = true,
        env = "SWITCHBOARD_SIP_BAN_FAILURES",
        default_value = "10",
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub ban_failures: u32,

    /// Seconds over which failures are counted toward a ban.
    #[arg(
        long = "sip-ban-window",
        global = true,
        env = "SWITCHBOARD_SIP_BAN_WINDOW",
        default_value = "60",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub ban_window: u64,

    /// Seconds a banned source stays banned.
    #[arg(
        long = "sip-ban-time",
        global = true,
        env = "SWITCHBOARD_SIP_BAN_TIME",
        default_value = "900",
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=604_800)
    )]
    pub ban_time: u64,

    /// Open SIP TCP connections from one source (IPv6: one /64) at most.
    #[arg(
        long = "sip-tcp-per-ip",
        global = true,
        env = "SWITCHBOARD_SIP_TCP_PER_IP",
        default_value = "32",
        value_name = "COUNT",
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub tcp_per_ip: u32,
}

impl SipGuardSettings {
    /// Applies these settings to the SIP service's configuration.
    pub fn apply(&self, sip: &mut pbx::SipConfig) {
        let g = &mut sip.guard;
        g.exempt = self.exempt.0.clone();
        g.rate_per_sec = self.rate;
        g.burst = self.rate.saturating_mul(2);
        g.ip_failures = self.ban_failures;
        g.ip_window = std::time::Duration::from_secs(self.ban_window);
        g.ip_ban = std::time::Duration::from_secs(self.ban_time);
        sip.tcp.max_per_ip = self.tcp_per_ip as usize;
    }
}

/// Wraps a `FromStr` parser so the error also names the environment variable.
fn with_env<T>(env: &'static str) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: FromStr<Err = String>,
{
    move |s: &str| T::from_str(s).map_err(|e| format!("{e} (flag or {env})"))
}

fn socket_addr(
    env: &'static str,
) -> impl Fn(&str) -> Result<SocketAddr, String> + Clone + Send + Sync {
    move |s: &str| {
        s.trim().parse::<SocketAddr>().map_err(|_| {
            format!(
                "`{s}` is not an address; expected IP:PORT, e.g. 127.0.0.1:8080 (flag or {env})"
            )
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations, then serve the web app and the SIP service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Ask a running server's /readyz; exit 0 when ready, 1 otherwise (for container health checks).
    Healthcheck,
    /// Manage tenants (businesses).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage web users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage extensions and their SIP credentials.
    #[command(subcommand)]
    Extension(ExtensionCommand),
    /// Manage telephone numbers (UK, stored as E.164).
    #[command(subcommand)]
    Number(NumberCommand),
    /// Inspect SIP registrations (bindings) held in the directory.
    #[command(subcommand)]
    Registration(RegistrationCommand),
    /// Manage the platform's trunks to SIP providers.
    #[command(subcommand)]
    Trunk(TrunkCommand),
}

#[derive(Debug, Subcommand)]
pub enum TrunkCommand {
    /// Add a trunk.
    Add(TrunkAdd),
    /// List the trunks.
    List,
}

#[derive(Debug, Args)]
pub struct TrunkAdd {
    #[arg(long)]
    pub name: String,
    /// The provider's host name or IP address.
    #[arg(long)]
    pub host: String,
    #[arg(long, default_value = "5060")]
    pub port: u16,
    /// udp, tcp or tls.
    #[arg(long, default_value = "udp")]
    pub transport: String,
    #[arg(long)]
    pub username: Option<String>,
    /// Read the trunk's password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long)]
    pub from_domain: Option<String>,
    /// Lower goes first.
    #[arg(long, default_value = "100")]
    pub priority: i32,
    /// Order for 999/112 calls; absent: never used for them.
    #[arg(long)]
    pub emergency_priority: Option<i32>,
    /// IP address or CIDR the provider's calls come from (/24 or narrower
    /// for IPv4, /48 for IPv6, unless --force-wide-source).
    #[arg(long, value_name = "CIDR")]
    pub inbound_source: Option<String>,
    /// Accept an inbound source wider than /24 (/48): anyone in it can call in as this trunk.
    #[arg(long)]
    pub force_wide_source: bool,
    /// The provider authenticates its calls with this trunk's username and password.
    #[arg(long)]
    pub inbound_auth: bool,
    /// New calls per second at most, each way.
    #[arg(long, default_value = "10")]
    pub calls_per_second: u32,
    /// Register to the provider (needs --username and --password-stdin).
    #[arg(long)]
    pub register: bool,
    /// Where to register, host or host:port (default: --host and --port).
    #[arg(long)]
    pub registrar: Option<String>,
    /// Registration expiry asked for, in seconds.
    #[arg(long, default_value = "3600")]
    pub register_expires: u32,
}

#[derive(Debug, Subcommand)]
pub enum RegistrationCommand {
    /// List a tenant's live bindings (unexpired), optionally for one extension.
    List {
        /// SIP domain of the tenant.
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        /// Only this extension's bindings.
        #[arg(long, value_name = "NUMBER")]
        extension: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Add {
        /// Business name.
        #[arg(long)]
        name: String,
        /// SIP domain (realm) of the tenant, e.g. acme.pbx.example.com.
        #[arg(long)]
        domain: String,
        /// URL slug; derived from the name when absent.
        #[arg(long)]
        slug: Option<String>,
    },
    /// List tenants.
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Operator,
    Admin,
    Member,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a web user. Prints a generated password once unless --password-stdin.
    Add {
        #[arg(long)]
        email: String,
        /// SIP domain of the user's tenant (required for admin and member, forbidden for operator).
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExtensionCommand {
    /// Create an extension and its SIP credential; prints the credential once.
    Add {
        /// SIP domain of the tenant.
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        /// Extension number: 2 to 6 digits, not starting with 0; not 999 or 112.
        #[arg(long)]
        number: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// SIP password (at least 8 characters); a strong one is generated when absent.
        /// A password on the command line is visible in the process list: prefer the generated one.
        #[arg(long, value_parser = Secret::chosen, conflicts_with = "password_stdin")]
        password: Option<Secret>,
        /// Read the SIP password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Import extensions from a CSV file with the header `number,name,password`, all or nothing.
    Import {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        /// CSV file; an empty password cell gets a generated password.
        file: PathBuf,
    },
    /// List a tenant's extensions.
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
    },
    /// Delete an extension with its SIP accounts; running servers sign its phones off at once.
    Delete {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        number: String,
    },
    /// Give an extension's SIP account a new generated password (printed once); the old one
    /// stops working at once on running servers.
    Password {
        #[arg(long, value_name = "DOMAIN")]
        tenant: String,
        #[arg(long)]
        number: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NumberCommand {
    /// Add a UK number, national (020 7946 0123) or international (+44 20 7946 0123) form.
    Add {
        number: String,
        /// Assign to this tenant (SIP domain); unassigned numbers stay in the operator's inventory.
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
        /// Route target, e.g. ext:101 (needs --tenant).
        #[arg(long, value_name = "TARGET")]
        route: Option<String>,
    },
    /// List numbers, all or one tenant's.
    List {
        #[arg(long, value_name = "DOMAIN")]
        tenant: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_layout_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["switchboard"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.settings.rtp_ports.to_string(), "16384-32767");
        assert_eq!(cli.settings.emergency_port_reserve, 5);
        assert_eq!(cli.settings.max_call_duration, 4 * 3600);
        assert_eq!(cli.settings.max_hold_duration, 3600);
    }

    #[test]
    fn sip_guard_settings_reach_the_sip_config() {
        let cli = Cli::try_parse_from([
            "switchboard",
            "--sip-exempt",
            "192.0.2.10,198.51.100.0/24",
            "--sip-rate",
            "2000",
            "--sip-ban-failures",
            "20",
            "--sip-ban-time",
            "60",
            "--sip-tcp-per-ip",
            "8",
        ])
        .unwrap();
        let mut sip = pbx::SipConfig::new("127.0.0.1:0".parse().unwrap());
        cli.settings.sip_guard.apply(&mut sip);
        assert_eq!(sip.guard.exempt.len(), 2);
        assert!(sip.guard.exempt[1].contains("198.51.100.9".parse().unwrap()));
        assert_eq!((sip.guard.rate_per_sec, sip.guard.burst), (2000, 4000));
        assert_eq!(sip.guard.ip_failures, 20);
        assert_eq!(sip.guard.ip_window.as_secs(), 60);
        assert_eq!(sip.guard.ip_ban.as_secs(), 60);
        assert_eq!(sip.tcp.max_per_ip, 8);
        // defaults
        let cli = Cli::try_parse_from(["switchboard"]).unwrap();
        let mut sip = pbx::SipConfig::new("127.0.0.1:0".parse().unwrap());
        cli.settings.sip_guard.apply(&mut sip);
        assert!(sip.guard.exempt.is_empty());
        assert_eq!((sip.guard.rate_per_sec, sip.guard.ip_failures), (200, 10));
        assert_eq!(sip.guard.ip_ban.as_secs(), 900);
        assert_eq!(sip.tcp.max_per_ip, 32);
        let err = Cli::try_parse_from(["switchboard", "--sip-exempt", "0.0.0.0/0"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("SWITCHBOARD_SIP_EXEMPT"), "{msg}");
    }

    #[test]
    fn bad_rtp_ports_names_setting_and_form() {
        let err = Cli::try_parse_from(["switchboard", "--rtp-ports", "abc", "serve"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--rtp-ports"), "{msg}");
        assert!(msg.contains("SWITCHBOARD_RTP_PORTS"), "{msg}");
        assert!(msg.contains("expected LOW-HIGH"), "{msg}");
    }

    #[test]
    fn extension_password_is_checked_and_hidden_from_debug() {
        let cli = Cli::try_parse_from([
            "switchboard",
            "extension",
            "add",
            "--tenant",
            "a.example",
            "--number",
            "101",
            "--name",
            "A",
            "--password",
            "Sup3rSecretPw",
        ])
        .unwrap();
        assert!(!format!("{cli:?}").contains("Sup3rSecretPw"));
        let err = Cli::try_parse_from([
            "switchboard",
            "extension",
            "add",
            "--tenant",
            "a.example",
            "--number",
            "101",
            "--name",
            "A",
            "--password",
            "short",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("at least 8"), "{err}");
    }

    #[test]
    fn global_flags_work_after_subcommand() {
        let cli = Cli::try_parse_from([
            "switchboard",
            "tenant",
            "list",
            "--json",
            "--database-url",
            "sqlite://x.db",
        ])
        .unwrap();
        assert!(cli.json);
        assert_eq!(cli.settings.database_url.expose(), "sqlite://x.db");
    }
}
