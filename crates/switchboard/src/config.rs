//! Configuration values parsed once at the edge (flags and environment).
//!
//! Every type here validates in `FromStr` so that clap reports a bad value as
//! one line naming the setting, the value and the expected form.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A database URL. `Debug` and `Display` hide the password so the value can
/// be logged and put into error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// Which backend a [`DatabaseUrl`] selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl DatabaseUrl {
    /// The full URL, password included. Only for handing to the store.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn backend(&self) -> Backend {
        if self.0.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// The password inside the URL, if any (to scrub it from messages).
    pub fn password(&self) -> Option<&str> {
        let rest = self.0.split_once("://")?.1;
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let userinfo = authority.rsplit_once('@')?.0;
        Some(userinfo.split_once(':')?.1)
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

/// Replaces the password in `scheme://user:password@host/...` with `***`.
/// Also hides `password=` query parameters.
pub fn redact_url(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            // The authority ends at the first '/', '?' or '#'; the userinfo
            // ends at the last '@' inside the authority.
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
                    None => url.to_owned(),
                },
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{head}{query}");
    }
    out
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let ok = s.starts_with("sqlite:")
            || s.starts_with("postgres://")
            || s.starts_with("postgresql://");
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a supported database URL; expected sqlite://PATH or postgres://USER:PASSWORD@HOST/DB",
                redact_url(s)
            ))
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// An inclusive UDP port range for RTP, e.g. `20000-20999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    low: u16,
    high: u16,
}

impl PortRange {
    pub fn new(low: u16, high: u16) -> Result<Self, String> {
        if low == 0 {
            return Err("port 0 is not a usable RTP port".into());
        }
        if low >= high {
            return Err(format!(
                "the low port {low} must be below the high port {high}"
            ));
        }
        Ok(Self { low, high })
    }

    pub fn low(&self) -> u16 {
        self.low
    }

    pub fn high(&self) -> u16 {
        self.high
    }

    /// How many RTP/RTCP port pairs fit, starting at an even port.
    pub fn pairs(&self) -> u32 {
        let first_even = u32::from(self.low) + u32::from(self.low % 2);
        (u32::from(self.high) + 1).saturating_sub(first_even) / 2
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "expected LOW-HIGH with 1 <= LOW < HIGH <= 65535, e.g. 20000-20999";
        let (low, high) = s
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("`{s}` is not a port range; {expected}"))?;
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("`{s}`: `{p}` is not a port number; {expected}"))
        };
        Self::new(port(low)?, port(high)?).map_err(|e| format!("`{s}`: {e}; {expected}"))
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

/// The address phones should reach us at when we sit behind NAT: an IP
/// address or a DNS host name, written into SDP and Contact headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicAddr {
    Ip(IpAddr),
    Host(String),
}

impl FromStr for PublicAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let host = s.strip_suffix('.').unwrap_or(s);
        if !host.is_empty() && host.len() <= 253 && host.split('.').all(label_ok) {
            Ok(Self::Host(host.to_ascii_lowercase()))
        } else {
            Err(format!(
                "`{s}` is neither an IP address nor a host name; expected e.g. 203.0.113.7 or pbx.example.com (no port)"
            ))
        }
    }
}

impl fmt::Display for PublicAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Host(h) => f.write_str(h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_userinfo() {
        let url: DatabaseUrl = "postgres://sb:s3cret@db:5432/sb".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://sb:***@db:5432/sb");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.expose(), "postgres://sb:s3cret@db:5432/sb");
        assert_eq!(url.backend(), Backend::Postgres);
        assert_eq!(url.password(), Some("s3cret"));
    }

    #[test]
    fn redacts_password_with_at_sign_and_query_password() {
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db?sslmode=require"),
            "postgres://u:***@h/db?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw"),
            "postgres://h/db?user=u&password=***"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn sqlite_url_is_accepted_and_unchanged() {
        let url: DatabaseUrl = "sqlite://switchboard.db".parse().unwrap();
        assert_eq!(url.backend(), Backend::Sqlite);
        assert_eq!(url.to_string(), "sqlite://switchboard.db");
    }

    #[test]
    fn unknown_scheme_is_rejected_without_leaking_password() {
        let err = "mysql://u:pw@h/db".parse::<DatabaseUrl>().unwrap_err();
        assert!(err.contains("mysql://u:***@h/db"), "{err}");
        assert!(err.contains("expected sqlite://"), "{err}");
    }

    #[test]
    fn port_range_parses_and_validates() {
        let r: PortRange = "20000-20999".parse().unwrap();
        assert_eq!((r.low(), r.high()), (20000, 20999));
        assert_eq!(r.pairs(), 500);
        assert_eq!(r.to_string(), "20000-20999");
        for bad in [
            "abc",
            "20000",
            "20999-20000",
            "1-1",
            "0-10",
            "1-70000",
            "a-b",
        ] {
            let err = bad.parse::<PortRange>().unwrap_err();
            assert!(err.contains("expected LOW-HIGH"), "{bad}: {err}");
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn odd_start_loses_a_pair() {
        let r: PortRange = "20001-20010".parse().unwrap();
        assert_eq!(r.pairs(), 4);
    }

    #[test]
    fn public_addr_accepts_ip_or_host() {
        assert_eq!(
            "203.0.113.7".parse::<PublicAddr>().unwrap().to_string(),
            "203.0.113.7"
        );
        assert_eq!(
            "PBX.Example.com".parse::<PublicAddr>().unwrap(),
            PublicAddr::Host("pbx.example.com".into())
        );
        assert!("2001:db8::1".parse::<PublicAddr>().is_ok());
        for bad in [
            "",
            "pbx.example.com:5060",
            "-bad.example",
            "a b",
            "http://x",
        ] {
            assert!(bad.parse::<PublicAddr>().is_err(), "{bad}");
        }
    }
}

/// The web app's trusted reverse proxies: addresses or CIDR blocks, comma- or space-separated
/// (empty: none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<web::config::IpCidr>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        web::config::parse_cidr_list(s).map(Self)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// When the session cookie carries `Secure`: `on`, `off` or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieSecure(pub web::CookieSecure);

impl FromStr for CookieSecure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl fmt::Display for CookieSecure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod web_settings_tests {
    use super::*;

    #[test]
    fn trusted_proxies_and_cookie_secure_parse() {
        let p: TrustedProxies = "10.0.0.0/8, 192.0.2.7".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8,192.0.2.7/32");
        assert_eq!(
            "".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::default()
        );
        let err = "10.0.0.0/8,proxy".parse::<TrustedProxies>().unwrap_err();
        assert!(
            err.contains("\"proxy\" is not an IP address or CIDR"),
            "{err}"
        );
        assert_eq!(
            "off".parse::<CookieSecure>().unwrap(),
            CookieSecure(web::CookieSecure::Never)
        );
        assert!("sometimes".parse::<CookieSecure>().is_err());
    }
}

/// Which digest challenges the registrar offers, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipDigest {
    Md5,
    Md5ThenSha256,
    Sha256ThenMd5,
}

impl SipDigest {
    pub fn challenges(self) -> pbx::ChallengeAlgorithms {
        match self {
            Self::Md5 => pbx::ChallengeAlgorithms::Md5Only,
            Self::Md5ThenSha256 => pbx::ChallengeAlgorithms::Md5ThenSha256,
            Self::Sha256ThenMd5 => pbx::ChallengeAlgorithms::Sha256ThenMd5,
        }
    }
}

impl FromStr for SipDigest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let list: Vec<String> = s
            .split(',')
            .map(|a| a.trim().to_ascii_lowercase().replace('-', ""))
            .collect();
        match list
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["md5"] => Ok(Self::Md5),
            ["md5", "sha256"] => Ok(Self::Md5ThenSha256),
            ["sha256", "md5"] => Ok(Self::Sha256ThenMd5),
            _ => Err(format!(
                "`{s}` is not a digest choice; expected `md5`, `md5,sha256` or `sha256,md5`"
            )),
        }
    }
}

impl fmt::Display for SipDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Md5 => "md5",
            Self::Md5ThenSha256 => "md5,sha256",
            Self::Sha256ThenMd5 => "sha256,md5",
        })
    }
}

#[cfg(test)]
mod sip_digest_tests {
    use super::SipDigest;

    #[test]
    fn digest_choices_parse_and_print() {
        for (text, want) in [
            ("md5", SipDigest::Md5),
            ("MD5", SipDigest::Md5),
            ("md5,sha256", SipDigest::Md5ThenSha256),
            ("SHA-256, MD5", SipDigest::Sha256ThenMd5),
        ] {
            let got: SipDigest = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string().parse::<SipDigest>().unwrap(), want);
        }
        let err = "sha1".parse::<SipDigest>().unwrap_err();
        assert!(
            err.contains("expected `md5`, `md5,sha256` or `sha256,md5`"),
            "{err}"
        );
        assert!("sha256".parse::<SipDigest>().is_err());
    }
}

/// Source blocks the SIP guard never bans nor rate limits (an SBC, a Kamailio
/// dispatcher, an office NAT), e.g. `203.0.113.7, 198.51.100.0/24, 2001:db8::/48`.
/// Trunk addresses are exempt automatically and need not be listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SipExempt(pub Vec<sip::guard::IpNet>);

impl FromStr for SipExempt {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let net: sip::guard::IpNet = p.parse()?;
                let wide = if net.addr().is_ipv4() { 8 } else { 32 };
                if net.prefix() < wide {
                    return Err(format!(
                        "`{p}` exempts too much of the internet from the SIP guard; \
                         list the proxies or offices themselves (at least /{wide})"
                    ));
                }
                Ok(net)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(SipExempt)
    }
}

impl fmt::Display for SipExempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod sip_exempt_tests {
    use super::SipExempt;

    #[test]
    fn exempt_lists_parse_and_refuse_huge_blocks() {
        let e: SipExempt = "203.0.113.7, 198.51.100.0/24 2001:db8::/48"
            .parse()
            .unwrap();
        assert_eq!(e.0.len(), 3);
        assert_eq!(
            e.to_string(),
            "203.0.113.7/32,198.51.100.0/24,2001:db8::/48"
        );
        assert!(e.0[1].contains("198.51.100.77".parse().unwrap()));
        assert_eq!("".parse::<SipExempt>().unwrap(), SipExempt::default());
        let err = "0.0.0.0/0".parse::<SipExempt>().unwrap_err();
        assert!(err.contains("exempts too much"), "{err}");
        let err = "sbc.example".parse::<SipExempt>().unwrap_err();
        assert!(err.contains("expected e.g. 192.0.2.0/24"), "{err}");
    }
}
