//! Extractors for the REST API (`Authorization: Bearer <token>`). Tokens are scoped: a business
//! token reaches only its business, an operator token the whole platform.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use store::{ApiToken, Tenant, TenantId};
use time::OffsetDateTime;

use crate::AppState;
use crate::crypto;
use crate::error::{ApiError, AppError};

/// Prefix of every API token, so a leaked one is recognisable (e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "sbt_";

/// A caller with a valid, unrevoked API token.
#[derive(Clone, Debug)]
pub struct ApiCaller {
    pub token: ApiToken,
}

impl ApiCaller {
    /// `None` for an operator token.
    pub fn tenant(&self) -> Option<TenantId> {
        self.token.tenant_id
    }
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| t.starts_with(TOKEN_PREFIX))
            .ok_or(ApiError(AppError::Unauthenticated))?;
        let hash = crypto::token_hash(bearer);
        let token = match state.directory.get_api_token_by_hash(&hash).await {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Err(ApiError(AppError::Unauthenticated)),
            Err(e) => return Err(e.into()),
        };
        if token.revoked_at.is_some() {
            return Err(ApiError(AppError::Unauthenticated));
        }
        if let Some(t) = token.tenant_id {
            // A suspended business keeps its data but loses API access.
            if state.directory.get_tenant(t).await?.suspended {
                return Err(ApiError(AppError::Forbidden));
            }
        }
        let now = OffsetDateTime::now_utc();
        let stale = token
            .last_used_at
            .is_none_or(|t| now - t > time::Duration::minutes(1));
        if stale {
            state.directory.touch_api_token(token.id, now).await?;
        }
        Ok(ApiCaller { token })
    }
}

/// An operator token.
#[derive(Clone, Debug)]
pub struct ApiOperator(pub ApiCaller);

impl FromRequestParts<AppState> for ApiOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let c = ApiCaller::from_request_parts(parts, state).await?;
        if c.tenant().is_some() {
            return Err(ApiError(AppError::Forbidden));
        }
        Ok(ApiOperator(c))
    }
}

/// A token of the business in the `{tenant}` path segment, or an operator token.
#[derive(Clone, Debug)]
pub struct ApiAdminOf {
    pub tenant: Tenant,
    pub caller: ApiCaller,
}

impl FromRequestParts<AppState> for ApiAdminOf {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = ApiCaller::from_request_parts(parts, state).await?;
        let id = super::path_tenant(parts).await?;
        if caller.tenant().is_some_and(|t| t != id) {
            return Err(ApiError(AppError::NotFound));
        }
        let tenant = state.directory.get_tenant(id).await?;
        Ok(ApiAdminOf { tenant, caller })
    }
}
