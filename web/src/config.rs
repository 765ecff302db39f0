//! How the web app is configured by the binary.

use std::time::Duration;

/// When the session cookie carries the `Secure` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieSecure {
    /// Always (the app is only reachable over HTTPS, e.g. behind a TLS proxy).
    Always,
    /// Never (plain-HTTP development on a private network).
    Never,
    /// When the request came over TLS: the request URI says `https`, or a trusted proxy says so in
    /// `X-Forwarded-Proto` (only read when [`WebConfig::trust_forwarded_headers`] is set).
    Auto,
}

#[derive(Clone, Debug)]
pub struct WebConfig {
    pub cookie_secure: CookieSecure,
    /// Believe `X-Forwarded-For` / `X-Forwarded-Proto` (set only behind a proxy that overwrites
    /// them): they decide the client address for login rate limits and the cookie's `Secure`.
    pub trust_forwarded_headers: bool,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// ... and after this long in any case (sign in again).
    pub session_max_age: Duration,
    /// The address phones register to, as shown in the softphone configuration block
    /// (`host` or `host:port`). `None`: the tenant's SIP domain is shown.
    pub sip_registrar: Option<String>,
    /// How long a first-run setup link stays valid.
    pub setup_link_ttl: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            cookie_secure: CookieSecure::Auto,
            trust_forwarded_headers: false,
            session_idle: Duration::from_secs(8 * 3600),
            session_max_age: Duration::from_secs(7 * 24 * 3600),
            sip_registrar: None,
            setup_link_ttl: Duration::from_secs(24 * 3600),
        }
    }
}
