//! SIP/SIPS URIs (RFC 3261 §19.1) plus opaque URIs of any other scheme.
//!
//! A URI is kept as its original text plus the byte ranges of its parts, so
//! parsing does one allocation (for [`Uri`]) or none (for [`UriRef`]).

use std::borrow::Cow;
use std::fmt;

use crate::ParseError;
use crate::syntax::{Params, trim_ws};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    /// Any other scheme (`tel:`, `http:`, ...); the URI is kept opaque.
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn of<'a>(&self, s: &'a str) -> &'a str {
        s.get(self.start..self.end).unwrap_or("")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UriParts {
    scheme: Scheme,
    scheme_end: usize,
    user: Option<Span>,
    password: Option<Span>,
    host: Span,
    port: Option<u16>,
    params: Span,
    headers: Option<Span>,
}

fn check_escapes(s: &str) -> Result<(), ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(ParseError::Uri("bad %HEX escape"));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

fn all_bytes(s: &str, extra: &[u8]) -> bool {
    s.bytes()
        .all(|b| is_unreserved(b) || b == b'%' || extra.contains(&b))
}

/// Decodes `%HH` escapes once (never recursively). Invalid escapes are kept literally.
pub fn unescape(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |x: Option<&u8>| x.and_then(|c| (*c as char).to_digit(16));
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(out)
}

fn parse_host(s: &str) -> Result<(), ParseError> {
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| ParseError::Uri("bad IPv6 reference"));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(ParseError::Uri("bad host"));
    }
    Ok(())
}

/// Splits `host[:port]` (host may be an IPv6 reference). Shared with Via sent-by.
pub(crate) fn split_hostport(s: &str) -> Result<(&str, Option<u16>), ParseError> {
    let (host, port) = if s.starts_with('[') {
        let close = s
            .find(']')
            .ok_or(ParseError::Uri("unterminated IPv6 reference"))?;
        let (h, rest) = s.split_at(close + 1);
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return Err(ParseError::Uri("junk after IPv6 reference")),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    parse_host(host)?;
    let port = match port {
        Some(p) => Some(
            crate::syntax::parse_decimal(p, u64::from(u16::MAX))
                .map(|v| v as u16)
                .ok_or(ParseError::Uri("bad port"))?,
        ),
        None => None,
    };
    Ok((host, port))
}

impl UriParts {
    pub(crate) fn parse(s: &str) -> Result<UriParts, ParseError> {
        if s.bytes()
            .any(|b| b <= b' ' || b == 0x7f || matches!(b, b'<' | b'>' | b'"'))
        {
            return Err(ParseError::Uri("whitespace, control or <>\" characters"));
        }
        let colon = s.find(':').ok_or(ParseError::Uri("no scheme"))?;
        let scheme_str = &s[..colon];
        let first_alpha = scheme_str
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic());
        if !first_alpha
            || !scheme_str
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return Err(ParseError::Uri("bad scheme"));
        }
        let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_str.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else {
            if s.len() == colon + 1 {
                return Err(ParseError::Uri("empty opaque part"));
            }
            return Ok(UriParts {
                scheme: Scheme::Other,
                scheme_end: colon,
                user: None,
                password: None,
                host: Span::default(),
                port: None,
                params: Span::default(),
                headers: None,
            });
        };
        let base = colon + 1;
        let rest = &s[base..];
        let (user, password, hp_off) = match rest.find('@') {
            Some(at) => {
                let info = &rest[..at];
                let (u, p) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                if u.is_empty() || !all_bytes(u, b"&=+$,;?/") {
                    return Err(ParseError::Uri("bad user part"));
                }
                check_escapes(u)?;
                let user = Span {
                    start: base,
                    end: base + u.len(),
                };
                let password = match p {
                    Some(p) => {
                        if !all_bytes(p, b"&=+$,") {
                            return Err(ParseError::Uri("bad password"));
                        }
                        check_escapes(p)?;
                        let start = base + u.len() + 1;
                        Some(Span {
                            start,
                            end: start + p.len(),
                        })
                    }
                    None => None,
                };
                (Some(user), password, at + 1)
            }
            None => (None, None, 0),
        };
        let hp_start = base + hp_off;
        let tail = &s[hp_start..];
        // host[:port] ends at the first ';' or '?' (IPv6 references contain neither)
        let hp_len = tail.find([';', '?']).unwrap_or(tail.len());
        let (host, port) = split_hostport(&tail[..hp_len])?;
        let host = Span {
            start: hp_start,
            end: hp_start + host.len(),
        };
        let after = hp_start + hp_len;
        let tail = &s[after..];
        let q = tail.find('?').unwrap_or(tail.len());
        let params_s = &tail[..q];
        for item in params_s.split(';').skip(1) {
            let (n, v) = item.split_once('=').unwrap_or((item, ""));
            if n.is_empty() || !all_bytes(n, b"[]/:&+$") || !all_bytes(v, b"[]/:&+$") {
                return Err(ParseError::Uri("bad URI parameter"));
            }
        }
        check_escapes(params_s)?;
        let params = Span {
            start: after,
            end: after + q,
        };
        let headers = if q < tail.len() {
            let h = &tail[q + 1..];
            if h.is_empty() || !all_bytes(h, b"[]/?:+$&=") {
                return Err(ParseError::Uri("bad URI headers"));
            }
            check_escapes(h)?;
            Some(Span {
                start: after + q + 1,
                end: s.len(),
            })
        } else {
            None
        };
        Ok(UriParts {
            scheme,
            scheme_end: colon,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }
}

/// A borrowed, parsed URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UriRef<'a> {
    raw: &'a str,
    parts: UriParts,
}

/// An owned, parsed URI (the Request-URI, or a URI taken out of a header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    raw: String,
    parts: UriParts,
}

impl<'a> UriRef<'a> {
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        Ok(UriRef {
            raw: s,
            parts: UriParts::parse(s)?,
        })
    }
    pub fn to_uri(&self) -> Uri {
        Uri {
            raw: self.raw.to_owned(),
            parts: self.parts,
        }
    }
    /// The URI exactly as received.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    pub fn scheme(&self) -> Scheme {
        self.parts.scheme
    }
    /// The scheme as written (e.g. `tel`, `soap.beep`).
    pub fn scheme_str(&self) -> &'a str {
        self.raw.get(..self.parts.scheme_end).unwrap_or("")
    }
    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        self.parts.scheme != Scheme::Other
    }
    /// Everything after `scheme:` (for opaque URIs this is the whole content).
    pub fn opaque(&self) -> &'a str {
        self.raw.get(self.parts.scheme_end + 1..).unwrap_or("")
    }
    /// User part, still %-escaped.
    pub fn user(&self) -> Option<&'a str> {
        self.parts.user.map(|s| s.of(self.raw))
    }
    /// User part with %HEX escapes decoded once (may contain NUL).
    pub fn user_unescaped(&self) -> Option<Cow<'a, [u8]>> {
        self.user().map(unescape)
    }
    pub fn password(&self) -> Option<&'a str> {
        self.parts.password.map(|s| s.of(self.raw))
    }
    /// Host as written (IPv6 references keep their brackets); empty for opaque URIs.
    pub fn host(&self) -> &'a str {
        self.parts.host.of(self.raw)
    }
    pub fn port(&self) -> Option<u16> {
        self.parts.port
    }
    /// URI parameters (`;transport=tcp;lr`), names case-insensitive.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.parts.params.of(self.raw))
    }
    /// The raw `?hname=hvalue&...` part without the `?`.
    pub fn headers(&self) -> Option<&'a str> {
        self.parts.headers.map(|s| s.of(self.raw))
    }
    pub fn transport(&self) -> Option<&'a str> {
        self.params().value("transport")
    }

    /// The canonical address-of-record form RFC 3261 §10.3 step 5 asks a
    /// registrar to key bindings by: `sip:`/`sips:` + user + `@` + host
    /// (lowercased) + `:port` if present; parameters and headers dropped; %HEX
    /// escapes decoded and re-escaped only where the character needs it, so
    /// `sip:%75se%72@EXAMPLE.com` and `sip:user@example.com` give the same key.
    /// `None` for non-SIP URIs (a registrar answers those with 400/416).
    pub fn canonical_aor(&self) -> Option<String> {
        let scheme = match self.scheme() {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
            Scheme::Other => return None,
        };
        let mut out = String::with_capacity(self.raw.len());
        out.push_str(scheme);
        if let Some(user) = self.user() {
            for b in unescape(user).iter().copied() {
                if is_unreserved(b) || b"&=+$,;?/".contains(&b) {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out.push('@');
        }
        out.push_str(&self.host().to_ascii_lowercase());
        if let Some(p) = self.port() {
            out.push_str(&format!(":{p}"));
        }
        Some(out)
    }

    /// URI comparison per RFC 3261 §19.1.4.
    pub fn equivalent(&self, other: &UriRef<'_>) -> bool {
        if self.scheme() != other.scheme() {
            return false;
        }
        if !self.is_sip() {
            return self.scheme_str().eq_ignore_ascii_case(other.scheme_str())
                && self.opaque() == other.opaque();
        }
        let esc_eq = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (Some(a), Some(b)) => unescape(a) == unescape(b),
            (None, None) => true,
            _ => false,
        };
        let esc_eq_ci = |a: &str, b: &str| unescape(a).eq_ignore_ascii_case(&unescape(b));
        if !esc_eq(self.user(), other.user())
            || !esc_eq(self.password(), other.password())
            || !self.host().eq_ignore_ascii_case(other.host())
            || self.port() != other.port()
        {
            return false;
        }
        const MUST_MATCH: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        let (pa, pb) = (self.params(), other.params());
        for (n, v) in pa.iter() {
            let must = MUST_MATCH.iter().any(|m| m.eq_ignore_ascii_case(n));
            match pb.iter().find(|(m, _)| esc_eq_ci(m, n)) {
                Some((_, w)) if !esc_eq_ci(v.unwrap_or(""), w.unwrap_or("")) => return false,
                None if must => return false,
                _ => {}
            }
        }
        for (n, _) in pb.iter() {
            if MUST_MATCH.iter().any(|m| m.eq_ignore_ascii_case(n))
                && !pa.iter().any(|(m, _)| esc_eq_ci(m, n))
            {
                return false;
            }
        }
        let mut ha: Vec<_> = self
            .headers()
            .unwrap_or("")
            .split('&')
            .filter(|x| !x.is_empty())
            .map(unescape)
            .collect();
        let mut hb: Vec<_> = other
            .headers()
            .unwrap_or("")
            .split('&')
            .filter(|x| !x.is_empty())
            .map(unescape)
            .collect();
        ha.sort();
        hb.sort();
        ha == hb
    }
}

impl Uri {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = trim_ws(s);
        Ok(Uri {
            parts: UriParts::parse(s)?,
            raw: s.to_owned(),
        })
    }
    /// Borrowed view with all the accessors.
    pub fn as_ref(&self) -> UriRef<'_> {
        UriRef {
            raw: &self.raw,
            parts: self.parts,
        }
    }
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn scheme(&self) -> Scheme {
        self.parts.scheme
    }
    pub fn is_sip(&self) -> bool {
        self.parts.scheme != Scheme::Other
    }
    pub fn user(&self) -> Option<&str> {
        self.as_ref().user()
    }
    pub fn host(&self) -> &str {
        self.as_ref().host()
    }
    pub fn port(&self) -> Option<u16> {
        self.parts.port
    }
    pub fn params(&self) -> Params<'_> {
        self.as_ref().params()
    }
    pub fn headers(&self) -> Option<&str> {
        self.as_ref().headers()
    }
    /// See [`UriRef::canonical_aor`].
    pub fn canonical_aor(&self) -> Option<String> {
        self.as_ref().canonical_aor()
    }
    pub fn equivalent(&self, other: &Uri) -> bool {
        self.as_ref().equivalent(&other.as_ref())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Display for UriRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

impl std::str::FromStr for Uri {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Uri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u =
            Uri::parse("sips:alice:pw@[2001:db8::1]:5061;Transport=TCP;lr?Subject=hi&x=y").unwrap();
        assert_eq!(u.scheme(), Scheme::Sips);
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.as_ref().password(), Some("pw"));
        assert_eq!(u.host(), "[2001:db8::1]");
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.as_ref().transport(), Some("TCP"));
        assert!(u.params().contains("LR"));
        assert_eq!(u.headers(), Some("Subject=hi&x=y"));
    }

    #[test]
    fn host_only_and_opaque() {
        let u = Uri::parse("sip:example.com").unwrap();
        assert_eq!((u.user(), u.host(), u.port()), (None, "example.com", None));
        let t = Uri::parse("tel:+44-113-496-0000;phone-context=x").unwrap();
        assert!(!t.is_sip());
        assert_eq!(t.as_ref().scheme_str(), "tel");
        assert_eq!(t.as_str(), "tel:+44-113-496-0000;phone-context=x");
        assert!(Uri::parse("soap.beep://192.0.2.103:3002").is_ok());
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "sip:user@example.com; lr",
            "<sip:a@b>",
            "sip:a@[::1",
            "sip:a@b:99999",
            "sip:@b",
            "sip:a@b;%zz",
            "nocolon",
            "sip:a@",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_compare_unescaped() {
        let a = Uri::parse("sip:%75se%72@example.com").unwrap();
        let b = Uri::parse("sip:user@EXAMPLE.com").unwrap();
        assert!(a.equivalent(&b));
        let n = Uri::parse("sip:null-%00-null@example.com").unwrap();
        assert_eq!(
            n.as_ref().user_unescaped().unwrap().as_ref(),
            b"null-\0-null"
        );
        // not recursive
        assert_eq!(unescape("%2541").as_ref(), b"%41");
        let c = Uri::parse("sip:user@example.com;transport=tcp").unwrap();
        assert!(!c.equivalent(&b));
        let d = Uri::parse("sip:user@example.com;foo=bar").unwrap();
        assert!(d.equivalent(&b));
        assert!(
            !Uri::parse("sip:user@example.com:5060")
                .unwrap()
                .equivalent(&b)
        );
    }
}
