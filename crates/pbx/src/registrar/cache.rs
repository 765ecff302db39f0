//! The registrar's credential cache: the hot path never waits on the database once warm.
//!
//! Two maps, each entry stamped with when it was fetched:
//! * SIP domain (realm) → tenant id, or "no such (active) tenant";
//! * (tenant, username) → credential (HA1s, extension), or "no such username".
//!
//! Entries are fresh for `ttl` (default 30 s). After that, and up to 20 × `ttl`, an entry is
//! still served once while a background task refetches it (stale-while-revalidate: steady
//! traffic never waits on the database, and a deleted credential stops working one request
//! after its `ttl`); older entries are fetched before answering. Negative entries
//! make a scan of unknown names cost one query per name per `ttl`. When a digest does not
//! verify against a cached credential older than [`REFETCH_AFTER`], the registrar refetches it
//! once and verifies again, so a password regenerated in the web app works at once; the same
//! refetch happens for unknown names, so known and unknown users cost the same.
//!
//! The cache is bounded (`max_entries` per map): when a map is full, its least recently used
//! entry is evicted, one per insertion (never the whole map: a flood of unknown names pushes
//! out only the coldest entries, and busy phones stay cached).
//!
//! Directory lookups go through a [`LookupGate`]: at most `max_lookups` run at once and at
//! most `backlog` more wait; past that the caller answers 503 with Retry-After.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use store::{CredentialId, Directory, ExtensionId, SipDomain, SipUsername, StoreError, TenantId};

/// A cached credential older than this is refetched once when a digest fails against it.
pub(crate) const REFETCH_AFTER: Duration = Duration::from_secs(1);

/// What the registrar needs of a credential.
#[derive(Debug)]
pub(crate) struct CachedCred {
    pub id: CredentialId,
    pub extension_id: ExtensionId,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

/// A lookup answer.
#[derive(Debug, Clone)]
pub(crate) enum Resolved {
    /// The realm is an active tenant and the username exists there.
    Known {
        tenant: TenantId,
        cred: Arc<CachedCred>,
        fetched: Instant,
    },
    /// Unknown realm, suspended tenant or unknown username (all answered alike).
    Unknown { fetched: Instant },
}

impl Resolved {
    pub fn fetched(&self) -> Instant {
        match self {
            Resolved::Known { fetched, .. } | Resolved::Unknown { fetched } => *fetched,
        }
    }
}

/// A cached value, when it was fetched, and when it next wants a background refresh.
struct Entry<T> {
    value: T,
    fetched: Instant,
    refresh_at: Instant,
}

impl<T> Entry<T> {
    fn new(value: T, now: Instant, ttl: Duration) -> Self {
        Entry {
            value,
            fetched: now,
            refresh_at: now + ttl,
        }
    }
}

/// A map bounded by least-recent use: every read or write touches the entry, and an
/// insertion into a full map evicts exactly the least recently used entry. O(log n).
struct Lru<K, V> {
    map: HashMap<K, (V, u64)>,
    order: BTreeMap<u64, K>,
    tick: u64,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    fn new(cap: usize) -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            cap: cap.max(1),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    fn touch(&mut self, key: &K) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, t)) = self.map.get_mut(key) {
            let old = std::mem::replace(t, tick);
            if let Some(k) = self.order.remove(&old) {
                self.order.insert(tick, k);
            }
        }
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.touch(key);
        self.map.get_mut(key).map(|(v, _)| v)
    }

    fn peek(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(v, _)| v)
    }

    /// Inserts or replaces; returns the key evicted to make room, if any.
    fn insert(&mut self, key: K, value: V) -> Option<K> {
        self.tick += 1;
        let tick = self.tick;
        if let Some((v, t)) = self.map.get_mut(&key) {
            *v = value;
            let old = std::mem::replace(t, tick);
            self.order.remove(&old);
            self.order.insert(tick, key);
            return None;
        }
        let mut evicted = None;
        if self.map.len() >= self.cap {
            if let Some((_, oldest)) = self.order.pop_first() {
                self.map.remove(&oldest);
                evicted = Some(oldest);
            }
        }
        self.order.insert(tick, key.clone());
        self.map.insert(key, (value, tick));
        evicted
    }
}

/// Bounds the directory lookups of authentication (REGISTER and INVITE alike).
pub(crate) struct LookupGate {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    backlog: usize,
}

impl LookupGate {
    /// `max_lookups` at once, `backlog` more waiting.
    pub fn new(max_lookups: usize, backlog: usize) -> Self {
        LookupGate {
            permits: Arc::new(Semaphore::new(max_lookups.max(1))),
            waiting: AtomicUsize::new(0),
            backlog,
        }
    }

    /// Whether a new lookup would be refused right now (every permit taken and the backlog
    /// full).
    pub fn is_full(&self) -> bool {
        // every permit taken and `backlog` callers already waiting
        self.permits.available_permits() == 0
            && self.waiting.load(Ordering::Relaxed) >= self.backlog
    }

    /// Waits for a lookup slot; `None` when the backlog is full (answer 503 with
    /// Retry-After) or the gate is closed.
    pub async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(p);
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.backlog {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!("sip_auth_lookups_refused_total").increment(1);
            return None;
        }
        let p = Arc::clone(&self.permits).acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        p
    }
}

type CredKey = (TenantId, Box<str>);

/// How long a background refresh may take before another one is tried.
const REFRESH_RETRY: Duration = Duration::from_secs(10);
/// Background refreshes in flight at most.
const MAX_REFRESHING: usize = 64;

struct Maps {
    domains: Lru<Box<str>, Entry<Option<TenantId>>>,
    creds: Lru<CredKey, Entry<Option<Arc<CachedCred>>>>,
}

pub(crate) struct CredCache {
    dir: Arc<dyn Directory>,
    ttl: Duration,
    refreshing: AtomicUsize,
    /// Directory queries issued (tenant by domain, credential by username).
    queries: AtomicUsize,
    maps: Mutex<Maps>,
}

impl CredCache {
    pub fn new(dir: Arc<dyn Directory>, ttl: Duration, max_entries: usize) -> Self {
        let cap = max_entries.max(16);
        CredCache {
            dir,
            ttl,
            refreshing: AtomicUsize::new(0),
            queries: AtomicUsize::new(0),
            maps: Mutex::new(Maps {
                domains: Lru::new(cap),
                creds: Lru::new(cap),
            }),
        }
    }

    /// Directory queries issued so far.
    #[cfg(test)]
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn dir_for_tests(&self) -> Arc<dyn Directory> {
        Arc::clone(&self.dir)
    }

    /// Entries held (domains, credentials).
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize) {
        let m = self.lock();
        (m.domains.len(), m.creds.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached answer for (realm, username), or `None` when it must be fetched first. The
    /// flag says the answer is past its `ttl`: use it, and call [`CredCache::refresh`].
    pub fn get(&self, realm: &str, username: &str, now: Instant) -> Option<(Resolved, bool)> {
        let stale_max = self.ttl * 20;
        let mut maps = self.lock();
        let mut stale = false;
        let mut check = |fetched: Instant, refresh_at: &mut Instant| -> Option<()> {
            if now.saturating_duration_since(fetched) > stale_max {
                return None;
            }
            if now >= *refresh_at {
                *refresh_at = now + REFRESH_RETRY;
                stale = true;
            }
            Some(())
        };
        let d = maps.domains.get_mut(&Box::from(realm))?;
        check(d.fetched, &mut d.refresh_at)?;
        let (tenant, t_at) = (d.value, d.fetched);
        let Some(tenant) = tenant else {
            return Some((Resolved::Unknown { fetched: t_at }, stale));
        };
        let c = maps.creds.get_mut(&(tenant, Box::from(username)))?;
        check(c.fetched, &mut c.refresh_at)?;
        let fetched = t_at.min(c.fetched);
        let resolved = match &c.value {
            Some(cred) => Resolved::Known {
                tenant,
                cred: Arc::clone(cred),
                fetched,
            },
            None => Resolved::Unknown { fetched },
        };
        Some((resolved, stale))
    }

    /// Refetches (realm, username) on a task, unless too many refreshes are running already.
    pub fn refresh(self: &Arc<Self>, realm: &str, username: &str) {
        if self.refreshing.fetch_add(1, Ordering::Relaxed) >= MAX_REFRESHING {
            self.refreshing.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let (me, realm, username) = (Arc::clone(self), realm.to_owned(), username.to_owned());
        tokio::spawn(async move {
            if let Err(e) = me.fetch(&realm, &username).await {
                tracing::debug!(error = %e, "credential refresh failed; serving the cached entry");
            }
            me.refreshing.fetch_sub(1, Ordering::Relaxed);
        });
    }

    /// Runs one directory query, counted.
    async fn counted<T>(&self, query: impl std::future::Future<Output = T>) -> T {
        self.queries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sip_auth_directory_queries_total").increment(1);
        query.await
    }

    /// Fetches (realm, username) from the directory into the cache and returns it.
    pub async fn fetch(&self, realm: &str, username: &str) -> Result<Resolved, StoreError> {
        let now = Instant::now();
        // A domain answer younger than REFETCH_AFTER is reused: when thousands of phones of one
        // tenant come in at once, the tenant is read once, not once per phone.
        let recent = self.lock().domains.peek(&Box::from(realm)).and_then(|e| {
            (now.saturating_duration_since(e.fetched) < REFETCH_AFTER).then_some(e.value)
        });
        let tenant = match (recent, realm.parse::<SipDomain>()) {
            (Some(t), _) => t,
            (None, Err(_)) => None,
            (None, Ok(domain)) => {
                match self.counted(self.dir.get_tenant_by_domain(&domain)).await {
                    Ok(t) if !t.suspended => Some(t.id),
                    Ok(_) => None,
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e),
                }
            }
        };
        let cred = match (tenant, username.parse::<SipUsername>()) {
            (Some(t), Ok(u)) => match self
                .counted(self.dir.get_credential_by_username(t, &u))
                .await
            {
                Ok(c) => Some(Arc::new(CachedCred {
                    id: c.id,
                    extension_id: c.extension_id,
                    ha1_md5: c.ha1_md5.as_str().to_owned(),
                    ha1_sha256: c.ha1_sha256.as_str().to_owned(),
                })),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        let mut maps = self.lock();
        if recent.is_none() {
            maps.domains
                .insert(realm.into(), Entry::new(tenant, now, self.ttl));
        }
        if let Some(t) = tenant {
            maps.creds.insert(
                (t, username.into()),
                Entry::new(cred.clone(), now, self.ttl),
            );
        }
        drop(maps);
        Ok(match (tenant, cred) {
            (Some(tenant), Some(cred)) => Resolved::Known {
                tenant,
                cred,
                fetched: now,
            },
            _ => Resolved::Unknown { fetched: now },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_one_entry_at_a_time_least_recent_first() {
        let mut l: Lru<u32, &str> = Lru::new(3);
        assert_eq!(l.insert(1, "a"), None);
        assert_eq!(l.insert(2, "b"), None);
        assert_eq!(l.insert(3, "c"), None);
        // reading 1 makes 2 the coldest
        assert_eq!(l.get_mut(&1).copied(), Some("a"));
        assert_eq!(l.insert(4, "d"), Some(2));
        assert_eq!(l.len(), 3);
        assert_eq!(l.insert(3, "c2"), None, "a replacement evicts nothing");
        assert_eq!(l.insert(5, "e"), Some(1));
        assert_eq!(l.peek(&3), Some(&"c2"));
        assert_eq!(l.peek(&2), None);
        assert_eq!(l.order.len(), l.map.len());
    }

    #[tokio::test]
    async fn lookups_past_the_backlog_are_refused_not_queued() {
        let gate = Arc::new(LookupGate::new(1, 1));
        let first = gate.enter().await.expect("a free slot");
        assert!(!gate.is_full());
        let waiter = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.enter().await.is_some() })
        };
        while gate.waiting.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(gate.is_full());
        assert!(gate.enter().await.is_none(), "past the backlog: 503");
        drop(first);
        assert!(waiter.await.unwrap(), "the waiter got the freed slot");
        assert!(!gate.is_full());
    }
}
