//! PostgreSQL backend.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

super::backend_prelude!();

type Db = sqlx::Postgres;
type Pool = sqlx::PgPool;
type Conn = sqlx::PgConnection;
type DbRow = sqlx::postgres::PgRow;

const BACKEND: &str = "postgres";
static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

pub(crate) struct PgDirectory {
    pool: Pool,
}

impl PgDirectory {
    /// Builds the pool without connecting: the first query connects, so the process can start
    /// while the database is still coming up and report it through `health()`.
    pub(crate) fn open(url: &str, settings: &crate::ConnectOptions) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(|e| {
            StoreError::invalid("database_url", format!("not a valid PostgreSQL URL: {e}"))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.unwrap_or(16))
            .acquire_timeout(settings.acquire_timeout)
            .connect_lazy_with(options.application_name("switchboard"));
        Ok(Self { pool })
    }
}

/// Binds a timestamp (already UTC and truncated to microseconds).
fn ts(t: OffsetDateTime) -> OffsetDateTime {
    t
}

async fn begin(pool: &Pool) -> Result<sqlx::Transaction<'static, Db>> {
    pool.begin().await.map_err(db_err)
}

fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // Connection exceptions, operator intervention (shutdown), insufficient resources,
            // database does not exist: the database is not there for us right now.
            if code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code == "3D000"
            {
                StoreError::Unavailable(d.message().to_owned())
            } else {
                catalog::violation(d.kind(), d.constraint(), d.message())
            }
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Tls(e) => StoreError::Unavailable(e.to_string()),
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

async fn record_change(pool: &Pool, origin: Uuid, change: &crate::changes::Change) -> Result<()> {
    super::changes_pg::record_change(pool, origin, change, db_err, now()).await
}

async fn watch_changes(
    pool: &Pool,
    options: crate::changes::WatchOptions,
) -> Result<crate::changes::ChangeWatch> {
    super::changes_pg::watch_changes(pool, options, db_err).await
}

crate::sql::directory_impl::expand_backend!(PgDirectory);
