use super::*;

fn ledger(lines: &[&str]) -> Ledger {
    Ledger::parse(&lines.join("\n"))
}

fn report(ledger: Ledger, pg: PgSource, walk: Walk, counts: Counts) -> Report {
    Report {
        runner: "cargo-nextest 0.9.143".into(),
        counts: Some(counts),
        runner_ok: counts.failed == 0,
        ledger,
        pg,
        walk,
        filtered: false,
        require_clients: false,
        require_pg: false,
        interrupted: None,
        seconds: 300,
    }
}

fn counts(passed: usize, failed: usize) -> Counts {
    Counts {
        passed,
        failed,
        ignored: 0,
    }
}

const BOTH: &[&str] = &[
    "db\tsqlite\t1:sqlite::a",
    "db\tsqlite\t2:sqlite::b",
    "db\tpostgres\t3:postgres::a",
    "db\tpostgres\t3:postgres::a",
    "client\tbaresip\ttwo_phones_call",
];

fn throwaway() -> PgSource {
    PgSource::Throwaway {
        port: 41234,
        version: "15.20".into(),
        run_as: Some("postgres".into()),
    }
}

#[test]
fn a_green_run_counts_each_backend_and_client() {
    let (lines, ok) = report(ledger(BOTH), throwaway(), Walk::Passed, counts(10, 0)).render(true);
    let text = lines.join("\n");
    assert!(ok, "{text}");
    assert!(
        text.contains("SQLite:   2 tests opened a SQLite database (2 databases in all)"),
        "{text}"
    );
    assert!(text.contains("Postgres: 1 test opened a Postgres database (2 databases in all) on a throwaway cluster this command started and stopped (PostgreSQL 15.20, 127.0.0.1:41234, run as user postgres)"), "{text}");
    assert!(
        text.contains("clients:  baresip (1 test); Chromium: browser walk passed"),
        "{text}"
    );
    assert!(!text.contains("SKIPPED"), "{text}");
    assert_eq!(
        lines.last().unwrap(),
        "tests: 11 passed, 0 failed, 0 skipped"
    );
}

#[test]
fn no_postgres_is_a_loud_counted_skip_with_the_apt_line() {
    let mut l = BOTH[..2].to_vec();
    l.extend([
        "skip-pg\tcontract::postgres::a",
        "skip-pg\tcontract::postgres::b",
    ]);
    let r = report(
        ledger(&l),
        PgSource::Skipped("no initdb/pg_ctl on this machine".into()),
        Walk::Passed,
        counts(12, 0),
    );
    let (lines, ok) = r.render(false);
    let text = lines.join("\n");
    assert!(ok, "a skip is not a failure outside CI: {text}");
    assert!(
        text.contains("SKIPPED:  2 Postgres tests: no initdb/pg_ctl on this machine"),
        "{text}"
    );
    assert!(
        text.contains("to run what was skipped: sudo apt-get install postgresql"),
        "{text}"
    );
    // The two early returns count as skipped, not passed.
    assert_eq!(
        lines.last().unwrap(),
        "tests: 11 passed, 0 failed, 2 skipped"
    );

    let (_, ok) = Report {
        require_pg: true,
        ..r
    }
    .render(false);
    assert!(!ok, "CI requires Postgres");
}

#[test]
fn missing_clients_are_named_with_one_apt_line_and_fail_when_required() {
    let mut l = BOTH[..4].to_vec();
    l.extend([
        "skip-client\tsvwar\tsvwar_finds_no_extension",
        "skip-client\tsvcrack,baresip\tsvcrack_is_banned",
    ]);
    let walk = Walk::Skipped {
        missing: vec!["chromium".into(), "node".into(), "npm".into()],
        note: None,
    };
    let r = report(ledger(&l), throwaway(), walk, counts(20, 0));
    let (lines, ok) = r.render(true);
    let text = lines.join("\n");
    assert!(ok, "{text}");
    assert!(text.contains("SKIPPED:  2 real-client tests, for want of baresip, svcrack, svwar: svcrack_is_banned, svwar_finds_no_extension"), "{text}");
    assert!(
        text.contains("SKIPPED:  the browser walk: missing chromium, node, npm"),
        "{text}"
    );
    assert!(
        text.contains(
            "to run what was skipped: apt-get install baresip chromium nodejs npm sipvicious"
        ),
        "{text}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "tests: 18 passed, 0 failed, 3 skipped"
    );

    let (_, ok) = Report {
        require_clients: true,
        ..r
    }
    .render(true);
    assert!(!ok, "CI requires every client");
}

#[test]
fn a_green_runner_with_no_postgres_test_in_the_ledger_fails() {
    // A Postgres server was there, yet no test opened a database on it: the half that a
    // green run could hide.
    let (lines, ok) = report(
        ledger(&BOTH[..2]),
        PgSource::Server("postgres://postgres@127.0.0.1:5432".into()),
        Walk::Passed,
        counts(10, 0),
    )
    .render(true);
    assert!(!ok, "{}", lines.join("\n"));
}

#[test]
fn failures_and_an_interrupt_fail_the_run() {
    let r = report(ledger(BOTH), throwaway(), Walk::Passed, counts(9, 1));
    let (lines, ok) = r.render(true);
    assert!(!ok);
    assert_eq!(
        lines.last().unwrap(),
        "tests: 10 passed, 1 failed, 0 skipped"
    );

    let (lines, ok) = Report {
        interrupted: Some(2),
        ..report(ledger(BOTH), throwaway(), Walk::Passed, counts(3, 0))
    }
    .render(true);
    assert!(!ok);
    assert!(lines.iter().any(|l| l.starts_with("INTERRUPTED")));
}
