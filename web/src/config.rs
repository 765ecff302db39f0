//! How the web app is configured by the binary.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// When the session cookie carries the `Secure` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieSecure {
    /// Always (the app is only reachable over HTTPS, e.g. behind a TLS proxy).
    Always,
    /// Never (plain-HTTP development on a private network).
    Never,
    /// When the request came over TLS: the request URI says `https`, or a trusted proxy says so in
    /// `X-Forwarded-Proto` (only read from a peer in [`WebConfig::trusted_proxies`]).
    Auto,
}

impl FromStr for CookieSecure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "on" | "always" | "true" | "yes" => Ok(Self::Always),
            "off" | "never" | "false" | "no" => Ok(Self::Never),
            other => Err(format!(
                "{other:?} is not a Secure-cookie setting: use on, off or auto"
            )),
        }
    }
}

impl fmt::Display for CookieSecure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Always => "on",
            Self::Never => "off",
            Self::Auto => "auto",
        })
    }
}

/// An IP address or a CIDR block (`192.0.2.10`, `10.0.0.0/8`, `2001:db8::/32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpCidr {
    addr: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// Is `ip` inside this block? An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is matched
    /// as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpCidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not an IP address or CIDR block such as 10.0.0.0/8");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr = addr.parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parses a comma- or space-separated list of [`IpCidr`]s (empty: none).
pub fn parse_cidr_list(s: &str) -> Result<Vec<IpCidr>, String> {
    s.split([',', ' '])
        .filter(|p| !p.trim().is_empty())
        .map(str::parse)
        .collect()
}

#[derive(Clone, Debug)]
pub struct WebConfig {
    pub cookie_secure: CookieSecure,
    /// Reverse proxies whose `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are
    /// believed. From any other peer these headers are ignored: the socket peer is the client.
    /// They decide the client address for login rate limits and sessions, and the cookie's
    /// `Secure` under [`CookieSecure::Auto`]. Empty (the default): no proxy is trusted.
    pub trusted_proxies: Vec<IpCidr>,
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
            trusted_proxies: Vec::new(),
            session_idle: Duration::from_secs(8 * 3600),
            session_max_age: Duration::from_secs(7 * 24 * 3600),
            sip_registrar: None,
            setup_link_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl WebConfig {
    /// Is `peer` one of the [`WebConfig::trusted_proxies`]?
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_match() {
        let list = parse_cidr_list("10.0.0.0/8, 192.0.2.7 2001:db8::/32").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(list[0].contains(ip("10.200.0.1")));
        assert!(!list[0].contains(ip("11.0.0.1")));
        assert!(list[1].contains(ip("192.0.2.7")) && !list[1].contains(ip("192.0.2.8")));
        assert!(list[1].contains(ip("::ffff:192.0.2.7")), "IPv4-mapped");
        assert!(list[2].contains(ip("2001:db8:1::5")) && !list[2].contains(ip("2001:db9::1")));
        assert!(!list[2].contains(ip("10.0.0.1")));
        assert!(
            "0.0.0.0/0"
                .parse::<IpCidr>()
                .unwrap()
                .contains(ip("203.0.113.9"))
        );
        assert!("10.0.0.0/33".parse::<IpCidr>().is_err());
        assert!("proxy.local".parse::<IpCidr>().is_err());
        assert_eq!(parse_cidr_list(" ").unwrap(), vec![]);
        assert_eq!("on".parse::<CookieSecure>(), Ok(CookieSecure::Always));
        assert_eq!("AUTO".parse::<CookieSecure>(), Ok(CookieSecure::Auto));
        assert!(
            "maybe"
                .parse::<CookieSecure>()
                .unwrap_err()
                .contains("on, off or auto")
        );
    }
}
