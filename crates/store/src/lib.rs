//! Directory: the SQL store behind Switchboard.
//!
//! One trait, [`Directory`], with two sqlx implementations: PostgreSQL (production) and SQLite
//! (the zero-setup default). [`connect`] picks one from the URL. Domain values are validated
//! newtypes from [`model`]; errors are [`StoreError`], never raw database errors.
//!
//! # Schema decisions
//!
//! - **The database carries the rules.** Every rule that can be a constraint is one (CHECKs,
//!   UNIQUEs, foreign keys); the store's own checks only give friendlier messages first. The
//!   contract tests insert bad rows with raw SQL, past the store, to prove it.
//! - **Tenancy by composite keys.** Tenant-owned tables have `UNIQUE (tenant_id, id)`, and every
//!   reference between them is `(tenant_id, x_id) -> (tenant_id, id)`: a number's route, a ring
//!   group member or fallback, a credential's extension, an extension's user can only point
//!   inside the same tenant. Every query is also filtered by `tenant_id`, so a foreign id is
//!   `NotFound`.
//! - **One number, one target.** `dialables (tenant_id, number, kind)` holds every short number
//!   of a tenant once (primary key `(tenant_id, number)`); extensions, ring groups, IVR menus
//!   and conference rooms reference their row with `(tenant_id, number, kind)`. So an extension
//!   and a ring group can never share a number, whoever writes the row. The store writes both
//!   rows in one transaction and deletes the dialable row with its owner.
//! - **Typed routes.** A number's route (and a ring group's fallback) is a kind plus one nullable
//!   column per target type, each with its own composite foreign key; a CHECK makes exactly the
//!   column matching the kind non-null. Routed-to rows cannot be deleted (`Conflict`, "route").
//! - **MAC addresses are unique platform-wide** (a phone asking for its configuration names only
//!   its MAC), which implies unique per tenant.
//! - **Keys and time.** UUID v7 keys are generated in Rust. Timestamps are UTC, truncated to
//!   microseconds; SQLite stores them as fixed-width RFC 3339 text, so text order is time order.
//! - **SQLite** tables are STRICT; every connection has foreign keys on, WAL, a busy timeout,
//!   and write transactions begin IMMEDIATE.
//! - **Idempotent CDRs.** The engine chooses the CDR id; a retried insert is a no-op
//!   (`ON CONFLICT (id) DO NOTHING`).

mod backend;
pub mod changes;
mod directory;
mod error;
pub mod model;
mod registration_batch;
mod sql;
mod web;

use std::sync::Arc;

pub use changes::{Change, ChangeBus};
pub use directory::Directory;
pub use error::{Result, StoreError};
pub use model::*;
pub use registration_batch::RegistrationChange;
pub use web::*;

/// Opens a directory from a URL: `postgres://...` / `postgresql://...` for PostgreSQL,
/// `sqlite:path` / `sqlite://path` for SQLite (the file is created if missing; WAL, foreign keys
/// and a busy timeout are set on every connection). Does not migrate: call
/// [`Directory::migrate`].
///
/// PostgreSQL pools connect lazily (the first query connects, so start-up does not fail while
/// the database is still starting; see [`Directory::health`]). SQLite opens the file at once.
pub async fn connect(url: &str) -> Result<Arc<dyn Directory>> {
    connect_with(url, &ConnectOptions::default()).await
}

/// Pool settings for [`connect_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// How long a query waits for a connection before failing with `Unavailable` (default 5 s).
    pub acquire_timeout: std::time::Duration,
    /// Most connections in the pool (default 16 for PostgreSQL, 8 for a SQLite file; an
    /// in-memory SQLite database always has exactly one).
    pub max_connections: Option<u32>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            acquire_timeout: std::time::Duration::from_secs(5),
            max_connections: None,
        }
    }
}

/// [`connect`] with explicit pool settings.
pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Directory>> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" => Ok(Arc::new(backend::postgres::PgDirectory::open(
            url, options,
        )?)),
        "sqlite" => Ok(Arc::new(
            backend::sqlite::SqliteDirectory::open(url, options).await?,
        )),
        _ => Err(StoreError::invalid(
            "database_url",
            format!(
                "unsupported database URL scheme {scheme:?}: expected postgres://, postgresql:// or sqlite:"
            ),
        )),
    }
}
