//! Proxy authentication of dialog-creating INVITEs (RFC 3261 §22.3), done
//! by the driver before it hands the INVITE to the engine. Two steps
//! because the HA1 lookup is asynchronous: [`inspect_invite`] picks the
//! credentials for our realm (or builds the 407), the driver fetches the
//! stored HA1 for `credentials.username`, and [`verify_invite`] decides.

use std::net::IpAddr;
use std::time::Duration;

use sip::auth::{Credentials, Verdict, Verifier};
use sip::{Request, Response, StatusCode};

pub use crate::registrar::ChallengeAlgorithms;

/// What to do with an INVITE after looking at its Proxy-Authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteAuth {
    /// No usable credentials for this realm: send this 407.
    Challenge(Response),
    /// Look up the HA1 for `username` (and `algorithm.base()`), then call
    /// [`verify_invite`].
    Verify(Credentials),
}

/// A 407 carrying fresh challenges for `realm`, in the configured
/// algorithms (the registrar's setting: MD5 only by default), the nonce
/// bound to `source`, the IP the 407 goes to.
pub fn challenge(
    verifier: &Verifier,
    algorithms: ChallengeAlgorithms,
    request: &Request,
    realm: &str,
    source: IpAddr,
    stale: bool,
    now: Duration,
) -> Response {
    let mut resp = request.response_tagged(StatusCode::PROXY_AUTHENTICATION_REQUIRED);
    for value in algorithms.header_values(verifier, realm, source, stale, now) {
        resp.headers.push("Proxy-Authenticate", &value);
    }
    resp
}

/// Finds the Proxy-Authorization credentials for `realm`; `now` is the
/// time since the UNIX epoch, `source` the IP the INVITE came from.
pub fn inspect_invite(
    verifier: &Verifier,
    algorithms: ChallengeAlgorithms,
    request: &Request,
    realm: &str,
    source: IpAddr,
    now: Duration,
) -> InviteAuth {
    let creds = request
        .headers
        .get_all("Proxy-Authorization")
        .filter_map(|v| Credentials::parse(v).ok())
        .find(|c| c.realm == realm);
    match creds {
        Some(c) => InviteAuth::Verify(c),
        None => InviteAuth::Challenge(challenge(
            verifier, algorithms, request, realm, source, false, now,
        )),
    }
}

/// Checks `credentials` against `stored_ha1` (`None`: unknown username).
/// `Ok(())` means authenticated; `Err` is the response to send (a fresh 407,
/// with `stale=true` when only the nonce was old, or 403 after a wrong
/// password, so the phone does not loop on bad credentials). The nonce must
/// have been issued to `source`.
#[allow(clippy::too_many_arguments)]
pub fn verify_invite(
    verifier: &Verifier,
    algorithms: ChallengeAlgorithms,
    request: &Request,
    credentials: &Credentials,
    realm: &str,
    source: IpAddr,
    stored_ha1: Option<&str>,
    now: Duration,
) -> Result<(), Response> {
    let method = request.method.as_str();
    let uri = request.uri.as_str();
    let from = Some(source);
    let verdict = match stored_ha1 {
        Some(ha1) => verifier.verify_from(from, credentials, method, uri, realm, ha1, now),
        None => verifier.verify_unknown_user_from(from, credentials, method, uri, realm, now),
    };
    let again = |stale| challenge(verifier, algorithms, request, realm, source, stale, now);
    match verdict {
        Verdict::Ok => Ok(()),
        v if v.is_stale() => Err(again(true)),
        Verdict::BadResponse => Err(request.response_tagged(StatusCode::FORBIDDEN)),
        Verdict::BadStoredHa1 => Err(request.response_tagged(StatusCode::SERVER_INTERNAL_ERROR)),
        _ => Err(again(false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::auth::{Challenge, VerifierConfig, ha1_sha256};
    use sip::{Method, Uri};

    const ALGS: ChallengeAlgorithms = ChallengeAlgorithms::Sha256ThenMd5;
    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 5));

    fn invite() -> Request {
        let mut r = Request::new(Method::Invite, Uri::parse("sip:1001@acme.example").unwrap());
        r.headers
            .push("Via", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa");
        r.headers.push("From", "<sip:1000@acme.example>;tag=f");
        r.headers.push("To", "<sip:1001@acme.example>");
        r.headers.push("Call-ID", "c1");
        r.headers.push("CSeq", "1 INVITE");
        r
    }

    #[test]
    fn challenge_then_verify() {
        let v = Verifier::new(
            b"0123456789abcdef0123456789abcdef",
            VerifierConfig::default(),
        );
        let now = Duration::from_secs(1_800_000_000);
        let realm = "acme.example";
        let mut req = invite();
        let InviteAuth::Challenge(resp) = inspect_invite(&v, ALGS, &req, realm, SRC, now) else {
            panic!("expected a challenge");
        };
        assert_eq!(resp.status.as_u16(), 407);
        let first = resp.headers.get("Proxy-Authenticate").unwrap();
        let answer = Challenge::parse(first)
            .unwrap()
            .answer("1000", "pw", "INVITE", "sip:1001@acme.example", 1, "cn")
            .to_header_value();
        req.headers.push("Proxy-Authorization", &answer);
        let InviteAuth::Verify(creds) = inspect_invite(&v, ALGS, &req, realm, SRC, now) else {
            panic!("expected credentials");
        };
        assert_eq!(creds.username, "1000");
        let good = ha1_sha256("1000", realm, "pw");
        assert_eq!(
            verify_invite(&v, ALGS, &req, &creds, realm, SRC, Some(&good), now),
            Ok(())
        );
        // The same nonce-count again is a replay: re-challenged as stale.
        let again =
            verify_invite(&v, ALGS, &req, &creds, realm, SRC, Some(&good), now).unwrap_err();
        assert_eq!(again.status.as_u16(), 407);
        assert!(
            again
                .headers
                .get("Proxy-Authenticate")
                .unwrap()
                .contains("stale=true")
        );
        let bad = ha1_sha256("1000", realm, "wrong");
        let denied =
            verify_invite(&v, ALGS, &req, &creds, realm, SRC, Some(&bad), now).unwrap_err();
        assert_eq!(denied.status.as_u16(), 403);
        let unknown = verify_invite(&v, ALGS, &req, &creds, realm, SRC, None, now).unwrap_err();
        assert_eq!(unknown.status.as_u16(), 403);
    }
}
