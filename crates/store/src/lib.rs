//! Directory: the SQL store behind Switchboard.
//!
//! One trait, [`Directory`], with two sqlx implementations: PostgreSQL (production) and SQLite
//! (the zero-setup default). [`connect`] picks one from the URL. Domain values are validated
//! newtypes from [`model`]; errors are [`StoreError`], never raw database errors.

mod backend;
mod directory;
mod error;
pub mod model;
mod sql;
mod web;

use std::sync::Arc;

pub use directory::Directory;
pub use error::{Result, StoreError};
pub use model::*;
pub use web::*;

/// Opens a directory from a URL: `postgres://...` / `postgresql://...` for PostgreSQL,
/// `sqlite:path` / `sqlite://path` for SQLite (the file is created if missing; WAL, foreign keys
/// and a busy timeout are set on every connection). Does not migrate: call
/// [`Directory::migrate`].
///
/// PostgreSQL pools connect lazily (the first query connects, so start-up does not fail while
/// the database is still starting; see [`Directory::health`]). SQLite opens the file at once.
pub async fn connect(url: &str) -> Result<Arc<dyn Directory>> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" => Ok(Arc::new(backend::postgres::PgDirectory::open(url)?)),
        "sqlite" => Ok(Arc::new(backend::sqlite::SqliteDirectory::open(url).await?)),
        _ => Err(StoreError::invalid(
            "database_url",
            format!(
                "unsupported database URL scheme {scheme:?}: expected postgres://, postgresql:// or sqlite:"
            ),
        )),
    }
}
