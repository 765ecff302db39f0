//! Browser sessions and CSRF.
//!
//! The session cookie holds a random 256-bit token; the database holds only its SHA-256, with the
//! user, a CSRF token, the expiry and where the session came from. [`session_layer`] runs on every
//! request outside `/api/`: it resolves the cookie into an [`Authed`] in the request extensions,
//! and refuses any state-changing request (anything but GET/HEAD/OPTIONS) that does not prove it
//! came from our own pages:
//! - with a session, the request must carry the session's CSRF token, in the `X-CSRF-Token`
//!   header (htmx sends it from the `hx-headers` of the page body) or in the `csrf_token` field of
//!   a urlencoded form;
//! - without one (sign-in, first-run setup), an `Origin` header, when the browser sends it, must
//!   be this host, and `Sec-Fetch-Site` must not say cross-site.
//!
//! The API (`/api/`) authenticates with bearer tokens only and never reads cookies, so it needs
//! no CSRF token.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use store::{TokenHash, User, WebSession};
use time::OffsetDateTime;

use crate::AppState;
use crate::config::CookieSecure;
use crate::crypto;
use crate::error::{AppError, PageError};

pub const SESSION_COOKIE: &str = "sb_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf_token";
/// Largest form body the CSRF check buffers.
const FORM_LIMIT: usize = 1 << 20;
/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The signed-in user of this request.
#[derive(Clone, Debug)]
pub struct Authed {
    pub user: User,
    pub session: WebSession,
}

impl Authed {
    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }
}

/// Where the request came from, for rate limits and the session record.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: Option<String>,
    /// Did the request reach us over TLS (directly or via a trusted proxy)?
    pub tls: bool,
    /// Did the request come from one of the trusted proxies (so its `X-Forwarded-*` count)?
    pub via_trusted_proxy: bool,
}

fn client_info(state: &AppState, req: &Request) -> ClientInfo {
    let headers = req.headers();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical());
    let trusted = peer.is_some_and(|p| state.config.is_trusted_proxy(p));
    let ip = match (peer, trusted) {
        (Some(p), true) => forwarded_client(headers, p, |ip| state.config.is_trusted_proxy(ip)),
        (Some(p), false) => p,
        (None, _) => {
            return ClientInfo {
                ip: "unknown".into(),
                user_agent: header_str(headers, header::USER_AGENT.as_str()).map(str::to_owned),
                tls: req.uri().scheme_str() == Some("https"),
                via_trusted_proxy: false,
            };
        }
    };
    let forwarded_proto = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .map(str::trim);
    let tls = req.uri().scheme_str() == Some("https")
        || (trusted && forwarded_proto.is_some_and(|p| p.eq_ignore_ascii_case("https")));
    ClientInfo {
        ip: ip.to_string(),
        user_agent: header_str(headers, header::USER_AGENT.as_str()).map(str::to_owned),
        tls,
        via_trusted_proxy: trusted,
    }
}

/// The client behind a trusted proxy `peer`: `X-Forwarded-For` read from the right (each proxy
/// appends the address it received from), skipping the trusted proxies; the first address that
/// is not one of them is the client. Entries left of it were written by the client itself and
/// are never believed. Without a usable header the proxy itself is the client.
fn forwarded_client(headers: &HeaderMap, peer: IpAddr, trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    let mut hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    hops.reverse();
    let mut client = peer;
    for hop in hops {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !trusted(client) {
                    break;
                }
            }
            // Garbage in the chain: stop at the last address we could believe.
            Err(_) => break,
        }
    }
    client
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The value of one cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `Set-Cookie` for a new session (`Some`) or to clear it (`None`).
pub fn session_cookie(state: &AppState, client: &ClientInfo, token: Option<&str>) -> HeaderValue {
    let secure = match state.config.cookie_secure {
        CookieSecure::Always => true,
        CookieSecure::Never => false,
        CookieSecure::Auto => client.tls,
    };
    let mut v = match token {
        Some(t) => format!("{SESSION_COOKIE}={t}; Path=/; HttpOnly; SameSite=Lax"),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    };
    if secure {
        v.push_str("; Secure");
    }
    HeaderValue::from_str(&v).expect("cookie value is ASCII")
}

pub fn expiry(state: &AppState, now: OffsetDateTime) -> OffsetDateTime {
    now + state.config.session_idle
}

async fn load_session(state: &AppState, token: &str) -> Result<Option<Authed>, AppError> {
    let hash: TokenHash = crypto::token_hash(token);
    let now = OffsetDateTime::now_utc();
    let (session, user) = match state.directory.get_web_session(&hash, now).await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if user.disabled || now - session.created_at > state.config.session_max_age {
        state.directory.delete_web_session(&hash).await?;
        return Ok(None);
    }
    if (now - session.last_seen_at) >= TOUCH_EVERY {
        state
            .directory
            .touch_web_session(&hash, now, expiry(state, now))
            .await?;
    }
    Ok(Some(Authed { user, session }))
}

pub async fn session_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match session_inner(state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn session_inner(state: AppState, mut req: Request) -> Result<Request, PageError> {
    let client = client_info(&state, &req);
    let via_trusted_proxy = client.via_trusted_proxy;
    req.extensions_mut().insert(client);
    if req.uri().path().starts_with("/api/") {
        return Ok(req);
    }
    let authed = match cookie(req.headers(), SESSION_COOKIE) {
        Some(token) if !token.is_empty() => load_session(&state, token).await?,
        _ => None,
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        req = match &authed {
            Some(a) => check_csrf_token(req, a.csrf()).await?,
            None => {
                check_same_origin(req.headers(), via_trusted_proxy)?;
                req
            }
        };
    }
    if let Some(a) = authed {
        req.extensions_mut().insert(a);
    }
    Ok(req)
}

fn csrf_failure() -> PageError {
    PageError(AppError::BadRequest(
        "This form has expired or did not come from this site. Go back, reload the page and try again."
            .into(),
    ))
}

async fn check_csrf_token(req: Request, expected: &str) -> Result<Request, PageError> {
    if let Some(sent) = header_str(req.headers(), CSRF_HEADER) {
        return if crypto::constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            Ok(req)
        } else {
            Err(csrf_failure())
        };
    }
    let is_form = header_str(req.headers(), header::CONTENT_TYPE.as_str())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(csrf_failure());
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| PageError(AppError::BadRequest("The form is too large.".into())))?;
    let sent = form_value(&bytes, CSRF_FIELD).ok_or_else(csrf_failure)?;
    if !crypto::constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
        return Err(csrf_failure());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The raw value of one field of a urlencoded body. Tokens are URL-safe base64, which forms
/// send unescaped, so no decoding is needed to compare them.
fn form_value<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// For requests without a session: refuse what the browser says is cross-site, including an
/// opaque `Origin: null` (sandboxed frames). The host is the `Host` header, or the proxy's
/// `X-Forwarded-Host` when the request came from a trusted proxy.
fn check_same_origin(headers: &HeaderMap, trust_forwarded: bool) -> Result<(), PageError> {
    if header_str(headers, "sec-fetch-site") == Some("cross-site") {
        return Err(csrf_failure());
    }
    let Some(origin) = header_str(headers, header::ORIGIN.as_str()) else {
        return Ok(());
    };
    let host = trust_forwarded
        .then(|| header_str(headers, "x-forwarded-host"))
        .flatten()
        .or_else(|| header_str(headers, header::HOST.as_str()));
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(csrf_failure()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_form_values() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sb_session=tok; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(
            form_value(b"x=1&csrf_token=abc-_&y=", "csrf_token"),
            Some("abc-_")
        );
        assert_eq!(form_value(b"x=1", "csrf_token"), None);
    }

    #[test]
    fn forwarded_for_is_read_from_the_right() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted = |ip: IpAddr| ip.to_string().starts_with("10.");
        let mut h = HeaderMap::new();
        assert_eq!(forwarded_client(&h, proxy, trusted), proxy);
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.1.1.1, 203.0.113.5, 10.0.0.9"),
        );
        // 1.1.1.1 was written by the client: 203.0.113.5 is the first untrusted hop.
        assert_eq!(
            forwarded_client(&h, proxy, trusted),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("nonsense, 10.0.0.9"),
        );
        assert_eq!(
            forwarded_client(&h, proxy, trusted),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn cross_site_without_session_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("pbx.test"));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://pbx.test"));
        assert!(check_same_origin(&h, false).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.test"),
        );
        assert!(check_same_origin(&h, false).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_same_origin(&h, false).is_err());
        // Behind a trusted proxy the public host is X-Forwarded-Host.
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://pbx.example.com"),
        );
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("pbx.example.com"),
        );
        assert!(check_same_origin(&h, true).is_ok());
        assert!(check_same_origin(&h, false).is_err());
        h.remove(header::ORIGIN);
        assert!(
            check_same_origin(&h, false).is_ok(),
            "no Origin header: older clients"
        );
    }
}
