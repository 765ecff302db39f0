//! The summary at the end of `cargo xtask test`: what the runner counted, how many tests ran
//! on each backend and with which real clients (from the run ledger, so a green run cannot
//! hide a skipped half), every skip said loudly with the one apt-get line that enables it,
//! and a closing `tests: N passed, N failed, N skipped` line.

use std::collections::BTreeSet;

use testkit::Backend;
use testkit::ledger::Ledger;

use crate::runner::Counts;
use crate::walk::{self, Walk};

/// Where the Postgres half of the run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgSource {
    /// A server that was already running (its URL, password removed).
    Server(String),
    /// A cluster this command started and stopped.
    Throwaway {
        port: u16,
        version: String,
        run_as: Option<String>,
    },
    /// No Postgres at all: the Postgres tests skipped.
    Skipped(String),
}

pub struct Report {
    pub runner: String,
    /// None when the runner's own count could not be read.
    pub counts: Option<Counts>,
    pub runner_ok: bool,
    pub ledger: Ledger,
    pub pg: PgSource,
    pub walk: Walk,
    /// Extra arguments narrowed the run: the per-backend sanity checks do not apply.
    pub filtered: bool,
    pub require_clients: bool,
    pub require_pg: bool,
    pub interrupted: Option<i32>,
    pub seconds: u64,
}

impl Report {
    /// The summary's lines, and whether the run passed.
    pub fn render(&self, root: bool) -> (Vec<String>, bool) {
        let mut out = vec!["==> summary".to_owned()];
        let mut ok = self.runner_ok && self.interrupted.is_none();
        let l = &self.ledger;
        let (passed, failed, ignored) = self
            .counts
            .map_or((0, 0, 0), |c| (c.passed, c.failed, c.ignored));
        out.push(match self.counts {
            Some(_) => format!(
                "runner:   {}: {passed} passed, {failed} failed{}",
                self.runner,
                if ignored > 0 {
                    format!(", {ignored} ignored")
                } else {
                    String::new()
                }
            ),
            None => format!("runner:   {}: its counts could not be read", self.runner),
        });
        if self.counts.is_none() {
            ok = false;
        }

        let sqlite = l.tests_on(Backend::Sqlite);
        out.push(format!(
            "SQLite:   {} opened a SQLite database ({} in all)",
            tests_n(sqlite),
            databases_n(l.databases_on(Backend::Sqlite))
        ));
        let pg = l.tests_on(Backend::Postgres);
        let pg_dbs = l.databases_on(Backend::Postgres);
        out.push(match &self.pg {
            PgSource::Server(url) => {
                format!(
                    "Postgres: {} opened a Postgres database ({} in all) on the server at {url}",
                    tests_n(pg),
                    databases_n(pg_dbs)
                )
            }
            PgSource::Throwaway {
                port,
                version,
                run_as,
            } => format!(
                "Postgres: {} opened a Postgres database ({} in all) on a throwaway cluster this command started and stopped (PostgreSQL {version}, 127.0.0.1:{port}{})",
                tests_n(pg),
                databases_n(pg_dbs),
                run_as
                    .as_ref()
                    .map_or(String::new(), |u| format!(", run as user {u}"))
            ),
            PgSource::Skipped(_) => "Postgres: none (no Postgres on this machine)".to_owned(),
        });
        if !self.filtered && self.interrupted.is_none() {
            if sqlite == 0 {
                out.push("FAILED:   no test reported a SQLite database: the test ledger is not reaching this command".into());
                ok = false;
            }
            if pg == 0 && !matches!(self.pg, PgSource::Skipped(_)) {
                out.push("FAILED:   no test reported a Postgres database although a server was there: the Postgres half did not run".into());
                ok = false;
            }
        }
        if l.unreadable > 0 {
            out.push(format!(
                "warning:  {} ledger lines could not be read",
                l.unreadable
            ));
        }

        let clients: Vec<String> = l
            .clients
            .iter()
            .map(|(tool, tests)| format!("{tool} ({})", tests_n(tests.len())))
            .collect();
        let walk_line = match &self.walk {
            Walk::Passed => "Chromium: browser walk passed".to_owned(),
            Walk::Failed(why) => format!("Chromium: browser walk FAILED ({why})"),
            Walk::Skipped { .. } => "Chromium: browser walk SKIPPED".to_owned(),
            Walk::NotRun(why) => format!("Chromium: browser walk not run ({why})"),
        };
        out.push(format!(
            "clients:  {}; {walk_line}",
            if clients.is_empty() {
                "no real SIP client ran".to_owned()
            } else {
                clients.join(", ")
            }
        ));

        // Every skip, loudly, and the packages that would have avoided it.
        let mut packages: BTreeSet<&str> = BTreeSet::new();
        if let PgSource::Skipped(why) = &self.pg {
            out.push(format!(
                "SKIPPED:  {} Postgres tests: {why}",
                l.postgres_skipped.len()
            ));
            packages.insert("postgresql");
            if self.require_pg {
                ok = false;
            }
        }
        if !l.client_skips.is_empty() {
            let missing: Vec<&str> = l.missing_clients().into_iter().collect();
            let tests: Vec<&str> = l.client_skips.keys().map(String::as_str).collect();
            out.push(format!(
                "SKIPPED:  {} real-client tests, for want of {}: {}",
                tests.len(),
                missing.join(", "),
                tests.join(", ")
            ));
            packages.extend(missing.iter().map(|t| walk::package_for(t)));
            if self.require_clients {
                ok = false;
            }
        }
        let mut walk_skipped = 0;
        match &self.walk {
            Walk::Skipped { missing, note } => {
                walk_skipped = 1;
                let mut why: Vec<String> = Vec::new();
                if !missing.is_empty() {
                    why.push(format!("missing {}", missing.join(", ")));
                }
                why.extend(note.iter().cloned());
                out.push(format!("SKIPPED:  the browser walk: {}", why.join("; ")));
                packages.extend(missing.iter().map(|t| walk::package_for(t)));
                if self.require_clients {
                    ok = false;
                }
            }
            Walk::Failed(_) => ok = false,
            Walk::Passed | Walk::NotRun(_) => {}
        }
        if !packages.is_empty() {
            out.push(format!(
                "to run what was skipped: {}",
                walk::apt_line(packages, root)
            ));
            if self.require_clients || self.require_pg {
                out.push("FAILED:   this run requires every test (SWITCHBOARD_E2E_REQUIRE_CLIENTS / SWITCHBOARD_TEST_REQUIRE_PG), and some skipped".into());
            }
        }
        if let Some(sig) = self.interrupted {
            out.push(format!(
                "INTERRUPTED by signal {sig}: the counts are partial"
            ));
        }

        // The closing line: tests that returned early count as skipped, not passed; the
        // browser walk counts as one test.
        let skipped = l.skipped() + walk_skipped;
        let walk_passed = usize::from(self.walk == Walk::Passed);
        let walk_failed = usize::from(matches!(self.walk, Walk::Failed(_)));
        out.push(format!(
            "{} in {} s",
            if ok { "PASSED" } else { "FAILED" },
            self.seconds
        ));
        out.push(format!(
            "tests: {} passed, {} failed, {skipped} skipped",
            passed.saturating_sub(l.skipped()) + walk_passed,
            failed + walk_failed
        ));
        (out, ok)
    }
}

fn tests_n(n: usize) -> String {
    format!("{n} test{}", if n == 1 { "" } else { "s" })
}

fn databases_n(n: usize) -> String {
    format!("{n} database{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
