//! What the two backends share: the SQL statements (both dialects accept `$n` placeholders,
//! `ON CONFLICT`, `RETURNING`, `lower()`), expanded once per backend by the macros in the
//! sub-modules, and the mapping of constraint violations to fields.
//!
//! A backend module defines `Db`, `Pool`, `Conn`, `DbRow`, `BACKEND`, `MIGRATOR`, `ts()` (how a
//! timestamp is bound) and `db_err()` (how a sqlx error becomes a `StoreError`), then expands the
//! macros.

pub(crate) mod catalog;
pub(crate) mod directory_impl;
pub(crate) mod extensions;
pub(crate) mod numbers;
pub(crate) mod operations;
pub(crate) mod registration_batch;
pub(crate) mod routing;
pub(crate) mod tenants;
pub(crate) mod web;

use time::OffsetDateTime;

use crate::error::StoreError;

/// UTC, truncated to microseconds: what both databases keep, so a record read back equals the
/// record written.
pub(crate) fn micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(t)
}

pub(crate) fn now() -> OffsetDateTime {
    micros(OffsetDateTime::now_utc())
}

/// Replaces the generic error of a foreign-key violation with what it means at this call site.
/// SQLite does not say which foreign key failed, so the caller, which knows, says it for both
/// backends.
pub(crate) fn on_fk(e: StoreError, field: &'static str, message: &str) -> StoreError {
    match e {
        StoreError::Invalid {
            field: catalog::FK_FIELD,
            ..
        } => StoreError::invalid(field, message),
        e => e,
    }
}

/// Replaces the generic message of a conflict on `field` with one naming the value.
pub(crate) fn on_conflict(e: StoreError, field: &'static str, message: String) -> StoreError {
    match e {
        StoreError::Conflict { field: f, .. } if f == field => StoreError::conflict(field, message),
        e => e,
    }
}

pub(crate) fn to_i32(v: u32, field: &'static str) -> Result<i32, StoreError> {
    i32::try_from(v).map_err(|_| StoreError::invalid(field, format!("{field} is too large")))
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("corrupt {what} in the database: {e}"))
}

/// Parses a stored text column into a domain value; a failure means a corrupt row.
pub(crate) fn parse_col<T>(s: String, what: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| corrupt(what, e))
}

pub(crate) fn parse_opt<T>(s: Option<String>, what: &str) -> Result<Option<T>, StoreError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.map(|s| parse_col(s, what)).transpose()
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub(crate) fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
