//! Numbers: the operator's inventory (`/api/v1/numbers`) and a business's numbers and their
//! routes (`/api/v1/tenants/{tenant}/numbers`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use store::*;

use super::dto::*;
use super::{ApiJson, created, page};
use crate::AppState;
use crate::auth::{ApiAdminOf, ApiOperator, parse_id};
use crate::error::{ApiError, AppError};
use crate::pages::op_numbers::parse_range;

fn list_of(l: Paged<Number>) -> Json<NumberList> {
    Json(NumberList {
        items: l.items.iter().map(NumberOut::from).collect(),
        total: l.total,
    })
}

#[utoipa::path(get, path = "/numbers", tag = "numbers", params(ListParams),
    responses((status = 200, body = NumberList), (status = 403, body = ErrorBody)))]
pub async fn list_all(
    State(state): State<AppState>,
    _op: ApiOperator,
    Query(p): Query<ListParams>,
) -> Result<Json<NumberList>, ApiError> {
    let scope = if p.unassigned.unwrap_or(false) {
        NumberScope::Unassigned
    } else {
        NumberScope::All
    };
    Ok(list_of(
        state.directory.list_numbers(scope, page(&p)).await?,
    ))
}

fn tenant_id(s: &Option<String>) -> Result<Option<TenantId>, ApiError> {
    s.as_deref()
        .map(|t| {
            t.parse::<TenantId>()
                .map_err(|e| ApiError(AppError::invalid("tenant_id", e.message)))
        })
        .transpose()
}

#[utoipa::path(post, path = "/numbers", tag = "numbers", request_body = NumbersIn,
    responses((status = 201, body = NumberList), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    _op: ApiOperator,
    ApiJson(b): ApiJson<NumbersIn>,
) -> Result<Response, ApiError> {
    let (first, count) = parse_range(&b.first, b.last.as_deref().unwrap_or(""))
        .map_err(|(field, msg)| ApiError(AppError::invalid(field, msg)))?;
    let tenant = tenant_id(&b.tenant_id)?;
    let added = if count == 1 {
        vec![state.service.add_number(&first, tenant).await?]
    } else {
        state
            .service
            .add_number_range(&first, count, tenant)
            .await?
    };
    Ok(created(NumberList {
        total: added.len() as u64,
        items: added.iter().map(NumberOut::from).collect(),
    }))
}

#[derive(Deserialize)]
pub struct NumberPath {
    number: String,
}

/// Gives a number to a business (or, with no business, back to the inventory). A number
/// moved to another business or the inventory loses its route; given to the business it
/// already has, it keeps it.
#[utoipa::path(post, path = "/numbers/{number}/assign", tag = "numbers", request_body = AssignIn,
    params(("number" = String, Path, description = "Number id")),
    responses((status = 200, body = NumberOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    _op: ApiOperator,
    Path(p): Path<NumberPath>,
    ApiJson(b): ApiJson<AssignIn>,
) -> Result<Json<NumberOut>, ApiError> {
    let id: NumberId = parse_id(&p.number)?;
    let n = state
        .service
        .assign_number(id, tenant_id(&b.tenant_id)?)
        .await?;
    Ok(Json(NumberOut::from(&n)))
}

#[utoipa::path(get, path = "/tenants/{tenant}/numbers", tag = "numbers",
    params(("tenant" = String, Path, description = "Business id"), ListParams),
    responses((status = 200, body = NumberList), (status = 404, body = ErrorBody)))]
pub async fn list_tenant(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Query(p): Query<ListParams>,
) -> Result<Json<NumberList>, ApiError> {
    Ok(list_of(
        state
            .directory
            .list_numbers(NumberScope::Tenant(a.tenant.id), page(&p))
            .await?,
    ))
}

#[utoipa::path(put, path = "/tenants/{tenant}/numbers/{number}/route", tag = "numbers",
    request_body = RouteIn,
    params(("tenant" = String, Path, description = "Business id"), ("number" = String, Path, description = "Number id")),
    responses((status = 200, body = NumberOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn route(
    State(state): State<AppState>,
    a: ApiAdminOf,
    Path(p): Path<NumberPath>,
    ApiJson(b): ApiJson<RouteIn>,
) -> Result<Json<NumberOut>, ApiError> {
    let id: NumberId = parse_id(&p.number)?;
    // Another business's number is not found, whatever the body says.
    state
        .directory
        .get_number(NumberScope::Tenant(a.tenant.id), id)
        .await?;
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let target = match (given(&b.extension), given(&b.ring_group)) {
        (None, None) => RouteTarget::None,
        (Some(_), Some(_)) => {
            return Err(ApiError(AppError::invalid(
                "ring_group",
                "give an extension or a ring group, not both",
            )));
        }
        (None, Some(n)) => {
            let n: ExtensionNumber = n
                .parse()
                .map_err(|e: ParseError| ApiError(AppError::invalid("ring_group", e.message)))?;
            match state.directory.resolve_dialable(a.tenant.id, &n).await {
                Ok(t @ RouteTarget::RingGroup(_)) => t,
                Ok(_) => {
                    return Err(ApiError(AppError::invalid(
                        "ring_group",
                        format!("{n} is not a ring group"),
                    )));
                }
                Err(e) if e.is_not_found() => {
                    return Err(ApiError(AppError::invalid(
                        "ring_group",
                        format!("there is no ring group {n}"),
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        (Some(n), None) => {
            let n: ExtensionNumber = n
                .parse()
                .map_err(|e: ParseError| ApiError(AppError::invalid("extension", e.message)))?;
            match state
                .directory
                .get_extension_by_number(a.tenant.id, &n)
                .await
            {
                Ok(e) => RouteTarget::Extension(e.id),
                Err(e) if e.is_not_found() => {
                    return Err(ApiError(AppError::invalid(
                        "extension",
                        format!("there is no extension {n}"),
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let n = state
        .service
        .set_number_route(a.tenant.id, id, target)
        .await?;
    Ok(Json(NumberOut::from(&n)))
}
