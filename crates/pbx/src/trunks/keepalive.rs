//! The trunk keepalive: an OPTIONS to every enabled trunk each interval
//! (default 30 s). Any response marks the trunk up (with its status and
//! round trip); none within [`PROBE_TIMEOUT`], or a transport error, marks
//! it down, and failover then tries it last. The probes are ordinary client
//! transactions of the calls task's layer; this type keeps their keys.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use sip::transaction::{Event, TxKey};
use store::TrunkId;

use super::{Health, TrunkStatus};

/// A probe unanswered this long marks its trunk down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(4);

struct Probe {
    trunk: TrunkId,
    sent: Instant,
    timed_out: bool,
}

/// Probes in flight and when the next round is due.
pub(crate) struct Keepalive {
    interval: Duration,
    next_round: Instant,
    probes: HashMap<TxKey, Probe>,
}

impl Keepalive {
    /// `None` when the interval is zero (probing off). The first round goes
    /// out at once.
    pub(crate) fn new(interval: Duration, now: Instant) -> Option<Self> {
        (!interval.is_zero()).then(|| Keepalive {
            interval,
            next_round: now,
            probes: HashMap::new(),
        })
    }

    /// The next instant something is due: a round, or a probe's timeout.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let probe = self
            .probes
            .values()
            .filter(|p| !p.timed_out)
            .map(|p| p.sent + PROBE_TIMEOUT)
            .min();
        Some(probe.map_or(self.next_round, |p| p.min(self.next_round)))
    }

    /// Whether a round is due now (and schedules the next one).
    pub(crate) fn round_due(&mut self, now: Instant) -> bool {
        if now < self.next_round {
            return false;
        }
        self.next_round = now + self.interval;
        true
    }

    /// Whether `trunk` already has a probe waiting for its answer.
    pub(crate) fn in_flight(&self, trunk: TrunkId) -> bool {
        self.probes
            .values()
            .any(|p| p.trunk == trunk && !p.timed_out)
    }

    pub(crate) fn sent(&mut self, key: TxKey, trunk: TrunkId, now: Instant) {
        self.probes.insert(
            key,
            Probe {
                trunk,
                sent: now,
                timed_out: false,
            },
        );
    }

    /// Marks trunks whose probe went unanswered past [`PROBE_TIMEOUT`] down.
    pub(crate) fn expire(&mut self, now: Instant, status: &TrunkStatus) {
        for p in self.probes.values_mut() {
            if !p.timed_out && now >= p.sent + PROBE_TIMEOUT {
                p.timed_out = true;
                report(status, p.trunk, None);
            }
        }
    }

    /// Takes the layer events about probes; gives any other event back.
    pub(crate) fn on_event(
        &mut self,
        ev: Event,
        status: &TrunkStatus,
        now: Instant,
    ) -> Option<Event> {
        let Some(key) = ev.key() else {
            return Some(ev);
        };
        let Some(p) = self.probes.get(key) else {
            return Some(ev);
        };
        match &ev {
            Event::Response { response, .. } if response.status.is_final() => {
                let rtt = now.saturating_duration_since(p.sent);
                report(status, p.trunk, Some((response.status.as_u16(), rtt)));
                let key = key.clone();
                self.probes.remove(&key);
            }
            Event::Response { .. } => {}
            Event::Timeout { .. } | Event::TransportError { .. } | Event::Terminated { .. } => {
                if !p.timed_out {
                    report(status, p.trunk, None);
                }
                let key = key.clone();
                self.probes.remove(&key);
            }
            _ => return Some(ev),
        }
        None
    }
}

fn report(status: &TrunkStatus, trunk: TrunkId, answer: Option<(u16, Duration)>) {
    if let Some(now) = status.record_probe(trunk, answer, SystemTime::now()) {
        match now {
            Health::Down => {
                tracing::warn!(%trunk, "trunk down: no answer to OPTIONS");
            }
            h => tracing::info!(%trunk, health = h.as_str(), "trunk health changed"),
        }
        metrics::counter!("trunk_health_changes_total", "state" => now.as_str()).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::{Method, Request, Response, StatusCode, Uri};

    fn key(branch: &str) -> TxKey {
        let mut layer = sip::transaction::TransactionLayer::new(Default::default(), 1);
        let mut r = Request::new(Method::Options, Uri::parse("sip:carrier").unwrap());
        r.headers.push(
            "Via",
            &format!("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK{branch}"),
        );
        for (n, v) in [
            ("From", "<sip:a@b>;tag=1"),
            ("To", "<sip:c@d>"),
            ("Call-ID", "x"),
        ] {
            r.headers.push(n, v);
        }
        r.headers.push("CSeq", "1 OPTIONS");
        let dest = sip::transaction::Target::new(
            sip::transaction::Transport::Udp,
            "127.0.0.1:5060".parse().unwrap(),
        );
        layer.send_request(r, dest, Instant::now()).unwrap()
    }

    #[test]
    fn answered_probe_marks_up_silent_probe_marks_down() {
        let status = TrunkStatus::default();
        let (a, b) = (TrunkId::new(), TrunkId::new());
        let t0 = Instant::now();
        status.set_trunks([(a, 10), (b, 10)], t0);
        let mut k = Keepalive::new(Duration::from_secs(30), t0).unwrap();
        assert!(k.round_due(t0));
        assert!(!k.round_due(t0 + Duration::from_secs(1)));
        k.sent(key("a"), a, t0);
        k.sent(key("b"), b, t0);
        assert!(k.in_flight(a));
        assert_eq!(k.poll_timeout(), Some(t0 + PROBE_TIMEOUT));
        let mut ok = Response::new(StatusCode::new(404).unwrap());
        ok.headers.push("CSeq", "1 OPTIONS");
        let ev = Event::Response {
            key: key("a"),
            response: ok,
        };
        assert!(
            k.on_event(ev, &status, t0 + Duration::from_millis(30))
                .is_none()
        );
        let ra = status.get(a).unwrap();
        assert_eq!((ra.health, ra.last_status), (Health::Up, Some(404)));
        assert_eq!(ra.latency, Some(Duration::from_millis(30)));
        k.expire(t0 + PROBE_TIMEOUT, &status);
        assert!(status.is_down(b));
        assert!(!k.in_flight(b));
        assert_eq!(k.poll_timeout(), Some(t0 + Duration::from_secs(30)));
        // the layer's own timeout later does not report twice; other events pass
        let t = Event::Timeout {
            key: key("b"),
            timer: sip::transaction::Timer::F,
        };
        assert!(k.on_event(t, &status, t0).is_none());
        let other = Event::Terminated { key: key("zz") };
        assert!(k.on_event(other, &status, t0).is_some());
    }

    #[test]
    fn zero_interval_is_off() {
        assert!(Keepalive::new(Duration::ZERO, Instant::now()).is_none());
    }
}
