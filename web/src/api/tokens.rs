//! `/api/v1/token`: the calling token itself, so an integration can see its scope and when it
//! expires. Tokens are created and revoked in the web admin.

use axum::Json;

use super::dto::{ErrorBody, TokenOut, rfc3339};
use crate::auth::ApiCaller;

#[utoipa::path(get, path = "/token", tag = "tokens",
    responses((status = 200, body = TokenOut), (status = 401, body = ErrorBody, description = "No token, an unknown one, or one that no longer works (code token_refused, with the reason)")))]
pub async fn current(c: ApiCaller) -> Json<TokenOut> {
    let t = c.token;
    Json(TokenOut {
        id: t.id.to_string(),
        name: t.name,
        prefix: t.prefix,
        tenant_id: t.tenant_id.map(|id| id.to_string()),
        created_at: rfc3339(t.created_at),
        expires_at: t.expires_at.map(rfc3339),
    })
}
