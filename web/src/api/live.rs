//! `GET /api/v1/calls`: the calls going on right now. A business token sees its own business's
//! calls; an operator token every business's, or one business's with `?tenant=`.

use axum::Json;
use axum::extract::{Query, State};
use time::OffsetDateTime;

use super::dto::*;
use crate::AppState;
use crate::auth::ApiCaller;
use crate::error::{ApiError, AppError};
use crate::live::{self, ActiveCall};

#[utoipa::path(get, path = "/calls", tag = "activity",
    params(ActiveCallParams),
    responses(
        (status = 200, body = ActiveCallList, description = "Calls in progress, oldest first"),
        (status = 404, body = ErrorBody, description = "No such business, or not the token's"),
        (status = 422, body = ErrorBody)))]
pub async fn active(
    State(state): State<AppState>,
    caller: ApiCaller,
    Query(p): Query<ActiveCallParams>,
) -> Result<Json<ActiveCallList>, ApiError> {
    let asked = p
        .tenant
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse().map_err(|_| {
                ApiError(AppError::invalid(
                    "tenant",
                    format!("{t:?} is not a business id"),
                ))
            })
        })
        .transpose()?;
    let calls = match (caller.tenant(), asked) {
        (Some(own), Some(other)) if own != other => return Err(ApiError(AppError::NotFound)),
        (Some(own), _) => live::tenant_calls(&*state.live_calls, own),
        (None, Some(t)) => {
            // An unknown business is a 404, not an empty list.
            state.directory.get_tenant(t).await?;
            live::tenant_calls(&*state.live_calls, t)
        }
        (None, None) => live::all_calls(&*state.live_calls),
    };
    let now = OffsetDateTime::now_utc();
    Ok(Json(ActiveCallList {
        items: calls.iter().map(|c| out(c, now)).collect(),
    }))
}

fn out(c: &ActiveCall, now: OffsetDateTime) -> ActiveCallOut {
    ActiveCallOut {
        id: c.id,
        tenant_id: c.tenant.to_string(),
        caller: c.caller.clone(),
        dialled: c.dialled.clone(),
        callee: c.callee.clone(),
        state: c.state.to_string(),
        started_at: rfc3339(c.started_at),
        answered_at: c.answered_at.map(rfc3339),
        duration_secs: c.talk_secs(now),
    }
}
