//! Command-line layout: global settings (flag or environment) and the
//! subcommands operators script against.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{DatabaseUrl, PortRange, PublicAddr, SipDigest};
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
        /// Extension number, 2 to 6 digits.
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
