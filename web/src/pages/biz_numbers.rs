//! A business's numbers (`/t/{tenant}/numbers`): list with type and route, and the
//! route form (to an extension or a ring group).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use store::*;

use super::business::{ListQuery, PER_PAGE, base};
use super::ring_groups::{dialable_target, target_label};
use super::{page_number, see_other};
use crate::AppState;
use crate::auth::{AdminOf, parse_id};
use crate::error::PageError;
use crate::views::business::*;
use crate::views::{Layout, Pager, render, render_status};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/numbers", get(numbers))
        .route("/t/{tenant}/numbers/{number}/route", post(route_number))
}

async fn route_label(state: &AppState, t: TenantId, r: RouteTarget) -> Result<String, PageError> {
    Ok(target_label(&*state.directory, t, r).await?)
}

async fn numbers_page(
    state: &AppState,
    a: &AdminOf,
    page: u32,
    failed: Option<(NumberId, String, String)>,
) -> Result<BizNumbersPage, PageError> {
    let t = &a.tenant;
    let b = base(t);
    let list = state
        .directory
        .list_numbers(
            NumberScope::Tenant(t.id),
            Page::new(PER_PAGE, (page - 1) * PER_PAGE),
        )
        .await?;
    let mut rows = Vec::with_capacity(list.items.len());
    for n in &list.items {
        let route = route_label(state, t.id, n.route).await?;
        let (value, error) = match &failed {
            Some((id, value, msg)) if *id == n.id => (value.clone(), Some(msg.clone())),
            _ => (String::new(), None),
        };
        rows.push(BizNumberRow {
            id: n.id.to_string(),
            display: n.e164.display(),
            kind: n.number_type.to_string().replace('_', "-"),
            route,
            value,
            error,
        });
    }
    Ok(BizNumbersPage {
        layout: Layout::for_business("Numbers", &a.authed, t, &format!("{b}/numbers")),
        pager: Pager::new(page, PER_PAGE, list.total, |n| {
            format!("{b}/numbers?page={n}")
        }),
        base: b,
        rows,
    })
}

async fn numbers(
    State(state): State<AppState>,
    a: AdminOf,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    render(&numbers_page(&state, &a, page_number(q.page), None).await?)
}

#[derive(Deserialize)]
pub struct NumberPath {
    number: String,
}

#[derive(Deserialize)]
pub struct RouteForm {
    /// An extension or ring group number of the business ("" to stop routing).
    #[serde(default)]
    extension: String,
}

async fn route_number(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<NumberPath>,
    Form(form): Form<RouteForm>,
) -> Result<Response, PageError> {
    let id: NumberId = parse_id(&p.number)?;
    // Another business's number is not found, like any other id that is not ours.
    state
        .directory
        .get_number(NumberScope::Tenant(a.tenant.id), id)
        .await?;
    let typed = form.extension.trim();
    let target = match dialable_target(&*state.directory, a.tenant.id, typed, "extension").await {
        Ok(t) => Ok(t),
        Err(e) if e.field().is_some() => Err(e.public_message()),
        Err(e) => return Err(e.into()),
    };
    let error = match target {
        Ok(route) => match state.service.set_number_route(a.tenant.id, id, route).await {
            Ok(_) => return Ok(see_other(&format!("{}/numbers", base(&a.tenant)))),
            Err(e) if e.field().is_some() => e.public_message(),
            Err(e) => return Err(e.into()),
        },
        Err(msg) => msg,
    };
    // Show the error on the page that holds the number's row.
    let all = state
        .directory
        .list_numbers(
            NumberScope::Tenant(a.tenant.id),
            Page::first(Page::MAX_LIMIT),
        )
        .await?;
    let index = all.items.iter().position(|n| n.id == id).unwrap_or(0);
    let page = index as u32 / PER_PAGE + 1;
    let page = numbers_page(&state, &a, page, Some((id, typed.to_owned(), error))).await?;
    render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
