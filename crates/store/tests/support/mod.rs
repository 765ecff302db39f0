//! Test harness: a fresh database per test on each backend, dropped afterwards (also on panic).
//! Postgres is the server at `SWITCHBOARD_TEST_PG_URL` (crates/testkit); each database opened
//! is noted in the run ledger `cargo xtask test` counts.

use std::sync::Arc;

use sqlx::Connection;
use store::Directory;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The tests' Postgres server, database `postgres` (crates/testkit: `SWITCHBOARD_TEST_PG_URL`).
pub fn admin_url() -> String {
    testkit::pg_admin_url()
}

enum Cleanup {
    Postgres { name: String },
    Sqlite { _dir: tempfile::TempDir },
}

/// A test database. Dropping it drops the PostgreSQL database (`WITH (FORCE)`) or removes the
/// SQLite file.
pub struct TestDb {
    pub dir: Arc<dyn Directory>,
    pub backend: Backend,
    pub url: String,
    cleanup: Cleanup,
}

impl Backend {
    /// A fresh, migrated database.
    pub async fn open(self) -> TestDb {
        let db = self.open_unmigrated().await;
        db.dir.migrate().await.expect("migrate");
        db
    }

    /// A fresh, empty database (no migrations applied).
    pub async fn open_unmigrated(self) -> TestDb {
        match self {
            Backend::Postgres => {
                let admin = admin_url();
                let name = format!("sb_test_{}", Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("{}", testkit::pg_unreachable(&admin, &e)));
                // An identifier, not a value: it cannot be bound, and it is generated right here.
                sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                let url = testkit::with_database(&admin, &name);
                let dir = store::connect(&url).await.expect("open postgres directory");
                testkit::ledger::opened(testkit::Backend::Postgres);
                TestDb {
                    dir,
                    backend: self,
                    url,
                    cleanup: Cleanup::Postgres { name },
                }
            }
            Backend::Sqlite => {
                let tmp = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", tmp.path().join("directory.db").display());
                let dir = store::connect(&url).await.expect("open sqlite directory");
                testkit::ledger::opened(testkit::Backend::Sqlite);
                TestDb {
                    dir,
                    backend: self,
                    url,
                    cleanup: Cleanup::Sqlite { _dir: tmp },
                }
            }
        }
    }
}

/// A value bound into raw SQL in the constraint tests.
#[derive(Clone, Copy, Debug)]
pub enum V<'a> {
    Id(Uuid),
    NullId,
    Text(&'a str),
    NullText,
    Int(i32),
    /// The current time, in the backend's timestamp representation.
    Now,
}

impl TestDb {
    /// Runs one statement on a separate connection, bypassing the store (and its friendly
    /// pre-checks), to prove the schema itself refuses a bad row. Returns the database's message.
    pub async fn raw(&self, sql: &str, values: &[V<'_>]) -> Result<u64, String> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut q = sqlx::query(sql);
                for v in values {
                    q = match *v {
                        V::Id(u) => q.bind(u),
                        V::NullId => q.bind(None::<Uuid>),
                        V::Text(t) => q.bind(t),
                        V::NullText => q.bind(None::<&str>),
                        V::Int(i) => q.bind(i),
                        V::Now => q.bind(time::OffsetDateTime::now_utc()),
                    };
                }
                let r = q
                    .execute(&mut conn)
                    .await
                    .map(|d| d.rows_affected())
                    .map_err(|e| e.to_string());
                let _ = conn.close().await;
                r
            }
            Backend::Sqlite => {
                let opts: sqlx::sqlite::SqliteConnectOptions =
                    self.url.parse().map_err(|e: sqlx::Error| e.to_string())?;
                let mut conn = sqlx::SqliteConnection::connect_with(&opts.foreign_keys(true))
                    .await
                    .map_err(|e| e.to_string())?;
                let mut q = sqlx::query(sql);
                for v in values {
                    q = match *v {
                        V::Id(u) => q.bind(u),
                        V::NullId => q.bind(None::<Uuid>),
                        V::Text(t) => q.bind(t),
                        V::NullText => q.bind(None::<&str>),
                        V::Int(i) => q.bind(i),
                        V::Now => q.bind("2026-01-01T00:00:00.000000Z"),
                    };
                }
                let r = q
                    .execute(&mut conn)
                    .await
                    .map(|d| d.rows_affected())
                    .map_err(|e| e.to_string());
                let _ = conn.close().await;
                r
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { name } = &self.cleanup {
            let name = name.clone();
            let admin = admin_url();
            // Drop runs inside the test's runtime (possibly while unwinding): use a thread with
            // its own runtime. Best effort.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::raw_sql(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Generates `mod postgres { #[tokio::test] fn name() }` and `mod sqlite { ... }` for each
/// contract test `async fn name(b: Backend)`. A Postgres test returns at once, counted as
/// skipped, when the run has no Postgres (`testkit::skip_postgres`).
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if testkit::skip_postgres(concat!(module_path!(), "::", stringify!($name))) {
                        return;
                    }
                    super::$name($crate::support::Backend::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
            )*
        }
    };
}
