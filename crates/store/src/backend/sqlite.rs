//! SQLite backend: one file, WAL, foreign keys on every connection, busy timeout. Write
//! transactions start with `BEGIN IMMEDIATE` so two writers queue on the busy timeout instead of
//! failing on a lock upgrade.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

super::backend_prelude!();

type Db = sqlx::Sqlite;
type Pool = sqlx::SqlitePool;
type Conn = sqlx::SqliteConnection;
type DbRow = sqlx::sqlite::SqliteRow;

const BACKEND: &str = "sqlite";
static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

pub(crate) struct SqliteDirectory {
    pool: Pool,
}

impl SqliteDirectory {
    pub(crate) async fn open(url: &str, settings: &crate::ConnectOptions) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::invalid("database_url", format!("not a valid SQLite URL: {e}"))
            })?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .synchronous(SqliteSynchronous::Normal);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = if in_memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        // An in-memory database lives in one connection: keep exactly one, forever.
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(settings.max_connections.unwrap_or(8))
        }
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(db_err)?;
        Ok(Self { pool })
    }
}

/// Binds a timestamp as fixed-width RFC 3339 UTC text (six fractional digits), so that text
/// comparison in SQL is time comparison.
fn ts(t: OffsetDateTime) -> String {
    let t = micros(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

async fn begin(pool: &Pool) -> Result<sqlx::Transaction<'static, Db>> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)
}

fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(d) => {
            let code: i32 = d.code().and_then(|c| c.parse().ok()).unwrap_or(0);
            // BUSY, LOCKED, IOERR, CANTOPEN, FULL (primary codes): the file is not usable right now.
            if matches!(code & 0xff, 5 | 6 | 10 | 13 | 14) {
                StoreError::Unavailable(d.message().to_owned())
            } else {
                catalog::violation(d.kind(), None, d.message())
            }
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".to_owned())
        }
        sqlx::Error::PoolClosed => {
            StoreError::Unavailable("the connection pool is closed".to_owned())
        }
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable("the database connection worker crashed".to_owned())
        }
        e => StoreError::Internal(e.to_string()),
    }
}

crate::sql::directory_impl::expand_backend!(SqliteDirectory);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width() {
        let t = time::macros::datetime!(2026-11-24 07:05:09.5 +01:00);
        assert_eq!(ts(t), "2026-11-24T06:05:09.500000Z");
        let whole = time::macros::datetime!(2026-11-24 07:05:09 UTC);
        assert_eq!(ts(whole), "2026-11-24T07:05:09.000000Z");
    }
}
