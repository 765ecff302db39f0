//! The binding rules of a REGISTER (RFC 3261 §10.3 steps 6–8), the 200 OK, and the mapping
//! between in-memory and stored bindings.

use std::time::{SystemTime, UNIX_EPOCH};

use sip::{Contacts, Request, Response, StatusCode};
use store::{RegistrationChange, TenantId};
use time::OffsetDateTime;

use super::cache::CachedCred;
use super::{Now, Registrar, Step, bad_request, truncate_owned};
use crate::location::{Binding, expiry};
use crate::transport::Flow;

impl Registrar {
    /// For a replayed (hence correctly signed) REGISTER: if it is an exact retransmission of the
    /// one that wrote a binding, the 200 again.
    pub(super) fn retransmission(
        &self,
        req: &Request,
        tenant: TenantId,
        cred: &CachedCred,
        now: Now,
    ) -> Option<Response> {
        let call_id = req.call_id().ok().flatten()?;
        let cseq = req.cseq().ok().flatten()?.seq;
        let branch = req
            .top_via()
            .ok()
            .flatten()
            .and_then(|v| v.branch())
            .unwrap_or("");
        self.location
            .with_aor(tenant, cred.extension_id, now.wall, |bindings| {
                let hit = bindings.iter().any(|b| {
                    b.credential_id == cred.id
                        && b.call_id == call_id
                        && b.cseq == cseq
                        && !branch.is_empty()
                        && b.branch == branch
                });
                hit.then(|| ok_response(req, bindings, now.wall))
            })
    }

    /// `aor` is the To URI (already parsed by the caller).
    pub(super) fn bindings(
        &self,
        req: &Request,
        flow: &Flow,
        tenant: TenantId,
        cred: &CachedCred,
        aor: &str,
        now: Now,
    ) -> Step {
        let (Ok(Some(call_id)), Ok(Some(cseq))) = (req.call_id(), req.cseq()) else {
            return Step::Reply(bad_request(req, "Call-ID and CSeq required"));
        };
        let cseq = cseq.seq;
        let branch = req
            .top_via()
            .ok()
            .flatten()
            .and_then(|v| v.branch())
            .unwrap_or("");
        let contacts = match req.contacts() {
            Ok(c) => c,
            Err(_) => return Step::Reply(bad_request(req, "malformed Contact")),
        };
        let expires_hdr = req.expires().ok().flatten();
        let mut wanted: Vec<Wanted<'_>> = Vec::new();
        let star = match contacts {
            Contacts::Star => {
                if expires_hdr != Some(0) {
                    return Step::Reply(bad_request(req, "Contact: * requires Expires: 0"));
                }
                true
            }
            Contacts::List(list) => {
                if list.len() > self.cfg.max_contacts {
                    let mut r = req.response_tagged(StatusCode::FORBIDDEN);
                    r.reason = "Forbidden (too many contacts)".to_owned();
                    return Step::Reply(r);
                }
                for c in &list {
                    let mut exp = c
                        .expires()
                        .or(expires_hdr)
                        .unwrap_or(self.cfg.default_expires);
                    if exp != 0 && exp < self.cfg.min_expires {
                        let mut r = req.response_tagged(StatusCode::INTERVAL_TOO_BRIEF);
                        r.headers
                            .push("Min-Expires", &self.cfg.min_expires.to_string());
                        return Step::Reply(r);
                    }
                    exp = exp.min(self.cfg.max_expires);
                    if wanted.iter().any(|w| w.uri == c.uri.as_str()) {
                        // the same contact twice in one request: the first one counts
                        continue;
                    }
                    let instance = c.params.get("+sip.instance").flatten();
                    let reg_id = c.params.value("reg-id").and_then(|v| v.parse::<u32>().ok());
                    wanted.push(Wanted {
                        uri: c.uri.as_str(),
                        expires: exp,
                        q: c.q(),
                        instance,
                        reg_id,
                    });
                }
                false
            }
        };
        let user_agent = req.user_agent().map(|s| truncate_owned(s, 256));
        let path = {
            let p: Vec<&str> = req.headers("Path").collect();
            (!p.is_empty()).then(|| truncate_owned(&p.join(", "), 1024))
        };
        let aor = aor.to_owned();
        let max_contacts = self.cfg.max_contacts;
        let result = self.location.with_aor(tenant, cred.extension_id, now.wall, |bindings| {
            // which stored bindings each wanted contact replaces (same device)
            let matches = |b: &Binding, w: &Wanted<'_>| {
                b.credential_id == cred.id
                    && (b.contact == w.uri
                        || (w.instance.is_some()
                            && b.instance_id.as_deref() == w.instance
                            && b.reg_id == w.reg_id))
            };
            let affected = |b: &Binding| star && b.credential_id == cred.id || wanted.iter().any(|w| matches(b, w));
            let mut retransmit = false;
            for b in bindings.iter().filter(|b| affected(b)) {
                if b.call_id == call_id {
                    if cseq == b.cseq && !branch.is_empty() && b.branch == branch {
                        retransmit = true;
                    } else if cseq <= b.cseq {
                        return Err(Refusal::OutOfOrder);
                    }
                }
            }
            if retransmit {
                return Ok((Vec::new(), ok_response(req, bindings, now.wall)));
            }
            let kept = bindings.iter().filter(|b| !affected(b)).count();
            let added = wanted.iter().filter(|w| w.expires > 0).count();
            if kept + added > max_contacts {
                return Err(Refusal::TooMany);
            }
            let mut changes = Vec::new();
            bindings.retain(|b| {
                if affected(b) {
                    changes.push(RegistrationChange::Remove {
                        tenant,
                        credential: b.credential_id,
                        contact_uri: b.contact.clone(),
                    });
                    false
                } else {
                    true
                }
            });
            for w in wanted.iter().filter(|w| w.expires > 0) {
                // an upsert of the same contact supersedes its removal
                changes.retain(|c| !matches!(c, RegistrationChange::Remove { contact_uri, .. } if contact_uri == w.uri));
                let b = Binding {
                    tenant,
                    extension_id: cred.extension_id,
                    credential_id: cred.id,
                    aor: aor.clone(),
                    contact: w.uri.to_owned(),
                    q: w.q,
                    expires_at: expiry(now.wall, w.expires),
                    instance_id: w.instance.map(str::to_owned),
                    reg_id: w.reg_id,
                    flow: *flow,
                    user_agent: user_agent.clone(),
                    path: path.clone(),
                    call_id: call_id.to_owned(),
                    cseq,
                    branch: branch.to_owned(),
                };
                changes.push(RegistrationChange::Upsert { tenant, binding: to_store(&b) });
                bindings.push(b);
            }
            Ok((changes, ok_response(req, bindings, now.wall)))
        });
        match result {
            Ok((changes, resp)) => {
                metrics::counter!("sip_registrations_total").increment(1);
                // even without changes (a query, a retransmission) the 200 queues behind the
                // commits in flight, so it never reports a binding that is not stored yet
                Step::Commit(changes, resp)
            }
            Err(Refusal::OutOfOrder) => {
                let mut r = req.response_tagged(StatusCode::SERVER_INTERNAL_ERROR);
                r.reason = "Server Internal Error (CSeq out of order)".to_owned();
                Step::Reply(r)
            }
            Err(Refusal::TooMany) => {
                let mut r = req.response_tagged(StatusCode::FORBIDDEN);
                r.reason = "Forbidden (too many contacts)".to_owned();
                Step::Reply(r)
            }
        }
    }
}

struct Wanted<'a> {
    uri: &'a str,
    expires: u32,
    q: Option<u16>,
    instance: Option<&'a str>,
    reg_id: Option<u32>,
}

enum Refusal {
    OutOfOrder,
    TooMany,
}

/// The 200 OK: every live contact of the AOR with its remaining time, and a Date.
fn ok_response(req: &Request, bindings: &[Binding], now: SystemTime) -> Response {
    let mut r = req.response_tagged(StatusCode::OK);
    let mut v = String::with_capacity(128);
    for b in bindings.iter().filter(|b| b.is_live(now)) {
        v.clear();
        v.push('<');
        v.push_str(&b.contact);
        v.push_str(">;expires=");
        push_decimal(&mut v, u64::from(b.remaining_secs(now)));
        if let Some(q) = b.q {
            v.push_str(";q=");
            push_decimal(&mut v, u64::from(q / 1000));
            v.push('.');
            let frac = q % 1000;
            for div in [100, 10, 1] {
                v.push(char::from(b'0' + ((frac / div) % 10) as u8));
            }
        }
        if let Some(i) = &b.instance_id {
            v.push_str(";+sip.instance=");
            v.push_str(i);
            if let Some(id) = b.reg_id {
                v.push_str(";reg-id=");
                push_decimal(&mut v, u64::from(id));
            }
        }
        r.headers.push("Contact", &v);
    }
    r.headers.push("Date", &http_date(now));
    r
}

/// Appends `n` in decimal (the 200 OK is built per REGISTER; `write!` costs more).
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or(&[]) {
        out.push(char::from(d));
    }
}

fn to_store(b: &Binding) -> store::Binding {
    store::Binding {
        extension_id: b.extension_id,
        credential_id: b.credential_id,
        aor: b.aor.clone(),
        contact_uri: b.contact.clone(),
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        q: b.q.map(|q| f32::from(q) / 1000.0),
        expires_at: OffsetDateTime::from(b.expires_at),
        instance_id: b.instance_id.clone(),
        reg_id: b.reg_id,
        source_addr: b.flow.remote,
        transport: b.flow.kind.to_store(),
        local_addr: Some(b.flow.local),
        user_agent: b.user_agent.clone(),
        path: b.path.clone(),
    }
}

/// Back from the directory (start-up load).
pub(crate) fn from_store(r: store::Registration, fallback_local: std::net::SocketAddr) -> Binding {
    let b = r.binding;
    Binding {
        tenant: r.tenant_id,
        extension_id: b.extension_id,
        credential_id: b.credential_id,
        aor: b.aor,
        contact: b.contact_uri,
        q: b.q.map(|q| (q.clamp(0.0, 1.0) * 1000.0).round() as u16),
        expires_at: SystemTime::from(b.expires_at),
        instance_id: b.instance_id,
        reg_id: b.reg_id,
        flow: Flow {
            kind: crate::transport::TransportKind::from_store(b.transport),
            local: b.local_addr.unwrap_or(fallback_local),
            remote: b.source_addr,
            conn: None,
        },
        user_agent: b.user_agent,
        path: b.path,
        call_id: b.call_id,
        cseq: b.cseq,
        branch: String::new(),
    }
}

/// RFC 1123 date, as the Date header wants it. Formatted once per second per thread.
pub(crate) fn http_date(now: SystemTime) -> String {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
    }
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs || c.1.is_empty() {
            let t = OffsetDateTime::from(now);
            let fmt = time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            );
            c.1 = t.format(&fmt).unwrap_or_default();
            c.0 = secs;
        }
        c.1.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn decimals() {
        for n in [0u64, 7, 10, 99, 3600, 4_294_967_295, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn date_is_rfc1123() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(http_date(t), "Tue, 14 Nov 2023 22:13:20 GMT");
    }
}
