//! Page models: one askama struct per page, all extending `base.html`, which reads `layout`.
//! Handlers fill these in; the templates only format.

pub mod activity;
pub mod auth;
pub mod business;
pub mod charts;
pub mod dashboard;
pub mod live;
pub mod operator;
pub mod ring_groups;
pub mod trunks;

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use store::{Role, Tenant};

use crate::error::PageError;
use crate::session::Authed;

/// A link in the navigation bar.
#[derive(Clone, Debug)]
pub struct NavLink {
    pub href: String,
    pub label: &'static str,
    pub current: bool,
}

/// What the shared layout needs: the title, the signed-in user (if any) and the CSRF token that
/// every form and htmx request of the page carries.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub title: String,
    pub user_email: Option<String>,
    pub csrf: String,
    pub nav: Vec<NavLink>,
    /// The business being managed, shown in the header.
    pub business: Option<String>,
}

impl Layout {
    pub fn anonymous(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// `current` is the href of the section this page belongs to.
    pub fn new(title: impl Into<String>, authed: &Authed, current: &str) -> Self {
        let mut nav = Vec::new();
        let mut link = |href: String, label| {
            let current = href == current;
            nav.push(NavLink {
                href,
                label,
                current,
            });
        };
        match (authed.user.role, authed.user.tenant_id) {
            (Role::Operator, _) => {
                link("/operator".into(), "Dashboard");
                link("/operator/tenants".into(), "Businesses");
                link("/operator/numbers".into(), "Numbers");
                link("/operator/trunks".into(), "Trunks");
                link("/operator/registrations".into(), "Registrations");
                link("/operator/active-calls".into(), "Active calls");
                link("/operator/users".into(), "Operators");
                link("/operator/tokens".into(), "API tokens");
            }
            (Role::Admin, Some(t)) => {
                link(format!("/t/{t}"), "Dashboard");
                link(format!("/t/{t}/extensions"), "Extensions");
                link(format!("/t/{t}/ring-groups"), "Ring groups");
                link(format!("/t/{t}/numbers"), "Numbers");
                link(format!("/t/{t}/registrations"), "Registrations");
                link(format!("/t/{t}/active-calls"), "Active calls");
                link(format!("/t/{t}/calls"), "Call history");
                link(format!("/t/{t}/users"), "Users");
                link(format!("/t/{t}/settings"), "Settings");
                link(format!("/t/{t}/tokens"), "API tokens");
            }
            (Role::Member, Some(_)) => link("/account/extension".into(), "My extension"),
            _ => {}
        }
        link("/account/password".into(), "Account");
        Self {
            title: title.into(),
            user_email: Some(authed.user.email.to_string()),
            csrf: authed.csrf().to_owned(),
            nav,
            business: None,
        }
    }

    /// A page about one business: its name is shown, and an operator gets its links too.
    pub fn for_business(
        title: impl Into<String>,
        authed: &Authed,
        tenant: &Tenant,
        current: &str,
    ) -> Self {
        let mut l = Self::new(title, authed, current);
        if authed.user.role == Role::Operator {
            let t = tenant.id;
            for (href, label) in [
                (format!("/t/{t}"), "Dashboard"),
                (format!("/t/{t}/extensions"), "Extensions"),
                (format!("/t/{t}/ring-groups"), "Ring groups"),
                (format!("/t/{t}/numbers"), "Numbers"),
                (format!("/t/{t}/registrations"), "Registrations"),
                (format!("/t/{t}/active-calls"), "Active calls"),
                (format!("/t/{t}/calls"), "Call history"),
                (format!("/t/{t}/users"), "Users"),
                (format!("/t/{t}/settings"), "Settings"),
                (format!("/t/{t}/tokens"), "API tokens"),
            ] {
                let current = href == current;
                l.nav.push(NavLink {
                    href,
                    label,
                    current,
                });
            }
        }
        l.business = Some(tenant.settings.name.clone());
        l
    }
}

/// Messages to show beside form fields, keyed by field name. A template shows each with `get`
/// beside its field and ends the form with `unshown()`, so an error about a field the form does
/// not have (say, one the store reports) is still shown rather than lost.
#[derive(Clone, Debug, Default)]
pub struct FormErrors(
    BTreeMap<String, String>,
    std::cell::RefCell<BTreeSet<String>>,
);

impl FormErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        let m = self.0.get(field).map(String::as_str);
        if m.is_some() {
            self.1.borrow_mut().insert(field.to_owned());
        }
        m
    }
    /// The messages no `get` has shown yet.
    pub fn unshown(&self) -> Vec<String> {
        let shown = self.1.borrow();
        self.0
            .iter()
            .filter(|(k, _)| !shown.contains(*k))
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

/// Previous/next links of a paginated list.
#[derive(Clone, Debug, Default)]
pub struct Pager {
    pub page: u32,
    pub pages: u32,
    pub total: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// "1 extension", "120 extensions" for the whole list.
    pub fn count(&self, word: &str) -> String {
        count(self.total, word)
    }

    /// `href(page)` builds the link to a page (1-based).
    pub fn new(page: u32, per_page: u32, total: u64, href: impl Fn(u32) -> String) -> Self {
        let pages = total.div_ceil(u64::from(per_page)).max(1) as u32;
        Self {
            page,
            pages,
            total,
            prev: (page > 1).then(|| href(page - 1)),
            next: (page < pages).then(|| href(page + 1)),
        }
    }
}

/// "1 extension", "2 extensions": `word` is the singular; the plural adds "s" (or pass
/// `"business|businesses"`).
pub fn count(n: u64, word: &str) -> String {
    let (one, many) = match word.split_once('|') {
        Some((o, m)) => (o.to_owned(), m.to_owned()),
        None => (word.to_owned(), format!("{word}s")),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The time zone a page shows its times in: the business's setting on business pages,
/// Europe/London on the operator's. Every time the admin shows goes through it, so each is
/// local and names its zone ("2026-12-08 14:05 GMT", "2026-07-01 09:00 BST"), never bare UTC.
#[derive(Clone, Debug)]
pub struct Zone(jiff::tz::TimeZone);

impl Zone {
    /// The operator's zone (and the default for a business).
    pub fn london() -> Self {
        Self::named(store::DEFAULT_TIME_ZONE)
    }

    /// The business's zone. The store refuses names the tz database does not know, so the
    /// fallback to Europe/London is for a row written by hand.
    pub fn of(t: &store::Tenant) -> Self {
        Self::named(&t.settings.time_zone)
    }

    fn named(name: &str) -> Self {
        let db = jiff::tz::db();
        Self(
            db.get(name)
                .or_else(|_| db.get(store::DEFAULT_TIME_ZONE))
                .unwrap_or(jiff::tz::TimeZone::UTC),
        )
    }

    fn show(&self, t: time::OffsetDateTime, fmt: &str) -> String {
        let nanos = t.unix_timestamp_nanos();
        match jiff::Timestamp::from_nanosecond(nanos) {
            Ok(ts) => ts.to_zoned(self.0.clone()).strftime(fmt).to_string(),
            Err(_) => String::new(),
        }
    }

    /// To the minute, with the zone's abbreviation: "2026-12-08 14:05 GMT".
    pub fn minute(&self, t: time::OffsetDateTime) -> String {
        self.show(t, "%Y-%m-%d %H:%M %Z")
    }

    /// To the second, with the zone's abbreviation: "2026-12-08 14:05:09 GMT".
    pub fn second(&self, t: time::OffsetDateTime) -> String {
        self.show(t, "%Y-%m-%d %H:%M:%S %Z")
    }

    /// The local date: "2026-12-08".
    pub fn day(&self, t: time::OffsetDateTime) -> String {
        self.show(t, "%Y-%m-%d")
    }

    /// The zone's IANA name ("Europe/London"), for hints that say which zone a date is in.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The local calendar date of a moment.
    pub fn date(&self, t: time::OffsetDateTime) -> Option<time::Date> {
        let z = jiff::Timestamp::from_nanosecond(t.unix_timestamp_nanos())
            .ok()?
            .to_zoned(self.0.clone());
        let month = time::Month::try_from(u8::try_from(z.month()).ok()?).ok()?;
        time::Date::from_calendar_date(i32::from(z.year()), month, u8::try_from(z.day()).ok()?).ok()
    }

    /// The moment a local date begins (00:00 there, or the first moment after a clock-change
    /// gap).
    pub fn start_of(&self, d: time::Date) -> Option<time::OffsetDateTime> {
        let date = jiff::civil::Date::new(
            i16::try_from(d.year()).ok()?,
            i8::try_from(u8::from(d.month())).ok()?,
            i8::try_from(d.day()).ok()?,
        )
        .ok()?;
        let start = date.to_zoned(self.0.clone()).ok()?.start_of_day().ok()?;
        time::OffsetDateTime::from_unix_timestamp_nanos(start.timestamp().as_nanosecond()).ok()
    }
}

/// Minimal percent-encoding for a query-string value.
pub fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Renders a page as a 200 response.
pub fn render(t: &impl Template) -> Result<Response, PageError> {
    Ok(Html(t.render()?).into_response())
}

/// Renders a page with a status (e.g. 422 for a form with errors).
pub fn render_status(status: StatusCode, t: &impl Template) -> Result<Response, PageError> {
    Ok((status, Html(t.render()?)).into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub message: String,
}

impl ErrorPage {
    pub fn new(status: StatusCode, message: String) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        Self {
            layout: Layout::anonymous(title),
            status: status.as_u16(),
            message,
        }
    }
}

/// "Are you sure?" for a destructive action: a page with a form, so it works without JS.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub layout: Layout,
    pub question: String,
    pub detail: String,
    pub action: String,
    pub button: String,
    pub cancel: String,
}

/// "Are you sure?" for a change that stops something working (say, a number ringing): like
/// [`ConfirmPage`], and the form carries the values of the change being confirmed.
#[derive(Template)]
#[template(path = "confirm_change.html")]
pub struct ConfirmChangePage {
    pub layout: Layout,
    pub question: String,
    pub detail: String,
    pub action: String,
    /// Form fields of the change (name, value), sent again with the confirmation.
    pub hidden: Vec<(String, String)>,
    pub button: String,
    pub cancel: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_links() {
        let p = Pager::new(2, 50, 120, |n| format!("?page={n}"));
        assert_eq!(
            (p.pages, p.prev.as_deref(), p.next.as_deref()),
            (3, Some("?page=1"), Some("?page=3"))
        );
        let p = Pager::new(1, 50, 0, |n| format!("?page={n}"));
        assert_eq!((p.pages, p.prev, p.next), (1, None, None));
    }

    #[test]
    fn error_page_escapes_the_message() {
        let html = ErrorPage::new(StatusCode::BAD_REQUEST, "<script>x</script>".into())
            .render()
            .unwrap();
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("<title>Bad Request"));
    }

    #[test]
    fn errors_without_a_field_are_still_shown() {
        let mut e = FormErrors::default();
        e.add("number", "taken");
        e.add("tenant_id", "no such business");
        assert_eq!(e.get("number"), Some("taken"));
        assert_eq!(e.unshown(), vec!["no such business".to_owned()]);
    }

    #[test]
    fn counts() {
        assert_eq!(count(1, "extension"), "1 extension");
        assert_eq!(count(0, "call"), "0 calls");
        assert_eq!(count(2, "business|businesses"), "2 businesses");
    }

    #[test]
    fn london_time_names_the_zone_across_the_clock_changes() {
        use time::macros::datetime;
        let z = Zone::london();
        // Winter: GMT is UTC, whatever offset the moment came in with.
        assert_eq!(
            z.minute(datetime!(2026-12-08 15:05:59 +01:00)),
            "2026-12-08 14:05 GMT"
        );
        // March: clocks go forward at 01:00 UTC on the last Sunday (29 March 2026).
        assert_eq!(
            z.minute(datetime!(2026-03-29 00:59 UTC)),
            "2026-03-29 00:59 GMT"
        );
        assert_eq!(
            z.minute(datetime!(2026-03-29 01:00 UTC)),
            "2026-03-29 02:00 BST"
        );
        // October: back at 01:00 UTC on the last Sunday (25 October 2026); 01:30 local
        // happens twice and the abbreviation tells them apart.
        assert_eq!(
            z.second(datetime!(2026-10-25 00:30:05 UTC)),
            "2026-10-25 01:30:05 BST"
        );
        assert_eq!(
            z.second(datetime!(2026-10-25 01:30:05 UTC)),
            "2026-10-25 01:30:05 GMT"
        );
        // The local date, not the UTC one: 23:30 UTC in summer is the next day in London.
        assert_eq!(z.day(datetime!(2026-07-01 23:30 UTC)), "2026-07-02");
        assert_eq!(z.day(datetime!(2026-12-01 23:30 UTC)), "2026-12-01");
        assert_eq!(
            z.date(datetime!(2026-07-01 23:30 UTC)),
            Some(time::macros::date!(2026 - 07 - 02))
        );
        // A local day starts at local midnight: 23:00 UTC the day before in summer.
        assert_eq!(
            z.start_of(time::macros::date!(2026 - 07 - 02)),
            Some(datetime!(2026-07-01 23:00 UTC))
        );
        assert_eq!(
            z.start_of(time::macros::date!(2026 - 12 - 02)),
            Some(datetime!(2026-12-02 0:00 UTC))
        );
        assert_eq!(z.name(), "Europe/London");
    }

    #[test]
    fn a_business_zone_is_its_setting() {
        use time::macros::datetime;
        let mut s = store::TenantSettings::new("Acme");
        let t = |s: &store::TenantSettings| store::Tenant {
            id: store::TenantId::new(),
            slug: "acme".parse().unwrap(),
            sip_domain: "acme.test".parse().unwrap(),
            suspended: false,
            settings: s.clone(),
            created_at: datetime!(2026-01-01 0:00 UTC),
        };
        let at = datetime!(2026-07-01 12:00 UTC);
        assert_eq!(Zone::of(&t(&s)).minute(at), "2026-07-01 13:00 BST");
        s.time_zone = "America/New_York".into();
        assert_eq!(Zone::of(&t(&s)).minute(at), "2026-07-01 08:00 EDT");
        // A name the database does not know (only a hand-written row could hold one).
        s.time_zone = "Mars/Olympus".into();
        assert_eq!(Zone::of(&t(&s)).minute(at), "2026-07-01 13:00 BST");
    }

    #[test]
    fn query_encoding() {
        assert_eq!(encode_query("a b&c"), "a+b%26c");
    }
}
