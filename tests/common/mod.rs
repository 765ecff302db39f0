//! Harness for end-to-end tests: the real `switchboard` binary against a real
//! database. Every process and database a test creates is cleaned up by a
//! Drop guard, and every wait is bounded.
#![allow(dead_code)] // each test file uses a different part of the harness

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sqlx::Connection as _;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A fresh, empty database for one test: a SQLite file in a temp dir, or a
/// Postgres database created now and dropped on Drop.
pub struct Db {
    pub url: String,
    pg_admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("switchboard.db").display());
        testkit::ledger::opened(testkit::Backend::Sqlite);
        Self {
            url,
            pg_admin: None,
            _dir: Some(dir),
        }
    }

    /// Creates `sb_e2e_<uuid>` on the server named by `SWITCHBOARD_TEST_PG_URL`
    /// (default postgres://postgres@127.0.0.1:5432; crates/testkit). In a run without
    /// Postgres, use [`Db::postgres_or_skip`].
    pub fn postgres() -> Self {
        assert!(
            !testkit::env_flag(testkit::SKIP_PG_ENV),
            "this run has no Postgres ({}=1): a test that needs it calls Db::postgres_or_skip",
            testkit::SKIP_PG_ENV
        );
        let admin_url = testkit::pg_admin_url();
        let name = format!("sb_e2e_{}", uuid::Uuid::now_v7().simple());
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("{}", testkit::pg_unreachable(&admin_url, &e)));
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
        });
        testkit::ledger::opened(testkit::Backend::Postgres);
        Self {
            url: testkit::with_database(&admin_url, &name),
            pg_admin: Some((admin_url, name)),
            _dir: None,
        }
    }

    /// [`Db::postgres`], or None (said loudly, counted as skipped) when this run has no
    /// Postgres; `test` names the test in that message.
    pub fn postgres_or_skip(test: &str) -> Option<Self> {
        (!testkit::skip_postgres(test)).then(Self::postgres)
    }

    pub fn is_postgres(&self) -> bool {
        self.pg_admin.is_some()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg_admin.take() {
            block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        }
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The outcome of one CLI run.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert!(self.success(), "command failed: {self:#?}");
        &self.stdout
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `switchboard ARGS` against `db` with a bounded wait.
pub fn cli(db: &Db, args: &[&str]) -> Output {
    cli_with(db, args, &[], None)
}

pub fn cli_with(db: &Db, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env("SWITCHBOARD_DATABASE_URL", &db.url)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_bounded(cmd, stdin, CLI_TIMEOUT)
}

/// Runs a command to completion, killing it if it outlives `timeout`.
pub fn run_bounded(mut cmd: Command, stdin: Option<&str>, timeout: Duration) -> Output {
    let child = cmd.spawn().expect("spawn switchboard");
    let mut guard = ChildGuard(child);
    if let (Some(input), Some(mut pipe)) = (stdin, guard.0.stdin.take()) {
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = guard.0.stdout.take().map(drain);
    let err = guard.0.stderr.take().map(drain);
    let status = guard
        .wait_until(Instant::now() + timeout)
        .unwrap_or_else(|| {
            panic!("{cmd:?} did not finish within {timeout:?}");
        });
    let collect = |h: Option<thread::JoinHandle<String>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
    }
}

fn drain<R: std::io::Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Kills the child on Drop if it is still running.
struct ChildGuard(Child);

impl ChildGuard {
    fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A running `switchboard serve` on ephemeral ports.
pub struct Server {
    child: ChildGuard,
    pub http: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server and waits (bounded) until it logs its HTTP address.
    pub fn start(db: &Db, env: &[(&str, &str)]) -> Self {
        Self::start_with(db, &["serve"], env)
    }

    /// Like [`Server::start`] with explicit arguments (e.g. none: serve is the default).
    pub fn start_with(db: &Db, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("SWITCHBOARD_DATABASE_URL", &db.url)
            .env("SWITCHBOARD_HTTP_ADDR", "127.0.0.1:0")
            .env("SWITCHBOARD_SIP_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = ChildGuard(cmd.spawn().expect("spawn switchboard serve"));
        let stderr = child.0.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line, "http listening") {
                    let _ = tx.send(addr);
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let http = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let status = child.0.try_wait().ok().flatten();
                panic!(
                    "server did not report its HTTP address within {START_TIMEOUT:?} (exit: {status:?}); log:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                )
            }
        };
        Self { child, http, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// GET `path` over plain HTTP/1.1; returns (status, body).
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.http, path)
    }

    /// Polls `/readyz` until it answers 200 (bounded); returns the body.
    pub fn wait_ready(&self) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = None;
        while Instant::now() < deadline {
            match self.get("/readyz") {
                Ok((200, body)) => return body,
                other => last = Some(other),
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "/readyz never answered 200; last: {last:?}; log:\n{}",
            self.log()
        )
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal` (e.g. SIGINT, as Ctrl-C does) and waits (bounded) for the exit status.
    pub fn stop_with(mut self, signal: libc::c_int) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.0.id()).expect("pid fits");
        // SAFETY: plain kill(2) on our own child's pid, which is not reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({signal}) failed");
        self.child
            .wait_until(Instant::now() + STOP_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "server did not exit within {STOP_TIMEOUT:?} of signal {signal}; log:\n{}",
                    self.log()
                )
            })
    }

    /// The address a "<what> listening addr=…" log line reported, if any.
    pub fn logged_addr(&self, what: &str) -> Option<SocketAddr> {
        self.log().lines().find_map(|l| listening_addr(l, what))
    }
}

/// Parses `addr=IP:PORT` out of a "<what> listening" log line.
fn listening_addr(line: &str, what: &str) -> Option<SocketAddr> {
    if !line.contains(what) {
        return None;
    }
    let rest = &line[line.find("addr=")? + 5..];
    rest.split_whitespace().next()?.parse().ok()
}

pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {raw:?}")))?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Generates one test per backend from a function taking a `Db`. A Postgres test returns at
/// once, counted as skipped, when the run has no Postgres.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name($crate::common::Db::sqlite()) })+
        }
        mod postgres {
            $(#[test] fn $name() {
                let test = concat!(module_path!(), "::", stringify!($name));
                if let Some(db) = $crate::common::Db::postgres_or_skip(test) {
                    super::$name(db)
                }
            })+
        }
    };
}
