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
//! Admin changes evict at once ([`CredCache::evict_tenant`], from the change events of
//! `server::changes`): a deleted credential or a replaced password fails on the next request.
//!
//! The cache is bounded (`max_entries` per map): when full, expired entries go first, then
//! negative ones, then all (a cold cache is slower, never wrong).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

type CredMap = HashMap<Box<str>, Entry<Option<Arc<CachedCred>>>>;

/// How long a background refresh may take before another one is tried.
const REFRESH_RETRY: Duration = Duration::from_secs(10);
/// Background refreshes in flight at most.
const MAX_REFRESHING: usize = 64;

#[derive(Default)]
struct Maps {
    domains: HashMap<Box<str>, Entry<Option<TenantId>>>,
    creds: HashMap<TenantId, CredMap>,
    cred_count: usize,
}

pub(crate) struct CredCache {
    dir: Arc<dyn Directory>,
    ttl: Duration,
    refreshing: std::sync::atomic::AtomicUsize,
    max_entries: usize,
    maps: Mutex<Maps>,
    /// Bumped by every eviction: a fetch that started before one does not store what it read
    /// (it may predate the change that caused the eviction).
    generation: std::sync::atomic::AtomicU64,
}

impl CredCache {
    pub fn new(dir: Arc<dyn Directory>, ttl: Duration, max_entries: usize) -> Self {
        CredCache {
            dir,
            ttl,
            refreshing: std::sync::atomic::AtomicUsize::new(0),
            max_entries: max_entries.max(16),
            maps: Mutex::new(Maps::default()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Forgets every credential of `tenant` and every realm answer naming it or no tenant (an
    /// admin changed one of its credentials, extensions or its suspension).
    pub fn evict_tenant(&self, tenant: TenantId) {
        let mut maps = self.lock();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(m) = maps.creds.remove(&tenant) {
            maps.cred_count = maps.cred_count.saturating_sub(m.len());
        }
        maps.domains
            .retain(|_, e| e.value.is_some_and(|t| t != tenant));
    }

    /// Forgets everything (changes may have been missed).
    pub fn clear(&self) {
        let mut maps = self.lock();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *maps = Maps::default();
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
        let d = maps.domains.get_mut(realm)?;
        check(d.fetched, &mut d.refresh_at)?;
        let (tenant, t_at) = (d.value, d.fetched);
        let Some(tenant) = tenant else {
            return Some((Resolved::Unknown { fetched: t_at }, stale));
        };
        let c = maps.creds.get_mut(&tenant)?.get_mut(username)?;
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
        use std::sync::atomic::Ordering;
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

    /// Fetches (realm, username) from the directory into the cache and returns it.
    pub async fn fetch(&self, realm: &str, username: &str) -> Result<Resolved, StoreError> {
        let now = Instant::now();
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        // A domain answer younger than REFETCH_AFTER is reused: when thousands of phones of one
        // tenant come in at once, the tenant is read once, not once per phone.
        let recent = self.lock().domains.get(realm).and_then(|e| {
            (now.saturating_duration_since(e.fetched) < REFETCH_AFTER).then_some(e.value)
        });
        let tenant = match (recent, realm.parse::<SipDomain>()) {
            (Some(t), _) => t,
            (None, Err(_)) => None,
            (None, Ok(domain)) => match self.dir.get_tenant_by_domain(&domain).await {
                Ok(t) if !t.suspended => Some(t.id),
                Ok(_) => None,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            },
        };
        let cred = match (tenant, username.parse::<SipUsername>()) {
            (Some(t), Ok(u)) => match self.dir.get_credential_by_username(t, &u).await {
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
        if self.generation.load(std::sync::atomic::Ordering::SeqCst) != generation {
            // evicted while we read: answer this request, keep nothing
            return Ok(match (tenant, cred) {
                (Some(tenant), Some(cred)) => Resolved::Known {
                    tenant,
                    cred,
                    fetched: now,
                },
                _ => Resolved::Unknown { fetched: now },
            });
        }
        if maps.domains.len() >= self.max_entries {
            let ttl = self.ttl;
            maps.domains
                .retain(|_, e| now.saturating_duration_since(e.fetched) <= ttl);
            if maps.domains.len() >= self.max_entries {
                maps.domains.retain(|_, e| e.value.is_some());
            }
            if maps.domains.len() >= self.max_entries {
                maps.domains.clear();
            }
        }
        if recent.is_none() {
            maps.domains
                .insert(realm.into(), Entry::new(tenant, now, self.ttl));
        }
        if let Some(t) = tenant {
            if maps.cred_count >= self.max_entries {
                let ttl = self.ttl;
                for m in maps.creds.values_mut() {
                    m.retain(|_, e| {
                        e.value.is_some() && now.saturating_duration_since(e.fetched) <= ttl
                    });
                }
                maps.creds.retain(|_, m| !m.is_empty());
                maps.cred_count = maps.creds.values().map(HashMap::len).sum();
                if maps.cred_count >= self.max_entries {
                    maps.creds.clear();
                    maps.cred_count = 0;
                }
            }
            let prev = maps
                .creds
                .entry(t)
                .or_default()
                .insert(username.into(), Entry::new(cred.clone(), now, self.ttl));
            if prev.is_none() {
                maps.cred_count += 1;
            }
        }
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
