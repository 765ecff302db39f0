//! `/api/v1/tenants/{tenant}/registrations` and `/calls`: who is registered, call history.

use axum::Json;
use axum::extract::{Query, State};
use store::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::dto::*;
use crate::AppState;
use crate::auth::ApiAdminOf;
use crate::error::{ApiError, AppError};

#[utoipa::path(get, path = "/tenants/{tenant}/registrations", tag = "activity",
    params(("tenant" = String, Path, description = "Business id")),
    responses((status = 200, body = RegistrationList), (status = 404, body = ErrorBody)))]
pub async fn registrations(
    State(state): State<AppState>,
    a: ApiAdminOf,
) -> Result<Json<RegistrationList>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let regs = state
        .directory
        .list_tenant_registrations(a.tenant.id, now)
        .await?;
    Ok(Json(RegistrationList {
        items: regs
            .into_iter()
            .map(|(n, r)| {
                let b = r.binding;
                RegistrationOut {
                    extension: n.to_string(),
                    aor: b.aor,
                    contact: b.contact_uri,
                    user_agent: b.user_agent,
                    source: b.source_addr.to_string(),
                    transport: b.transport.to_string(),
                    expires_at: rfc3339(b.expires_at),
                }
            })
            .collect(),
    }))
}

fn time_param(v: &Option<String>, field: &'static str) -> Result<Option<OffsetDateTime>, ApiError> {
    v.as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                ApiError(AppError::invalid(
                    field,
                    format!("{s:?} is not an RFC 3339 time such as 2026-11-24T09:00:00Z"),
                ))
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/tenants/{tenant}/calls", tag = "activity",
    params(("tenant" = String, Path, description = "Business id"), CallParams),
    responses((status = 200, body = CallList, description = "Newest first"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn calls(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Query(p): Query<CallParams>,
) -> Result<Json<CallList>, ApiError> {
    let (from, to) = (time_param(&p.from, "from")?, time_param(&p.to, "to")?);
    // A reversed range matches nothing: say so rather than answer an empty list.
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        let say = |x: OffsetDateTime| x.format(&Rfc3339).unwrap_or_default();
        return Err(ApiError(AppError::invalid(
            "to",
            format!(
                "from ({}) is after to ({}), so no call can match",
                say(f),
                say(t)
            ),
        )));
    }
    let q = CdrQuery {
        from,
        to,
        party: p.party.filter(|s| !s.trim().is_empty()),
        missed: p.missed.unwrap_or(false),
        page: Page::new(
            p.limit.unwrap_or(50).clamp(1, Page::MAX_LIMIT),
            p.offset.unwrap_or(0),
        ),
    };
    let list = state.directory.list_cdrs(a.tenant.id, &q).await?;
    Ok(Json(CallList {
        total: list.total,
        items: list
            .items
            .into_iter()
            .map(|c| {
                let r = c.record;
                CallOut {
                    trunk: c.trunk_name,
                    id: r.id.to_string(),
                    call_id: r.call_id,
                    direction: r.direction.to_string(),
                    caller: r.caller,
                    callee: r.callee,
                    dialled: r.dialled,
                    started_at: rfc3339(r.started_at),
                    answered_at: r.answered_at.map(rfc3339),
                    ended_at: rfc3339(r.ended_at),
                    duration_secs: r.duration_secs,
                    disposition: r.disposition.to_string(),
                    hangup_cause: r.hangup_cause,
                }
            })
            .collect(),
    }))
}
