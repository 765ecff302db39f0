//! The Via header (RFC 3261 §20.42): sent-protocol, sent-by and parameters.

use crate::ParseError;
use crate::syntax::{Params, is_token_byte, parse_decimal, trim_ws, validate_params_with};
use crate::uri::split_hostport;

/// The RFC 3261 branch magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// `UDP`, `TCP`, `TLS`, `WS`, ... as written.
    pub transport: &'a str,
    /// sent-by host (IPv6 with brackets).
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        const H: &str = "Via";
        let err = |r| ParseError::header(H, r);
        let s = trim_ws(s);
        let (name, rest) = s.split_once('/').ok_or(err("missing sent-protocol"))?;
        let (version, rest) = rest.split_once('/').ok_or(err("missing sent-protocol"))?;
        if !trim_ws(name).eq_ignore_ascii_case("SIP") || trim_ws(version) != "2.0" {
            return Err(err("sent-protocol is not SIP/2.0"));
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let tlen = rest.bytes().take_while(|b| is_token_byte(*b)).count();
        let (transport, rest) = rest.split_at(tlen);
        if transport.is_empty() || !rest.starts_with([' ', '\t']) {
            return Err(err("bad transport"));
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        let sb_len = rest.find(';').unwrap_or(rest.len());
        let (sent_by, params) = rest.split_at(sb_len);
        let (host, port) = split_hostport(trim_ws(sent_by)).map_err(|_| err("bad sent-by"))?;
        validate_params_with(params, H, |name, value| {
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            let problem = if is("branch") {
                match value {
                    None => Some("branch without value"),
                    Some(MAGIC_COOKIE) => Some("branch has no value after the magic cookie"),
                    Some(_) => None,
                }
            } else if is("rport") {
                value
                    .filter(|p| parse_decimal(p, 65535).is_none())
                    .map(|_| "bad rport")
            } else if is("received") {
                value.is_none().then_some("received without value")
            } else if is("ttl") {
                value
                    .and_then(|t| parse_decimal(t, 255))
                    .is_none()
                    .then_some("bad ttl")
            } else {
                None
            };
            problem.map_or(Ok(()), |r| Err(err(r)))
        })?;
        let via = Via {
            transport,
            host,
            port,
            params: Params::new(params),
        };
        Ok(via)
    }
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }
    /// True when the branch starts with the RFC 3261 magic cookie.
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(MAGIC_COOKIE))
    }
    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received")
    }
    /// `None`: no rport; `Some(None)`: bare `rport` (a request for it); `Some(Some(p))`: filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| parse_decimal(p, 65535)).map(|p| p as u16))
    }
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Headers;

    fn hdrs(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.push(n, v);
        }
        h
    }

    #[test]
    fn via_fields() {
        let v = Via::parse(
            "SIP / 2.0 / TCP [2001:db8::9]:5070 ; branch=z9hG4bKabc;rport;received=192.0.2.1;x",
        )
        .unwrap();
        assert_eq!(
            (v.transport, v.host, v.port),
            ("TCP", "[2001:db8::9]", Some(5070))
        );
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        assert!(v.is_rfc3261_branch());
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("192.0.2.1"));
        assert_eq!(v.params.get("x"), Some(None));
        let v = Via::parse("SIP/2.0/UDP host;rport=5061").unwrap();
        assert_eq!(
            (v.rport(), v.port, v.branch()),
            (Some(Some(5061)), None, None)
        );
        for bad in [
            "SIP/2.0/UDP",
            "SIP/3.0/UDP host",
            "SIP/2.0/UDP host;;",
            "SIP/2.0/UDP host;branch=z9hG4bK",
            "SIP/2.0/UDP host;branch",
            "SIP/2.0/UDP host;rport=x",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP ho st",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
        let h = hdrs(&[
            ("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b:5062"),
            ("Via", "SIP/2.0/TLS c"),
        ]);
        let hosts: Vec<_> = h.vias().unwrap().iter().map(|v| v.host).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        assert_eq!(h.top_via().unwrap().unwrap().transport, "UDP");
    }
}
