//! A business's live registrations and call history (with CSV export).

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use store::*;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};

use super::page_number;
use crate::AppState;
use crate::auth::{AdminOf, OperatorUser};
use crate::error::{Internal, PageError};
use crate::views::activity::*;
use crate::views::{FormErrors, Layout, Pager, Zone, encode_query, render};

pub const PER_PAGE: u32 = 50;
/// Most rows one CSV export holds.
pub const CSV_MAX: u32 = 50_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/registrations", get(registrations))
        .route("/t/{tenant}/calls", get(calls))
        .route("/t/{tenant}/calls.csv", get(calls_csv))
        .route("/operator/registrations", get(all_registrations))
}

fn human_secs(s: i64) -> String {
    match s {
        s if s <= 0 => "expiring".into(),
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

async fn registrations(State(state): State<AppState>, a: AdminOf) -> Result<Response, PageError> {
    let now = OffsetDateTime::now_utc();
    let regs = state
        .directory
        .list_tenant_registrations(a.tenant.id, now)
        .await?;
    let rows = regs
        .into_iter()
        .map(|(number, r)| RegRow {
            extension: number.to_string(),
            device: r.binding.user_agent.unwrap_or_default(),
            source: r.binding.source_addr.to_string(),
            transport: r.binding.transport.to_string(),
            expires_in: human_secs((r.binding.expires_at - now).whole_seconds()),
        })
        .collect();
    let base = format!("/t/{}", a.tenant.id);
    render(&RegistrationsPage {
        layout: Layout::for_business(
            "Registrations",
            &a.authed,
            &a.tenant,
            &format!("{base}/registrations"),
        ),
        base,
        rows,
    })
}

/// Rows the operator's registrations page shows at most.
const ALL_REGISTRATIONS_MAX: usize = 1000;

async fn all_registrations(
    State(state): State<AppState>,
    OperatorUser(me): OperatorUser,
) -> Result<Response, PageError> {
    let now = OffsetDateTime::now_utc();
    let regs = state.directory.list_unexpired_registrations(now).await?;
    let tenants = state
        .directory
        .list_tenants(Page::first(Page::MAX_LIMIT))
        .await?
        .items;
    let total = regs.len();
    let rows: Vec<_> = regs
        .into_iter()
        .take(ALL_REGISTRATIONS_MAX)
        .map(|r| {
            let business = tenants
                .iter()
                .find(|t| t.id == r.tenant_id)
                .map(|t| t.settings.name.clone())
                .unwrap_or_else(|| r.tenant_id.to_string());
            let b = r.binding;
            (
                business,
                b.aor,
                RegRow {
                    extension: String::new(),
                    device: b.user_agent.unwrap_or_default(),
                    source: b.source_addr.to_string(),
                    transport: b.transport.to_string(),
                    expires_in: human_secs((b.expires_at - now).whole_seconds()),
                },
            )
        })
        .collect();
    render(&AllRegistrationsPage {
        layout: Layout::new("Registrations", &me, "/operator/registrations"),
        shown: rows.len(),
        rows,
        total,
    })
}

#[derive(Deserialize, Default)]
pub struct CallQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    party: String,
    /// "Missed calls only": any non-empty value (a ticked box, or `1` in a link).
    missed: Option<String>,
    page: Option<u32>,
}

/// `from` and `to` are dates (YYYY-MM-DD) in the business's zone; `to` is inclusive. An error names the field
/// it belongs beside: a `from` after `to` would match no call, so it is refused, naming both.
fn cdr_query(q: &CallQuery, page: Page, zone: &Zone) -> Result<CdrQuery, (&'static str, String)> {
    let day = format_description!("[year]-[month]-[day]");
    let parse = |s: &str, what: &'static str| -> Result<Option<Date>, (&'static str, String)> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        Date::parse(s, &day).map(Some).map_err(|_| {
            (
                what,
                format!("The {what} date {s:?} is not a date like 2026-11-24."),
            )
        })
    };
    let (from, to) = (parse(&q.from, "from")?, parse(&q.to, "to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        let long = format_description!("[day padding:none] [month repr:long] [year]");
        let say = |d: Date| d.format(&long).unwrap_or_default();
        return Err((
            "to",
            format!(
                "The from date ({}) is after the to date ({}), so no call can match. Swap them \
                 to see the calls between those days.",
                say(f),
                say(t)
            ),
        ));
    }
    // Local midnight (a day is 23 or 25 hours long at the clock changes).
    let midnight = |d: Date| {
        zone.start_of(d)
            .unwrap_or_else(|| d.with_time(Time::MIDNIGHT).assume_utc())
    };
    let party = q.party.trim();
    Ok(CdrQuery {
        from: from.map(midnight),
        to: to.map(|t| midnight(t.next_day().unwrap_or(t))),
        party: (!party.is_empty()).then(|| party.chars().take(64).collect()),
        missed: super::ticked(&q.missed),
        page,
    })
}

/// A moment in UTC to the second, for machines: CSV exports and API messages (which say UTC).
/// Pages show [`crate::views::Zone`] times instead.
pub fn utc_stamp(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

pub fn duration(secs: u32) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The display names of the business's extensions among `parties` (numbers that are not
/// its extensions are left out): one indexed lookup per distinct extension-like number.
async fn extension_names<'a>(
    state: &AppState,
    tenant: TenantId,
    parties: impl Iterator<Item = &'a str>,
) -> Result<std::collections::HashMap<String, String>, PageError> {
    let distinct: std::collections::BTreeSet<&str> = parties.collect();
    let mut names = std::collections::HashMap::new();
    for party in distinct {
        let Ok(number) = party.parse::<ExtensionNumber>() else {
            continue;
        };
        match state
            .directory
            .get_extension_by_number(tenant, &number)
            .await
        {
            Ok(e) => {
                names.insert(party.to_owned(), e.settings.display_name);
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(names)
}

async fn calls(
    State(state): State<AppState>,
    a: AdminOf,
    Query(q): Query<CallQuery>,
) -> Result<Response, PageError> {
    let base = format!("/t/{}", a.tenant.id);
    let page = page_number(q.page);
    let mut errors = FormErrors::default();
    let zone = Zone::of(&a.tenant);
    let (rows, total) = match cdr_query(&q, Page::new(PER_PAGE, (page - 1) * PER_PAGE), &zone) {
        Err((field, message)) => {
            errors.add(field, message);
            (Vec::new(), 0)
        }
        Ok(cq) => {
            let list = state.directory.list_cdrs(a.tenant.id, &cq).await?;
            let names = extension_names(
                &state,
                a.tenant.id,
                list.items
                    .iter()
                    .flat_map(|c| [c.record.caller.as_str(), c.record.callee.as_str()]),
            )
            .await?;
            let name = |party: &str| names.get(party).cloned();
            let rows = list
                .items
                .iter()
                .map(|c| {
                    let r = &c.record;
                    CallRow {
                        started: zone.second(r.started_at),
                        direction: r.direction.to_string(),
                        caller: r.caller.clone(),
                        callee: r.callee.clone(),
                        caller_name: name(&r.caller),
                        callee_name: name(&r.callee),
                        trunk: c.trunk_name.clone().unwrap_or_default(),
                        disposition: r.disposition.to_string().replace('_', " "),
                        duration: duration(r.duration_secs),
                    }
                })
                .collect();
            (rows, list.total)
        }
    };
    let missed = super::ticked(&q.missed);
    let filter = format!(
        "from={}&to={}&party={}{}",
        encode_query(&q.from),
        encode_query(&q.to),
        encode_query(&q.party),
        if missed { "&missed=1" } else { "" }
    );
    render(&CallsPage {
        layout: Layout::for_business(
            "Call history",
            &a.authed,
            &a.tenant,
            &format!("{base}/calls"),
        ),
        pager: Pager::new(page, PER_PAGE, total, |n| {
            format!("{base}/calls?{filter}&page={n}")
        }),
        csv_href: format!("{base}/calls.csv?{filter}"),
        base,
        from: q.from,
        to: q.to,
        party: q.party,
        missed,
        errors,
        rows,
    })
}

/// A spreadsheet must not run a cell as a formula: caller names and numbers come from the
/// network. Every cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
/// leading `'`, which spreadsheets read as "this is text" and do not display. That includes
/// E.164 numbers (`+44…`): a `+` cell is parsed as a formula, so `'+442079460018` is the
/// readable, safe form.
pub fn csv_safe(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

async fn calls_csv(
    State(state): State<AppState>,
    a: AdminOf,
    Query(q): Query<CallQuery>,
) -> Result<Response, PageError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "started_at",
        "answered_at",
        "ended_at",
        "direction",
        "caller",
        "callee",
        "dialled",
        "trunk",
        "disposition",
        "duration_secs",
        "hangup_cause",
        "hangup_by",
        "call_id",
    ];
    out.write_record(header)
        .map_err(|e| Internal::new(e.to_string()))?;
    let mut offset = 0;
    while offset < CSV_MAX {
        let cq = cdr_query(&q, Page::new(Page::MAX_LIMIT, offset), &Zone::of(&a.tenant))
            .map_err(|(_, m)| PageError(crate::error::AppError::BadRequest(m)))?;
        let list = state.directory.list_cdrs(a.tenant.id, &cq).await?;
        for c in &list.items {
            let r = &c.record;
            let row = [
                utc_stamp(r.started_at),
                r.answered_at.map(utc_stamp).unwrap_or_default(),
                utc_stamp(r.ended_at),
                r.direction.to_string(),
                r.caller.clone(),
                r.callee.clone(),
                r.dialled.clone(),
                c.trunk_name.clone().unwrap_or_default(),
                r.disposition.to_string(),
                r.duration_secs.to_string(),
                r.hangup_cause.clone(),
                r.hangup_by.to_string(),
                r.call_id.clone(),
            ]
            .map(|cell| csv_safe(&cell));
            out.write_record(&row)
                .map_err(|e| Internal::new(e.to_string()))?;
        }
        if list.items.len() < Page::MAX_LIMIT as usize {
            break;
        }
        offset += Page::MAX_LIMIT;
    }
    let bytes = out.into_inner().map_err(|e| Internal::new(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"calls-{}.csv\"", a.tenant.slug),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_formula_injection_is_neutralised() {
        for risky in [
            "=HYPERLINK(\"http://evil.test\",\"x\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1:A9)",
            "\t=1+1",
            "\r=1+1",
            "+442079460018",
        ] {
            assert_eq!(csv_safe(risky), format!("'{risky}"), "{risky:?}");
        }
        assert_eq!(csv_safe("201"), "201");
        assert_eq!(csv_safe("Reception"), "Reception");
        assert_eq!(csv_safe(""), "");
    }

    #[test]
    fn date_filters() {
        let london = Zone::london();
        let cdr_query = |q: &CallQuery, p: Page| cdr_query(q, p, &london);
        let q = CallQuery {
            from: "2026-11-01".into(),
            to: "2026-11-24".into(),
            ..Default::default()
        };
        let cq = cdr_query(&q, Page::default()).unwrap();
        assert_eq!(cq.to.unwrap() - cq.from.unwrap(), time::Duration::days(24));
        let bad = CallQuery {
            from: "yesterday".into(),
            ..Default::default()
        };
        assert!(
            cdr_query(&bad, Page::default())
                .unwrap_err()
                .1
                .contains("yesterday")
        );
        let reversed = CallQuery {
            from: "2026-11-24".into(),
            to: "2026-11-01".into(),
            ..Default::default()
        };
        let (field, msg) = cdr_query(&reversed, Page::default()).unwrap_err();
        assert_eq!(field, "to");
        assert!(
            msg.contains("24 November 2026") && msg.contains("1 November 2026"),
            "{msg}"
        );
        // One day is a range.
        let day = CallQuery {
            from: "2026-11-24".into(),
            to: "2026-11-24".into(),
            ..Default::default()
        };
        assert!(cdr_query(&day, Page::default()).is_ok());
        // Days are London's: a summer day starts at 23:00 UTC the day before, and the day
        // the clocks go back is 25 hours long.
        let summer = CallQuery {
            from: "2026-07-01".into(),
            to: "2026-07-01".into(),
            ..Default::default()
        };
        let cq = cdr_query(&summer, Page::default()).unwrap();
        assert_eq!(cq.from, Some(time::macros::datetime!(2026-06-30 23:00 UTC)));
        assert_eq!(cq.to, Some(time::macros::datetime!(2026-07-01 23:00 UTC)));
        let back = CallQuery {
            from: "2026-10-25".into(),
            to: "2026-10-25".into(),
            ..Default::default()
        };
        let cq = cdr_query(&back, Page::default()).unwrap();
        assert_eq!(cq.to.unwrap() - cq.from.unwrap(), time::Duration::hours(25));
        let forward = CallQuery {
            from: "2026-03-29".into(),
            to: "2026-03-29".into(),
            ..Default::default()
        };
        let cq = cdr_query(&forward, Page::default()).unwrap();
        assert_eq!(cq.to.unwrap() - cq.from.unwrap(), time::Duration::hours(23));
    }
}
