//! `/api/v1/tenants/{tenant}/extensions`: a business's extensions and their SIP passwords.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::*;

use super::dto::*;
use super::{ApiJson, created, page};
use crate::AppState;
use crate::auth::{ApiAdminOf, parse_id};
use crate::error::{ApiError, AppError};
use crate::pages::business::registrar;
use crate::service::credentials::new_credential;

#[utoipa::path(get, path = "/tenants/{tenant}/extensions", tag = "extensions",
    params(("tenant" = String, Path, description = "Business id"), ListParams),
    responses((status = 200, body = ExtensionList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Query(p): Query<ListParams>,
) -> Result<Json<ExtensionList>, ApiError> {
    let q = p.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let l = state
        .directory
        .list_extensions(a.tenant.id, q, page(&p))
        .await?;
    Ok(Json(ExtensionList {
        items: l.items.iter().map(ExtensionOut::from).collect(),
        total: l.total,
    }))
}

#[utoipa::path(post, path = "/tenants/{tenant}/extensions", tag = "extensions",
    request_body = ExtensionIn,
    params(("tenant" = String, Path, description = "Business id")),
    responses((status = 201, body = ExtensionCreated, description = "The SIP password is returned only here."),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    a: ApiAdminOf,
    ApiJson(b): ApiJson<ExtensionIn>,
) -> Result<Response, ApiError> {
    let number: ExtensionNumber = b.number.parse()?;
    let name = b.display_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError(AppError::invalid(
            "display_name",
            "display_name must be 1 to 200 characters",
        )));
    }
    let new = NewExtension {
        number,
        settings: ExtensionSettings::new(name),
    };
    let (ext, cred, password) = state
        .service
        .create_extension(&a.tenant, &new, None)
        .await?;
    Ok(created(ExtensionCreated {
        extension: ExtensionOut::from(&ext),
        sip: SipCredentialsOut {
            username: cred.username.to_string(),
            password,
            domain: a.tenant.sip_domain.to_string(),
            registrar: registrar(&state, &a.tenant),
        },
    }))
}

#[derive(Deserialize)]
pub struct ExtPath {
    ext: String,
}

async fn load(state: &AppState, a: &ApiAdminOf, p: &ExtPath) -> Result<Extension, ApiError> {
    Ok(state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?)
}

#[utoipa::path(get, path = "/tenants/{tenant}/extensions/{ext}", tag = "extensions",
    params(("tenant" = String, Path, description = "Business id"), ("ext" = String, Path, description = "Extension id")),
    responses((status = 200, body = ExtensionOut), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<ExtPath>,
) -> Result<Json<ExtensionOut>, ApiError> {
    Ok(Json(ExtensionOut::from(&load(&state, &a, &p).await?)))
}

fn forward(
    v: Option<String>,
    old: Option<ForwardTarget>,
    field: &'static str,
) -> Result<Option<ForwardTarget>, ApiError> {
    match v.as_deref().map(str::trim) {
        None => Ok(old),
        Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e: ParseError| ApiError(AppError::invalid(field, e.message))),
    }
}

#[utoipa::path(patch, path = "/tenants/{tenant}/extensions/{ext}", tag = "extensions",
    request_body = ExtensionPatch,
    params(("tenant" = String, Path, description = "Business id"), ("ext" = String, Path, description = "Extension id")),
    responses((status = 200, body = ExtensionOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<ExtPath>,
    ApiJson(b): ApiJson<ExtensionPatch>,
) -> Result<Json<ExtensionOut>, ApiError> {
    let e = load(&state, &a, &p).await?;
    let mut s = e.settings.clone();
    if let Some(v) = b.display_name {
        s.display_name = v.trim().to_owned();
    }
    if let Some(v) = b.dnd {
        s.dnd = v;
    }
    if let Some(v) = b.no_answer_timeout_secs {
        s.no_answer_timeout_secs = v;
    }
    if let Some(v) = b.max_concurrent_calls {
        s.max_concurrent_calls = v;
    }
    s.forwarding = Forwarding {
        always: forward(b.forward_always, s.forwarding.always, "forward_always")?,
        busy: forward(b.forward_busy, s.forwarding.busy, "forward_busy")?,
        no_answer: forward(
            b.forward_no_answer,
            s.forwarding.no_answer,
            "forward_no_answer",
        )?,
    };
    let e = state
        .service
        .update_extension(a.tenant.id, e.id, &s)
        .await?;
    Ok(Json(ExtensionOut::from(&e)))
}

#[utoipa::path(delete, path = "/tenants/{tenant}/extensions/{ext}", tag = "extensions",
    params(("tenant" = String, Path, description = "Business id"), ("ext" = String, Path, description = "Extension id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A number or ring group still routes to it, or another extension forwards to it")))]
pub async fn delete(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<ExtPath>,
) -> Result<Response, ApiError> {
    let e = load(&state, &a, &p).await?;
    state
        .service
        .delete_extension(a.tenant.id, e.id, false)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/tenants/{tenant}/extensions/{ext}/password", tag = "extensions",
    params(("tenant" = String, Path, description = "Business id"), ("ext" = String, Path, description = "Extension id")),
    responses((status = 200, body = SipCredentialsOut, description = "A new SIP password, returned only here; the old one stops working and phones using it are signed off."),
        (status = 404, body = ErrorBody)))]
pub async fn new_password(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<ExtPath>,
) -> Result<Json<SipCredentialsOut>, ApiError> {
    let e = load(&state, &a, &p).await?;
    let creds = state.directory.list_credentials(a.tenant.id, e.id).await?;
    let (username, password) = match creds.first() {
        Some(c) => (
            c.username.clone(),
            state.service.regenerate_credential(&a.tenant, c).await?,
        ),
        None => {
            let (fresh, password) =
                new_credential(&a.tenant.sip_domain, e.number.as_str().parse()?, None);
            let c = state
                .service
                .add_credential(a.tenant.id, e.id, &fresh)
                .await?;
            (c.username, password)
        }
    };
    Ok(Json(SipCredentialsOut {
        username: username.to_string(),
        password,
        domain: a.tenant.sip_domain.to_string(),
        registrar: registrar(&state, &a.tenant),
    }))
}
