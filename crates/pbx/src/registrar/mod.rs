//! The registrar (RFC 3261 §10.3): digest authentication against the tenant's credentials,
//! then the binding rules, then group commit to the directory.
//!
//! Flow of a REGISTER:
//! 1. realm = the request-URI host (the tenant's SIP domain), or the To host when the
//!    request-URI is an IP address. No lookup is needed to challenge: the 401 carries two
//!    stateless challenges (SHA-256, then MD5).
//! 2. With credentials for that realm: [`Guard::check_auth`] (a banned IP is dropped, a locked
//!    username-from-IP gets 403 without verifying), then the credential from the
//!    [`cache::CredCache`] and [`Verifier::verify`]; an unknown realm or username goes through
//!    [`Verifier::verify_unknown_user`], so it is answered exactly like a wrong password: 403,
//!    counted as a failure. Stale or replayed nonces get a 401 with `stale=true`.
//! 3. The authenticated username must be the To URI user (else 403).
//! 4. Binding rules on the AOR (the extension), under the location lock: `Contact: *` only
//!    with `Expires: 0`; per contact `expires` param, else Expires header, else the default;
//!    423 under the minimum (except 0), clamp to the maximum; same Call-ID with a CSeq not
//!    above the stored one is refused (500) — except an exact retransmission (same Call-ID,
//!    CSeq and Via branch), which is answered 200 again: that is how retransmissions are
//!    absorbed without a transaction table. The 200 lists all live contacts of the AOR.
//!
//! Choices: a wrong password is answered 403 at once (not re-challenged), for known and unknown
//! users alike; `Contact: *` removes the bindings of the authenticated device (credential),
//! not those of the extension's other devices; contacts are matched by exact URI text or by
//! the same `+sip.instance` (and reg-id), so a phone whose NAT mapping changed replaces its
//! binding instead of adding one.

pub(crate) mod cache;
pub(crate) mod persist;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip::auth::{Algorithm, Credentials, Verdict, Verifier};
use sip::guard::{AuthGate, Guard, GuardEvent};
use sip::{Contacts, Request, Response, StatusCode};
use store::{RegistrationChange, TenantId};
use time::OffsetDateTime;

use crate::location::{Binding, LocationService, expiry};
use crate::transport::Flow;
use cache::{CachedCred, CredCache, REFETCH_AFTER, Resolved};

/// Registrar settings.
#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// Shortest accepted registration (423 below it). Default 60 s.
    pub min_expires: u32,
    /// Longest registration; longer requests are clamped. Default 3600 s.
    pub max_expires: u32,
    /// When the REGISTER says nothing. Default 3600 s.
    pub default_expires: u32,
    /// Contacts per extension (all devices) at most. Default 20.
    pub max_contacts: usize,
    /// Credential cache entry lifetime. Default 30 s.
    pub cache_ttl: Duration,
    /// Credential cache size per map. Default 200,000.
    pub cache_max_entries: usize,
    /// Directory lookups in flight at most (cache misses); beyond, REGISTERs are dropped and
    /// the phone retransmits. Default 64.
    pub max_lookups: usize,
    /// Offer a SHA-256 challenge (before the MD5 one, RFC 8760). Default true. Some clients
    /// fail on any challenge algorithm they do not know instead of skipping it (baresip 1.0 /
    /// libre: "Function not implemented"), so a deployment with such phones turns it off and
    /// challenges with MD5 only, as Asterisk and FreeSWITCH do.
    pub offer_sha256: bool,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 20,
            cache_ttl: Duration::from_secs(30),
            cache_max_entries: 200_000,
            max_lookups: 64,
            offer_sha256: true,
        }
    }
}

/// What to do with a REGISTER.
pub(crate) enum Step {
    Reply(Response),
    /// Say nothing (banned source).
    Drop,
    /// Commit these changes, then send the response.
    Commit(Vec<RegistrationChange>, Response),
    /// The credential is not cached (or must be refetched): go the slow way.
    Lookup,
}

/// Clocks of one request: wall time for nonces and expiry, monotonic for the guard and cache.
#[derive(Clone, Copy)]
pub(crate) struct Now {
    pub wall: SystemTime,
    pub mono: Instant,
    /// Guard time: monotonic since the service started.
    pub guard: Duration,
}

impl Now {
    fn unix(&self) -> Duration {
        self.wall.duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

pub(crate) struct Registrar {
    cfg: RegistrarConfig,
    pub(crate) cache: Arc<CredCache>,
    location: Arc<LocationService>,
    verifier: Verifier,
    guard: Arc<Mutex<Guard>>,
}

struct AuthInput<'r> {
    realm: Cow<'r, str>,
    creds: Credentials,
}

impl Registrar {
    pub fn new(
        cfg: RegistrarConfig,
        cache: Arc<CredCache>,
        location: Arc<LocationService>,
        verifier: Verifier,
        guard: Arc<Mutex<Guard>>,
    ) -> Self {
        Registrar {
            cfg,
            cache,
            location,
            verifier,
            guard,
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fast path: everything in memory. Returns [`Step::Lookup`] when the directory is
    /// needed; then call [`Registrar::handle_slow`] on a task.
    pub fn handle_fast(&self, req: &Request, flow: &Flow, now: Now) -> Step {
        let input = match self.auth_input(req, flow, now) {
            Ok(i) => i,
            Err(step) => return step,
        };
        match self
            .cache
            .get(&input.realm, &input.creds.username, now.mono)
        {
            Some((resolved, stale)) => {
                if stale {
                    self.cache.refresh(&input.realm, &input.creds.username);
                }
                self.after_lookup(req, flow, &input, &resolved, false, now)
            }
            None => Step::Lookup,
        }
    }

    /// The slow path: fetches the credential from the directory when needed.
    pub async fn handle_slow(&self, req: &Request, flow: &Flow, now: Now) -> Step {
        let input = match self.auth_input(req, flow, now) {
            Ok(i) => i,
            Err(step) => return step,
        };
        let resolved = match self
            .cache
            .get(&input.realm, &input.creds.username, now.mono)
        {
            Some((r, _)) => r,
            None => match self.cache.fetch(&input.realm, &input.creds.username).await {
                Ok(r) => r,
                Err(e) => return self.unavailable(req, &e),
            },
        };
        match self.after_lookup(req, flow, &input, &resolved, false, now) {
            Step::Lookup => match self.cache.fetch(&input.realm, &input.creds.username).await {
                Ok(r) => self.after_lookup(req, flow, &input, &r, true, now),
                Err(e) => self.unavailable(req, &e),
            },
            step => step,
        }
    }

    fn unavailable(&self, req: &Request, e: &store::StoreError) -> Step {
        tracing::warn!(error = %e, "credential lookup failed");
        let mut r =
            req.response_tagged(StatusCode::new(503).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR));
        r.headers.push("Retry-After", "5");
        Step::Reply(r)
    }

    /// Realm and credentials, or the answer when there are none to check (401 challenge).
    // The error is the next step itself, built once and moved; boxing it would only add an
    // allocation on the challenge path.
    #[allow(clippy::result_large_err)]
    fn auth_input<'r>(
        &self,
        req: &'r Request,
        flow: &Flow,
        now: Now,
    ) -> Result<AuthInput<'r>, Step> {
        if !req.uri.is_sip() {
            return Err(Step::Reply(
                req.response_tagged(StatusCode::UNSUPPORTED_URI_SCHEME),
            ));
        }
        let realm = match realm_of(req) {
            Some(r) => r,
            None => {
                return Err(Step::Reply(bad_request(
                    req,
                    "no domain in the request-URI or To",
                )));
            }
        };
        let mut found = None;
        for value in req.headers("Authorization") {
            if let Ok(c) = Credentials::parse(value) {
                if c.realm == realm {
                    found = Some(c);
                    break;
                }
            }
        }
        let Some(creds) = found else {
            return Err(Step::Reply(self.challenge(req, &realm, false, now)));
        };
        match self
            .guard()
            .check_auth(flow.remote.ip(), &creds.username, &realm, now.guard)
        {
            AuthGate::Allow => Ok(AuthInput { realm, creds }),
            AuthGate::IpBanned { .. } => Err(Step::Drop),
            AuthGate::UserLocked { .. } => {
                Err(Step::Reply(req.response_tagged(StatusCode::FORBIDDEN)))
            }
        }
    }

    fn challenge(&self, req: &Request, realm: &str, stale: bool, now: Now) -> Response {
        let mut r = req.response_tagged(StatusCode::UNAUTHORIZED);
        let [sha256, md5] = self.verifier.challenge_headers(realm, stale, now.unix());
        if self.cfg.offer_sha256 {
            r.headers.push("WWW-Authenticate", &sha256);
        }
        r.headers.push("WWW-Authenticate", &md5);
        r
    }

    fn after_lookup(
        &self,
        req: &Request,
        flow: &Flow,
        input: &AuthInput<'_>,
        resolved: &Resolved,
        refetched: bool,
        now: Now,
    ) -> Step {
        let creds = &input.creds;
        let realm: &str = &input.realm;
        let uri = req.uri.as_str();
        let verdict = match resolved {
            Resolved::Known { cred, .. } => {
                let ha1 = match creds.algorithm.base() {
                    Algorithm::Md5 => &cred.ha1_md5,
                    _ => &cred.ha1_sha256,
                };
                self.verifier
                    .verify(creds, "REGISTER", uri, realm, ha1, now.unix())
            }
            Resolved::Unknown { .. } => {
                self.verifier
                    .verify_unknown_user(creds, "REGISTER", uri, realm, now.unix())
            }
        };
        if verdict == Verdict::BadResponse
            && !refetched
            && now.mono.saturating_duration_since(resolved.fetched()) > REFETCH_AFTER
        {
            return Step::Lookup;
        }
        let ip = flow.remote.ip();
        match verdict {
            Verdict::Ok => {}
            Verdict::Stale => return Step::Reply(self.challenge(req, realm, true, now)),
            Verdict::Replayed => {
                if let Resolved::Known { tenant, cred, .. } = resolved {
                    if let Some(resp) = self.retransmission(req, *tenant, cred, now) {
                        return Step::Commit(Vec::new(), resp);
                    }
                }
                return Step::Reply(self.challenge(req, realm, true, now));
            }
            Verdict::BadNonce | Verdict::WrongRealm => {
                return Step::Reply(self.challenge(req, realm, false, now));
            }
            Verdict::BadResponse => {
                self.failure(ip, &creds.username, realm, now);
                return Step::Reply(req.response_tagged(StatusCode::FORBIDDEN));
            }
            Verdict::BadStoredHa1 => {
                tracing::error!(realm, username = %truncate(&creds.username), "stored HA1 is malformed");
                return Step::Reply(req.response_tagged(StatusCode::FORBIDDEN));
            }
            Verdict::UriMismatch | Verdict::QopRequired | Verdict::Unsupported => {
                return Step::Reply(req.response_tagged(StatusCode::FORBIDDEN));
            }
        }
        let Resolved::Known { tenant, cred, .. } = resolved else {
            // unreachable in practice: verify_unknown_user never says Ok
            return Step::Reply(req.response_tagged(StatusCode::FORBIDDEN));
        };
        self.guard()
            .record_success(ip, &creds.username, realm, now.guard);
        let to_user = req
            .to_addr()
            .ok()
            .flatten()
            .and_then(|t| t.uri.user());
        if to_user != Some(creds.username.as_str()) {
            let mut r = req.response_tagged(StatusCode::FORBIDDEN);
            r.reason = "Forbidden (To user is not the authenticated user)".to_owned();
            return Step::Reply(r);
        }
        self.bindings(req, flow, *tenant, cred, now)
    }

    fn failure(&self, ip: IpAddr, username: &str, realm: &str, now: Now) {
        metrics::counter!("sip_auth_failures_total").increment(1);
        tracing::info!(%ip, realm, username = %truncate(username), "SIP authentication failed");
        let events = self.guard().record_failure(ip, username, realm, now.guard);
        for ev in events {
            match ev {
                GuardEvent::Banned { ip, until, reason } => {
                    metrics::counter!("sip_bans_total").increment(1);
                    let secs = until.saturating_sub(now.guard).as_secs();
                    tracing::warn!(%ip, ban_secs = secs, %reason, "SIP source banned");
                }
                GuardEvent::UserLocked {
                    ip,
                    realm,
                    username,
                    until,
                } => {
                    let secs = until.saturating_sub(now.guard).as_secs();
                    tracing::warn!(%ip, realm, username, lock_secs = secs, "SIP username locked for this source");
                }
                GuardEvent::UsernameTargeted {
                    realm,
                    username,
                    failures,
                } => {
                    tracing::warn!(
                        realm,
                        username,
                        failures,
                        "SIP username targeted from many sources"
                    );
                }
            }
        }
    }

    /// For a replayed (hence correctly signed) REGISTER: if it is an exact retransmission of the
    /// one that wrote a binding, the 200 again.
    fn retransmission(
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

    fn bindings(
        &self,
        req: &Request,
        flow: &Flow,
        tenant: TenantId,
        cred: &CachedCred,
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
        let aor = req
            .to_addr()
            .ok()
            .flatten()
            .map(|t| t.uri.as_str().to_owned())
            .unwrap_or_default();
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
        let _ = write!(v, "<{}>;expires={}", b.contact, b.remaining_secs(now));
        if let Some(q) = b.q {
            let _ = write!(v, ";q={}.{:03}", q / 1000, q % 1000);
        }
        if let Some(i) = &b.instance_id {
            let _ = write!(v, ";+sip.instance={i}");
            if let Some(id) = b.reg_id {
                let _ = write!(v, ";reg-id={id}");
            }
        }
        r.headers.push("Contact", &v);
    }
    r.headers.push("Date", &http_date(now));
    r
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

/// The realm of a REGISTER: request-URI host, or the To host when that is an IP address;
/// lowercase, without a trailing dot.
fn realm_of(req: &Request) -> Option<Cow<'_, str>> {
    let mut host = req.uri.host();
    if is_ip_literal(host) {
        if let Ok(Some(to)) = req.to_addr() {
            let h = to.uri.host();
            if !h.is_empty() {
                host = h;
            }
        }
    }
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        return None;
    }
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

fn is_ip_literal(host: &str) -> bool {
    host.starts_with('[') || host.parse::<IpAddr>().is_ok()
}

fn bad_request(req: &Request, why: &str) -> Response {
    let mut r = req.response_tagged(StatusCode::BAD_REQUEST);
    r.reason = format!("Bad Request ({why})");
    r
}

fn truncate(s: &str) -> String {
    s.chars().take(64).filter(|c| !c.is_control()).collect()
}

fn truncate_owned(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("").to_owned()
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

    #[test]
    fn date_is_rfc1123() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(http_date(t), "Tue, 14 Nov 2023 22:13:20 GMT");
    }

    #[test]
    fn realm_from_uri_or_to() {
        let parse =
            |s: &str| match sip::parse_datagram(s.as_bytes(), &sip::Limits::default()).unwrap() {
                sip::Message::Request(r) => r,
                _ => panic!(),
            };
        let base = "Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:1001@acme.example>;tag=1\r\nCall-ID: a\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n";
        let r = parse(&format!(
            "REGISTER sip:ACME.example. SIP/2.0\r\nTo: <sip:1001@x.example>\r\n{base}\r\n"
        ));
        assert_eq!(realm_of(&r).as_deref(), Some("acme.example"));
        let r = parse(&format!(
            "REGISTER sip:10.0.0.1 SIP/2.0\r\nTo: <sip:1001@acme.example>\r\n{base}\r\n"
        ));
        assert_eq!(realm_of(&r).as_deref(), Some("acme.example"));
    }
}
