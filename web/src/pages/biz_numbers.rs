//! A business's numbers (`/t/{tenant}/numbers`): list with type and route, and the
//! route form (to an extension or a ring group). The form shows where each number goes now;
//! emptying it stops a live number ringing, so that asks for a confirmation first, and every
//! change is reported back on the list.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use store::*;

use super::business::{PER_PAGE, base};
use super::ring_groups::{dialable_target, target_label, target_number};
use super::{page_number, see_other};
use crate::AppState;
use crate::auth::{AdminOf, parse_id};
use crate::error::PageError;
use crate::views::business::*;
use crate::views::{ConfirmChangePage, Layout, Pager, render, render_status};

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
    notice: Option<String>,
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
        // What was typed after an error; otherwise where the number goes now.
        let (value, error) = match &failed {
            Some((id, value, msg)) if *id == n.id => (value.clone(), Some(msg.clone())),
            _ => (
                target_number(&*state.directory, t.id, n.route)
                    .await?
                    .unwrap_or_default(),
                None,
            ),
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
        notice,
    })
}

#[derive(Deserialize)]
pub struct NumbersQuery {
    page: Option<u32>,
    /// A number whose route was just set: the page says where it goes now.
    changed: Option<String>,
}

async fn numbers(
    State(state): State<AppState>,
    a: AdminOf,
    Query(q): Query<NumbersQuery>,
) -> Result<Response, PageError> {
    let notice = match q.changed.as_deref().map(str::parse::<NumberId>) {
        Some(Ok(id)) => match state
            .directory
            .get_number(NumberScope::Tenant(a.tenant.id), id)
            .await
        {
            Ok(n) => Some(route_notice(&state, a.tenant.id, &n).await?),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        },
        _ => None,
    };
    render(&numbers_page(&state, &a, page_number(q.page), None, notice).await?)
}

/// What calls to the number do now, after a change.
async fn route_notice(state: &AppState, t: TenantId, n: &Number) -> Result<String, PageError> {
    Ok(match n.route {
        RouteTarget::None => format!(
            "{} is not routed now: calls to it do not ring anywhere.",
            n.e164.display()
        ),
        r => format!(
            "Calls to {} now go to {}.",
            n.e164.display(),
            route_label(state, t, r).await?
        ),
    })
}

/// The page of the list that holds the number.
pub(crate) async fn page_of(state: &AppState, t: TenantId, id: NumberId) -> Result<u32, PageError> {
    let all = state
        .directory
        .list_numbers(NumberScope::Tenant(t), Page::first(Page::MAX_LIMIT))
        .await?;
    let index = all.items.iter().position(|n| n.id == id).unwrap_or(0);
    Ok(index as u32 / PER_PAGE + 1)
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
    /// "yes" once the admin has confirmed that a live number stops ringing.
    confirm: Option<String>,
}

async fn route_number(
    State(state): State<AppState>,
    a: AdminOf,
    Path(p): Path<NumberPath>,
    Form(form): Form<RouteForm>,
) -> Result<Response, PageError> {
    let id: NumberId = parse_id(&p.number)?;
    // Another business's number is not found, like any other id that is not ours.
    let number = state
        .directory
        .get_number(NumberScope::Tenant(a.tenant.id), id)
        .await?;
    let b = base(&a.tenant);
    let typed = form.extension.trim();
    let target = match dialable_target(&*state.directory, a.tenant.id, typed, "extension").await {
        Ok(t) => Ok(t),
        Err(e) if e.field().is_some() => Err(e.public_message()),
        Err(e) => return Err(e.into()),
    };
    let error = match target {
        // A live number would stop ringing: ask first.
        Ok(RouteTarget::None)
            if number.route != RouteTarget::None && form.confirm.as_deref() != Some("yes") =>
        {
            let now = route_label(&state, a.tenant.id, number.route).await?;
            let page = page_of(&state, a.tenant.id, id).await?;
            return render(&ConfirmChangePage {
                layout: Layout::for_business(
                    "Stop routing a number",
                    &a.authed,
                    &a.tenant,
                    &format!("{b}/numbers"),
                ),
                question: format!("Stop routing {}?", number.e164.display()),
                detail: format!(
                    "Calls to {} go to {now} now. Afterwards they will not ring anywhere \
                     until you route the number again.",
                    number.e164.display()
                ),
                action: format!("{b}/numbers/{id}/route"),
                hidden: vec![("extension".into(), String::new())],
                button: "Stop routing".into(),
                cancel: format!("{b}/numbers?page={page}"),
            });
        }
        Ok(route) => match state.service.set_number_route(a.tenant.id, id, route).await {
            Ok(_) => {
                let page = page_of(&state, a.tenant.id, id).await?;
                return Ok(see_other(&format!("{b}/numbers?page={page}&changed={id}")));
            }
            Err(e) if e.field().is_some() => e.public_message(),
            Err(e) => return Err(e.into()),
        },
        Err(msg) => msg,
    };
    // Show the error on the page that holds the number's row.
    let page = page_of(&state, a.tenant.id, id).await?;
    let page = numbers_page(&state, &a, page, Some((id, typed.to_owned(), error)), None).await?;
    render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
