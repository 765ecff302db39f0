//! Directory: the SQL store behind Switchboard.
//!
//! One trait, [`Directory`], with two sqlx implementations: PostgreSQL (production) and SQLite
//! (the zero-setup default). [`connect`] picks one from the URL. Domain values are validated
//! newtypes from [`model`]; errors are [`StoreError`], never raw database errors.

mod directory;
mod error;
pub mod model;

use std::sync::Arc;

pub use directory::Directory;
pub use error::{Result, StoreError};
pub use model::*;

/// Opens a directory from a URL: `postgres://...` / `postgresql://...` for PostgreSQL,
/// `sqlite:path` / `sqlite://path` for SQLite (the file is created if missing; WAL, foreign keys
/// and a busy timeout are set on every connection). Does not migrate: call
/// [`Directory::migrate`].
pub async fn connect(url: &str) -> Result<Arc<dyn Directory>> {
    let _ = url;
    Err(StoreError::Internal(
        "backends are not implemented yet".to_owned(),
    ))
}
