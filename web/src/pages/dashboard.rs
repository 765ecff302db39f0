//! Landing pages: a business's dashboard, what its admin sees first (an operator reaches it
//! through the business).

use std::collections::HashSet;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use store::*;
use time::macros::format_description;
use time::{OffsetDateTime, Time};

use crate::AppState;
use crate::auth::AdminOf;
use crate::error::PageError;
use crate::live;
use crate::views::dashboard::*;
use crate::views::{Layout, render};

/// How many of the busiest extensions the business dashboard lists.
pub const BUSIEST: u32 = 5;

pub fn routes() -> Router<AppState> {
    Router::new().route("/t/{tenant}", get(business))
}

/// Today as the dashboard counts it: from midnight UTC to the next.
pub fn today(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let start = now
        .to_offset(time::UtcOffset::UTC)
        .date()
        .with_time(Time::MIDNIGHT)
        .assume_utc();
    (start, start + time::Duration::days(1))
}

async fn business(State(state): State<AppState>, a: AdminOf) -> Result<Response, PageError> {
    let now = OffsetDateTime::now_utc();
    let t = &a.tenant;
    let base = format!("/t/{}", t.id);
    let extensions = state
        .directory
        .list_extensions(t.id, None, Page::first(1))
        .await?
        .total;
    // The same stored registrations, unexpired, that the extensions list shows as online.
    let online: HashSet<ExtensionId> = state
        .directory
        .list_tenant_registrations(t.id, now)
        .await?
        .into_iter()
        .map(|(_, r)| r.binding.extension_id)
        .collect();
    let calls_now = live::tenant_calls(&*state.live_calls, t.id).len();
    let (start, end) = today(now);
    let summary = state
        .directory
        .call_summary(t.id, start, end, BUSIEST)
        .await?;
    let day = start
        .date()
        .format(&format_description!("[year]-[month]-[day]"))
        .unwrap_or_default();
    let today_href = format!("{base}/calls?from={day}&to={day}");
    render(&BusinessDashboard {
        layout: Layout::for_business("Dashboard", &a.authed, t, &base),
        phones_online: online.len() as u64,
        phones_offline: extensions.saturating_sub(online.len() as u64),
        calls_now,
        calls_today: summary.calls,
        missed_today: summary.missed,
        missed_href: format!("{today_href}&missed=1"),
        busiest: summary
            .busiest
            .into_iter()
            .map(|e| BusyRow {
                href: format!("{base}/extensions/{}", e.id),
                number: e.number.to_string(),
                name: e.display_name,
                calls: e.calls,
            })
            .collect(),
        day,
        today_href,
        base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_the_utc_day() {
        let (s, e) = today(time::macros::datetime!(2026-12-08 23:59:59 +01:00));
        assert_eq!(s, time::macros::datetime!(2026-12-08 00:00 UTC));
        assert_eq!(e, time::macros::datetime!(2026-12-09 00:00 UTC));
    }
}
