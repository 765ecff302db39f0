//! What the running server knows about each trunk beyond its directory row:
//! its call-rate bucket, its health (OPTIONS keepalive) and its registration
//! to the provider. One [`TrunkStatus`] is shared by the calls task (inbound
//! rate limits, and failover that skips a trunk known to be down), the call
//! engine (outbound rate limits), the prober/registrar task, and the web app
//! (the operator's trunk page), each through `&self` methods taking `now`.

pub mod inbound;
pub mod keepalive;
pub mod register;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use store::TrunkId;

/// A trunk's health as the OPTIONS keepalive last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet (or probing is off).
    Unknown,
    /// The last probe got a response (any status: the provider is there).
    Up,
    /// The last probe got no response, or the transport failed.
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// Registration to the provider, as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// Registered until `expires_at` (the expiry the provider granted).
    Registered { expires_at: SystemTime },
    /// The last attempt failed: the final status (`None`: no response).
    Failed { status: Option<u16>, reason: String },
}

/// One trunk's runtime state, as shown to the operator.
#[derive(Clone, Debug, PartialEq)]
pub struct TrunkRuntime {
    pub trunk: TrunkId,
    pub health: Health,
    /// Status of the last OPTIONS response (`None`: none yet, or timed out).
    pub last_status: Option<u16>,
    /// Round trip of the last answered OPTIONS.
    pub latency: Option<Duration>,
    /// When the last probe finished.
    pub checked_at: Option<SystemTime>,
    pub registration: Option<Registration>,
}

struct Entry {
    runtime: TrunkRuntime,
    /// Calls per second allowed (the bucket holds at most this many).
    rate: u32,
    tokens: f64,
    refilled: Instant,
}

impl Entry {
    fn new(trunk: TrunkId, rate: u32, now: Instant) -> Self {
        Entry {
            runtime: TrunkRuntime {
                trunk,
                health: Health::Unknown,
                last_status: None,
                latency: None,
                checked_at: None,
                registration: None,
            },
            rate: rate.max(1),
            tokens: f64::from(rate.max(1)),
            refilled: now,
        }
    }
}

/// Shared runtime state of every trunk (see the module doc).
#[derive(Default)]
pub struct TrunkStatus {
    inner: Mutex<HashMap<TrunkId, Entry>>,
}

impl std::fmt::Debug for TrunkStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkStatus")
            .field("trunks", &self.lock().len())
            .finish()
    }
}

impl TrunkStatus {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TrunkId, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the trunks and their call rates (from the directory); state of
    /// trunks no longer listed is dropped, state of the others kept.
    pub fn set_trunks(&self, rates: impl IntoIterator<Item = (TrunkId, u32)>, now: Instant) {
        let mut map = self.lock();
        let mut seen = Vec::new();
        for (trunk, rate) in rates {
            seen.push(trunk);
            let e = map
                .entry(trunk)
                .or_insert_with(|| Entry::new(trunk, rate, now));
            e.rate = rate.max(1);
            e.tokens = e.tokens.min(f64::from(e.rate));
        }
        map.retain(|t, _| seen.contains(t));
    }

    /// Takes one call from the trunk's rate bucket (refilled at its calls
    /// per second, holding at most one second's worth). False: over the
    /// rate. A trunk the table does not know is not limited.
    pub fn take_call(&self, trunk: TrunkId, now: Instant) -> bool {
        let mut map = self.lock();
        let Some(e) = map.get_mut(&trunk) else {
            return true;
        };
        let rate = f64::from(e.rate);
        let elapsed = now.saturating_duration_since(e.refilled).as_secs_f64();
        e.tokens = (e.tokens + elapsed * rate).min(rate);
        e.refilled = now;
        if e.tokens >= 1.0 {
            e.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the last keepalive found the trunk down.
    pub fn is_down(&self, trunk: TrunkId) -> bool {
        self.lock()
            .get(&trunk)
            .is_some_and(|e| e.runtime.health == Health::Down)
    }

    /// Records a keepalive result: `Some(status)` answered after `latency`,
    /// `None` no answer.
    pub fn record_probe(
        &self,
        trunk: TrunkId,
        answer: Option<(u16, Duration)>,
        at: SystemTime,
    ) -> Option<Health> {
        let mut map = self.lock();
        let e = map.get_mut(&trunk)?;
        let before = e.runtime.health;
        let r = &mut e.runtime;
        r.checked_at = Some(at);
        match answer {
            Some((status, latency)) => {
                r.health = Health::Up;
                r.last_status = Some(status);
                r.latency = Some(latency);
            }
            None => {
                r.health = Health::Down;
                r.last_status = None;
                r.latency = None;
            }
        }
        (before != r.health).then_some(r.health)
    }

    /// Records the outcome of a registration attempt.
    pub fn record_registration(&self, trunk: TrunkId, reg: Registration) {
        if let Some(e) = self.lock().get_mut(&trunk) {
            e.runtime.registration = Some(reg);
        }
    }

    /// Every known trunk's state.
    pub fn snapshot(&self) -> Vec<TrunkRuntime> {
        self.lock().values().map(|e| e.runtime.clone()).collect()
    }

    /// One trunk's state.
    pub fn get(&self, trunk: TrunkId) -> Option<TrunkRuntime> {
        self.lock().get(&trunk).map(|e| e.runtime.clone())
    }
}

/// `sip:[user@]host:port` for a trunk (`;transport=tcp|tls` when not UDP);
/// `None` when the host cannot make a URI.
pub(crate) fn trunk_uri(
    user: Option<&str>,
    host: &str,
    port: u16,
    transport: sip::transaction::Transport,
) -> Option<sip::Uri> {
    use sip::transaction::Transport;
    let host = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => host.to_owned(),
    };
    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
    let param = match transport {
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
        _ => "",
    };
    sip::Uri::parse(&format!("sip:{user}{host}:{port}{param}")).ok()
}

/// Checks a carrier's answer to our 407 against a digest trunk's password
/// (the same verifier, nonces and brute-force guard as phones). `Ok`:
/// authenticated as `trunk`. `Err(Some(r))`: send `r` (a fresh 407 when the
/// nonce was stale, 403 after a wrong password, counted by the guard).
/// `Err(None)`: say nothing (banned source).
pub(crate) fn inbound_digest(
    auth: &crate::server::calls::AuthContext,
    request: &sip::Request,
    creds: &sip::auth::Credentials,
    realm: &str,
    ip: std::net::IpAddr,
    trunk: &inbound::DigestTrunk,
    unix_now: Duration,
) -> Result<(), Option<sip::Response>> {
    use sip::guard::AuthGate;
    let guard = || auth.guard.lock().unwrap_or_else(|p| p.into_inner());
    match guard().check_auth(ip, &creds.username, realm, auth.epoch.elapsed()) {
        AuthGate::Allow => {}
        AuthGate::IpBanned { .. } => return Err(None),
        AuthGate::UserLocked { .. } => {
            return Err(Some(request.response_tagged(sip::StatusCode::FORBIDDEN)));
        }
    }
    let ha1 = sip::auth::ha1(
        creds.algorithm.base(),
        &trunk.username,
        realm,
        trunk.password.expose(),
    );
    let verdict = crate::call::auth::verify_invite(
        &auth.verifier,
        auth.challenges,
        request,
        creds,
        realm,
        ip,
        Some(&ha1),
        unix_now,
    );
    match verdict {
        Ok(()) => {
            guard().record_success(ip, &creds.username, realm, auth.epoch.elapsed());
            Ok(())
        }
        Err(resp) => {
            if resp.status == sip::StatusCode::FORBIDDEN {
                tracing::info!(%ip, trunk = %trunk.trunk, "trunk digest authentication failed");
                metrics::counter!("sip_auth_failures_total", "method" => "INVITE").increment(1);
                for ev in guard().record_failure(ip, &creds.username, realm, auth.epoch.elapsed()) {
                    tracing::warn!(?ev, "brute-force guard");
                }
            }
            Err(Some(resp))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_the_rate_then_refills() {
        let s = TrunkStatus::default();
        let t = TrunkId::new();
        let t0 = Instant::now();
        s.set_trunks([(t, 3)], t0);
        assert!((0..3).all(|_| s.take_call(t, t0)));
        assert!(!s.take_call(t, t0), "the fourth call in the same instant");
        assert!(!s.take_call(t, t0 + Duration::from_millis(300)));
        assert!(s.take_call(t, t0 + Duration::from_millis(340)));
        // a long pause does not bank more than one second's worth
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| s.take_call(t, later)));
        assert!(!s.take_call(t, later));
        assert!(
            s.take_call(TrunkId::new(), t0),
            "unknown trunks are not limited"
        );
    }

    #[test]
    fn probes_set_health_and_report_changes() {
        let s = TrunkStatus::default();
        let t = TrunkId::new();
        s.set_trunks([(t, 10)], Instant::now());
        assert!(!s.is_down(t));
        let now = SystemTime::now();
        assert_eq!(s.record_probe(t, None, now), Some(Health::Down));
        assert!(s.is_down(t));
        assert_eq!(s.record_probe(t, None, now), None);
        assert_eq!(
            s.record_probe(t, Some((200, Duration::from_millis(12))), now),
            Some(Health::Up)
        );
        let r = s.get(t).unwrap();
        assert_eq!((r.health, r.last_status), (Health::Up, Some(200)));
        assert_eq!(r.latency, Some(Duration::from_millis(12)));
        s.set_trunks([], Instant::now());
        assert!(s.snapshot().is_empty());
    }
}
