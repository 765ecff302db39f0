//! `/api/v1/tenants/{tenant}/ring-groups`: a business's ring groups, their members (in ring
//! order), strategy, timeouts and fallback.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::*;

use super::dto::*;
use super::{ApiJson, created};
use crate::AppState;
use crate::auth::{ApiAdminOf, parse_id};
use crate::error::{ApiError, AppError};
use crate::pages::ring_groups::{dialable_target, extensions_by_id, target_number};
use crate::service::ring_groups::parse_members;

async fn out(
    state: &AppState,
    tenant: TenantId,
    g: &RingGroup,
    exts: &HashMap<ExtensionId, Extension>,
) -> Result<RingGroupOut, ApiError> {
    let members = g
        .members
        .iter()
        .map(|m| match m {
            RingGroupMember::Extension(id) => RingMemberOut {
                kind: "extension".into(),
                number: exts
                    .get(id)
                    .map(|e| e.number.to_string())
                    .unwrap_or_default(),
                extension_id: Some(id.to_string()),
                display_name: exts.get(id).map(|e| e.settings.display_name.clone()),
            },
            RingGroupMember::External(n) => RingMemberOut {
                kind: "external".into(),
                number: n.to_string(),
                extension_id: None,
                display_name: None,
            },
        })
        .collect();
    let s = &g.settings;
    Ok(RingGroupOut {
        id: g.id.to_string(),
        number: g.number.to_string(),
        name: s.name.clone(),
        strategy: s.strategy.as_str().into(),
        ring_timeout_secs: s.ring_timeout_secs,
        member_timeout_secs: s.member_timeout_secs,
        members,
        fallback: s.fallback.into(),
        fallback_number: target_number(&*state.directory, tenant, s.fallback).await?,
        last_answered_member: g.last_answered_member,
        created_at: rfc3339(g.created_at),
    })
}

async fn one(state: &AppState, tenant: TenantId, g: &RingGroup) -> Result<RingGroupOut, ApiError> {
    let exts = extensions_by_id(&*state.directory, tenant).await?;
    out(state, tenant, g, &exts).await
}

async fn members(
    state: &AppState,
    tenant: TenantId,
    typed: &[String],
) -> Result<Vec<RingGroupMember>, ApiError> {
    let entries: Vec<&str> = typed.iter().map(String::as_str).collect();
    Ok(parse_members(&*state.directory, tenant, &entries).await?)
}

fn strategy(s: &str) -> Result<RingStrategy, ApiError> {
    s.parse()
        .map_err(|e: ParseError| ApiError(AppError::invalid("strategy", e.message)))
}

#[utoipa::path(get, path = "/tenants/{tenant}/ring-groups", tag = "ring groups",
    params(("tenant" = String, Path, description = "Business id")),
    responses((status = 200, body = RingGroupList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    a: ApiAdminOf,
) -> Result<Json<RingGroupList>, ApiError> {
    let groups = state.directory.list_ring_groups(a.tenant.id).await?;
    let exts = extensions_by_id(&*state.directory, a.tenant.id).await?;
    let mut items = Vec::with_capacity(groups.len());
    for g in &groups {
        items.push(out(&state, a.tenant.id, g, &exts).await?);
    }
    Ok(Json(RingGroupList { items }))
}

#[utoipa::path(post, path = "/tenants/{tenant}/ring-groups", tag = "ring groups",
    request_body = RingGroupIn,
    params(("tenant" = String, Path, description = "Business id")),
    responses((status = 201, body = RingGroupOut), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    a: ApiAdminOf,
    ApiJson(b): ApiJson<RingGroupIn>,
) -> Result<Response, ApiError> {
    let t = a.tenant.id;
    let number: ExtensionNumber = b.number.parse()?;
    let strategy = match b.strategy.as_deref() {
        Some(s) => strategy(s)?,
        None => RingStrategy::Simultaneous,
    };
    let mut settings = RingGroupSettings::new(b.name.trim(), strategy);
    if let Some(v) = b.ring_timeout_secs {
        settings.ring_timeout_secs = v;
    }
    if let Some(v) = b.member_timeout_secs {
        settings.member_timeout_secs = v;
    }
    let fallback = b.fallback.as_deref().unwrap_or("");
    settings.fallback = dialable_target(&*state.directory, t, fallback, "fallback").await?;
    let members = members(&state, t, &b.members).await?;
    let g = state
        .service
        .create_ring_group(t, &number, &settings, &members)
        .await?;
    Ok(created(one(&state, t, &g).await?))
}

#[derive(Deserialize)]
pub struct GroupPath {
    group: String,
}

async fn load(state: &AppState, a: &ApiAdminOf, p: &GroupPath) -> Result<RingGroup, ApiError> {
    Ok(state
        .directory
        .get_ring_group(a.tenant.id, parse_id(&p.group)?)
        .await?)
}

#[utoipa::path(get, path = "/tenants/{tenant}/ring-groups/{group}", tag = "ring groups",
    params(("tenant" = String, Path, description = "Business id"), ("group" = String, Path, description = "Ring group id")),
    responses((status = 200, body = RingGroupOut), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<GroupPath>,
) -> Result<Json<RingGroupOut>, ApiError> {
    let g = load(&state, &a, &p).await?;
    Ok(Json(one(&state, a.tenant.id, &g).await?))
}

#[utoipa::path(patch, path = "/tenants/{tenant}/ring-groups/{group}", tag = "ring groups",
    request_body = RingGroupPatch,
    params(("tenant" = String, Path, description = "Business id"), ("group" = String, Path, description = "Ring group id")),
    responses((status = 200, body = RingGroupOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<GroupPath>,
    ApiJson(b): ApiJson<RingGroupPatch>,
) -> Result<Json<RingGroupOut>, ApiError> {
    let t = a.tenant.id;
    let g = load(&state, &a, &p).await?;
    let mut s = g.settings.clone();
    if let Some(v) = b.name {
        s.name = v.trim().to_owned();
    }
    if let Some(v) = b.strategy.as_deref() {
        s.strategy = strategy(v)?;
    }
    if let Some(v) = b.ring_timeout_secs {
        s.ring_timeout_secs = v;
    }
    if let Some(v) = b.member_timeout_secs {
        s.member_timeout_secs = v;
    }
    if let Some(v) = b.fallback.as_deref() {
        s.fallback = dialable_target(&*state.directory, t, v, "fallback").await?;
    }
    let members = match &b.members {
        Some(m) => Some(members(&state, t, m).await?),
        None => None,
    };
    let g = state
        .service
        .update_ring_group(t, &g, &s, members.as_deref())
        .await?;
    Ok(Json(one(&state, t, &g).await?))
}

#[utoipa::path(delete, path = "/tenants/{tenant}/ring-groups/{group}", tag = "ring groups",
    params(("tenant" = String, Path, description = "Business id"), ("group" = String, Path, description = "Ring group id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A number or another group's fallback still routes to it")))]
pub async fn delete(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<GroupPath>,
) -> Result<Response, ApiError> {
    let g = load(&state, &a, &p).await?;
    state.service.delete_ring_group(a.tenant.id, g.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
