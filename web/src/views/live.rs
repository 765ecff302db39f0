//! Calls in progress: a business's, every business's (operator), and a member's own.

use askama::Template;
use time::OffsetDateTime;

use super::Layout;
use crate::live::{ActiveCall, CallState, clock};
use crate::views::Zone;

#[derive(Clone, Debug)]
pub struct LiveRow {
    /// Operator view: the business's name and its active-calls page.
    pub business: Option<(String, String)>,
    pub started: String,
    pub caller: String,
    pub dialled: String,
    pub callee: String,
    pub state: &'static str,
    pub connected: bool,
    /// Time talking since the answer ("1:05"), or ringing so far ("ringing 0:12").
    pub duration: String,
}

impl LiveRow {
    pub fn new(
        c: &ActiveCall,
        now: OffsetDateTime,
        zone: &Zone,
        business: Option<(String, String)>,
    ) -> Self {
        let duration = match c.talk_secs(now) {
            Some(s) => clock(s),
            None => format!("ringing {}", clock(c.age_secs(now))),
        };
        LiveRow {
            business,
            started: zone.second(c.started_at),
            caller: c.caller.clone(),
            dialled: c.dialled.clone(),
            callee: c.callee.clone(),
            state: match c.state {
                CallState::Ringing => "Ringing",
                CallState::Answering => "Answering",
                CallState::Connected => "Connected",
            },
            connected: c.state == CallState::Connected,
            duration,
        }
    }
}

/// The self-refreshing list: the whole of an htmx poll's answer, and part of each page.
#[derive(Clone, Debug)]
pub struct LiveTable {
    /// Where the list reloads itself from (the page's own URL).
    pub poll: String,
    pub rows: Vec<LiveRow>,
    /// Rows beyond those shown.
    pub more: usize,
    pub show_business: bool,
}

impl LiveTable {
    pub fn count_label(&self) -> String {
        let n = (self.rows.len() + self.more) as u64;
        let talking = self.rows.iter().filter(|r| r.connected).count();
        format!(
            "{} in progress, {} connected",
            super::count(n, "call"),
            talking
        )
    }

    pub fn columns(&self) -> usize {
        if self.show_business { 7 } else { 6 }
    }
}

/// The list alone: what the page's htmx poll swaps in.
#[derive(Template)]
#[template(path = "live/calls_table.html")]
pub struct LiveTablePartial {
    pub table: LiveTable,
}

/// A business's calls in progress (admins; operators through the business).
#[derive(Template)]
#[template(path = "live/business.html")]
pub struct BusinessCallsPage {
    pub layout: Layout,
    pub history_href: String,
    pub table: LiveTable,
}

/// Every call on the platform (operators).
#[derive(Template)]
#[template(path = "live/operator.html")]
pub struct AllCallsPage {
    pub layout: Layout,
    pub table: LiveTable,
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::TenantId;
    use time::Duration;

    fn table(show_business: bool) -> LiveTable {
        let now = OffsetDateTime::now_utc();
        let call = ActiveCall {
            id: 7,
            tenant: TenantId::new(),
            caller: "<script>alert(1)</script>".into(),
            dialled: "+442079460018".into(),
            callee: "201".into(),
            state: CallState::Connected,
            started_at: now - Duration::seconds(80),
            answered_at: Some(now - Duration::seconds(65)),
        };
        let business = show_business.then(|| ("Acme & Co".to_owned(), "/t/x/active-calls".into()));
        LiveTable {
            poll: "/t/x/active-calls".into(),
            rows: vec![LiveRow::new(&call, now, &Zone::london(), business)],
            more: 0,
            show_business,
        }
    }

    #[test]
    fn the_list_polls_itself_and_escapes() {
        let html = LiveTablePartial {
            table: table(false),
        }
        .render()
        .unwrap();
        assert!(html.contains(r#"hx-get="/t/x/active-calls""#), "{html}");
        assert!(html.contains(r#"hx-trigger="every 2s""#));
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("1:05") && html.contains("Connected"));
        assert!(html.contains("1 call in progress, 1 connected"));
        assert!(!html.contains("<html"), "a partial, not a page");
        assert!(!html.contains("Acme"));
    }

    #[test]
    fn the_operator_list_names_the_business() {
        let mut table = table(true);
        table.poll = "/operator/active-calls".into();
        let html = AllCallsPage {
            layout: Layout::anonymous("Active calls"),
            table,
        }
        .render()
        .unwrap();
        assert!(
            html.contains("Acme &amp; Co") || html.contains("Acme &#38; Co"),
            "{html}"
        );
        assert!(html.contains(r#"<a href="/t/x/active-calls">"#));
        assert!(
            html.contains(r#"href="/operator/active-calls""#),
            "refresh link"
        );
    }

    #[test]
    fn ringing_calls_show_how_long_they_ring() {
        let now = OffsetDateTime::now_utc();
        let c = ActiveCall {
            id: 1,
            tenant: TenantId::new(),
            caller: "201".into(),
            dialled: "202".into(),
            callee: "202".into(),
            state: CallState::Ringing,
            started_at: now - Duration::seconds(12),
            answered_at: None,
        };
        let r = LiveRow::new(&c, now, &Zone::london(), None);
        assert_eq!((r.state, r.duration.as_str()), ("Ringing", "ringing 0:12"));
    }
}
