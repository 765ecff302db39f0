//! The location service: who is registered where, in memory, for routing.
//!
//! Bindings are keyed by address-of-record = (tenant, extension); one extension has several
//! devices (credentials) and each device one or more contacts. Every binding remembers the
//! [`Flow`] its REGISTER arrived on, so a request to the phone can go back through its NAT
//! (same UDP source address, same TCP connection). Expired bindings are filtered out on every
//! read and removed by a periodic sweep.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use store::{CredentialId, ExtensionId, TenantId};

use crate::transport::Flow;

/// One registered contact.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub tenant: TenantId,
    pub extension_id: ExtensionId,
    pub credential_id: CredentialId,
    /// The address-of-record as registered (the To URI).
    pub aor: String,
    /// The Contact URI.
    pub contact: String,
    /// Contact `q` in thousandths (`q=0.5` → 500).
    pub q: Option<u16>,
    pub expires_at: SystemTime,
    /// `+sip.instance` (RFC 5626), as sent (with its quotes and angle brackets).
    pub instance_id: Option<String>,
    pub reg_id: Option<u32>,
    /// The flow the REGISTER arrived on. After a restart `conn` is `None`: route to the
    /// source address (UDP) or open a new connection to the contact.
    pub flow: Flow,
    pub user_agent: Option<String>,
    /// Path header (RFC 3327) as received.
    pub path: Option<String>,
    pub call_id: String,
    pub cseq: u32,
    /// Top Via branch of the REGISTER that last wrote the binding (retransmission detection);
    /// empty for bindings loaded from the directory.
    pub(crate) branch: String,
}

impl Binding {
    /// Seconds left before expiry at `now` (rounded up), 0 if expired.
    pub fn remaining_secs(&self, now: SystemTime) -> u32 {
        match self.expires_at.duration_since(now) {
            Ok(d) => u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX),
            Err(_) => 0,
        }
    }

    pub fn is_live(&self, now: SystemTime) -> bool {
        self.expires_at > now
    }

    /// Approximate bytes this binding occupies (struct plus heap strings), for the memory budget.
    pub fn approx_size(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        std::mem::size_of::<Self>()
            + self.aor.capacity()
            + self.contact.capacity()
            + self.call_id.capacity()
            + self.branch.capacity()
            + opt(&self.instance_id)
            + opt(&self.user_agent)
            + opt(&self.path)
    }
}

/// Bindings by tenant, then extension: a tenant's listing does not walk the platform.
type Aors = HashMap<TenantId, HashMap<ExtensionId, Vec<Binding>>>;

/// The in-memory location service. Cheap to share (`Arc`); all methods take `&self`.
#[derive(Default)]
pub struct LocationService {
    aors: Mutex<Aors>,
    count: AtomicUsize,
}

impl std::fmt::Debug for LocationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocationService")
            .field("bindings", &self.count())
            .finish()
    }
}

impl LocationService {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Aors> {
        self.aors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live bindings of an extension, highest q first.
    pub fn lookup(&self, tenant: TenantId, extension: ExtensionId) -> Vec<Binding> {
        let now = SystemTime::now();
        let mut v: Vec<Binding> = self
            .lock()
            .get(&tenant)
            .and_then(|t| t.get(&extension))
            .map(|b| b.iter().filter(|b| b.is_live(now)).cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
        v
    }

    /// Every live binding of a tenant.
    pub fn list(&self, tenant: TenantId) -> Vec<Binding> {
        let now = SystemTime::now();
        self.lock()
            .get(&tenant)
            .map(|t| {
                t.values()
                    .flat_map(|v| v.iter().filter(|b| b.is_live(now)).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every live binding on the platform.
    pub fn list_all(&self) -> Vec<Binding> {
        let now = SystemTime::now();
        self.lock()
            .values()
            .flat_map(HashMap::values)
            .flat_map(|v| v.iter().filter(|b| b.is_live(now)).cloned())
            .collect()
    }

    /// Bindings held (including ones expired since the last sweep).
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Live bindings of a tenant.
    pub fn count_tenant(&self, tenant: TenantId) -> usize {
        let now = SystemTime::now();
        self.lock().get(&tenant).map_or(0, |t| {
            t.values()
                .map(|v| v.iter().filter(|b| b.is_live(now)).count())
                .sum()
        })
    }

    /// Runs `f` on the bindings of one AOR under the lock (the registrar's atomic
    /// check-and-update). Expired bindings are dropped first.
    pub(crate) fn with_aor<R>(
        &self,
        tenant: TenantId,
        extension: ExtensionId,
        now: SystemTime,
        f: impl FnOnce(&mut Vec<Binding>) -> R,
    ) -> R {
        let mut map = self.lock();
        let exts = map.entry(tenant).or_default();
        let entry = exts.entry(extension).or_default();
        let before = entry.len();
        entry.retain(|b| b.is_live(now));
        let r = f(entry);
        let after = entry.len();
        if after == 0 {
            exts.remove(&extension);
            if exts.is_empty() {
                map.remove(&tenant);
            }
        }
        drop(map);
        self.adjust(before, after);
        r
    }

    fn adjust(&self, before: usize, after: usize) {
        if after >= before {
            self.count.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.count.fetch_sub(before - after, Ordering::Relaxed);
        }
        metrics::gauge!("sip_bindings").set(self.count() as f64);
    }

    /// Adds bindings loaded from the directory (start-up).
    pub(crate) fn load(&self, bindings: Vec<Binding>) {
        let n = bindings.len();
        let mut map = self.lock();
        for b in bindings {
            map.entry(b.tenant)
                .or_default()
                .entry(b.extension_id)
                .or_default()
                .push(b);
        }
        drop(map);
        self.adjust(0, n);
    }

    /// Removes the bindings of `tenant` that `revoked` accepts (an admin change revoked
    /// them: a deleted extension or credential, a new password, a suspended tenant); returns
    /// them. Other tenants are not walked.
    pub fn remove_where(
        &self,
        tenant: TenantId,
        mut revoked: impl FnMut(&Binding) -> bool,
    ) -> Vec<Binding> {
        let mut removed = Vec::new();
        let mut map = self.lock();
        if let Some(exts) = map.get_mut(&tenant) {
            exts.retain(|_, v| {
                let (gone, kept): (Vec<Binding>, Vec<Binding>) =
                    std::mem::take(v).into_iter().partition(|b| revoked(b));
                removed.extend(gone);
                *v = kept;
                !v.is_empty()
            });
            if exts.is_empty() {
                map.remove(&tenant);
            }
        }
        drop(map);
        if !removed.is_empty() {
            self.adjust(removed.len(), 0);
        }
        removed
    }

    /// The tenants holding bindings.
    pub fn tenants(&self) -> Vec<TenantId> {
        self.lock().keys().copied().collect()
    }

    /// Removes expired bindings; returns how many.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let mut removed = 0;
        let mut map = self.lock();
        map.retain(|_, exts| {
            exts.retain(|_, v| {
                let before = v.len();
                v.retain(|b| b.is_live(now));
                removed += before - v.len();
                !v.is_empty()
            });
            !exts.is_empty()
        });
        drop(map);
        if removed > 0 {
            self.adjust(removed, 0);
        }
        removed
    }
}

/// `now + secs`.
pub(crate) fn expiry(now: SystemTime, secs: u32) -> SystemTime {
    now + Duration::from_secs(u64::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Flow;

    fn binding(t: TenantId, e: ExtensionId, i: usize, exp: SystemTime) -> Binding {
        Binding {
            tenant: t,
            extension_id: e,
            credential_id: CredentialId::new(),
            aor: "sip:1001@acme.pbx.example.com".into(),
            contact: format!(
                "sip:1001@192.168.1.{}:5060;transport=udp;line=abc{i}",
                i % 250
            ),
            q: None,
            expires_at: exp,
            instance_id: Some("\"<urn:uuid:00000000-0000-1000-8000-000b82123456>\"".into()),
            reg_id: Some(1),
            flow: Flow::udp(
                "10.0.0.1:5060".parse().unwrap(),
                "203.0.113.7:40123".parse().unwrap(),
            ),
            user_agent: Some("Yealink SIP-T46S 66.86.0.15".into()),
            path: None,
            call_id: format!("{i:032x}@192.168.1.10"),
            cseq: 12,
            branch: format!("z9hG4bK{i:024x}"),
        }
    }

    #[test]
    fn expiry_on_read_and_sweep() {
        let loc = LocationService::new();
        let (t, e) = (TenantId::new(), ExtensionId::new());
        let now = SystemTime::now();
        loc.load(vec![
            binding(t, e, 1, now + Duration::from_secs(60)),
            binding(t, e, 2, now - Duration::from_secs(1)),
        ]);
        assert_eq!(loc.count(), 2);
        assert_eq!(loc.lookup(t, e).len(), 1);
        assert_eq!(loc.list(t).len(), 1);
        assert_eq!(loc.list(TenantId::new()).len(), 0);
        assert_eq!(loc.sweep(SystemTime::now()), 1);
        assert_eq!(loc.count(), 1);
        assert_eq!(loc.sweep(now + Duration::from_secs(61)), 1);
        assert_eq!(loc.count(), 0);
        assert!(loc.list_all().is_empty());
    }

    /// The budget is 2 kB per binding; a realistic desk-phone binding, counted with the
    /// hash-map slot and vector share, is far below.
    #[test]
    fn memory_per_binding_is_within_budget() {
        let loc = LocationService::new();
        let t = TenantId::new();
        let exp = SystemTime::now() + Duration::from_secs(3600);
        let n = 10_000;
        let mut total = 0usize;
        let bindings: Vec<Binding> = (0..n)
            .map(|i| binding(t, ExtensionId::new(), i, exp))
            .collect();
        for b in &bindings {
            total += b.approx_size();
        }
        loc.load(bindings);
        // per AOR: key + Vec header in the map (with hashbrown's load factor), plus malloc slack
        let per_entry_map = (std::mem::size_of::<(ExtensionId, Vec<Binding>)>() + 1) * 8 / 7;
        let per_binding = total / n + per_entry_map + 64;
        eprintln!("about {per_binding} bytes per binding");
        assert!(per_binding < 2048, "{per_binding} bytes per binding");
        assert_eq!(loc.count(), n);
    }
}
