//! `/api/v1/trunks`: upstream SIP trunks (operator tokens only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::*;

use super::dto::*;
use super::{ApiJson, created};
use crate::AppState;
use crate::auth::{ApiOperator, parse_id};
use crate::error::{ApiError, AppError};

fn opt(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Applies the body onto `s` (the defaults for POST, the trunk for PATCH).
fn apply(mut s: TrunkSettings, b: TrunkIn) -> Result<TrunkSettings, ApiError> {
    if let Some(v) = b.name {
        s.name = v.trim().to_owned();
    }
    if let Some(v) = b.host {
        s.host = v.trim().to_owned();
    }
    if let Some(v) = b.port {
        s.port = v;
    }
    if let Some(v) = b.transport {
        s.transport = v.parse()?;
    }
    if b.username.is_some() {
        s.username = opt(b.username);
    }
    if let Some(p) = b.password {
        s.password = (!p.is_empty()).then(|| Secret::new(p));
    }
    if b.from_domain.is_some() {
        s.from_domain = opt(b.from_domain);
    }
    if let Some(v) = b.priority {
        s.priority = v;
    }
    if b.emergency_priority.is_some() {
        s.emergency_priority = b.emergency_priority;
    }
    if let Some(v) = b.enabled {
        s.enabled = v;
    }
    if b.inbound_source.is_some() {
        s.inbound_source = opt(b.inbound_source);
    }
    if let Some(v) = b.force_wide_source {
        s.force_wide_source = v;
    }
    if let Some(v) = b.inbound_auth {
        s.inbound_auth = v;
    }
    if let Some(v) = b.calls_per_second {
        s.calls_per_second = v;
    }
    if let Some(v) = b.register {
        s.register = v;
    }
    if b.registrar.is_some() {
        s.registrar = opt(b.registrar);
    }
    if let Some(v) = b.register_expires {
        s.register_expires = v;
    }
    Ok(s)
}

#[utoipa::path(get, path = "/trunks", tag = "trunks",
    responses((status = 200, body = TrunkList, description = "By priority, then name"), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _op: ApiOperator,
) -> Result<Json<TrunkList>, ApiError> {
    let trunks = state.directory.list_trunks().await?;
    Ok(Json(TrunkList {
        items: trunks
            .iter()
            .map(|t| TrunkOut::from(t).with_state(state.trunk_states.state(t.id)))
            .collect(),
    }))
}

#[utoipa::path(post, path = "/trunks", tag = "trunks", request_body = TrunkIn,
    responses((status = 201, body = TrunkOut), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _op: ApiOperator,
    ApiJson(b): ApiJson<TrunkIn>,
) -> Result<Response, ApiError> {
    if b.name.is_none() || b.host.is_none() {
        let field = if b.name.is_none() { "name" } else { "host" };
        return Err(ApiError(AppError::invalid(
            field,
            format!("{field} is required"),
        )));
    }
    let defaults = TrunkSettings {
        priority: 10,
        ..TrunkSettings::new("", "", 5060)
    };
    let t = state.directory.create_trunk(&apply(defaults, b)?).await?;
    Ok(created(TrunkOut::from(&t)))
}

#[derive(Deserialize)]
pub struct TrunkPath {
    trunk: String,
}

#[utoipa::path(get, path = "/trunks/{trunk}", tag = "trunks",
    params(("trunk" = String, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkOut), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    _op: ApiOperator,
    Path(p): Path<TrunkPath>,
) -> Result<Json<TrunkOut>, ApiError> {
    let t = state.directory.get_trunk(parse_id(&p.trunk)?).await?;
    Ok(Json(
        TrunkOut::from(&t).with_state(state.trunk_states.state(t.id)),
    ))
}

#[utoipa::path(patch, path = "/trunks/{trunk}", tag = "trunks", request_body = TrunkIn,
    params(("trunk" = String, Path, description = "Trunk id")),
    responses((status = 200, body = TrunkOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    _op: ApiOperator,
    Path(p): Path<TrunkPath>,
    ApiJson(b): ApiJson<TrunkIn>,
) -> Result<Json<TrunkOut>, ApiError> {
    let t = state.directory.get_trunk(parse_id(&p.trunk)?).await?;
    let t = state
        .directory
        .update_trunk(t.id, &apply(t.settings, b)?)
        .await?;
    Ok(Json(TrunkOut::from(&t)))
}

#[utoipa::path(delete, path = "/trunks/{trunk}", tag = "trunks",
    params(("trunk" = String, Path, description = "Trunk id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    _op: ApiOperator,
    Path(p): Path<TrunkPath>,
) -> Result<Response, ApiError> {
    state.directory.delete_trunk(parse_id(&p.trunk)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
