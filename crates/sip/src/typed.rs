//! Typed views of the common headers, parsed on access from the raw values.
//! All views borrow from the message; none allocates except where noted.

use std::borrow::Cow;

use crate::ParseError;
use crate::headers::Headers;
use crate::message::Method;
use crate::syntax::{
    Params, is_token, parse_decimal, quoted_len, split_outside, trim_ws, unquote, validate_params,
};
use crate::uri::UriRef;
use crate::via::Via;

/// A `name-addr` / `addr-spec` with header parameters (From, To, Contact, Route...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display: Option<&'a str>,
    pub uri: UriRef<'a>,
    /// Whether the URI was enclosed in `<>`.
    pub bracketed: bool,
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Strict parse of one value; `header` names the header in errors.
    pub fn parse(s: &'a str, header: &'static str) -> Result<Self, ParseError> {
        let err = |r| ParseError::header(header, r);
        let s = trim_ws(s);
        let (display, after_display) = if s.starts_with('"') {
            let n = quoted_len(s).ok_or(err("unterminated quoted string"))?;
            let rest = s.get(n..).unwrap_or("").trim_start_matches([' ', '\t']);
            if !rest.starts_with('<') {
                return Err(err("quoted display name without <URI>"));
            }
            (s.get(..n), rest)
        } else {
            let head = &s[..s.find(';').unwrap_or(s.len())];
            match head.find('<') {
                Some(lt) => {
                    let d = trim_ws(&s[..lt]);
                    if !d.is_empty()
                        && !d.split([' ', '\t']).filter(|w| !w.is_empty()).all(is_token)
                    {
                        return Err(err("display name has characters that need quoting"));
                    }
                    (if d.is_empty() { None } else { Some(d) }, &s[lt..])
                }
                None => (None, s),
            }
        };
        if let Some(inner) = after_display.strip_prefix('<') {
            let gt = inner.find('>').ok_or(err("unbalanced <"))?;
            let uri_s = &inner[..gt];
            if uri_s.starts_with([' ', '\t']) || uri_s.ends_with([' ', '\t']) {
                return Err(err("whitespace inside <>"));
            }
            let uri = UriRef::parse(uri_s)?;
            let params = &inner[gt + 1..];
            validate_params(params, header)?;
            Ok(NameAddr {
                display,
                uri,
                bracketed: true,
                params: Params::new(params),
            })
        } else {
            let end = s.find(';').unwrap_or(s.len());
            let uri_s = trim_ws(&s[..end]);
            if uri_s.contains(['?', ',', '>']) {
                return Err(err("URI with ? or , must be enclosed in <>"));
            }
            let uri = UriRef::parse(uri_s)?;
            let params = &s[end..];
            validate_params(params, header)?;
            Ok(NameAddr {
                display: None,
                uri,
                bracketed: false,
                params: Params::new(params),
            })
        }
    }

    /// The display name, unquoted and unescaped.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(unquote)
    }
    /// The display name as written (with quotes if it had them).
    pub fn display_raw(&self) -> Option<&'a str> {
        self.display
    }
    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }
    /// Contact `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.params
            .value("expires")
            .and_then(|v| parse_decimal(v, u64::from(u32::MAX)))
            .map(|v| v as u32)
    }
    /// Contact `q` parameter in thousandths (`q=0.5` → 500).
    pub fn q(&self) -> Option<u16> {
        self.params.value("q").and_then(parse_qvalue)
    }
}

fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i.min(2)];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// CSeq: sequence number and method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    /// Largest CSeq number RFC 3261 §8.1.1.5 allows.
    pub const MAX: u32 = (1 << 31) - 1;

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let err = |r| ParseError::header("CSeq", r);
        let s = trim_ws(s);
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, rest) = s.split_at(n);
        let seq = parse_decimal(num, u64::from(CSeq::MAX))
            .ok_or(err("number missing or above 2^31-1"))?;
        if !rest.starts_with([' ', '\t']) {
            return Err(err("missing method"));
        }
        let m = trim_ws(rest);
        if !is_token(m) {
            return Err(err("bad method"));
        }
        Ok(CSeq {
            seq: seq as u32,
            method: Method::from_token(m),
        })
    }
}

/// The Contact header(s) of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contacts<'a> {
    /// `Contact: *` (REGISTER remove-all).
    Star,
    /// Zero or more addresses.
    List(Vec<NameAddr<'a>>),
}

fn single<'a>(h: &'a Headers, name: &'static str) -> Result<Option<&'a str>, ParseError> {
    let mut it = h.get_all(name);
    let first = it.next();
    if it.next().is_some() {
        return Err(ParseError::Duplicate(name));
    }
    Ok(first)
}

fn number(h: &Headers, name: &'static str, max: u64) -> Result<Option<u64>, ParseError> {
    single(h, name)?
        .map(|v| check_number(v, name, max))
        .transpose()
}

fn name_addrs<'a>(h: &'a Headers, name: &'static str) -> Result<Vec<NameAddr<'a>>, ParseError> {
    h.values(name).map(|v| NameAddr::parse(v, name)).collect()
}

/// Typed accessors. Single-value headers report [`ParseError::Duplicate`] when repeated.
impl Headers {
    /// All Via values, top first.
    pub fn vias(&self) -> Result<Vec<Via<'_>>, ParseError> {
        self.values("Via").map(Via::parse).collect()
    }
    pub fn top_via(&self) -> Result<Option<Via<'_>>, ParseError> {
        self.values("Via").next().map(Via::parse).transpose()
    }
    pub fn from_addr(&self) -> Result<Option<NameAddr<'_>>, ParseError> {
        single(self, "From")?
            .map(|v| NameAddr::parse(v, "From"))
            .transpose()
    }
    pub fn to_addr(&self) -> Result<Option<NameAddr<'_>>, ParseError> {
        single(self, "To")?
            .map(|v| NameAddr::parse(v, "To"))
            .transpose()
    }
    pub fn call_id(&self) -> Result<Option<&str>, ParseError> {
        single(self, "Call-ID")?.map(check_call_id).transpose()
    }
    pub fn cseq(&self) -> Result<Option<CSeq>, ParseError> {
        single(self, "CSeq")?.map(CSeq::parse).transpose()
    }
    pub fn contacts(&self) -> Result<Contacts<'_>, ParseError> {
        let mut vals = self.values("Contact").peekable();
        if vals.peek().is_some_and(|v| *v == "*") {
            vals.next();
            if vals.next().is_some() {
                return Err(ParseError::header("Contact", "* mixed with other contacts"));
            }
            return Ok(Contacts::Star);
        }
        let list = vals.map(check_contact).collect::<Result<Vec<_>, _>>()?;
        Ok(Contacts::List(list))
    }
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        Ok(number(self, "Max-Forwards", 255)?.map(|v| v as u8))
    }
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        Ok(number(self, "Expires", u64::from(u32::MAX))?.map(|v| v as u32))
    }
    pub fn content_length(&self) -> Result<Option<u64>, ParseError> {
        number(self, "Content-Length", u64::MAX)
    }
    /// The media type, e.g. `application/sdp` (parameters included as written).
    pub fn content_type(&self) -> Result<Option<&str>, ParseError> {
        single(self, "Content-Type")?
            .map(check_content_type)
            .transpose()
    }
    pub fn routes(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        name_addrs(self, "Route")
    }
    pub fn record_routes(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        name_addrs(self, "Record-Route")
    }
    /// Methods listed in Allow.
    pub fn allow(&self) -> impl Iterator<Item = Method> + '_ {
        self.values("Allow").map(Method::from_token)
    }
    /// Option tags listed in Supported.
    pub fn supported(&self) -> impl Iterator<Item = &str> + '_ {
        self.values("Supported")
    }
    /// Option tags listed in Require.
    pub fn require(&self) -> impl Iterator<Item = &str> + '_ {
        self.values("Require")
    }
    pub fn user_agent(&self) -> Option<&str> {
        self.get("User-Agent")
    }
}

fn check_call_id(v: &str) -> Result<&str, ParseError> {
    let v = trim_ws(v);
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ParseError::header(
            "Call-ID",
            "empty or contains whitespace",
        ));
    }
    Ok(v)
}

fn check_number(v: &str, name: &'static str, max: u64) -> Result<u64, ParseError> {
    parse_decimal(trim_ws(v), max).ok_or(ParseError::header(name, "not a number in range"))
}

fn check_content_type(v: &str) -> Result<&str, ParseError> {
    let v = trim_ws(v);
    if !v.contains('/') {
        return Err(ParseError::header("Content-Type", "not type/subtype"));
    }
    Ok(v)
}

fn check_contact(v: &str) -> Result<NameAddr<'_>, ParseError> {
    let na = NameAddr::parse(v, "Contact")?;
    for (name, value) in na.params.iter() {
        if name.eq_ignore_ascii_case("expires")
            && value
                .and_then(|e| parse_decimal(e, u64::from(u32::MAX)))
                .is_none()
        {
            return Err(ParseError::header("Contact", "expires out of range"));
        }
        if name.eq_ignore_ascii_case("q") && value.and_then(parse_qvalue).is_none() {
            return Err(ParseError::header("Contact", "bad q value"));
        }
    }
    Ok(na)
}

/// Validates, in one pass, every header the parser checks strictly.
pub(crate) fn validate(h: &Headers, max_vias: usize) -> Result<(), ParseError> {
    use crate::headers::{id, known_name};
    const SINGLE: u64 = 1 << id::FROM
        | 1 << id::TO
        | 1 << id::CALL_ID
        | 1 << id::CSEQ
        | 1 << id::MAX_FORWARDS
        | 1 << id::EXPIRES
        | 1 << id::CONTENT_LENGTH
        | 1 << id::CONTENT_TYPE
        | 1 << id::DATE;
    let mut seen = 0u64;
    let mut vias = 0usize;
    let (mut contacts, mut star) = (0usize, false);
    for (canon, v) in h.iter_known() {
        let Some(hid) = canon else { continue };
        let bit = 1u64.checked_shl(u32::from(hid)).unwrap_or(0);
        if SINGLE & bit != 0 {
            if seen & bit != 0 {
                return Err(ParseError::Duplicate(known_name(hid)));
            }
            seen |= bit;
        }
        match hid {
            id::VIA => {
                for item in split_outside(v, b',') {
                    vias += 1;
                    if vias > max_vias {
                        return Err(ParseError::TooManyVias { limit: max_vias });
                    }
                    Via::parse(item)?;
                }
            }
            id::FROM | id::TO => {
                NameAddr::parse(v, known_name(hid))?;
            }
            id::CALL_ID => {
                check_call_id(v)?;
            }
            id::CSEQ => {
                CSeq::parse(v)?;
            }
            id::MAX_FORWARDS => {
                check_number(v, "Max-Forwards", 255)?;
            }
            id::EXPIRES => {
                check_number(v, "Expires", u64::from(u32::MAX))?;
            }
            id::CONTENT_LENGTH => {
                check_number(v, "Content-Length", u64::MAX)?;
            }
            id::CONTENT_TYPE => {
                check_content_type(v)?;
            }
            id::DATE if !trim_ws(v).ends_with("GMT") => {
                return Err(ParseError::header("Date", "time zone must be GMT"));
            }
            id::CONTACT | id::ROUTE | id::RECORD_ROUTE if !trim_ws(v).is_empty() => {
                let name = known_name(hid);
                for item in split_outside(v, b',') {
                    if trim_ws(item).is_empty() {
                        return Err(ParseError::header(name, "empty value in list"));
                    }
                    if hid != id::CONTACT {
                        NameAddr::parse(item, name)?;
                        continue;
                    }
                    contacts += 1;
                    if trim_ws(item) == "*" {
                        star = true;
                    } else {
                        check_contact(item)?;
                    }
                }
            }
            _ => {}
        }
    }
    if star && contacts > 1 {
        return Err(ParseError::header("Contact", "* mixed with other contacts"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.push(n, v);
        }
        h
    }

    #[test]
    fn from_to_name_addr() {
        let h = hdrs(&[
            (
                "f",
                r#""Alice \"A\" Smith" <sip:alice@example.com>;tag=abc"#,
            ),
            ("t", "Bob Jones <sip:bob@example.com;transport=tcp>"),
        ]);
        let f = h.from_addr().unwrap().unwrap();
        assert_eq!(f.display_name().unwrap(), r#"Alice "A" Smith"#);
        assert_eq!(f.display_raw(), Some(r#""Alice \"A\" Smith""#));
        assert_eq!(f.tag(), Some("abc"));
        assert_eq!(f.uri.user(), Some("alice"));
        let t = h.to_addr().unwrap().unwrap();
        assert_eq!(t.display_name().unwrap(), "Bob Jones");
        assert_eq!(t.tag(), None);
        assert_eq!(t.uri.transport(), Some("tcp"));
        // addr-spec form: parameters belong to the header
        let a = NameAddr::parse("sip:carol@example.com;tag=9", "To").unwrap();
        assert_eq!(
            (a.tag(), a.uri.params().is_empty(), a.bracketed),
            (Some("9"), true, false)
        );
        for bad in [
            r#""unterminated <sip:a@b>"#,
            "<sip:a@b",
            "< sip:a@b>",
            "Bell, Alexander <sip:a@b>",
            "sip:a@b?x=y",
            "<sip:a@b>;;",
            "<sip:a@b> junk",
        ] {
            assert!(NameAddr::parse(bad, "To").is_err(), "{bad}");
        }
        let two = hdrs(&[("To", "<sip:a@b>"), ("t", "<sip:c@d>")]);
        assert_eq!(two.to_addr(), Err(ParseError::Duplicate("To")));
    }

    #[test]
    fn call_id_and_cseq() {
        let h = hdrs(&[("i", " abc@host "), ("CSeq", "4711   REGISTER")]);
        assert_eq!(h.call_id().unwrap(), Some("abc@host"));
        assert_eq!(
            h.cseq().unwrap(),
            Some(CSeq {
                seq: 4711,
                method: Method::Register
            })
        );
        assert!(CSeq::parse("2147483647 INVITE").is_ok());
        for bad in [
            "2147483648 INVITE",
            "INVITE",
            "12",
            "-1 INVITE",
            "1 INVITE x",
            "99999999999999999999999 ACK",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
        assert!(hdrs(&[("Call-ID", "a b")]).call_id().is_err());
        assert!(hdrs(&[("Call-ID", "a"), ("i", "b")]).call_id().is_err());
        assert!(hdrs(&[("CSeq", "1 A"), ("CSeq", "2 A")]).cseq().is_err());
    }

    #[test]
    fn contacts() {
        let h = hdrs(&[
            (
                "m",
                r#"<sip:a@192.0.2.1:5060;ob>;expires=3600;q=0.7;+sip.instance="<urn:uuid:1>", sip:b@h"#,
            ),
            ("Contact", "\"X\" <sips:c@h>"),
        ]);
        let Contacts::List(c) = h.contacts().unwrap() else {
            panic!("not a list")
        };
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].expires(), c[0].q()), (Some(3600), Some(700)));
        assert_eq!(c[0].params.value("+sip.instance"), Some("\"<urn:uuid:1>\""));
        assert!(c[0].uri.params().contains("ob"));
        assert_eq!(c[1].uri.user(), Some("b"));
        assert_eq!(c[2].uri.scheme(), crate::Scheme::Sips);
        assert_eq!(
            hdrs(&[("Contact", "*")]).contacts().unwrap(),
            Contacts::Star
        );
        assert_eq!(hdrs(&[]).contacts().unwrap(), Contacts::List(vec![]));
        assert!(hdrs(&[("Contact", "*, <sip:a@b>")]).contacts().is_err());
        assert!(
            hdrs(&[("Contact", "<sip:a@b>;expires=4294967296")])
                .contacts()
                .is_err()
        );
        assert!(hdrs(&[("Contact", "<sip:a@b>;q=1.5")]).contacts().is_err());
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0.1234"), None);
    }

    #[test]
    fn numeric_headers() {
        let h = hdrs(&[
            ("Max-Forwards", "70"),
            ("Expires", "4294967295"),
            ("l", "12"),
        ]);
        assert_eq!(h.max_forwards().unwrap(), Some(70));
        assert_eq!(h.expires().unwrap(), Some(u32::MAX));
        assert_eq!(h.content_length().unwrap(), Some(12));
        assert!(hdrs(&[("Max-Forwards", "256")]).max_forwards().is_err());
        assert!(hdrs(&[("Expires", "4294967296")]).expires().is_err());
        assert!(hdrs(&[("Content-Length", "-1")]).content_length().is_err());
        assert!(
            hdrs(&[("Content-Length", "99999999999999999999999")])
                .content_length()
                .is_err()
        );
        assert!(
            hdrs(&[("l", "1"), ("Content-Length", "1")])
                .content_length()
                .is_err()
        );
        assert_eq!(hdrs(&[]).max_forwards().unwrap(), None);
    }

    #[test]
    fn lists_and_misc() {
        let h = hdrs(&[
            ("Allow", "INVITE, ACK,BYE , FOO"),
            ("k", "path, outbound"),
            ("Supported", "gruu"),
            ("Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>"),
            ("Record-Route", "<sip:rr@example.com;lr>"),
            ("c", "application/sdp"),
            ("User-Agent", "Phone/1.0 (model X)"),
        ]);
        let allow: Vec<_> = h.allow().collect();
        assert_eq!(
            allow,
            [
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Extension("FOO".into())
            ]
        );
        assert_eq!(
            h.supported().collect::<Vec<_>>(),
            ["path", "outbound", "gruu"]
        );
        let r: Vec<_> = h.routes().unwrap().iter().map(|r| r.uri.host()).collect();
        assert_eq!(r, ["p1.example.com", "p2.example.com"]);
        assert_eq!(h.record_routes().unwrap().len(), 1);
        assert_eq!(h.content_type().unwrap(), Some("application/sdp"));
        assert_eq!(h.user_agent(), Some("Phone/1.0 (model X)"));
        assert!(hdrs(&[("Content-Type", "sdp")]).content_type().is_err());
        assert!(validate(&hdrs(&[("Route", "<sip:a@b>,,<sip:c@d>")]), 64).is_err());
        assert!(validate(&hdrs(&[("Date", "Fri, 01 Jan 2010 16:00:00 EST")]), 64).is_err());
        assert!(validate(&hdrs(&[("Date", "Sat, 13 Nov 2010 23:29:00 GMT")]), 64).is_ok());
    }
}
