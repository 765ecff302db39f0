//! Extractors for the REST API (`Authorization: Bearer <token>`). Tokens are scoped: a business
//! token reaches only its business, an operator token the whole platform.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use store::{ApiToken, Role, Tenant, TenantId};
use time::OffsetDateTime;

use crate::AppState;
use crate::crypto;
use crate::error::{ApiError, AppError};

/// Prefix of every API token, so a leaked one is recognisable (e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "sbt_";

/// Why a known API token no longer works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    Revoked,
    Expired(OffsetDateTime),
    /// The user who created it is disabled (or no longer exists).
    CreatorDisabled,
    /// The user who created it no longer holds the role the token acts with: an admin of the
    /// token's business (or an operator), or an operator for a platform token.
    CreatorDemoted,
}

impl TokenRefusal {
    /// `None` if the token may be used at `now`. A token created without a user (no
    /// `created_by`: made by tooling, not the UI) has no creator to check.
    pub fn of(t: &ApiToken, now: OffsetDateTime) -> Option<Self> {
        if t.revoked_at.is_some() {
            return Some(Self::Revoked);
        }
        if let Some(at) = t.expires_at.filter(|at| *at <= now) {
            return Some(Self::Expired(at));
        }
        let c = match (&t.creator, t.created_by) {
            (Some(c), _) => c,
            (None, Some(_)) => return Some(Self::CreatorDisabled),
            (None, None) => return None,
        };
        if c.disabled {
            return Some(Self::CreatorDisabled);
        }
        let entitled = match t.tenant_id {
            None => c.role == Role::Operator,
            Some(tenant) => {
                c.role == Role::Operator || (c.role == Role::Admin && c.tenant_id == Some(tenant))
            }
        };
        (!entitled).then_some(Self::CreatorDemoted)
    }

    /// A short label, for logs and the tokens page.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired(_) => "expired",
            Self::CreatorDisabled => "creator disabled",
            Self::CreatorDemoted => "creator no longer admin",
        }
    }

    /// What the API answers: what is wrong and what to do.
    pub fn message(&self) -> String {
        let fix = "Create a new token on the API tokens page";
        match self {
            Self::Revoked => format!("This API token has been revoked. {fix}."),
            Self::Expired(at) => format!(
                "This API token expired at {} UTC. {fix}.",
                crate::pages::activity::utc_stamp(*at)
            ),
            Self::CreatorDisabled => format!(
                "This API token stopped working because the account that created it is disabled. \
                 {fix}, signed in as an active admin."
            ),
            Self::CreatorDemoted => format!(
                "This API token stopped working because the account that created it no longer \
                 has the role the token needs. {fix}, signed in as an admin."
            ),
        }
    }
}

/// A caller with a valid API token: unrevoked, unexpired, and its creator still enabled and
/// still entitled to what the token reaches.
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
        let now = OffsetDateTime::now_utc();
        if let Some(refusal) = TokenRefusal::of(&token, now) {
            tracing::info!(token = %token.id, reason = refusal.reason(), "API token refused");
            return Err(ApiError(AppError::TokenRefused(refusal.message())));
        }
        if let Some(t) = token.tenant_id {
            // A suspended business keeps its data but loses API access.
            if state.directory.get_tenant(t).await?.suspended {
                return Err(ApiError(AppError::Forbidden));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use store::{ApiTokenId, TokenCreator, UserId};
    use time::Duration;

    fn token(tenant: Option<TenantId>, creator: Option<TokenCreator>) -> ApiToken {
        ApiToken {
            id: ApiTokenId::new(),
            tenant_id: tenant,
            name: "t".into(),
            token_hash: "a".repeat(64).parse().unwrap(),
            prefix: "sbt_x".into(),
            created_by: creator.as_ref().map(|c| c.id),
            created_at: OffsetDateTime::now_utc(),
            last_used_at: None,
            revoked_at: None,
            expires_at: None,
            creator,
        }
    }

    fn creator(tenant: Option<TenantId>, role: Role, disabled: bool) -> Option<TokenCreator> {
        Some(TokenCreator {
            id: UserId::new(),
            tenant_id: tenant,
            role,
            disabled,
        })
    }

    #[test]
    fn who_may_keep_a_token_working() {
        let now = OffsetDateTime::now_utc();
        let (a, b) = (TenantId::new(), TenantId::new());
        let ok = |t: &ApiToken| TokenRefusal::of(t, now);
        assert_eq!(
            ok(&token(Some(a), creator(Some(a), Role::Admin, false))),
            None
        );
        assert_eq!(
            ok(&token(Some(a), creator(None, Role::Operator, false))),
            None
        );
        assert_eq!(ok(&token(None, creator(None, Role::Operator, false))), None);
        assert_eq!(ok(&token(Some(a), None)), None, "made without a user");
        assert_eq!(
            ok(&token(Some(a), creator(Some(a), Role::Member, false))),
            Some(TokenRefusal::CreatorDemoted)
        );
        assert_eq!(
            ok(&token(Some(a), creator(Some(b), Role::Admin, false))),
            Some(TokenRefusal::CreatorDemoted),
            "an admin of another business"
        );
        assert_eq!(
            ok(&token(Some(a), creator(Some(a), Role::Admin, true))),
            Some(TokenRefusal::CreatorDisabled)
        );
        assert_eq!(
            ok(&token(None, creator(None, Role::Operator, true))),
            Some(TokenRefusal::CreatorDisabled)
        );
        let mut gone = token(Some(a), None);
        gone.created_by = Some(UserId::new());
        assert_eq!(
            ok(&gone),
            Some(TokenRefusal::CreatorDisabled),
            "creator row gone"
        );

        let mut t = token(Some(a), creator(Some(a), Role::Admin, false));
        t.expires_at = Some(now + Duration::minutes(1));
        assert_eq!(ok(&t), None);
        t.expires_at = Some(now);
        assert_eq!(ok(&t), Some(TokenRefusal::Expired(now)));
        assert!(ok(&t).unwrap().message().contains("expired at"));
        t.revoked_at = Some(now);
        assert_eq!(ok(&t), Some(TokenRefusal::Revoked));
    }
}
