//! Extractors for the HTML pages (session cookie).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use store::{Role, Tenant};

use crate::AppState;
use crate::error::{AppError, PageError};
use crate::session::Authed;

impl FromRequestParts<AppState> for Authed {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, PageError> {
        parts
            .extensions
            .get::<Authed>()
            .cloned()
            .ok_or(PageError(AppError::Unauthenticated))
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for Authed {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Authed>().cloned())
    }
}

/// A signed-in platform operator.
#[derive(Clone, Debug)]
pub struct OperatorUser(pub Authed);

impl FromRequestParts<AppState> for OperatorUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let a = Authed::from_request_parts(parts, state).await?;
        if a.user.role != Role::Operator {
            return Err(PageError(AppError::Forbidden));
        }
        Ok(OperatorUser(a))
    }
}

/// An admin of the business in the `{tenant}` path segment (or an operator). The business is
/// loaded: handlers use `tenant.id` for every store call.
#[derive(Clone, Debug)]
pub struct AdminOf {
    pub tenant: Tenant,
    pub authed: Authed,
}

impl FromRequestParts<AppState> for AdminOf {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let authed = Authed::from_request_parts(parts, state).await?;
        let id = super::path_tenant(parts).await?;
        let allowed = match authed.user.role {
            Role::Operator => true,
            Role::Admin => authed.user.tenant_id == Some(id),
            Role::Member => false,
        };
        if !allowed {
            return Err(PageError(AppError::NotFound));
        }
        let tenant = state.directory.get_tenant(id).await?;
        if tenant.suspended && authed.user.role != Role::Operator {
            return Err(PageError(AppError::Forbidden));
        }
        Ok(AdminOf { tenant, authed })
    }
}
