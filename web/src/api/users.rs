//! `/api/v1/tenants/{tenant}/users` and `/extensions/{ext}/devices`.

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
use crate::crypto;
use crate::error::{ApiError, AppError};
use crate::pages::business::registrar;
use crate::pages::devices::MAX_DEVICES;
use crate::service::credentials::new_credential;

fn role(s: &str) -> Result<Role, ApiError> {
    match s {
        "admin" => Ok(Role::Admin),
        "member" => Ok(Role::Member),
        _ => Err(ApiError(AppError::invalid(
            "role",
            "role must be admin or member",
        ))),
    }
}

#[utoipa::path(get, path = "/tenants/{tenant}/users", tag = "users",
    params(("tenant" = String, Path, description = "Business id")),
    responses((status = 200, body = UserList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    a: ApiAdminOf,
) -> Result<Json<UserList>, ApiError> {
    let users = state.directory.list_users(a.tenant.id).await?;
    Ok(Json(UserList {
        items: users.iter().map(UserOut::from).collect(),
    }))
}

#[utoipa::path(post, path = "/tenants/{tenant}/users", tag = "users", request_body = UserIn,
    params(("tenant" = String, Path, description = "Business id")),
    responses((status = 201, body = OneTimePassword, description = "The one-time password is returned only here."),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    a: ApiAdminOf,
    ApiJson(b): ApiJson<UserIn>,
) -> Result<Response, ApiError> {
    let password = crypto::generate_sip_password();
    let new = NewUser {
        tenant_id: Some(a.tenant.id),
        email: b.email.parse()?,
        display_name: b.display_name.unwrap_or_default().trim().to_owned(),
        role: role(b.role.as_deref().unwrap_or("member"))?,
        password_hash: crypto::hash_password(password.clone()).await?,
    };
    let u = state.directory.create_user(&new).await?;
    Ok(created(OneTimePassword {
        user: UserOut::from(&u),
        password,
    }))
}

#[derive(Deserialize)]
pub struct UserPath {
    user: String,
}

async fn load(state: &AppState, a: &ApiAdminOf, p: &UserPath) -> Result<User, ApiError> {
    Ok(state
        .directory
        .get_user(a.tenant.id, parse_id(&p.user)?)
        .await?)
}

#[utoipa::path(patch, path = "/tenants/{tenant}/users/{user}", tag = "users", request_body = UserPatch,
    params(("tenant" = String, Path, description = "Business id"), ("user" = String, Path, description = "User id")),
    responses((status = 200, body = UserOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<UserPath>,
    ApiJson(b): ApiJson<UserPatch>,
) -> Result<Json<UserOut>, ApiError> {
    let u = load(&state, &a, &p).await?;
    if let Some(r) = b.role.as_deref() {
        state
            .directory
            .set_user_role(a.tenant.id, u.id, role(r)?)
            .await?;
    }
    if let Some(d) = b.disabled {
        state
            .directory
            .set_user_disabled(Some(a.tenant.id), u.id, d)
            .await?;
        if d {
            state.directory.delete_user_web_sessions(u.id, None).await?;
        }
    }
    Ok(Json(UserOut::from(&load(&state, &a, &p).await?)))
}

#[utoipa::path(post, path = "/tenants/{tenant}/users/{user}/password", tag = "users",
    params(("tenant" = String, Path, description = "Business id"), ("user" = String, Path, description = "User id")),
    responses((status = 200, body = OneTimePassword, description = "A new one-time password; the user is signed out everywhere."),
        (status = 404, body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<UserPath>,
) -> Result<Json<OneTimePassword>, ApiError> {
    let u = load(&state, &a, &p).await?;
    let password = crypto::generate_sip_password();
    let hash = crypto::hash_password(password.clone()).await?;
    state
        .directory
        .set_user_password_hash(Some(a.tenant.id), u.id, &hash)
        .await?;
    state.directory.delete_user_web_sessions(u.id, None).await?;
    Ok(Json(OneTimePassword {
        user: UserOut::from(&u),
        password,
    }))
}

// ------------------------------------------------------------------ devices

#[derive(Deserialize)]
pub struct ExtPath {
    ext: String,
}

#[utoipa::path(get, path = "/tenants/{tenant}/extensions/{ext}/devices", tag = "extensions",
    params(("tenant" = String, Path, description = "Business id"), ("ext" = String, Path, description = "Extension id")),
    responses((status = 200, body = DeviceList), (status = 404, body = ErrorBody)))]
pub async fn list_devices(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<ExtPath>,
) -> Result<Json<DeviceList>, ApiError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let creds = state.directory.list_credentials(a.tenant.id, e.id).await?;
    Ok(Json(DeviceList {
        items: creds.iter().map(DeviceOut::from).collect(),
    }))
}

#[utoipa::path(post, path = "/tenants/{tenant}/extensions/{ext}/devices", tag = "extensions", request_body = DeviceIn,
    params(("tenant" = String, Path, description = "Business id"), ("ext" = String, Path, description = "Extension id")),
    responses((status = 201, body = DeviceCreated, description = "Its own SIP credentials; the password is returned only here."),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_device(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<ExtPath>,
    ApiJson(b): ApiJson<DeviceIn>,
) -> Result<Response, ApiError> {
    let t = &a.tenant;
    let e = state
        .directory
        .get_extension(t.id, parse_id(&p.ext)?)
        .await?;
    let existing = state.directory.list_credentials(t.id, e.id).await?;
    if existing.len() >= MAX_DEVICES {
        return Err(ApiError(AppError::Conflict {
            field: "devices",
            message: format!("an extension can have at most {MAX_DEVICES} devices"),
        }));
    }
    let username = (2..)
        .map(|k| format!("{}-{k}", e.number))
        .find(|u| !existing.iter().any(|c| c.username.as_str() == u))
        .unwrap_or_default();
    let (mut cred, password) = new_credential(&t.sip_domain, username.parse()?, None);
    cred.mac_address = b.mac_address.as_deref().map(str::parse).transpose()?;
    cred.model = b
        .model
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
    if cred.model.as_ref().is_some_and(|m| m.chars().count() > 100) {
        return Err(ApiError(AppError::invalid(
            "model",
            "model must be at most 100 characters",
        )));
    }
    let c = state.service.add_credential(t.id, e.id, &cred).await?;
    Ok(created(DeviceCreated {
        device: DeviceOut::from(&c),
        sip: SipCredentialsOut {
            username: c.username.to_string(),
            password,
            domain: t.sip_domain.to_string(),
            registrar: registrar(&state, t),
        },
    }))
}

#[derive(Deserialize)]
pub struct DevicePath {
    ext: String,
    device: String,
}

#[utoipa::path(delete, path = "/tenants/{tenant}/extensions/{ext}/devices/{device}", tag = "extensions",
    params(("tenant" = String, Path, description = "Business id"), ("ext" = String, Path, description = "Extension id"),
        ("device" = String, Path, description = "Device (credential) id")),
    responses((status = 204, description = "Deleted; a phone using it is signed off"), (status = 404, body = ErrorBody)))]
pub async fn delete_device(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<DevicePath>,
) -> Result<Response, ApiError> {
    let e = state
        .directory
        .get_extension(a.tenant.id, parse_id(&p.ext)?)
        .await?;
    let c = state
        .directory
        .get_credential(a.tenant.id, parse_id(&p.device)?)
        .await?;
    if c.extension_id != e.id {
        return Err(ApiError(AppError::NotFound));
    }
    state.service.delete_credential(a.tenant.id, &c).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
