//! The registrar's credential cache: the hot path never waits on the database once warm.
//!
//! Two maps, each entry stamped with when it was fetched:
//! * SIP domain (realm) → tenant id, or "no such (active) tenant";
//! * (tenant, username) → credential (HA1s, extension), or "no such username".
//!
//! Entries live `ttl` (default 30 s), after which the next lookup refetches. Negative entries
//! make a scan of unknown names cost one query per name per `ttl`. When a digest does not
//! verify against a cached credential older than [`REFETCH_AFTER`], the registrar refetches it
//! once and verifies again, so a password regenerated in the web app works at once; the same
//! refetch happens for unknown names, so known and unknown users cost the same.
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

type CredMap = HashMap<Box<str>, (Option<Arc<CachedCred>>, Instant)>;

#[derive(Default)]
struct Maps {
    domains: HashMap<Box<str>, (Option<TenantId>, Instant)>,
    creds: HashMap<TenantId, CredMap>,
    cred_count: usize,
}

pub(crate) struct CredCache {
    dir: Arc<dyn Directory>,
    ttl: Duration,
    max_entries: usize,
    maps: Mutex<Maps>,
}

impl CredCache {
    pub fn new(dir: Arc<dyn Directory>, ttl: Duration, max_entries: usize) -> Self {
        CredCache {
            dir,
            ttl,
            max_entries: max_entries.max(16),
            maps: Mutex::new(Maps::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached answer for (realm, username), or `None` when it must be fetched.
    pub fn get(&self, realm: &str, username: &str, now: Instant) -> Option<Resolved> {
        let maps = self.lock();
        let (tenant, t_at) = maps.domains.get(realm)?;
        if now.duration_since(*t_at) > self.ttl {
            return None;
        }
        let Some(tenant) = tenant else {
            return Some(Resolved::Unknown { fetched: *t_at });
        };
        let (cred, c_at) = maps.creds.get(tenant)?.get(username)?;
        if now.duration_since(*c_at) > self.ttl {
            return None;
        }
        let fetched = (*t_at).min(*c_at);
        Some(match cred {
            Some(cred) => Resolved::Known {
                tenant: *tenant,
                cred: Arc::clone(cred),
                fetched,
            },
            None => Resolved::Unknown { fetched },
        })
    }

    /// Fetches (realm, username) from the directory into the cache and returns it.
    pub async fn fetch(&self, realm: &str, username: &str) -> Result<Resolved, StoreError> {
        let now = Instant::now();
        let tenant = match realm.parse::<SipDomain>() {
            Err(_) => None,
            Ok(domain) => match self.dir.get_tenant_by_domain(&domain).await {
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
        if maps.domains.len() >= self.max_entries {
            let ttl = self.ttl;
            maps.domains
                .retain(|_, (_, at)| now.duration_since(*at) <= ttl);
            if maps.domains.len() >= self.max_entries {
                maps.domains.retain(|_, (t, _)| t.is_some());
            }
            if maps.domains.len() >= self.max_entries {
                maps.domains.clear();
            }
        }
        maps.domains.insert(realm.into(), (tenant, now));
        if let Some(t) = tenant {
            if maps.cred_count >= self.max_entries {
                let ttl = self.ttl;
                for m in maps.creds.values_mut() {
                    m.retain(|_, (c, at)| c.is_some() && now.duration_since(*at) <= ttl);
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
                .insert(username.into(), (cred.clone(), now));
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
