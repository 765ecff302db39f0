//! Recent failed registrations per SIP credential, in memory, for the web app's extension
//! page (the binary bridges it like the trunk status). The registrar writes here where it
//! already decides a REGISTER failed; nothing goes to the database.
//!
//! Bounded twice: at most [`FailureConfig::per_credential`] entries per credential (oldest
//! dropped), and at most [`FailureConfig::credentials`] credentials (the one whose latest
//! failure is oldest is dropped). A repeat of the newest entry (same source, same reason) only
//! counts up and moves its time, so a phone retrying a wrong password, or a flood from a
//! banned address, holds one entry.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::SystemTime;

use store::{CredentialId, TenantId};

/// Why a REGISTER was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// The digest response did not match the stored password.
    WrongPassword,
    /// The source address is banned (too many failures from it); the request was dropped.
    SourceBanned,
    /// This username is locked for this source (too many failures); answered 403 unchecked.
    UsernameLocked,
}

impl FailureReason {
    /// For people: what happened, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            FailureReason::WrongPassword => "wrong password",
            FailureReason::SourceBanned => "source address banned (request ignored)",
            FailureReason::UsernameLocked => "locked for this source after repeated failures",
        }
    }
}

/// One failed registration (or a run of identical ones).
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// When it last happened.
    pub at: SystemTime,
    pub source: IpAddr,
    pub reason: FailureReason,
    /// How many times in a row, from this source for this reason (at least 1).
    pub count: u32,
}

/// Bounds of [`RegistrationFailures`].
#[derive(Clone, Copy, Debug)]
pub struct FailureConfig {
    /// Entries kept per credential. Default 10.
    pub per_credential: usize,
    /// Credentials kept. Default 10,000 (so at most 100,000 entries).
    pub credentials: usize,
}

impl Default for FailureConfig {
    fn default() -> Self {
        FailureConfig {
            per_credential: 10,
            credentials: 10_000,
        }
    }
}

struct Slot {
    tenant: TenantId,
    /// Its position in `Inner::recency`.
    touched: u64,
    /// Oldest first.
    entries: VecDeque<Failure>,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<CredentialId, Slot>,
    /// Credentials by the sequence number of their latest failure, oldest first.
    recency: BTreeMap<u64, CredentialId>,
    next: u64,
}

/// Recent failed registrations per credential (see the module doc).
pub struct RegistrationFailures {
    cfg: FailureConfig,
    inner: Mutex<Inner>,
}

impl Default for RegistrationFailures {
    fn default() -> Self {
        Self::new(FailureConfig::default())
    }
}

impl std::fmt::Debug for RegistrationFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationFailures")
            .field("credentials", &self.lock().slots.len())
            .finish()
    }
}

impl RegistrationFailures {
    pub fn new(cfg: FailureConfig) -> Self {
        RegistrationFailures {
            cfg: FailureConfig {
                per_credential: cfg.per_credential.max(1),
                credentials: cfg.credentials.max(1),
            },
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a failure of `credential` (of `tenant`) from `source`.
    pub fn record(
        &self,
        tenant: TenantId,
        credential: CredentialId,
        source: IpAddr,
        reason: FailureReason,
        at: SystemTime,
    ) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let seq = inner.next;
        inner.next += 1;
        let slot = inner.slots.entry(credential).or_insert_with(|| Slot {
            tenant,
            touched: seq,
            entries: VecDeque::new(),
        });
        inner.recency.remove(&slot.touched);
        slot.touched = seq;
        inner.recency.insert(seq, credential);
        slot.tenant = tenant;
        match slot.entries.back_mut() {
            Some(last) if last.source == source && last.reason == reason => {
                last.count = last.count.saturating_add(1);
                last.at = last.at.max(at);
            }
            _ => {
                if slot.entries.len() >= self.cfg.per_credential {
                    slot.entries.pop_front();
                }
                slot.entries.push_back(Failure {
                    at,
                    source,
                    reason,
                    count: 1,
                });
            }
        }
        while inner.slots.len() > self.cfg.credentials {
            let Some((_, oldest)) = inner.recency.pop_first() else {
                break;
            };
            inner.slots.remove(&oldest);
        }
    }

    /// The recent failures of `credential`, newest first; none if it is not `tenant`'s.
    pub fn recent(&self, tenant: TenantId, credential: CredentialId) -> Vec<Failure> {
        let inner = self.lock();
        match inner.slots.get(&credential) {
            Some(slot) if slot.tenant == tenant => slot.entries.iter().rev().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// (credentials, entries) held.
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (
            inner.slots.len(),
            inner.slots.values().map(|s| s.entries.len()).sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ids(n: usize) -> Vec<CredentialId> {
        (0..n)
            .map(|_| CredentialId::from_uuid(uuid::Uuid::now_v7()))
            .collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn newest_first_and_repeats_count_up() {
        let f = RegistrationFailures::default();
        let t = TenantId::from_uuid(uuid::Uuid::now_v7());
        let c = ids(1)[0];
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        f.record(t, c, ip("192.0.2.1"), FailureReason::WrongPassword, t0);
        let t1 = t0 + Duration::from_secs(5);
        f.record(t, c, ip("192.0.2.1"), FailureReason::WrongPassword, t1);
        let t2 = t1 + Duration::from_secs(5);
        f.record(t, c, ip("192.0.2.1"), FailureReason::SourceBanned, t2);
        let got = f.recent(t, c);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].reason, got[0].count, got[0].at),
            (FailureReason::SourceBanned, 1, t2)
        );
        assert_eq!(
            (got[1].reason, got[1].count, got[1].at),
            (FailureReason::WrongPassword, 2, t1)
        );
        let other = TenantId::from_uuid(uuid::Uuid::now_v7());
        assert!(
            f.recent(other, c).is_empty(),
            "another business sees nothing"
        );
        assert_eq!(f.sizes(), (1, 2));
    }

    #[test]
    fn bounded_per_credential_and_in_total() {
        let f = RegistrationFailures::new(FailureConfig {
            per_credential: 3,
            credentials: 4,
        });
        let t = TenantId::from_uuid(uuid::Uuid::now_v7());
        let creds = ids(10);
        let at = SystemTime::now();
        for (n, c) in creds.iter().enumerate() {
            for i in 0..5u8 {
                // a new source each time: no coalescing
                let src = IpAddr::from([198, 51, 100, i + 1]);
                f.record(t, *c, src, FailureReason::WrongPassword, at);
            }
            let (held, entries) = f.sizes();
            assert!(held <= 4 && entries <= 12, "after {n}: {held} {entries}");
        }
        assert_eq!(f.sizes(), (4, 12));
        // The four most recently failing credentials are kept, each with its last 3.
        for c in &creds[..6] {
            assert!(f.recent(t, *c).is_empty());
        }
        let last = f.recent(t, creds[9]);
        assert_eq!(
            last.iter().map(|e| e.source).collect::<Vec<_>>(),
            [ip("198.51.100.5"), ip("198.51.100.4"), ip("198.51.100.3")]
        );
        // A failure of an old credential makes it the newest: the coldest one goes.
        f.record(
            t,
            creds[6],
            ip("192.0.2.9"),
            FailureReason::UsernameLocked,
            at,
        );
        f.record(
            t,
            creds[0],
            ip("192.0.2.9"),
            FailureReason::UsernameLocked,
            at,
        );
        assert!(f.recent(t, creds[7]).is_empty());
        assert_eq!(f.recent(t, creds[6]).len(), 3);
        assert_eq!(f.recent(t, creds[0]).len(), 1);
        assert_eq!(f.sizes().0, 4);
    }
}
