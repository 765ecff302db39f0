//! Landing pages: a business's dashboard, what its admin sees first (an operator reaches it
//! through the business), and the operator's dashboard of the whole platform.

use std::collections::HashSet;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use store::*;
use time::macros::format_description;
use time::{OffsetDateTime, Time};

use crate::AppState;
use crate::auth::{AdminOf, OperatorUser};
use crate::error::PageError;
use crate::live;
use crate::views::charts::Chart;
use crate::views::dashboard::*;
use crate::views::{Layout, render};

/// How many of the busiest extensions the business dashboard lists.
pub const BUSIEST: u32 = 5;
/// Days the answered-against-missed chart covers, today included.
pub const WEEK: i64 = 7;
/// Most calls the charts count (a week of a very busy business); beyond it they undercount.
pub const CHART_MAX_CALLS: u32 = 200_000;

/// Calls per hour of the day starting at `start`, and answered and missed calls per day over
/// the `WEEK` days ending with it.
pub fn charts(starts: &[CallStart], start: OffsetDateTime) -> (Chart, Chart) {
    let mut hours = [0u64; 24];
    let first = start - time::Duration::days(WEEK - 1);
    let mut days = [[0u64; 2]; WEEK as usize];
    for c in starts {
        let h = (c.started_at - start).whole_hours();
        // Durations truncate toward zero: a call just before the start is not hour 0.
        if c.started_at >= start && (0..24).contains(&h) {
            hours[h as usize] += 1;
        }
        let d = (c.started_at - first).whole_days();
        if (0..WEEK).contains(&d) && c.started_at >= first {
            if c.answered {
                days[d as usize][0] += 1;
            } else if c.missed() {
                days[d as usize][1] += 1;
            }
        }
    }
    let hourly = Chart::grouped(
        "chart-hourly",
        "Calls per hour today (UTC)",
        "Hour",
        &["Calls"],
        hours
            .iter()
            .enumerate()
            .map(|(h, &n)| (format!("{h:02}:00"), vec![n]))
            .collect(),
        3,
        "call",
    );
    let label = format_description!("[weekday repr:short] [day padding:none]");
    let weekly = Chart::grouped(
        "chart-weekly",
        "Answered and missed calls per day",
        "Day",
        &["Answered", "Missed"],
        days.iter()
            .enumerate()
            .map(|(i, v)| {
                let d = (first + time::Duration::days(i as i64)).date();
                (d.format(&label).unwrap_or_default(), v.to_vec())
            })
            .collect(),
        1,
        "call",
    );
    (hourly, weekly)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}", get(business))
        .route("/operator", get(operator))
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
    let starts = state
        .directory
        .list_call_starts(
            t.id,
            start - time::Duration::days(WEEK - 1),
            end,
            CHART_MAX_CALLS,
        )
        .await?;
    let (hourly, weekly) = charts(&starts, start);
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
        hourly,
        weekly,
        day,
        today_href,
        base,
    })
}

async fn operator(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
) -> Result<Response, PageError> {
    let now = OffsetDateTime::now_utc();
    let d = &state.directory;
    let businesses = d.list_tenants(Page::first(1)).await?.total;
    let numbers = d
        .list_numbers(NumberScope::All, Page::first(1))
        .await?
        .total;
    let free = d
        .list_numbers(NumberScope::Unassigned, Page::first(1))
        .await?
        .total;
    let phones_online = d
        .list_unexpired_registrations(now)
        .await?
        .into_iter()
        .map(|r| r.binding.extension_id)
        .collect::<HashSet<_>>()
        .len();
    let (start, end) = today(now);
    let trunks = d
        .list_trunks()
        .await?
        .into_iter()
        .map(|t| {
            let s = state.trunk_states.state(t.id);
            TrunkStatusRow {
                href: format!("/operator/trunks/{}", t.id),
                name: t.settings.name,
                enabled: t.settings.enabled,
                up: s.as_ref().map(|s| s.health.clone()),
                status: crate::views::trunks::describe(s.as_ref()).join("; "),
            }
        })
        .collect();
    render(&OperatorDashboard {
        layout: Layout::new("Dashboard", &me, "/operator"),
        businesses,
        numbers_in_use: numbers.saturating_sub(free),
        numbers_free: free,
        phones_online,
        calls_now: live::all_calls(&*state.live_calls).len(),
        calls_today: d.count_all_calls(start, end).await?,
        trunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_count_by_hour_and_day() {
        let start = time::macros::datetime!(2026-12-08 00:00 UTC);
        let call = |mins: i64, direction, answered| CallStart {
            started_at: start + time::Duration::minutes(mins),
            direction,
            answered,
        };
        let starts = [
            // Six days ago, the first day of the week; and one before it, left out.
            call(-6 * 24 * 60, Direction::Inbound, false),
            call(-7 * 24 * 60 + 1, Direction::Inbound, false),
            call(-60, Direction::Internal, true),
            call(-30, Direction::Internal, true),
            call(9 * 60 + 5, Direction::Internal, true),
            call(9 * 60 + 59, Direction::Inbound, false),
            // An unanswered outbound call: a call this hour, missed by nobody.
            call(23 * 60 + 59, Direction::Outbound, false),
        ];
        let (hourly, weekly) = charts(&starts, start);
        assert_eq!(hourly.rows.len(), 24);
        assert_eq!(hourly.rows[9], ("09:00".to_owned(), vec![2]));
        assert_eq!(hourly.rows[23].1, vec![1]);
        assert_eq!(hourly.rows.iter().map(|r| r.1[0]).sum::<u64>(), 3);
        assert_eq!(hourly.labels.len(), 8);
        let days: Vec<_> = weekly
            .rows
            .iter()
            .map(|(l, v)| (l.as_str(), v.clone()))
            .collect();
        assert_eq!(days.len(), 7);
        assert_eq!(days[0], ("Wed 2", vec![0, 1]));
        assert_eq!(days[5], ("Mon 7", vec![2, 0]));
        assert_eq!(days[6], ("Tue 8", vec![1, 1]));
    }

    #[test]
    fn today_is_the_utc_day() {
        let (s, e) = today(time::macros::datetime!(2026-12-08 23:59:59 +01:00));
        assert_eq!(s, time::macros::datetime!(2026-12-08 00:00 UTC));
        assert_eq!(e, time::macros::datetime!(2026-12-09 00:00 UTC));
    }
}
