//! Calls in progress: a business's (its admins, or an operator through the business) and the
//! whole platform's (operators). Each page reloads its list every two seconds with htmx: a
//! request with `HX-Request` gets the list alone. Without JavaScript it is a plain page with a
//! refresh link.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use store::Extension;
use time::OffsetDateTime;

use crate::AppState;
use crate::auth::{AdminOf, OperatorUser};
use crate::error::PageError;
use crate::live::{self, ActiveCall};
use crate::views::live::*;
use crate::views::{Layout, Zone, render};

/// Rows one page shows at most; the rest are counted.
pub const MAX_ROWS: usize = 500;

/// The calls in progress of one extension: where it calls or is called. `poll` is the page
/// the list sits on.
pub fn extension_table(state: &AppState, e: &Extension, poll: &str, zone: &Zone) -> LiveTable {
    let mut calls = live::tenant_calls(&*state.live_calls, e.tenant_id);
    calls.retain(|c| c.involves(e.number.as_str()));
    table(
        poll.to_owned(),
        &calls,
        OffsetDateTime::now_utc(),
        zone,
        None,
    )
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/active-calls", get(business_calls))
        .route("/operator/active-calls", get(all_calls))
}

/// Is this the list's htmx poll (`HX-Request`) rather than a page load? The poll gets the
/// list alone ([`list`]); the page is answered through [`vary`].
pub fn is_poll(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// The list alone, for the poll.
pub fn list(table: LiveTable) -> Result<Response, PageError> {
    Ok(vary(render(&LiveTablePartial { table })?))
}

/// A page and its poll share a URL: caches must keep them apart.
pub fn vary(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("HX-Request"));
    res
}

/// A call's business: its name and its active-calls page.
type BusinessOf<'a> = dyn Fn(&ActiveCall) -> (String, String) + 'a;

fn table(
    poll: String,
    calls: &[ActiveCall],
    now: OffsetDateTime,
    zone: &Zone,
    business: Option<&BusinessOf<'_>>,
) -> LiveTable {
    LiveTable {
        poll,
        rows: calls
            .iter()
            .take(MAX_ROWS)
            .map(|c| LiveRow::new(c, now, zone, business.map(|b| b(c))))
            .collect(),
        more: calls.len().saturating_sub(MAX_ROWS),
        show_business: business.is_some(),
    }
}

async fn business_calls(
    State(state): State<AppState>,
    a: AdminOf,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let now = OffsetDateTime::now_utc();
    let calls = live::tenant_calls(&*state.live_calls, a.tenant.id);
    let base = format!("/t/{}", a.tenant.id);
    let poll = format!("{base}/active-calls");
    let table = table(poll.clone(), &calls, now, &Zone::of(&a.tenant), None);
    if is_poll(&headers) {
        return list(table);
    }
    Ok(vary(render(&BusinessCallsPage {
        layout: Layout::for_business("Active calls", &a.authed, &a.tenant, &poll),
        history_href: format!("{base}/calls"),
        table,
    })?))
}

async fn all_calls(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let now = OffsetDateTime::now_utc();
    let calls = live::all_calls(&*state.live_calls);
    let shown = &calls[..calls.len().min(MAX_ROWS)];
    let names = live::tenant_names(&*state.directory, shown.iter().map(|c| c.tenant)).await?;
    let business = |c: &ActiveCall| {
        let name = names
            .get(&c.tenant)
            .cloned()
            .unwrap_or_else(|| c.tenant.to_string());
        (name, format!("/t/{}/active-calls", c.tenant))
    };
    let table = table(
        "/operator/active-calls".into(),
        &calls,
        now,
        &Zone::london(),
        Some(&business),
    );
    if is_poll(&headers) {
        return list(table);
    }
    Ok(vary(render(&AllCallsPage {
        layout: Layout::new("Active calls", &me, "/operator/active-calls"),
        table,
    })?))
}
