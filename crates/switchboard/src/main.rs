//! The `switchboard` binary: configuration, wiring, graceful shutdown and the
//! provisioning CLI.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use switchboard::cli::{Cli, Command};
use switchboard::healthcheck;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a bad setting as one line: which setting, what is wrong, what is
/// expected. Our parsers quote the value themselves (redacted where it may
/// hold a password), so clap's echo of the raw value is left out.
fn clap_error(e: clap::Error) -> ExitCode {
    if e.kind() == ErrorKind::ValueValidation {
        if let (Some(ContextValue::String(arg)), Some(source)) = (
            e.get(ContextKind::InvalidArg),
            std::error::Error::source(&e),
        ) {
            eprintln!("error: invalid value for {arg}: {source}");
            return ExitCode::from(2);
        }
    }
    e.exit()
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck => {
            let body = healthcheck::check(cli.settings.http_addr)?;
            println!("{body}");
            Ok(())
        }
        other => {
            anyhow::bail!("{other:?} needs the directory store, which this build does not have yet")
        }
    }
}
