//! What Switchboard's tests share about the machine they run on.
//!
//! - Which PostgreSQL server the Postgres half of the tests uses: `SWITCHBOARD_TEST_PG_URL`
//!   (default [`DEFAULT_PG_URL`]), with a fresh database per test.
//! - Whether this run skips that half: `cargo xtask test` sets `SWITCHBOARD_TEST_SKIP_PG=1`
//!   when the machine has no Postgres at all; each Postgres test then says so and returns.
//!   `SWITCHBOARD_TEST_REQUIRE_PG=1` (CI) turns such a skip into a failure.
//! - The run ledger ([`ledger`]): one line per database a test opens, per real client a test
//!   runs with, per test skipped, so that the command's summary counts what really ran.

pub mod ledger;

/// The server the Postgres tests use (a URL; its database part, if any, is replaced).
pub const PG_URL_ENV: &str = "SWITCHBOARD_TEST_PG_URL";
/// Trust auth for `postgres` on loopback, as Debian's cluster does once `.ci/run`-style
/// `pg_hba.conf` lines allow it, and as the cluster `cargo xtask test` starts does.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432";
/// `1`: this run has no Postgres; the Postgres tests skip (loudly, and counted).
pub const SKIP_PG_ENV: &str = "SWITCHBOARD_TEST_SKIP_PG";
/// `1`: a skipped Postgres test is a failure (CI).
pub const REQUIRE_PG_ENV: &str = "SWITCHBOARD_TEST_REQUIRE_PG";
/// `1`: a missing real client (baresip, sipsak, sipvicious, Chromium) is a failure (CI).
pub const REQUIRE_CLIENTS_ENV: &str = "SWITCHBOARD_E2E_REQUIRE_CLIENTS";

/// The backend a test database lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// True when the environment variable is exactly `1`.
pub fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// The Postgres server for tests, as configured: `SWITCHBOARD_TEST_PG_URL` or the default.
pub fn pg_server_url() -> String {
    std::env::var(PG_URL_ENV).unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// The URL of database `name` on the tests' Postgres server.
pub fn pg_url(name: &str) -> String {
    with_database(&pg_server_url(), name)
}

/// The admin URL (database `postgres`), where tests create and drop their databases.
pub fn pg_admin_url() -> String {
    pg_url("postgres")
}

/// `url` with its database (the path after the host) set to `name`; a query is kept.
/// `postgres://u@h:1` and `postgres://u@h:1/other?sslmode=disable` both work.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| i + after_scheme);
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The server part of a URL for messages: scheme, host and port, without the user's password.
pub fn redacted_server(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}@{host}")
        }
        None => format!("{scheme}://{authority}"),
    }
}

/// Whether this run skips the Postgres tests. When it does, says so on stdout and stderr,
/// notes `test` in the ledger and returns true: the caller returns without asserting.
/// Panics when `SWITCHBOARD_TEST_REQUIRE_PG=1` asks for Postgres all the same.
pub fn skip_postgres(test: &str) -> bool {
    if !env_flag(SKIP_PG_ENV) {
        return false;
    }
    let msg = format!(
        "SKIPPED {test}: this run has no Postgres ({SKIP_PG_ENV}=1; `cargo xtask test` starts one when the machine has initdb/pg_ctl: apt-get install postgresql)"
    );
    if env_flag(REQUIRE_PG_ENV) {
        panic!("{msg}, but {REQUIRE_PG_ENV}=1 requires it");
    }
    println!("{msg}");
    eprintln!("{msg}");
    ledger::skipped_postgres(test);
    true
}

/// The panic message for a Postgres that does not answer, with what to do about it.
pub fn pg_unreachable(server_url: &str, err: &dyn std::fmt::Display) -> String {
    format!(
        "Postgres for tests at {} is not reachable: {err}. Run the tests with `cargo xtask test`, \
         which starts a throwaway cluster when none answers, or point {PG_URL_ENV} at a server \
         that trusts its user on loopback",
        redacted_server(server_url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_sets_or_replaces_the_database_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432", "sb_1"),
            "postgres://postgres@127.0.0.1:5432/sb_1"
        );
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "sb_1"),
            "postgres://postgres@127.0.0.1:5432/sb_1"
        );
        assert_eq!(
            with_database("postgres://u:p@db:6000/x?sslmode=disable", "sb_1"),
            "postgres://u:p@db:6000/sb_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@db?sslmode=disable", "y"),
            "postgres://u@db/y?sslmode=disable"
        );
    }

    #[test]
    fn redacted_server_drops_the_password_and_the_database() {
        assert_eq!(
            redacted_server("postgres://sb:topsecret@127.0.0.1:1/sb?x=1"),
            "postgres://sb@127.0.0.1:1"
        );
        assert_eq!(
            redacted_server("postgres://postgres@127.0.0.1:5432"),
            "postgres://postgres@127.0.0.1:5432"
        );
        assert_eq!(redacted_server("postgres://h"), "postgres://h");
    }

    #[test]
    fn unreachable_message_says_what_to_do_and_hides_the_password() {
        let m = pg_unreachable("postgres://u:hunter2@127.0.0.1:1/d", &"connection refused");
        assert!(m.contains("postgres://u@127.0.0.1:1"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
        assert!(m.contains("cargo xtask test"), "{m}");
    }
}
