//! Calls in progress, as the web app sees them. The call engine lives in the `pbx` crate, which
//! this crate does not depend on: the binary bridges the engine into [`LiveCalls`] and hands it
//! to [`AppState::with_live_calls`](crate::AppState::with_live_calls). Without one the app
//! reports no calls ([`NoLiveCalls`]).
//!
//! Tenant isolation does not rest on the implementation alone: every caller in this crate also
//! drops any call whose `tenant` is not the one it asked for.

use std::collections::HashMap;

use store::{Directory, Page, StoreError, TenantId};
use time::OffsetDateTime;

/// Where a call in progress is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallState {
    /// The callee's phones are ringing.
    Ringing,
    /// A phone answered; waiting for the caller's acknowledgement.
    Answering,
    /// Both parties are talking.
    Connected,
}

impl CallState {
    /// Lower-case name, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Ringing => "ringing",
            CallState::Answering => "answering",
            CallState::Connected => "connected",
        }
    }
}

impl std::fmt::Display for CallState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveCall {
    /// The engine's call number: unique among the calls of one running server.
    pub id: u64,
    /// The business the call belongs to.
    pub tenant: TenantId,
    /// Who called: an extension number, or the outside caller's number.
    pub caller: String,
    /// What the caller dialled.
    pub dialled: String,
    /// The extension or number being rung or talked to (after forwarding).
    pub callee: String,
    pub state: CallState,
    pub started_at: OffsetDateTime,
    /// When the callee answered; `None` while ringing.
    pub answered_at: Option<OffsetDateTime>,
}

impl ActiveCall {
    /// Whole seconds talking at `now`; `None` before the answer.
    pub fn talk_secs(&self, now: OffsetDateTime) -> Option<u64> {
        self.answered_at
            .map(|a| (now - a).whole_seconds().max(0).unsigned_abs())
    }

    /// Whole seconds since the call started.
    pub fn age_secs(&self, now: OffsetDateTime) -> u64 {
        (now - self.started_at)
            .whole_seconds()
            .max(0)
            .unsigned_abs()
    }

    /// Is `extension` one of the two parties?
    pub fn involves(&self, extension: &str) -> bool {
        self.caller == extension || self.callee == extension
    }
}

/// The calls in progress right now. Called on every page view and every htmx poll, so it must
/// be quick and must not block on I/O (a snapshot the engine publishes is the intended shape).
pub trait LiveCalls: Send + Sync + 'static {
    /// The calls of `tenant`, or of every business with `None`, oldest first.
    fn active_calls(&self, tenant: Option<TenantId>) -> Vec<ActiveCall>;
}

/// No call engine attached: nothing is ever in progress.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLiveCalls;

impl LiveCalls for NoLiveCalls {
    fn active_calls(&self, _tenant: Option<TenantId>) -> Vec<ActiveCall> {
        Vec::new()
    }
}

/// The calls of one business, whatever the implementation returns for it.
pub fn tenant_calls(live: &dyn LiveCalls, tenant: TenantId) -> Vec<ActiveCall> {
    let mut calls = live.active_calls(Some(tenant));
    calls.retain(|c| c.tenant == tenant);
    calls.sort_by_key(|c| (c.started_at, c.id));
    calls
}

/// Every call on the platform, oldest first.
pub fn all_calls(live: &dyn LiveCalls) -> Vec<ActiveCall> {
    let mut calls = live.active_calls(None);
    calls.sort_by_key(|c| (c.started_at, c.id));
    calls
}

/// "0:07", "12:34", "1:02:03".
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Above this many businesses they are read page by page instead of one by one.
const ONE_BY_ONE: usize = 32;

/// The names of these businesses (a business deleted meanwhile is left out).
pub async fn tenant_names(
    directory: &dyn Directory,
    ids: impl IntoIterator<Item = TenantId>,
) -> Result<HashMap<TenantId, String>, StoreError> {
    let mut wanted: Vec<TenantId> = ids.into_iter().collect();
    wanted.sort();
    wanted.dedup();
    let mut names = HashMap::with_capacity(wanted.len());
    if wanted.len() <= ONE_BY_ONE {
        for id in wanted {
            match directory.get_tenant(id).await {
                Ok(t) => {
                    names.insert(id, t.settings.name);
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(names);
    }
    let mut offset = 0;
    loop {
        let page = directory
            .list_tenants(Page::new(Page::MAX_LIMIT, offset))
            .await?;
        let n = page.items.len() as u32;
        for t in page.items {
            if wanted.binary_search(&t.id).is_ok() {
                names.insert(t.id, t.settings.name);
            }
        }
        offset += n;
        if n < Page::MAX_LIMIT || names.len() == wanted.len() {
            return Ok(names);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    /// Returns every call whatever it is asked: the web side must still filter.
    struct Leaky(Vec<ActiveCall>);

    impl LiveCalls for Leaky {
        fn active_calls(&self, _tenant: Option<TenantId>) -> Vec<ActiveCall> {
            self.0.clone()
        }
    }

    fn call(id: u64, tenant: TenantId, started: OffsetDateTime) -> ActiveCall {
        ActiveCall {
            id,
            tenant,
            caller: "201".into(),
            dialled: "202".into(),
            callee: "202".into(),
            state: CallState::Ringing,
            started_at: started,
            answered_at: None,
        }
    }

    #[test]
    fn a_business_gets_only_its_calls_oldest_first() {
        let (a, b) = (TenantId::new(), TenantId::new());
        let now = OffsetDateTime::now_utc();
        let live = Leaky(vec![
            call(1, a, now),
            call(2, b, now),
            call(3, a, now - Duration::minutes(1)),
        ]);
        let ids: Vec<u64> = tenant_calls(&live, a).iter().map(|c| c.id).collect();
        assert_eq!(ids, [3, 1]);
        assert_eq!(all_calls(&live).len(), 3);
        assert!(NoLiveCalls.active_calls(None).is_empty());
    }

    #[test]
    fn durations() {
        let now = OffsetDateTime::now_utc();
        let mut c = call(1, TenantId::new(), now - Duration::seconds(90));
        assert_eq!((c.talk_secs(now), c.age_secs(now)), (None, 90));
        c.answered_at = Some(now - Duration::seconds(65));
        assert_eq!(c.talk_secs(now), Some(65));
        // A clock that stepped back never shows a negative duration.
        c.answered_at = Some(now + Duration::seconds(3));
        assert_eq!(c.talk_secs(now), Some(0));
        assert_eq!(clock(7), "0:07");
        assert_eq!(clock(754), "12:34");
        assert_eq!(clock(3723), "1:02:03");
        assert!(c.involves("201") && c.involves("202") && !c.involves("20"));
    }
}
