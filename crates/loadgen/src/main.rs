use std::process::ExitCode;

use clap::Parser as _;
use loadgen::cli::{Cli, Command};
use loadgen::{calls_cmd, commands};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sb-loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async move {
        match cli.command {
            Command::Register(args) => commands::register(args).await,
            Command::Users(args) => commands::users(args).map(|()| true),
            Command::FakeRegistrar(args) => commands::fake_registrar(args).await.map(|()| true),
            Command::Calls(args) => calls_cmd::calls(args).await,
            Command::FakePbx(args) => calls_cmd::fake_pbx(args).await.map(|()| true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sb-loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}
