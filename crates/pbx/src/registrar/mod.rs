//! The registrar (RFC 3261 §10.3): digest authentication against the tenant's credentials,
//! then the binding rules, then group commit to the directory.
//!
//! Flow of a REGISTER:
//! 1. realm = the request-URI host (the tenant's SIP domain), or the To host when the
//!    request-URI is an IP address. No lookup is needed to challenge: the 401 carries two
//!    stateless challenges (SHA-256, then MD5).
//! 2. With credentials for that realm: [`Guard::check_auth`] (a banned IP is dropped, a locked
//!    username-from-IP gets 403 without verifying), then the nonce's MAC (bound to realm and
//!    source IP) and age, before any lookup: a nonce not issued to this source gets a fresh
//!    401 and costs the source rate tokens ([`Guard::record_bad_nonce`]), an expired one a 401
//!    with `stale=true`; then the credential from the
//!    credential cache (`cache.rs`) and [`Verifier::verify`]; an unknown realm or username goes through
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

mod bindings;
pub(crate) mod cache;
pub mod failures;
pub(crate) mod persist;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip::auth::{Algorithm, Credentials, NonceStatus, Verdict, Verifier};
use sip::guard::{AuthGate, Guard, GuardEvent};
use sip::{Request, Response, StatusCode};
use store::RegistrationChange;

use crate::location::LocationService;
use crate::transport::Flow;
pub(crate) use bindings::from_store;
use cache::{CredCache, REFETCH_AFTER, Resolved};
use failures::{FailureReason, RegistrationFailures};

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
    /// Directory lookups in flight at most (cache misses of REGISTER and INVITE
    /// authentication alike). Default 64.
    pub max_lookups: usize,
    /// Requests waiting for a lookup slot at most; beyond, they get 503 with
    /// `Retry-After: 5`. Default 1,000.
    pub lookup_backlog: usize,
    /// Which digest challenges a 401 carries, in which order. Default
    /// [`ChallengeAlgorithms::Sha256ThenMd5`] (RFC 8760: most preferred first).
    pub challenges: ChallengeAlgorithms,
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
            lookup_backlog: 1000,
            challenges: ChallengeAlgorithms::Sha256ThenMd5,
        }
    }
}

/// The digest challenges of a 401. RFC 8760 clients take the first algorithm they support,
/// but older stacks do not: sipsak 0.9.8 reads only the first header and gives up on SHA-256
/// ("unsupported authentication algorithm"), and baresip 1.0 (libre) refuses the whole 401
/// as soon as one header names an algorithm it lacks ("Function not implemented"), so it
/// registers only with [`ChallengeAlgorithms::Md5Only`]. Verification accepts both
/// algorithms whatever is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeAlgorithms {
    Sha256ThenMd5,
    Md5ThenSha256,
    Md5Only,
}

impl ChallengeAlgorithms {
    /// The challenge header values to send, most preferred first, sharing
    /// one fresh nonce bound to `source`, the IP the challenge goes to
    /// (`now` since the UNIX epoch).
    pub fn header_values(
        self,
        verifier: &Verifier,
        realm: &str,
        source: IpAddr,
        stale: bool,
        now: Duration,
    ) -> Vec<String> {
        let source = Some(source);
        match self {
            ChallengeAlgorithms::Md5Only => vec![
                verifier
                    .challenge_for(realm, source, Algorithm::Md5, stale, now)
                    .to_header_value(),
            ],
            order => {
                let [sha256, md5] = verifier.challenge_headers_for(realm, source, stale, now);
                if order == ChallengeAlgorithms::Md5ThenSha256 {
                    vec![md5, sha256]
                } else {
                    vec![sha256, md5]
                }
            }
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
    /// Recent failures per credential, for the web app.
    failures: Arc<RegistrationFailures>,
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
        failures: Arc<RegistrationFailures>,
    ) -> Self {
        Registrar {
            cfg,
            cache,
            location,
            verifier,
            guard,
            failures,
        }
    }

    /// Notes a refused REGISTER against the credential it named, when that credential is
    /// already in the cache (no lookup is made for it: a banned source costs nothing more).
    fn note_refused(&self, realm: &str, username: &str, ip: IpAddr, why: FailureReason, now: Now) {
        if let Some((Resolved::Known { tenant, cred, .. }, _)) =
            self.cache.get(realm, username, now.mono)
        {
            self.failures.record(tenant, cred.id, ip, why, now.wall);
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
        let ip = flow.remote.ip();
        let Some(creds) = found else {
            return Err(Step::Reply(self.challenge(req, &realm, ip, false, now)));
        };
        match self
            .guard()
            .check_auth(ip, &creds.username, &realm, now.guard)
        {
            AuthGate::Allow => {}
            AuthGate::IpBanned { .. } => {
                self.note_refused(
                    &realm,
                    &creds.username,
                    ip,
                    FailureReason::SourceBanned,
                    now,
                );
                return Err(Step::Drop);
            }
            AuthGate::UserLocked { .. } => {
                self.note_refused(
                    &realm,
                    &creds.username,
                    ip,
                    FailureReason::UsernameLocked,
                    now,
                );
                return Err(Step::Reply(req.response_tagged(StatusCode::FORBIDDEN)));
            }
        }
        // Before any lookup: a nonce we did not issue to this address costs nothing but a
        // fresh challenge (and rate tokens); an old one of ours is re-challenged as stale.
        match self
            .verifier
            .check_nonce(&creds, &realm, Some(ip), now.unix())
        {
            NonceStatus::Fresh => Ok(AuthInput { realm, creds }),
            NonceStatus::Expired => Err(Step::Reply(self.challenge(req, &realm, ip, true, now))),
            NonceStatus::Invalid => {
                bad_nonce(&self.guard, ip, now.guard);
                Err(Step::Reply(self.challenge(req, &realm, ip, false, now)))
            }
        }
    }

    fn challenge(&self, req: &Request, realm: &str, ip: IpAddr, stale: bool, now: Now) -> Response {
        let mut r = req.response_tagged(StatusCode::UNAUTHORIZED);
        for value in self
            .cfg
            .challenges
            .header_values(&self.verifier, realm, ip, stale, now.unix())
        {
            r.headers.push("WWW-Authenticate", &value);
        }
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
        let ip = flow.remote.ip();
        let verdict = match resolved {
            Resolved::Known { cred, .. } => {
                let ha1 = match creds.algorithm.base() {
                    Algorithm::Md5 => &cred.ha1_md5,
                    _ => &cred.ha1_sha256,
                };
                self.verifier
                    .verify_from(Some(ip), creds, "REGISTER", uri, realm, ha1, now.unix())
            }
            Resolved::Unknown { .. } => self.verifier.verify_unknown_user_from(
                Some(ip),
                creds,
                "REGISTER",
                uri,
                realm,
                now.unix(),
            ),
        };
        if verdict == Verdict::BadResponse
            && !refetched
            && now.mono.saturating_duration_since(resolved.fetched()) > REFETCH_AFTER
        {
            return Step::Lookup;
        }
        match verdict {
            Verdict::Ok => {}
            Verdict::Stale => return Step::Reply(self.challenge(req, realm, ip, true, now)),
            Verdict::Replayed => {
                if let Resolved::Known { tenant, cred, .. } = resolved {
                    if let Some(resp) = self.retransmission(req, *tenant, cred, now) {
                        return Step::Commit(Vec::new(), resp);
                    }
                }
                return Step::Reply(self.challenge(req, realm, ip, true, now));
            }
            Verdict::BadNonce | Verdict::WrongRealm => {
                return Step::Reply(self.challenge(req, realm, ip, false, now));
            }
            Verdict::BadResponse => {
                let events = self.failure(ip, &creds.username, realm, now);
                if let Resolved::Known { tenant, cred, .. } = resolved {
                    let note = |why| self.failures.record(*tenant, cred.id, ip, why, now.wall);
                    note(FailureReason::WrongPassword);
                    // What this failure triggered concerns this source (or its address
                    // group) and this username.
                    for ev in events {
                        match ev {
                            GuardEvent::Banned { .. } => note(FailureReason::SourceBanned),
                            GuardEvent::UserLocked { .. } => note(FailureReason::UsernameLocked),
                            GuardEvent::UsernameTargeted { .. } => {}
                        }
                    }
                }
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
        let to = req.to_addr().ok().flatten();
        let to_user = to.as_ref().and_then(|t| t.uri.user());
        if to_user != Some(creds.username.as_str()) {
            let mut r = req.response_tagged(StatusCode::FORBIDDEN);
            r.reason = "Forbidden (To user is not the authenticated user)".to_owned();
            return Step::Reply(r);
        }
        let aor = to.as_ref().map_or("", |t| t.uri.as_str());
        self.bindings(req, flow, *tenant, cred, aor, now)
    }

    /// Counts a failed authentication with the guard and logs what it decided; returns its
    /// decisions.
    fn failure(&self, ip: IpAddr, username: &str, realm: &str, now: Now) -> Vec<GuardEvent> {
        metrics::counter!("sip_auth_failures_total").increment(1);
        tracing::info!(%ip, realm, username = %truncate(username), "SIP authentication failed");
        let events = self.guard().record_failure(ip, username, realm, now.guard);
        for ev in &events {
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
        events
    }
}

/// Reports a request whose nonce is not ours for its source: a metric, and rate tokens (never
/// a ban: over UDP the source may be forged).
pub(crate) fn bad_nonce(guard: &Mutex<Guard>, ip: IpAddr, now: Duration) {
    metrics::counter!("sip_auth_failures_total", "reason" => "bad_nonce").increment(1);
    tracing::debug!(%ip, "request with a nonce not issued to its source");
    guard
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record_bad_nonce(ip, now);
}

/// The realm of a REGISTER: request-URI host, or the To host when that is an IP address;
/// lowercase, without a trailing dot.
pub(crate) fn realm_of(req: &Request) -> Option<Cow<'_, str>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

#[cfg(test)]
#[path = "attack_tests.rs"]
mod attack_tests;
