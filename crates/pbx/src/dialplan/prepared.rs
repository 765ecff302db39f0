//! The synchronous side: the live outside-call counter and the in-memory
//! [`DialPlan`] the engine reads, filled by the asynchronous
//! [`super::Resolver`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::TenantId;

use crate::call::{Destination, DialPlan};

/// The status answered when a tenant is at its outside-call limit: 503,
/// because the condition is temporary (the caller may retry in a minute),
/// unlike the permanent policy refusals (premium, international, suspended
/// tenant) which are 403.
pub const LIMIT_STATUS: u16 = 503;

/// Live outside (non-emergency) calls per tenant. The driver calls
/// [`OutsideCalls::started`] when an outside call starts (its trunk leg is
/// launched) and [`OutsideCalls::ended`] when it ends (its record comes out
/// of the engine), or holds an [`OutsideCallGuard`]. The dial plan only reads
/// it.
#[derive(Debug, Default)]
pub struct OutsideCalls {
    live: Mutex<HashMap<TenantId, u32>>,
}

impl OutsideCalls {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts one more live outside call of `tenant`.
    pub fn started(&self, tenant: TenantId) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        *live.entry(tenant).or_insert(0) += 1;
    }

    /// Counts one fewer (never below zero).
    pub fn ended(&self, tenant: TenantId) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = live.get_mut(&tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                live.remove(&tenant);
            }
        }
    }

    /// Live outside calls of `tenant`.
    pub fn live(&self, tenant: TenantId) -> u32 {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(&tenant).copied().unwrap_or(0)
    }

    /// [`OutsideCalls::started`] now, [`OutsideCalls::ended`] on drop.
    pub fn guard(self: &Arc<Self>, tenant: TenantId) -> OutsideCallGuard {
        self.started(tenant);
        OutsideCallGuard {
            calls: Arc::clone(self),
            tenant,
        }
    }
}

/// One live outside call; ends it on drop.
#[derive(Debug)]
pub struct OutsideCallGuard {
    calls: Arc<OutsideCalls>,
    tenant: TenantId,
}

impl Drop for OutsideCallGuard {
    fn drop(&mut self) {
        self.calls.ended(self.tenant);
    }
}

/// A destination as the resolver found it, with what the limit check needs
/// at the moment the engine asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub destination: Destination,
    /// The tenant's `max_outside_calls`.
    pub outside_limit: u32,
    /// The tenant's `max_concurrent_calls` (all calls, emergency excepted).
    pub call_limit: u32,
}

impl Lookup {
    /// Applies the outside-call limit: a non-emergency outside call of a
    /// tenant with `live` calls at or above its limit is refused.
    pub fn decide(&self, live: u32) -> Destination {
        match &self.destination {
            Destination::Outside(o) if !o.emergency && live >= self.outside_limit => {
                Destination::Refused {
                    status: LIMIT_STATUS,
                    reason: format!(
                        "outside call limit reached ({} of {})",
                        live, self.outside_limit
                    ),
                }
            }
            d => d.clone(),
        }
    }
}

struct Entry {
    lookup: Lookup,
    at: Instant,
}

/// The engine's [`DialPlan`]: destinations resolved beforehand by
/// [`super::Resolver::prepare`], keyed by tenant and dialled string, kept for
/// `ttl` (long enough to cover a forward on no answer in the middle of a
/// call). The outside-call limit is checked here, on every resolve, against
/// the live [`OutsideCalls`], so a cached answer never goes stale on it.
pub struct PreparedPlan {
    /// By (tenant, calling extension or "", dialled). Outside destinations
    /// depend on the caller (the presented caller ID) and are kept per
    /// caller; everything else under "".
    entries: Mutex<HashMap<(TenantId, String, String), Entry>>,
    /// When `prepare` last completed for (tenant, caller or "", dialled).
    prepared: Mutex<HashMap<(TenantId, String, String), Instant>>,
    calls: Arc<OutsideCalls>,
    ttl: Duration,
    last_purge: Mutex<Option<Instant>>,
    /// Each tenant's concurrent-call limit, as last read from the directory.
    call_limits: Mutex<HashMap<TenantId, u32>>,
}

impl PreparedPlan {
    /// Default time an entry is kept.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

    pub fn new(calls: Arc<OutsideCalls>, ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            calls,
            ttl,
            last_purge: Mutex::new(None),
            call_limits: Mutex::new(HashMap::new()),
        }
    }

    /// [`PreparedPlan::purge`], at most once per tenth of the TTL (a purge
    /// walks every entry; call setups should not each pay for it).
    pub fn maybe_purge(&self, now: Instant) {
        {
            let mut last = self.last_purge.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now.saturating_duration_since(t) < self.ttl / 10) {
                return;
            }
            *last = Some(now);
        }
        self.purge(now);
    }

    pub fn outside_calls(&self) -> &Arc<OutsideCalls> {
        &self.calls
    }

    /// Stores (or replaces) what `dialled` resolves to for `caller` (an
    /// extension of `tenant`, or `None` for a trunk's call). An outside
    /// destination is kept for that caller only; any other for every caller.
    pub fn insert(
        &self,
        tenant: TenantId,
        caller: Option<&str>,
        dialled: &str,
        lookup: Lookup,
        now: Instant,
    ) {
        self.call_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant, lookup.call_limit);
        let caller = match (&lookup.destination, caller) {
            (Destination::Outside(_), Some(c)) => c.to_owned(),
            _ => String::new(),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            (tenant, caller, dialled.to_owned()),
            Entry { lookup, at: now },
        );
    }

    /// How long a completed preparation is reused without asking the
    /// directory again.
    pub const FRESH: Duration = Duration::from_secs(1);

    /// Records that [`super::Resolver::prepare`] completed for this key.
    pub fn mark_prepared(
        &self,
        tenant: TenantId,
        caller: Option<&str>,
        dialled: &str,
        now: Instant,
    ) {
        let mut p = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() > 100_000 {
            p.retain(|_, at| now.saturating_duration_since(*at) < Self::FRESH);
        }
        p.insert(
            (tenant, caller.unwrap_or("").to_owned(), dialled.to_owned()),
            now,
        );
    }

    /// What `dialled` resolves to now, if a preparation for this caller
    /// completed less than [`PreparedPlan::FRESH`] ago.
    pub fn recently_prepared(
        &self,
        tenant: TenantId,
        caller: Option<&str>,
        dialled: &str,
        now: Instant,
    ) -> Option<Destination> {
        let key = (tenant, caller.unwrap_or("").to_owned(), dialled.to_owned());
        let at = *self
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)?;
        (now.saturating_duration_since(at) < Self::FRESH)
            .then(|| self.resolve(tenant, caller, dialled))
    }

    /// Drops entries older than the TTL; returns how many are left.
    pub fn purge(&self, now: Instant) -> usize {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| now.saturating_duration_since(e.at) < self.ttl);
        entries.len()
    }

    /// Forgets everything about `tenant` (after its settings, extensions or
    /// numbers changed).
    pub fn invalidate(&self, tenant: TenantId) {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(t, _, _), _| *t != tenant);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(t, _, _), _| *t != tenant);
        self.call_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tenant);
    }

    /// Forgets everything (changes may have been missed, or one spans tenants).
    pub fn clear(&self) {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.call_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl DialPlan for PreparedPlan {
    fn call_limit(&self, tenant: TenantId) -> Option<u32> {
        self.call_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
            .copied()
    }

    fn resolve(&self, tenant: TenantId, caller: Option<&str>, dialled: &str) -> Destination {
        let lookup = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let own = caller.and_then(|c| entries.get(&(tenant, c.to_owned(), dialled.to_owned())));
            own.or_else(|| entries.get(&(tenant, String::new(), dialled.to_owned())))
                .map(|e| e.lookup.clone())
        };
        match lookup {
            Some(l) => l.decide(self.calls.live(tenant)),
            None => {
                tracing::debug!(%tenant, dialled, "dial plan: not prepared");
                Destination::Refused {
                    status: 503,
                    reason: "destination not resolved".into(),
                }
            }
        }
    }
}
