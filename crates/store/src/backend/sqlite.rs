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
            create_private(options.get_filename());
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
        // A ping before every acquire is a round trip to the connection's worker thread and
        // tells nothing about a local file (errors surface on the statement itself).
        .test_before_acquire(false)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(db_err)?;
        Ok(Self { pool })
    }
}

/// Creates the database file, if it does not exist yet, readable and writable by its owner only
/// (0600): it holds SIP credentials and password hashes. SQLite gives the `-wal` and `-shm`
/// files the mode of the database file. An existing file is left as it is, with a warning when
/// others may read it; any other failure (a missing directory, no permission) is left for
/// SQLite to report when it opens the file.
fn create_private(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        use std::os::unix::fs::PermissionsExt as _;
        // Dropped at once: an empty file is a valid new database.
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        if created.is_err() {
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format_args!("{mode:o}"),
                        "the SQLite database (SIP credentials, password hashes) is readable by \
                         other users; chmod 600 it"
                    );
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Binds a timestamp as fixed-width RFC 3339 UTC text (six fractional digits), so that text
/// comparison in SQL is time comparison.
fn ts(t: OffsetDateTime) -> String {
    let t = micros(t);
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return ts_fmt(t);
    }
    // Hand-rolled instead of `format!`: the registrar's group commit binds two or three of
    // these per row.
    let mut out = String::with_capacity(27);
    push_padded(&mut out, year.unsigned_abs(), 4);
    out.push('-');
    push_padded(&mut out, u32::from(u8::from(t.month())), 2);
    out.push('-');
    push_padded(&mut out, u32::from(t.day()), 2);
    out.push('T');
    push_padded(&mut out, u32::from(t.hour()), 2);
    out.push(':');
    push_padded(&mut out, u32::from(t.minute()), 2);
    out.push(':');
    push_padded(&mut out, u32::from(t.second()), 2);
    out.push('.');
    push_padded(&mut out, t.microsecond(), 6);
    out.push('Z');
    out
}

/// [`ts`] through `format!` (any year).
fn ts_fmt(t: OffsetDateTime) -> String {
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

/// Appends the last `width` (at most 10) decimal digits of `n`, zero-padded.
fn push_padded(out: &mut String, mut n: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let width = width.min(digits.len());
    for d in digits.iter_mut().take(width).rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for &d in digits.get(..width).unwrap_or(&[]) {
        out.push(char::from(d));
    }
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
        let mut t = time::macros::datetime!(1999-12-31 23:59:59.999999 UTC);
        for _ in 0..2000 {
            assert_eq!(ts(t), ts_fmt(micros(t)));
            t += time::Duration::seconds(86_400 * 7 + 3_661) + time::Duration::microseconds(12_345);
        }
        let early = time::macros::datetime!(0001-02-03 04:05:06.000007 -03:30);
        assert_eq!(ts(early), ts_fmt(micros(early)));
    }
}
