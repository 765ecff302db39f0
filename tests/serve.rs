//! `switchboard serve` end to end: start on ephemeral ports against a real
//! database, answer the health checks, stop cleanly on SIGTERM; and the
//! start-up failures an operator can cause.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Db, Server, cli, cli_with, run_bounded};

fn ready_then_clean_exit_on_sigterm(db: Db) {
    let server = Server::start(&db, &[]);
    let ready: serde_json::Value = serde_json::from_str(&server.wait_ready()).expect("readyz JSON");
    assert_eq!(
        ready,
        serde_json::json!({"status": "ready", "database": "ok", "migrations": "applied"})
    );
    let (status, body) = server.get("/healthz").expect("healthz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, _) = server.get("/no-such-page").expect("404 page");
    assert_eq!(status, 404);

    // The container health check talks to the same server.
    let addr = server.http.to_string();
    let check = cli_with(
        &db,
        &["healthcheck"],
        &[("SWITCHBOARD_HTTP_ADDR", &addr)],
        None,
    );
    assert!(check.success(), "{check:#?}");
    assert!(check.stdout.contains("ready"), "{check:#?}");

    let log_before_stop = server.log();
    let status = server.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM; log:\n{log_before_stop}"
    );

    let check = cli_with(
        &db,
        &["healthcheck"],
        &[("SWITCHBOARD_HTTP_ADDR", &addr)],
        None,
    );
    assert!(
        !check.success(),
        "healthcheck must fail once the server is gone"
    );
}

crate::both_backends!(ready_then_clean_exit_on_sigterm, migrate_is_idempotent);

#[test]
fn sqlite_file_is_created_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let url = format!("sqlite://{}", path.display());
    let db = Db::sqlite();
    let server = Server::start(&db, &[("SWITCHBOARD_DATABASE_URL", &url)]);
    server.wait_ready();
    assert!(path.exists(), "{} was not created", path.display());
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn database_password_never_reaches_the_log() {
    // Loopback Postgres trusts local connections, so the password is not
    // needed to connect; it must still not be printed.
    let Some(db) = Db::postgres_or_skip("serve::database_password_never_reaches_the_log") else {
        return;
    };
    let with_password = db
        .url
        .replacen("://postgres@", "://postgres:hunter2secret@", 1);
    assert_ne!(with_password, db.url, "test URL has the expected shape");
    let server = Server::start(&db, &[("SWITCHBOARD_DATABASE_URL", &with_password)]);
    server.wait_ready();
    let log = server.log();
    assert_eq!(server.terminate().code(), Some(0));
    assert!(
        !log.contains("hunter2secret"),
        "password leaked into the log:\n{log}"
    );
}

#[test]
fn unreachable_database_is_one_clear_line() {
    let db = Db::sqlite();
    let url = "postgres://sb:topsecret@127.0.0.1:1/sb";
    let started = Instant::now();
    let out = cli_with(&db, &["serve"], &[("SWITCHBOARD_DATABASE_URL", url)], None);
    println!(
        "unreachable database reported after {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{out:#?}");
    let stderr = out.stderr.trim();
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line, got:\n{stderr}"
    );
    assert!(
        stderr.starts_with("error: cannot connect to database postgres://sb:***@127.0.0.1:1/sb"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("topsecret") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn unusable_sqlite_path_is_one_clear_line() {
    let db = Db::sqlite();
    let url = "sqlite:///nonexistent-dir/for/switchboard.db";
    let out = cli_with(&db, &["serve"], &[("SWITCHBOARD_DATABASE_URL", url)], None);
    assert_eq!(out.status.code(), Some(1), "{out:#?}");
    let stderr = out.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot connect to database sqlite:///nonexistent-dir"),
        "{stderr}"
    );
}

#[test]
fn bad_config_values_name_the_setting_and_the_expected_form() {
    let db = Db::sqlite();
    let cases = [
        ("SWITCHBOARD_RTP_PORTS", "abc", "LOW-HIGH"),
        ("SWITCHBOARD_RTP_PORTS", "30000-20000", "below"),
        ("SWITCHBOARD_HTTP_ADDR", "localhost", "IP:PORT"),
        ("SWITCHBOARD_SIP_ADDR", "1.2.3.4", "IP:PORT"),
        (
            "SWITCHBOARD_PUBLIC_ADDR",
            "pbx.example.com:5060",
            "host name",
        ),
        ("SWITCHBOARD_DATABASE_URL", "mysql://u:pw@h/db", "sqlite://"),
    ];
    for (var, value, expected) in cases {
        let out = cli_with(&db, &["serve"], &[(var, value)], None);
        assert_ne!(out.status.code(), Some(0), "{var}={value} was accepted");
        let stderr = out.stderr.trim();
        assert_eq!(stderr.lines().count(), 1, "{var}={value}:\n{stderr}");
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
        assert!(stderr.contains(expected), "{var}={value}: {stderr}");
        if var != "SWITCHBOARD_DATABASE_URL" {
            assert!(stderr.contains(value), "{var}={value}: {stderr}");
        } else {
            assert!(!stderr.contains(":pw@"), "password echoed: {stderr}");
        }
    }
}

#[test]
fn taken_http_port_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let db = Db::sqlite();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env("SWITCHBOARD_DATABASE_URL", &db.url)
        .env("SWITCHBOARD_HTTP_ADDR", &addr)
        .env("SWITCHBOARD_SIP_ADDR", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run_bounded(cmd, None, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{out:#?}");
    assert!(
        out.stderr
            .contains(&format!("error: cannot listen for HTTP on {addr}")),
        "{out:#?}"
    );
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let db = Db::sqlite();
    let server = Server::start(&db, &[("SWITCHBOARD_METRICS_ADDR", "127.0.0.1:0")]);
    server.wait_ready();
    let addr = server
        .logged_addr("metrics listening")
        .expect("metrics address logged");
    let (status, body) = common::http_get(addr, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    assert!(body.contains("switchboard_build_info"), "{body}");
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn ctrl_c_stops_cleanly_too() {
    let db = Db::sqlite();
    let server = Server::start(&db, &[]);
    server.wait_ready();
    assert_eq!(server.stop_with(libc::SIGINT).code(), Some(0));
}

#[test]
fn no_subcommand_means_serve() {
    let db = Db::sqlite();
    let server = Server::start_with(&db, &[], &[]);
    server.wait_ready();
    assert_eq!(server.terminate().code(), Some(0));
}

fn migrate_is_idempotent(db: Db) {
    for _ in 0..2 {
        let out = common::cli(&db, &["--json", "migrate"]);
        assert_eq!(out.json(), serde_json::json!({"migrations": "applied"}));
    }
}

#[test]
fn first_run_logs_a_one_time_setup_link_that_opens() {
    let db = Db::sqlite();
    let server = Server::start(&db, &[]);
    server.wait_ready();
    let log = server.log();
    let link = log
        .split_whitespace()
        .find_map(|w| w.strip_prefix("link="))
        .unwrap_or_else(|| panic!("no setup link in the log:\n{log}"));
    let path = link
        .split_once("/setup/")
        .map(|(_, token)| format!("/setup/{token}"))
        .unwrap_or_else(|| panic!("not a setup link: {link}"));
    let (status, body) = server.get(&path).expect("setup page");
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.get("/setup/not-a-real-token").expect("bad token");
    assert_ne!(status, 200);
    server.terminate();

    // Once an operator exists there is no link any more.
    let op = cli(
        &db,
        &[
            "user",
            "add",
            "--email",
            "ops@example.com",
            "--role",
            "operator",
        ],
    );
    assert!(op.success(), "{op:#?}");
    let server = Server::start(&db, &[]);
    server.wait_ready();
    assert!(!server.log().contains("/setup/"), "{}", server.log());
    server.terminate();
}
