//! The run ledger: a file, named by `SWITCHBOARD_TEST_LEDGER`, that tests append one line to
//! for each fact the summary of `cargo xtask test` counts: a database opened on a backend, a
//! test run with a real client, a test skipped (and why). Without the variable nothing is
//! written. Lines are tab-separated and short, written with one `write` on a file opened for
//! appending, so the parallel test processes do not interleave them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use crate::Backend;

/// Names the ledger file; `cargo xtask test` sets it to a fresh file per run.
pub const LEDGER_ENV: &str = "SWITCHBOARD_TEST_LEDGER";

/// The running test, as a key unique within one run: the process (nextest runs each test in
/// its own) and the thread (libtest names each test's thread after the test).
fn current_test() -> String {
    let thread = std::thread::current();
    format!("{}:{}", std::process::id(), thread.name().unwrap_or("?"))
}

fn append(fields: &[&str]) {
    let Some(path) = std::env::var_os(LEDGER_ENV) else {
        return;
    };
    let path = std::path::Path::new(&path);
    if let Err(e) = append_to(path, fields) {
        panic!(
            "cannot append to the test ledger {} ({LEDGER_ENV}): {e}",
            path.display()
        );
    }
}

fn append_to(path: &std::path::Path, fields: &[&str]) -> std::io::Result<()> {
    let mut line = fields
        .iter()
        .map(|f| f.replace(['\t', '\n'], " "))
        .collect::<Vec<_>>()
        .join("\t");
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// The running test opened a fresh database on `backend`.
pub fn opened(backend: Backend) {
    append(&["db", backend.name(), &current_test()]);
}

/// `test` skipped its Postgres half: this run has no Postgres.
pub fn skipped_postgres(test: &str) {
    append(&["skip-pg", test]);
}

/// `test` runs with these real clients (all found).
pub fn client_ready(test: &str, tools: &[&str]) {
    for tool in tools {
        append(&["client", tool, test]);
    }
}

/// `test` skipped: these clients are not installed.
pub fn client_missing(test: &str, missing: &[&str]) {
    append(&["skip-client", &missing.join(","), test]);
}

/// What one run's ledger says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// Per backend: the tests that opened at least one database on it.
    pub tests: BTreeMap<Backend, BTreeSet<String>>,
    /// Per backend: how many databases tests opened on it.
    pub databases: BTreeMap<Backend, usize>,
    /// Tests that skipped because this run has no Postgres.
    pub postgres_skipped: BTreeSet<String>,
    /// Per real client: the tests that ran with it.
    pub clients: BTreeMap<String, BTreeSet<String>>,
    /// Per skipped test: the clients it missed.
    pub client_skips: BTreeMap<String, BTreeSet<String>>,
    /// Lines this version does not understand (a ledger from a newer harness, or damage).
    pub unreadable: usize,
}

impl Ledger {
    pub fn parse(text: &str) -> Self {
        let mut l = Ledger::default();
        for line in text.lines().filter(|s| !s.is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["db", backend, test] => match Backend::parse(backend) {
                    Some(b) => {
                        l.tests.entry(b).or_default().insert((*test).to_owned());
                        *l.databases.entry(b).or_default() += 1;
                    }
                    None => l.unreadable += 1,
                },
                ["skip-pg", test] => {
                    l.postgres_skipped.insert((*test).to_owned());
                }
                ["client", tool, test] => {
                    l.clients
                        .entry((*tool).to_owned())
                        .or_default()
                        .insert((*test).to_owned());
                }
                ["skip-client", tools, test] => {
                    l.client_skips
                        .entry((*test).to_owned())
                        .or_default()
                        .extend(tools.split(',').map(str::to_owned));
                }
                _ => l.unreadable += 1,
            }
        }
        l
    }

    /// Reads the ledger at `path`; a missing file is an empty ledger (no test wrote to it).
    pub fn read(path: &std::path::Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// How many tests opened a database on `backend`.
    pub fn tests_on(&self, backend: Backend) -> usize {
        self.tests.get(&backend).map_or(0, BTreeSet::len)
    }

    pub fn databases_on(&self, backend: Backend) -> usize {
        self.databases.get(&backend).copied().unwrap_or(0)
    }

    /// Tests that returned early instead of testing (no Postgres, or a missing client).
    pub fn skipped(&self) -> usize {
        self.postgres_skipped.len() + self.client_skips.len()
    }

    /// Every client some test missed.
    pub fn missing_clients(&self) -> BTreeSet<&str> {
        self.client_skips
            .values()
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_counts_tests_and_databases_per_backend() {
        let l = Ledger::parse(
            "db\tsqlite\t10:sqlite::a\n\
             db\tsqlite\t10:sqlite::a\n\
             db\tpostgres\t11:postgres::a\n\
             db\tsqlite\t12:calls\n\
             skip-pg\tcontract::postgres::b\n\
             client\tbaresip\ttwo_phones_call\n\
             client\tbaresip\tpickup\n\
             client\tsipsak\tsipsak_usrloc\n\
             skip-client\tsvwar\tsvwar_finds_no_extension\n\
             skip-client\tsvcrack,baresip\tsvcrack_is_banned\n\
             nonsense\n\
             db\toracle\t1:x\n",
        );
        assert_eq!(l.tests_on(Backend::Sqlite), 2);
        assert_eq!(l.databases_on(Backend::Sqlite), 3);
        assert_eq!(l.tests_on(Backend::Postgres), 1);
        assert_eq!(l.databases_on(Backend::Postgres), 1);
        assert_eq!(l.clients["baresip"].len(), 2);
        assert_eq!(l.clients["sipsak"].len(), 1);
        assert_eq!(l.skipped(), 3);
        assert_eq!(
            l.missing_clients().into_iter().collect::<Vec<_>>(),
            ["baresip", "svcrack", "svwar"]
        );
        assert_eq!(l.unreadable, 2);
    }

    #[test]
    fn parallel_writers_do_not_interleave_lines() {
        let path = std::env::temp_dir().join(format!(
            "switchboard-ledger-test-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let key = format!("{t}:test_with_a_long_enough_name_{i}");
                        let backend = if i % 2 == 0 { "sqlite" } else { "postgres" };
                        append_to(&path, &["db", backend, &key]).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let l = Ledger::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(l.unreadable, 0);
        assert_eq!(l.databases_on(Backend::Sqlite), 800);
        assert_eq!(l.tests_on(Backend::Postgres), 800);
    }

    #[test]
    fn tabs_and_newlines_in_a_field_cannot_forge_lines() {
        let path = std::env::temp_dir().join(format!(
            "switchboard-ledger-forge-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        append_to(&path, &["skip-pg", "a\ndb\tpostgres\tforged"]).unwrap();
        let l = Ledger::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(l.postgres_skipped.len(), 1);
        assert_eq!(l.tests_on(Backend::Postgres), 0);
    }

    #[test]
    fn a_missing_ledger_file_is_empty() {
        let l = Ledger::read(std::path::Path::new("/nonexistent/switchboard-ledger")).unwrap();
        assert_eq!(l, Ledger::default());
    }
}
