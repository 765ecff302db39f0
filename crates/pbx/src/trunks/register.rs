//! Registration to the provider, for trunks that need it: a REGISTER
//! (digest answered once per attempt, RFC 3261 §22.2) with the trunk's
//! username, refreshed at 80 % of the expiry the provider grants; a failure
//! is retried after [`RETRY_AFTER`]. The state (registered until / failed
//! with status) goes into [`TrunkStatus`] for the operator's trunk page.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use sip::transaction::{Event, Target, TxKey};
use sip::{Method, Request, Response};
use store::TrunkId;

use super::inbound::{RegisterSettings, TrunkTarget};
use super::{Registration, TrunkStatus};
use crate::call::CallEngine;

/// How long after a failed registration the next attempt goes out.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

struct State {
    settings: RegisterSettings,
    call_id: String,
    cseq: u32,
    next_at: Option<Instant>,
    /// The challenge to answer in the next REGISTER (header name, value).
    challenge: Option<(&'static str, String)>,
    /// This attempt has already answered a challenge.
    auth_tried: bool,
}

/// Registrations of every trunk that asks for one.
#[derive(Default)]
pub(crate) struct Registrations {
    states: HashMap<TrunkId, State>,
    pending: HashMap<TxKey, TrunkId>,
}

impl Registrations {
    /// Follows the trunk table: new registering trunks start at once, changed
    /// settings re-register at once, trunks no longer registering are
    /// forgotten.
    pub(crate) fn update(&mut self, targets: &[TrunkTarget], now: Instant) {
        self.states.retain(|t, _| {
            targets
                .iter()
                .any(|x| x.trunk == *t && x.register.is_some())
        });
        for t in targets {
            let Some(reg) = &t.register else { continue };
            let changed = self.states.get(&t.trunk).is_none_or(|s| {
                s.settings.username != reg.username
                    || s.settings.password.expose() != reg.password.expose()
                    || s.settings.dest != reg.dest
                    || s.settings.expires != reg.expires
                    || s.settings.registrar_host != reg.registrar_host
            });
            if changed {
                self.states.insert(
                    t.trunk,
                    State {
                        settings: reg.clone(),
                        call_id: String::new(),
                        cseq: 0,
                        next_at: Some(now),
                        challenge: None,
                        auth_tried: false,
                    },
                );
            }
        }
    }

    /// When the next REGISTER is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.states.values().filter_map(|s| s.next_at).min()
    }

    /// The REGISTERs due now, built by `engine` (Via, tags, Call-ID kept
    /// across refreshes, CSeq counting up).
    pub(crate) fn due(
        &mut self,
        now: Instant,
        engine: &mut CallEngine,
    ) -> Vec<(TrunkId, Request, Target)> {
        let mut out = Vec::new();
        for (trunk, s) in &mut self.states {
            if s.next_at.is_none_or(|at| at > now) {
                continue;
            }
            s.next_at = None;
            let reg = &s.settings;
            let Some(uri) = super::trunk_uri(
                None,
                &reg.registrar_host,
                reg.dest.addr.port(),
                reg.dest.transport,
            ) else {
                continue;
            };
            let domain = reg.from_domain.as_deref().unwrap_or(&reg.registrar_host);
            let aor = format!("<sip:{}@{domain}>", reg.username);
            if s.call_id.is_empty() {
                s.call_id = format!("{}@switchboard", engine.tokens.next());
            }
            s.cseq = s.cseq.saturating_add(1);
            let mut req = engine.trunk_request(
                Method::Register,
                uri.clone(),
                (&aor, &aor),
                reg.dest,
                Some(&s.call_id),
                s.cseq,
            );
            let contact = match reg.dest.transport {
                sip::transaction::Transport::Udp => {
                    format!("<sip:{}@{}>", reg.username, engine.sip_addr())
                }
                t => format!(
                    "<sip:{}@{};transport={}>",
                    reg.username,
                    engine.sip_addr(),
                    t.to_string().to_ascii_lowercase()
                ),
            };
            req.headers.set("Contact", &contact);
            req.headers.push("Expires", &reg.expires.to_string());
            if let Some((header, challenge)) = s.challenge.take() {
                if let Ok(c) = sip::auth::Challenge::parse(&challenge) {
                    let cnonce = engine.tokens.next();
                    let answer = c
                        .answer(
                            &reg.username,
                            reg.password.expose(),
                            "REGISTER",
                            uri.as_str(),
                            1,
                            &cnonce,
                        )
                        .to_header_value();
                    req.headers.push(header, &answer);
                }
            }
            out.push((*trunk, req, reg.dest));
        }
        out
    }

    pub(crate) fn sent(&mut self, key: TxKey, trunk: TrunkId) {
        self.pending.insert(key, trunk);
    }

    /// A REGISTER that could not be sent: failed, retried later.
    pub(crate) fn send_failed(
        &mut self,
        trunk: TrunkId,
        why: &str,
        status: &TrunkStatus,
        now: Instant,
    ) {
        self.fail(trunk, None, why, status, now);
    }

    /// Takes the layer events about REGISTERs; gives any other event back.
    pub(crate) fn on_event(
        &mut self,
        ev: Event,
        status: &TrunkStatus,
        now: Instant,
    ) -> Option<Event> {
        let Some(&trunk) = ev.key().and_then(|k| self.pending.get(k)) else {
            return Some(ev);
        };
        match ev {
            Event::Response { key, response } if response.status.is_final() => {
                self.pending.remove(&key);
                self.on_final(trunk, &response, status, now);
            }
            Event::Response { .. } => {}
            Event::Timeout { key, .. } | Event::TransportError { key } => {
                self.pending.remove(&key);
                self.fail(trunk, None, "no response from the registrar", status, now);
            }
            Event::Terminated { key } => {
                self.pending.remove(&key);
            }
            other => return Some(other),
        }
        None
    }

    fn on_final(&mut self, trunk: TrunkId, resp: &Response, status: &TrunkStatus, now: Instant) {
        let code = resp.status.as_u16();
        let Some(s) = self.states.get_mut(&trunk) else {
            return;
        };
        if resp.status.is_success() {
            let granted = granted_expiry(resp, s.settings.expires);
            s.auth_tried = false;
            // refresh at 80 % of what was granted (at least a second ahead)
            let refresh = Duration::from_secs(u64::from(granted)).mul_f64(0.8);
            s.next_at = Some(now + refresh.max(Duration::from_secs(1)));
            let expires_at = SystemTime::now() + Duration::from_secs(u64::from(granted));
            tracing::info!(%trunk, granted, "registered to the provider");
            status.record_registration(trunk, Registration::Registered { expires_at });
            return;
        }
        if (code == 401 || code == 407) && !s.auth_tried {
            let header = if code == 407 {
                ("Proxy-Authenticate", "Proxy-Authorization")
            } else {
                ("WWW-Authenticate", "Authorization")
            };
            if let Some(c) = resp.headers.get_all(header.0).next() {
                s.challenge = Some((header.1, c.to_owned()));
                s.auth_tried = true;
                s.next_at = Some(now);
                return;
            }
        }
        let reason = format!("{code} {}", resp.reason);
        self.fail(trunk, Some(code), &reason, status, now);
    }

    fn fail(
        &mut self,
        trunk: TrunkId,
        code: Option<u16>,
        why: &str,
        status: &TrunkStatus,
        now: Instant,
    ) {
        if let Some(s) = self.states.get_mut(&trunk) {
            s.auth_tried = false;
            s.challenge = None;
            s.next_at = Some(now + RETRY_AFTER);
        }
        tracing::warn!(%trunk, status = ?code, reason = why, "registration to the provider failed");
        status.record_registration(
            trunk,
            Registration::Failed {
                status: code,
                reason: why.to_owned(),
            },
        );
    }
}

/// The expiry the registrar granted: our Contact's `expires` parameter, else
/// the Expires header, else what we asked for.
fn granted_expiry(resp: &Response, asked: u32) -> u32 {
    if let Ok(sip::Contacts::List(list)) = resp.headers.contacts() {
        if let Some(e) = list.iter().find_map(|c| {
            c.params
                .value("expires")
                .and_then(|v| v.parse::<u32>().ok())
        }) {
            return e;
        }
    }
    resp.headers
        .get("Expires")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(asked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::StatusCode;
    use sip::transaction::{TransactionLayer, Transport};
    use store::Secret;

    fn target(trunk: TrunkId) -> TrunkTarget {
        let dest = Target::new(Transport::Udp, "127.0.0.1:5080".parse().unwrap());
        TrunkTarget {
            trunk,
            host: "127.0.0.1".into(),
            port: 5080,
            dest,
            register: Some(RegisterSettings {
                username: "acct".into(),
                password: Secret::new("pw"),
                registrar_host: "127.0.0.1".into(),
                dest,
                expires: 600,
                from_domain: None,
            }),
        }
    }

    /// A key the layer made for a REGISTER it sent.
    fn key(layer: &mut TransactionLayer, n: u32) -> TxKey {
        let mut r = Request::new(
            Method::Register,
            sip::Uri::parse("sip:127.0.0.1:5080").unwrap(),
        );
        r.headers.push("Via", "SIP/2.0/UDP 127.0.0.1:5060");
        for (h, v) in [
            ("From", "<sip:a@b>;tag=1"),
            ("To", "<sip:a@b>"),
            ("Call-ID", "r"),
        ] {
            r.headers.push(h, v);
        }
        r.headers.push("CSeq", &format!("{n} REGISTER"));
        let dest = Target::new(Transport::Udp, "127.0.0.1:5080".parse().unwrap());
        layer.send_request(r, dest, Instant::now()).unwrap()
    }

    fn final_response(key: TxKey, code: u16, extra: &[(&str, &str)]) -> Event {
        let mut response = Response::new(StatusCode::new(code).unwrap());
        response.headers.push("CSeq", "1 REGISTER");
        for (h, v) in extra {
            response.headers.push(h, v);
        }
        Event::Response { key, response }
    }

    #[test]
    fn granted_expiry_sets_the_refresh_and_the_shown_state() {
        let (trunk, status, t0) = (TrunkId::new(), TrunkStatus::default(), Instant::now());
        status.set_trunks([(trunk, 10)], t0);
        let mut regs = Registrations::default();
        regs.update(&[target(trunk)], t0);
        assert_eq!(
            regs.poll_timeout(),
            Some(t0),
            "a new registration starts at once"
        );
        let mut layer = TransactionLayer::new(Default::default(), 1);
        let k = key(&mut layer, 1);
        regs.states.get_mut(&trunk).unwrap().next_at = None;
        regs.sent(k.clone(), trunk);
        let ok = final_response(
            k,
            200,
            &[("Contact", "<sip:acct@127.0.0.1:5060>;expires=90")],
        );
        assert!(regs.on_event(ok, &status, t0).is_none());
        assert_eq!(regs.poll_timeout(), Some(t0 + Duration::from_secs(72)));
        match status.get(trunk).unwrap().registration {
            Some(Registration::Registered { expires_at }) => {
                let left = expires_at.duration_since(SystemTime::now()).unwrap();
                assert!(left > Duration::from_secs(85) && left <= Duration::from_secs(90));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_second_challenge_or_a_refusal_fails_and_retries_later() {
        let (trunk, status, t0) = (TrunkId::new(), TrunkStatus::default(), Instant::now());
        status.set_trunks([(trunk, 10)], t0);
        let mut regs = Registrations::default();
        regs.update(&[target(trunk)], t0);
        let mut layer = TransactionLayer::new(Default::default(), 1);
        let challenge = [("WWW-Authenticate", "Digest realm=\"c\", nonce=\"n\"")];
        // the first 401 is answered at once
        let k1 = key(&mut layer, 1);
        regs.sent(k1.clone(), trunk);
        assert!(
            regs.on_event(final_response(k1, 401, &challenge), &status, t0)
                .is_none()
        );
        assert_eq!(regs.poll_timeout(), Some(t0));
        assert!(regs.states[&trunk].challenge.is_some());
        // a second 401 in the same attempt: wrong credentials
        let k2 = key(&mut layer, 2);
        regs.sent(k2.clone(), trunk);
        regs.on_event(final_response(k2, 401, &challenge), &status, t0);
        assert_eq!(regs.poll_timeout(), Some(t0 + RETRY_AFTER));
        match status.get(trunk).unwrap().registration {
            Some(Registration::Failed {
                status: Some(401),
                reason,
            }) => {
                assert!(reason.starts_with("401"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // a timeout is a failure without status
        let k3 = key(&mut layer, 3);
        regs.sent(k3.clone(), trunk);
        let timeout = Event::Timeout {
            key: k3,
            timer: sip::transaction::Timer::F,
        };
        assert!(regs.on_event(timeout, &status, t0).is_none());
        assert!(matches!(
            status.get(trunk).unwrap().registration,
            Some(Registration::Failed { status: None, .. })
        ));
        // a trunk that stops registering is forgotten
        regs.update(&[], t0);
        assert_eq!(regs.poll_timeout(), None);
    }
}
