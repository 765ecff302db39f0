//! Server-side SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! * Time: every call takes `now` as a [`Duration`] since the UNIX epoch
//!   (`SystemTime::now().duration_since(UNIX_EPOCH)`), so nonces minted before
//!   a restart stay valid after it when the secret is the same.
//! * Secrets: the directory stores HA1 per algorithm ([`ha1_md5`],
//!   [`ha1_sha256`]); verification takes the stored HA1 and never a password.
//! * Algorithms: `MD5`, `SHA-256` and their `-sess` variants are verified (the
//!   `-sess` HA1 derives from the stored one). `SHA-512-256` is refused at
//!   parse time; `userhash=true` and `qop=auth-int` are refused by the verifier.
//! * `qop` is required: RFC 2069 style credentials (no `qop`, hence no
//!   nonce-count) cannot be protected against replay within the nonce
//!   lifetime, so they get [`Verdict::QopRequired`]; challenges always offer
//!   `qop="auth"`, which every SIP phone of the last two decades supports.
//! * Nonces are stateless (see `nonce.rs` for the format) and can be bound
//!   to the source IP the challenge went to (the `*_for` / `*_from` methods);
//!   only nonces used successfully are tracked, for nonce-count replay
//!   protection (`replay.rs`). [`Verifier::check_nonce`] does the MAC and age
//!   checks alone, so a caller can refuse a forged nonce before it looks up
//!   any credential.
//!
//! ```
//! use std::time::Duration;
//! use sip::auth::{ha1_sha256, Challenge, Credentials, Verdict, Verifier, VerifierConfig};
//!
//! let verifier = Verifier::new(b"32 random bytes kept across boot", VerifierConfig::default());
//! let now = Duration::from_secs(1_800_000_000); // SystemTime since UNIX_EPOCH
//! let realm = "acme.example";
//! let stored = ha1_sha256("1001", realm, "pw"); // what the directory keeps
//!
//! // 401: send both values as WWW-Authenticate headers (SHA-256 first).
//! let [sha256, _md5] = verifier.challenge_headers(realm, false, now);
//!
//! // The phone answers (this crate's client helper stands in for it).
//! let answer = Challenge::parse(&sha256).unwrap()
//!     .answer("1001", "pw", "REGISTER", "sip:acme.example", 1, "c0ffee")
//!     .to_header_value();
//!
//! // Server side: parse the Authorization value, look up HA1 for
//! // `creds.algorithm.base()`, verify.
//! let creds = Credentials::parse(&answer).unwrap();
//! let verdict = verifier.verify(&creds, "REGISTER", "sip:acme.example", realm, &stored, now);
//! assert_eq!(verdict, Verdict::Ok);
//! ```

mod digest;
mod header;
mod nonce;
mod replay;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

pub use digest::{Algorithm, ResponseParams, compute_response, ha1, ha1_md5, ha1_sha256};
pub use header::{AuthError, Challenge, Credentials, MAX_HEADER_LEN, MAX_PARAMS, MAX_VALUE_LEN};
pub use nonce::NONCE_LEN;

use digest::{HexBuf, ct_eq, response_hex};
use nonce::NonceKey;
use replay::{NcCheck, NcTracker};

/// Outcome of [`Verifier::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Authenticated.
    Ok,
    /// The response was right but the nonce is past its lifetime (or was
    /// evicted from the replay tracker): re-challenge with `stale=true`.
    Stale,
    /// The response was right but this nonce-count was already used (or is
    /// too far behind the window): a replay, or a client bug. Re-challenge
    /// with `stale=true`; a genuine client recovers, a replayer learns nothing.
    Replayed,
    /// Wrong response digest: wrong password (or HA1). Counts as a failure.
    BadResponse,
    /// Nonce not minted by us for this realm, malformed, from the future, or
    /// `opaque` does not match.
    BadNonce,
    /// `realm` in the credentials is not the realm being authenticated.
    WrongRealm,
    /// `uri` does not match the request-URI.
    UriMismatch,
    /// No `qop` (RFC 2069 client): refused.
    QopRequired,
    /// `qop=auth-int`, `userhash=true`, or a malformed nc/response field.
    Unsupported,
    /// The stored HA1 is not hex of the algorithm's length: a directory
    /// problem, not the client's. Log it; answer 500 or 403.
    BadStoredHa1,
}

impl Verdict {
    pub fn is_ok(self) -> bool {
        self == Verdict::Ok
    }

    /// Whether to re-challenge with `stale=true`.
    pub fn is_stale(self) -> bool {
        matches!(self, Verdict::Stale | Verdict::Replayed)
    }

    /// Whether this is a failed password guess, to report to
    /// [`crate::guard::Guard::record_failure`]. An unknown username must be
    /// reported too by the caller (and answered exactly like a bad response).
    pub fn counts_as_failure(self) -> bool {
        self == Verdict::BadResponse
    }
}

/// Outcome of [`Verifier::check_nonce`], the check made before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Minted by us for this realm and source, within its lifetime.
    Fresh,
    /// Minted by us for this realm and source, past its lifetime:
    /// re-challenge with `stale=true`.
    Expired,
    /// Not ours: garbage, forged, for another realm or issued to another
    /// address, from the future, or a wrong `opaque`.
    Invalid,
}

/// Settings for a [`Verifier`].
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// How long a nonce stays valid after issue. Default 300 s.
    pub nonce_lifetime: Duration,
    /// Tolerated clock skew for nonces stamped in the future (several
    /// processes sharing the secret). Default 5 s.
    pub max_future_skew: Duration,
    /// Cap on nonces tracked for replay. Default 100 000 (about 10 MB).
    pub max_tracked_nonces: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            nonce_lifetime: Duration::from_secs(300),
            max_future_skew: Duration::from_secs(5),
            max_tracked_nonces: 100_000,
        }
    }
}

/// Issues challenges and verifies credentials. Share one per process (it is
/// `Sync`); the replay tracker sits behind a mutex held only for a table
/// lookup.
pub struct Verifier {
    key: NonceKey,
    opaque: String,
    /// Keyed stand-in HA1s (MD5, SHA-256) for unknown usernames.
    dummy_md5: String,
    dummy_sha256: String,
    config: VerifierConfig,
    tracker: Mutex<NcTracker>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// `secret` keys the nonce MAC; use at least 32 random bytes and keep it
    /// across restarts (and share it between processes behind one address).
    pub fn new(secret: &[u8], config: VerifierConfig) -> Self {
        let key = NonceKey::new(secret);
        let d = key.derive(b"opaque");
        let opaque = HexBuf::from_bytes(&d[..8]).as_str().to_owned();
        let dummy = key.derive(b"unknown user ha1");
        let dummy_md5 = HexBuf::from_bytes(&dummy[..16]).as_str().to_owned();
        let dummy_sha256 = HexBuf::from_bytes(&dummy).as_str().to_owned();
        let tracker = Mutex::new(NcTracker::new(
            config.max_tracked_nonces,
            config.nonce_lifetime.as_secs(),
        ));
        Verifier {
            key,
            opaque,
            dummy_md5,
            dummy_sha256,
            config,
            tracker,
        }
    }

    /// A fresh nonce for `realm`, stamped with `now`, bound to no address.
    /// A SIP edge uses [`Verifier::nonce_for`] with the request's source.
    pub fn nonce(&self, realm: &str, now: Duration) -> String {
        self.nonce_for(realm, None, now)
    }

    /// A fresh nonce for `realm` and the `source` IP the challenge goes to
    /// (96 random bits, a MAC over time, randomness, source and realm). It
    /// then verifies only for requests from that IP.
    pub fn nonce_for(&self, realm: &str, source: Option<IpAddr>, now: Duration) -> String {
        self.key.mint_random(realm, source, now.as_secs())
    }

    /// One challenge for `algorithm` with a fresh nonce bound to no address.
    pub fn challenge(
        &self,
        realm: &str,
        algorithm: Algorithm,
        stale: bool,
        now: Duration,
    ) -> Challenge {
        self.challenge_for(realm, None, algorithm, stale, now)
    }

    /// One challenge for `algorithm` with a fresh nonce bound to `source`.
    pub fn challenge_for(
        &self,
        realm: &str,
        source: Option<IpAddr>,
        algorithm: Algorithm,
        stale: bool,
        now: Duration,
    ) -> Challenge {
        Challenge {
            realm: realm.to_owned(),
            nonce: self.nonce_for(realm, source, now),
            opaque: Some(self.opaque.clone()),
            algorithm,
            qop_auth: true,
            qop: None,
            stale,
        }
    }

    /// The two header values to send in a 401/407, SHA-256 first then MD5
    /// (RFC 8760 §2.4: most preferred first), sharing one fresh nonce bound
    /// to no address. Use them as two `WWW-Authenticate` (or
    /// `Proxy-Authenticate`) headers.
    pub fn challenge_headers(&self, realm: &str, stale: bool, now: Duration) -> [String; 2] {
        self.challenge_headers_for(realm, None, stale, now)
    }

    /// [`Verifier::challenge_headers`] with the nonce bound to `source`.
    pub fn challenge_headers_for(
        &self,
        realm: &str,
        source: Option<IpAddr>,
        stale: bool,
        now: Duration,
    ) -> [String; 2] {
        let mut c = self.challenge_for(realm, source, Algorithm::Sha256, stale, now);
        let sha = c.to_header_value();
        c.algorithm = Algorithm::Md5;
        [sha, c.to_header_value()]
    }

    /// The cheap checks, before any directory lookup: realm, nonce MAC for
    /// `realm` and `source`, `opaque`, and the nonce's age. No digest is
    /// computed and nothing is recorded.
    pub fn check_nonce(
        &self,
        creds: &Credentials,
        realm: &str,
        source: Option<IpAddr>,
        now: Duration,
    ) -> NonceStatus {
        if creds.realm != realm {
            return NonceStatus::Invalid;
        }
        let Some(nonce) = self.key.check(&creds.nonce, realm, source) else {
            return NonceStatus::Invalid;
        };
        if creds.opaque.as_deref().is_some_and(|o| o != self.opaque) {
            return NonceStatus::Invalid;
        }
        let now_s = now.as_secs();
        if nonce.issued > now_s.saturating_add(self.config.max_future_skew.as_secs()) {
            return NonceStatus::Invalid;
        }
        if now_s
            > nonce
                .issued
                .saturating_add(self.config.nonce_lifetime.as_secs())
        {
            return NonceStatus::Expired;
        }
        NonceStatus::Fresh
    }

    /// Verifies `creds` for a request with `method` and `request_uri` in
    /// `realm`, against `stored_ha1` = the directory's HA1 for
    /// `creds.algorithm.base()` (hex). Order of checks: realm, features, uri,
    /// nonce MAC and opaque, response digest, then nonce age and replay, so
    /// that `Stale`/`Replayed` are only said to clients that know the password
    /// (RFC 7616 §3.3 on `stale`).
    ///
    /// Nonces are checked as bound to no address; see
    /// [`Verifier::verify_from`].
    pub fn verify(
        &self,
        creds: &Credentials,
        method: &str,
        request_uri: &str,
        realm: &str,
        stored_ha1: &str,
        now: Duration,
    ) -> Verdict {
        self.verify_from(None, creds, method, request_uri, realm, stored_ha1, now)
    }

    /// [`Verifier::verify`] for a request from `source`: a nonce issued to
    /// another address is [`Verdict::BadNonce`].
    #[allow(clippy::too_many_arguments)]
    pub fn verify_from(
        &self,
        source: Option<IpAddr>,
        creds: &Credentials,
        method: &str,
        request_uri: &str,
        realm: &str,
        stored_ha1: &str,
        now: Duration,
    ) -> Verdict {
        if creds.realm != realm {
            return Verdict::WrongRealm;
        }
        let (Some(qop), Some(nc), Some(cnonce)) = (&creds.qop, &creds.nc, &creds.cnonce) else {
            return Verdict::QopRequired;
        };
        if !qop.eq_ignore_ascii_case("auth") || creds.userhash {
            return Verdict::Unsupported;
        }
        // Derived from the string that enters the digest, so the value
        // tracked for replay is the one the response covers.
        let nc_value = match u32::from_str_radix(nc, 16) {
            Ok(n) if n > 0 && nc.len() <= 8 && !nc.starts_with('+') => n,
            _ => return Verdict::Unsupported,
        };
        if !uri_matches(&creds.uri, request_uri) {
            return Verdict::UriMismatch;
        }
        let Some(nonce) = self.key.check(&creds.nonce, realm, source) else {
            return Verdict::BadNonce;
        };
        if creds.opaque.as_deref().is_some_and(|o| o != self.opaque) {
            return Verdict::BadNonce;
        }
        let now_s = now.as_secs();
        if nonce.issued > now_s.saturating_add(self.config.max_future_skew.as_secs()) {
            return Verdict::BadNonce;
        }
        let alg = creds.algorithm;
        let Some(got) = HexBuf::from_hex_str(&creds.response, alg.hex_len()) else {
            return Verdict::BadResponse;
        };
        let Some(want) = response_hex(&ResponseParams {
            algorithm: alg,
            ha1: stored_ha1,
            nonce: &creds.nonce,
            nc,
            cnonce,
            qop: Some(qop),
            method,
            uri: &creds.uri,
        }) else {
            return Verdict::BadStoredHa1;
        };
        if !ct_eq(got.as_bytes(), want.as_bytes()) {
            return Verdict::BadResponse;
        }
        if now_s
            > nonce
                .issued
                .saturating_add(self.config.nonce_lifetime.as_secs())
        {
            return Verdict::Stale;
        }
        let check = self
            .tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .check_and_record(nonce.tag, nonce.issued, nc_value, now_s);
        match check {
            NcCheck::Fresh => Verdict::Ok,
            NcCheck::Replay => Verdict::Replayed,
            NcCheck::Evicted => Verdict::Stale,
        }
    }

    /// For a username the directory does not know: runs the same checks and
    /// the same hashing as [`Verifier::verify`] against a secret stand-in
    /// HA1, so the answer (normally [`Verdict::BadResponse`], counted as a
    /// failure) and its timing do not reveal which usernames exist.
    pub fn verify_unknown_user(
        &self,
        creds: &Credentials,
        method: &str,
        request_uri: &str,
        realm: &str,
        now: Duration,
    ) -> Verdict {
        self.verify_unknown_user_from(None, creds, method, request_uri, realm, now)
    }

    /// [`Verifier::verify_unknown_user`] for a request from `source`.
    pub fn verify_unknown_user_from(
        &self,
        source: Option<IpAddr>,
        creds: &Credentials,
        method: &str,
        request_uri: &str,
        realm: &str,
        now: Duration,
    ) -> Verdict {
        let ha1 = match creds.algorithm.base() {
            Algorithm::Md5 => &self.dummy_md5,
            _ => &self.dummy_sha256,
        };
        match self.verify_from(source, creds, method, request_uri, realm, ha1, now) {
            // Only reachable by guessing a 128-bit secret.
            Verdict::Ok | Verdict::Stale | Verdict::Replayed => Verdict::BadResponse,
            other => other,
        }
    }

    /// Drops replay-tracker entries of expired nonces. Optional: it also
    /// happens lazily on every successful verification.
    pub fn sweep(&self, now: Duration) {
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .expire(now.as_secs());
    }

    /// Number of nonces currently tracked for replay.
    pub fn tracked_nonces(&self) -> usize {
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// The digest `uri` must name the request-URI (RFC 3261 §22.4). Compared
/// exactly, or else ASCII-case-insensitively (scheme and host are
/// case-insensitive, and phones differ in how they case them); the digest
/// itself covers the `uri` string as sent.
fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    digest_uri == request_uri || digest_uri.eq_ignore_ascii_case(request_uri)
}
