//! Who may do what. Handlers never read a role or a tenant from a form field: they take one of
//! these extractors, which read the session (pages) or the bearer token (API) and the tenant in
//! the path, and refuse the request before the handler runs.
//!
//! - [`Authed`](crate::session::Authed): any signed-in user.
//! - [`OperatorUser`]: a platform operator.
//! - [`AdminOf`]: an admin of the business named by the `{tenant}` path segment, or an operator.
//!   Anyone else gets 404, exactly as for a business that does not exist.
//! - [`ApiCaller`], [`ApiOperator`], [`ApiAdminOf`]: the same for API tokens.

pub mod api;
pub mod pages;

pub use api::{ApiAdminOf, ApiCaller, ApiOperator};
pub use pages::{AdminOf, OperatorUser};

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use store::TenantId;

use crate::error::AppError;

/// The `{tenant}` path segment, parsed. A malformed id is as not-found as an unknown one.
async fn path_tenant(parts: &mut Parts) -> Result<TenantId, AppError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, &())
        .await
        .map_err(|_| AppError::NotFound)?;
    params
        .get("tenant")
        .and_then(|t| t.parse().ok())
        .ok_or(AppError::NotFound)
}

/// Parses an id from the path; garbage is "not found", like an id that does not exist.
pub fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T, AppError> {
    s.parse().map_err(|_| AppError::NotFound)
}
