//! `/api/v1/tenants`: businesses. Listing, creating and changing them takes an operator token;
//! reading one takes a token of that business or an operator token.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::Response;
use store::*;

use super::dto::*;
use super::{ApiJson, created, page};
use crate::AppState;
use crate::auth::{ApiAdminOf, ApiOperator};
use crate::error::ApiError;

#[utoipa::path(get, path = "/tenants", tag = "tenants", params(ListParams),
    responses((status = 200, body = TenantList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _op: ApiOperator,
    Query(p): Query<ListParams>,
) -> Result<Json<TenantList>, ApiError> {
    let l = state.directory.list_tenants(page(&p)).await?;
    Ok(Json(TenantList {
        items: l.items.iter().map(TenantOut::from).collect(),
        total: l.total,
    }))
}

#[utoipa::path(post, path = "/tenants", tag = "tenants", request_body = TenantIn,
    responses((status = 201, body = TenantOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _op: ApiOperator,
    ApiJson(b): ApiJson<TenantIn>,
) -> Result<Response, ApiError> {
    let mut settings = TenantSettings::new(b.name);
    if let Some(v) = b.max_concurrent_calls {
        settings.max_concurrent_calls = v;
    }
    if let Some(v) = b.max_outside_calls {
        settings.max_outside_calls = v;
    }
    settings.allow_international = b.allow_international.unwrap_or(false);
    settings.allow_premium = b.allow_premium.unwrap_or(false);
    let new = NewTenant {
        slug: b.slug.parse()?,
        sip_domain: b.sip_domain.parse()?,
        settings,
    };
    let t = state.directory.create_tenant(&new).await?;
    Ok(created(TenantOut::from(&t)))
}

#[utoipa::path(get, path = "/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Business id")),
    responses((status = 200, body = TenantOut), (status = 404, body = ErrorBody)))]
pub async fn get_one(a: ApiAdminOf) -> Json<TenantOut> {
    Json(TenantOut::from(&a.tenant))
}

#[utoipa::path(patch, path = "/tenants/{tenant}", tag = "tenants", request_body = TenantPatch,
    params(("tenant" = String, Path, description = "Business id")),
    responses((status = 200, body = TenantOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    // The tenant first: another business's id is 404 whatever the token, as everywhere.
    a: ApiAdminOf,
    _op: ApiOperator,
    ApiJson(b): ApiJson<TenantPatch>,
) -> Result<Json<TenantOut>, ApiError> {
    let mut s = a.tenant.settings.clone();
    if let Some(v) = b.name {
        s.name = v;
    }
    if let Some(v) = b.max_concurrent_calls {
        s.max_concurrent_calls = v;
    }
    if let Some(v) = b.max_outside_calls {
        s.max_outside_calls = v;
    }
    if let Some(v) = b.allow_international {
        s.allow_international = v;
    }
    if let Some(v) = b.allow_premium {
        s.allow_premium = v;
    }
    let mut t = state.service.update_tenant(a.tenant.id, &s).await?;
    if let Some(v) = b.suspended {
        t = state.service.set_tenant_suspended(t.id, v).await?;
    }
    Ok(Json(TenantOut::from(&t)))
}
