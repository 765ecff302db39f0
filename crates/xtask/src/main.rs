//! `cargo xtask test`: the one test command, for a fresh clone on a Debian/Ubuntu machine with
//! only Rust (and optionally Debian's `postgresql` package) installed.
//!
//! 1. The runner: cargo-nextest, installed with `cargo install --locked cargo-nextest` when it
//!    is missing; `cargo test` when that fails or `--cargo-test` asks for it.
//! 2. Postgres: the server at `SWITCHBOARD_TEST_PG_URL` (default
//!    postgres://postgres@127.0.0.1:5432) if it lets the tests' user in without a password;
//!    otherwise a throwaway cluster from the machine's initdb/pg_ctl, stopped at the end (also
//!    on failure and Ctrl-C); otherwise the Postgres tests skip, loudly and counted.
//! 3. Every test (`--workspace`, or the runner arguments given), then the browser walk.
//! 4. A summary counted from the run ledger the tests write (crates/testkit).

mod pg;
mod runner;
mod summary;
mod walk;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use summary::{PgSource, Report};
use testkit::ledger::{LEDGER_ENV, Ledger};
use testkit::{PG_URL_ENV, REQUIRE_CLIENTS_ENV, REQUIRE_PG_ENV, SKIP_PG_ENV, env_flag};
use walk::Walk;

/// A directory holding initdb and pg_ctl, when they are not where Debian puts them.
const PG_BINDIR_ENV: &str = "SWITCHBOARD_TEST_PG_BINDIR";

const USAGE: &str = "\
usage: cargo xtask test [--cargo-test] [RUNNER ARGS...]

Runs every test of the workspace (or, with RUNNER ARGS, what they select, e.g.
`-p store contract`), against SQLite and Postgres, with the real SIP clients and
Chromium when installed, and says how many tests ran on each.

  --cargo-test   use `cargo test` instead of cargo-nextest (no install)

Environment:
  SWITCHBOARD_TEST_PG_URL          Postgres to use (default postgres://postgres@127.0.0.1:5432);
                                   when it does not let its user in without a password, a
                                   throwaway cluster is started with the machine's initdb/pg_ctl
  SWITCHBOARD_TEST_PG_BINDIR       where initdb and pg_ctl are (default: PATH, then the newest
                                   /usr/lib/postgresql/N/bin)
  SWITCHBOARD_TEST_REQUIRE_PG=1    no Postgres is a failure, not a skip (CI)
  SWITCHBOARD_E2E_REQUIRE_CLIENTS=1  a missing baresip/sipsak/sipvicious/Chromium is a failure (CI)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    // crates/xtask → the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => root.join(t), // an absolute path replaces the root
        None => root.join("target"),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

enum Runner {
    Nextest(String),
    CargoTest(String),
}

fn choose_runner(force_cargo_test: bool) -> Runner {
    if force_cargo_test {
        return Runner::CargoTest("cargo test (--cargo-test)".into());
    }
    if let Some(v) = runner::nextest_version() {
        return Runner::Nextest(v);
    }
    println!(
        "==> cargo-nextest is not installed: `cargo install --locked cargo-nextest` (builds it once, a few minutes)"
    );
    let installed = runner::supervise(
        Command::new("cargo").args(["install", "--locked", "cargo-nextest"]),
        None,
    )
    .is_ok_and(|s| s.success());
    match (installed, runner::nextest_version()) {
        (true, Some(v)) => Runner::Nextest(v),
        _ => {
            println!(
                "==> installing cargo-nextest failed: running the tests with `cargo test` instead"
            );
            Runner::CargoTest("cargo test (cargo-nextest could not be installed)".into())
        }
    }
}

/// The Postgres the tests will use, and the cluster to stop afterwards if we started one.
fn find_postgres() -> Result<(PgSource, Option<pg::Cluster>), String> {
    let url = testkit::pg_server_url();
    let shown = testkit::redacted_server(&url);
    let target = pg::Target::parse(&url).map_err(|e| format!("{PG_URL_ENV}: {e}"))?;
    let why = match pg::probe(&target, Duration::from_secs(3)) {
        pg::Probe::Trusts => {
            println!("==> Postgres: using the server at {shown}");
            return Ok((PgSource::Server(shown), None));
        }
        pg::Probe::WantsPassword(_) if target.has_password => {
            println!("==> Postgres: using the server at {shown} (with the URL's password)");
            return Ok((PgSource::Server(shown), None));
        }
        pg::Probe::WantsPassword(_) => {
            format!("the server at {shown} asks for a password, and {PG_URL_ENV} carries none")
        }
        pg::Probe::Refused(msg) => format!("the server at {shown} refuses the tests: {msg}"),
        pg::Probe::NoAnswer(e) => format!("no Postgres answers at {shown} ({e})"),
    };
    let explicit = std::env::var_os(PG_BINDIR_ENV).map(PathBuf::from);
    let bindir = pg::find_bindir(
        explicit.clone(),
        std::env::var_os("PATH"),
        Path::new("/usr/lib/postgresql"),
    );
    let Some(bindir) = bindir else {
        if let Some(d) = explicit {
            return Err(format!(
                "{PG_BINDIR_ENV}={} holds no initdb and pg_ctl",
                d.display()
            ));
        }
        let skip = format!(
            "{why}, and this machine has no PostgreSQL server binaries (initdb, pg_ctl): {} brings them",
            walk::apt_line(["postgresql"], is_root())
        );
        if env_flag(REQUIRE_PG_ENV) {
            return Err(format!("{skip}; {REQUIRE_PG_ENV}=1 requires Postgres"));
        }
        println!("!!! Postgres tests SKIPPED: {skip}");
        return Ok((PgSource::Skipped(skip), None));
    };
    println!(
        "==> Postgres: {why}; starting a throwaway cluster with {}",
        bindir.join("initdb").display()
    );
    let t0 = Instant::now();
    let cluster = pg::Cluster::start(&bindir)
        .map_err(|e| format!("cannot start a throwaway Postgres cluster: {e}"))?;
    println!(
        "==> Postgres {} up at {} in {:.1} s ({}{})",
        cluster.version,
        cluster.url(),
        t0.elapsed().as_secs_f64(),
        cluster.dir().display(),
        cluster
            .run_as()
            .map_or(String::new(), |u| format!(", run as user {u}"))
    );
    let source = PgSource::Throwaway {
        port: cluster.port,
        version: cluster.version.clone(),
        run_as: cluster.run_as().map(str::to_owned),
    };
    Ok((source, Some(cluster)))
}

fn test(args: &[String]) -> ExitCode {
    let t0 = Instant::now();
    runner::catch_signals();
    let root = workspace_root();
    let target = target_dir(&root);
    let force_cargo_test = args.iter().any(|a| a == "--cargo-test");
    let runner_args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--cargo-test")
        .collect();
    let filtered = !runner_args.is_empty();

    let runner = choose_runner(force_cargo_test);
    if let Some(sig) = runner::interrupted() {
        eprintln!("interrupted (signal {sig})");
        return ExitCode::from(130);
    }
    let (pg_source, mut cluster) = match find_postgres() {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ledger_path = std::env::temp_dir().join(format!(
        "switchboard-test-ledger-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    // Ours alone: never a file (or a link) that was there before.
    if let Err(e) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&ledger_path)
    {
        eprintln!(
            "error: cannot create the test ledger {}: {e}",
            ledger_path.display()
        );
        return ExitCode::FAILURE;
    }

    let mut cmd = Command::new("cargo");
    let (label, junit) = match &runner {
        Runner::Nextest(v) => {
            cmd.args(["nextest", "run"]);
            let profile = std::env::var("NEXTEST_PROFILE").unwrap_or_else(|_| "default".into());
            // nextest's store is `target/nextest` under the workspace root, whatever
            // CARGO_TARGET_DIR says (.config/nextest.toml leaves [store] at its default).
            (
                v.clone(),
                Some(root.join("target/nextest").join(profile).join("junit.xml")),
            )
        }
        Runner::CargoTest(why) => {
            cmd.arg("test");
            if !filtered {
                cmd.arg("--no-fail-fast");
            }
            (why.clone(), None)
        }
    };
    if filtered {
        cmd.args(&runner_args);
    } else {
        cmd.arg("--workspace");
    }
    cmd.current_dir(&root).env(LEDGER_ENV, &ledger_path);
    match (&pg_source, &cluster) {
        (_, Some(c)) => {
            cmd.env(PG_URL_ENV, c.url()).env_remove(SKIP_PG_ENV);
        }
        (PgSource::Skipped(_), None) => {
            cmd.env(SKIP_PG_ENV, "1");
        }
        _ => {
            cmd.env_remove(SKIP_PG_ENV);
        }
    }
    if let Some(j) = &junit {
        let _ = std::fs::remove_file(j); // never read a previous run's report
    }
    println!("==> {label}: {cmd:?}");
    let mut libtest = runner::Counts::default();
    let status = match &runner {
        Runner::Nextest(_) => runner::supervise(&mut cmd, None),
        Runner::CargoTest(_) => runner::supervise(
            &mut cmd,
            Some(&mut |line: &str| runner::add_libtest_line(&mut libtest, line)),
        ),
    };
    let runner_ok = match &status {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("error: cannot run {:?}: {e}", cmd.get_program());
            false
        }
    };
    let counts = match &junit {
        Some(j) => runner::read_junit(j),
        None if status.is_ok() => Some(libtest),
        None => None,
    };

    let walk = if runner::interrupted().is_some() {
        Walk::NotRun("interrupted".into())
    } else if filtered {
        Walk::NotRun("a filtered run".into())
    } else {
        walk::run(&root, &target.join("debug").join("switchboard"))
    };

    if let Some(c) = cluster.as_mut() {
        c.stop();
    }
    drop(cluster); // removes its dir
    let ledger = Ledger::read(&ledger_path).unwrap_or_else(|e| {
        eprintln!("cannot read the test ledger {}: {e}", ledger_path.display());
        Ledger::default()
    });
    let _ = std::fs::remove_file(&ledger_path);

    let report = Report {
        runner: label,
        counts,
        runner_ok,
        ledger,
        pg: pg_source,
        walk,
        filtered,
        require_clients: env_flag(REQUIRE_CLIENTS_ENV),
        require_pg: env_flag(REQUIRE_PG_ENV),
        interrupted: runner::interrupted(),
        seconds: t0.elapsed().as_secs(),
    };
    let (lines, ok) = report.render(is_root());
    for l in lines {
        println!("{l}");
    }
    match (ok, runner::interrupted()) {
        (_, Some(_)) => ExitCode::from(130),
        (true, None) => ExitCode::SUCCESS,
        (false, None) => ExitCode::FAILURE,
    }
}
