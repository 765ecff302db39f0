//! SIP requests and responses: start lines, headers, body, serialization and
//! response construction (RFC 3261 §8.2.6).

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::headers::Headers;
use crate::uri::Uri;

/// A request method. Methods are case-sensitive: `invite` and `RE%47IST%45R`
/// are extension methods, not INVITE / REGISTER.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Extension(String),
}

impl Method {
    /// Maps a token to a method (no validation; the parser checks token syntax).
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Extension(s) => s,
            known => known.standard_name().unwrap_or_default(),
        }
    }

    /// The name of a method RFC 3261 and its extensions define, as a
    /// `'static` string (`None` for an extension method): what bounded
    /// metric labels use.
    pub fn standard_name(&self) -> Option<&'static str> {
        Some(match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(_) => return None,
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SIP status code, always three digits in 100..=699.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(u16);

impl StatusCode {
    pub const TRYING: StatusCode = StatusCode(100);
    pub const RINGING: StatusCode = StatusCode(180);
    pub const OK: StatusCode = StatusCode(200);
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    pub const UNAUTHORIZED: StatusCode = StatusCode(401);
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    pub const NOT_FOUND: StatusCode = StatusCode(404);
    pub const METHOD_NOT_ALLOWED: StatusCode = StatusCode(405);
    pub const PROXY_AUTHENTICATION_REQUIRED: StatusCode = StatusCode(407);
    pub const INTERVAL_TOO_BRIEF: StatusCode = StatusCode(423);
    pub const UNSUPPORTED_URI_SCHEME: StatusCode = StatusCode(416);
    pub const BAD_EXTENSION: StatusCode = StatusCode(420);
    pub const TOO_MANY_HOPS: StatusCode = StatusCode(483);
    pub const SERVER_INTERNAL_ERROR: StatusCode = StatusCode(500);
    pub const NOT_IMPLEMENTED: StatusCode = StatusCode(501);
    pub const SERVICE_UNAVAILABLE: StatusCode = StatusCode(503);
    pub const VERSION_NOT_SUPPORTED: StatusCode = StatusCode(505);
    pub const MESSAGE_TOO_LARGE: StatusCode = StatusCode(513);

    /// `None` outside 100..=699.
    pub const fn new(code: u16) -> Option<StatusCode> {
        if code >= 100 && code <= 699 {
            Some(StatusCode(code))
        } else {
            None
        }
    }
    pub const fn as_u16(self) -> u16 {
        self.0
    }
    pub const fn is_provisional(self) -> bool {
        self.0 < 200
    }
    pub const fn is_success(self) -> bool {
        self.0 >= 200 && self.0 < 300
    }
    pub const fn is_final(self) -> bool {
        self.0 >= 200
    }
    /// The RFC 3261 reason phrase, or a class default.
    pub fn default_reason(self) -> &'static str {
        match self.0 {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            200 => "OK",
            202 => "Accepted",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Moved Temporarily",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            413 => "Request Entity Too Large",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            423 => "Interval Too Brief",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            600 => "Busy Everywhere",
            603 => "Decline",
            c if c < 200 => "Session Progress",
            c if c < 300 => "OK",
            c if c < 400 => "Redirection",
            c if c < 500 => "Client Error",
            c if c < 600 => "Server Error",
            _ => "Global Failure",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The protocol version; only SIP/2.0 exists (others are rejected with 505).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Version {
    #[default]
    Sip20,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        "SIP/2.0"
    }
}

/// A SIP request. Header accessors come from [`Headers`] through `Deref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response. Header accessors come from [`Headers`] through `Deref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub version: Version,
    pub status: StatusCode,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

macro_rules! deref_headers {
    ($t:ty) => {
        impl Deref for $t {
            type Target = Headers;
            fn deref(&self) -> &Headers {
                &self.headers
            }
        }
        impl DerefMut for $t {
            fn deref_mut(&mut self) -> &mut Headers {
                &mut self.headers
            }
        }
    };
}
deref_headers!(Request);
deref_headers!(Response);

impl Deref for Message {
    type Target = Headers;
    fn deref(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

impl Message {
    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
    /// Raw values of a header (all lines, in order).
    pub fn headers<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        std::ops::Deref::deref(self).get_all(name)
    }
    pub fn as_request(&self) -> Option<&Request> {
        match self {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }
    pub fn as_response(&self) -> Option<&Response> {
        match self {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }
}

impl Request {
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            version: Version::Sip20,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Raw values of a header (all lines, in order), e.g. `Authorization`.
    pub fn headers<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers.get_all(name)
    }

    /// Appends a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(name, value);
        self
    }

    /// RFC 3261 §8.1.1: To, From, Call-ID, CSeq and Via present.
    pub fn check_mandatory(&self) -> Result<(), crate::ParseError> {
        crate::check_mandatory(self)
    }

    /// Serializes with canonical header names and a correct Content-Length.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.uri.as_str().as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        self.headers.write(out, self.body.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        self.write_to(&mut out);
        out
    }

    /// A response to this request per RFC 3261 §8.2.6: status line with the
    /// default reason, Via(s), From, To, Call-ID and CSeq copied, empty body.
    /// When the response establishes or refreshes a dialog (101-299 to INVITE,
    /// UPDATE, SUBSCRIBE, NOTIFY or REFER), the request's Record-Route values
    /// are copied too, in order (RFC 3261 §12.1.1), so the peer's route set
    /// includes every proxy that record-routed.
    /// No To-tag is added; see [`Response::set_to_tag`] and [`Request::response_tagged`].
    pub fn response(&self, status: StatusCode) -> Response {
        let mut r = Response::new(status);
        self.headers
            .copy_known_into(&mut r.headers, self.copied_ids(status), None);
        r
    }

    /// The header ids a response with `status` copies from this request.
    fn copied_ids(&self, status: StatusCode) -> &'static [u8] {
        let dialog_method = matches!(
            self.method,
            Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
        );
        let code = status.as_u16();
        if dialog_method && code > 100 && code < 300 {
            &COPIED_IDS_WITH_RR
        } else {
            &COPIED_IDS
        }
    }

    /// Writes where this request came from into its top Via, as a server
    /// must on arrival (RFC 3261 §18.2.1, RFC 3581 §4): `received=<source
    /// IP>` when the sent-by host differs from it or `rport` is present, and
    /// a valueless `rport` filled in with the source port. Every response
    /// built from the request afterwards carries them. Returns false (and
    /// changes nothing) when the top Via is missing or unreadable.
    pub fn stamp_source(&mut self, source: std::net::SocketAddr) -> bool {
        crate::received::stamp_top_via(&mut self.headers, source)
    }

    /// Like [`Request::response`], adding a To-tag (when the To has none and the
    /// status is above 100) derived from the request, so a retransmission gets
    /// the same tag.
    pub fn response_tagged(&self, status: StatusCode) -> Response {
        if status.as_u16() <= 100 {
            return self.response(status);
        }
        // Same result as `response` then `Response::set_to_tag`, built in one pass: the To
        // with its tag takes the place of the first To line and any other To line goes.
        let Some(to) = self.headers.get("To") else {
            return self.response(status);
        };
        let has_tag = self
            .headers
            .to_addr()
            .ok()
            .flatten()
            .is_some_and(|t| t.tag().is_some());
        if has_tag {
            return self.response(status);
        }
        let mut tagged = String::with_capacity(to.len() + 23);
        tagged.push_str(to.trim_end());
        tagged.push_str(";tag=");
        push_stable_tag(&mut tagged, &self.headers);
        let mut r = Response::new(status);
        self.headers
            .copy_known_into(&mut r.headers, self.copied_ids(status), Some(&tagged));
        r
    }
}

/// Headers RFC 3261 §8.2.6.2 copies from a request into its responses (Via, From, To,
/// Call-ID, CSeq), as known-header ids.
const COPIED_IDS: [u8; 5] = [
    crate::headers::id::VIA,
    crate::headers::id::FROM,
    crate::headers::id::TO,
    crate::headers::id::CALL_ID,
    crate::headers::id::CSEQ,
];

/// [`COPIED_IDS`] plus Record-Route, for responses that establish or refresh a
/// dialog (RFC 3261 §12.1.1).
const COPIED_IDS_WITH_RR: [u8; 6] = [
    crate::headers::id::VIA,
    crate::headers::id::FROM,
    crate::headers::id::TO,
    crate::headers::id::CALL_ID,
    crate::headers::id::CSEQ,
    crate::headers::id::RECORD_ROUTE,
];

/// A tag derived from Call-ID, From, Via and CSeq: stable across
/// retransmissions (the same request gets the same tag), different between
/// requests, and unpredictable to others: 96 bits of HMAC-SHA256 under a key
/// drawn once per process from the CSPRNG.
pub(crate) fn stable_tag(h: &Headers) -> String {
    let mut s = String::with_capacity(26);
    push_stable_tag(&mut s, h);
    s
}

fn push_stable_tag(out: &mut String, h: &Headers) {
    use hmac::{Hmac, Mac};
    static KEY: std::sync::OnceLock<Hmac<sha2::Sha256>> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let secret: [u8; 32] = rand::random();
        // HMAC takes keys of any length
        Hmac::<sha2::Sha256>::new_from_slice(&secret)
            .unwrap_or_else(|_| Hmac::new(&Default::default()))
    });
    let mut m = key.clone();
    for name in ["Call-ID", "From", "Via", "CSeq"] {
        m.update(h.get(name).unwrap_or("").as_bytes());
        m.update(&[0]);
    }
    let digest = m.finalize().into_bytes();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("sb");
    for b in digest.iter().take(12) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

impl Response {
    pub fn new(status: StatusCode) -> Self {
        Response {
            version: Version::Sip20,
            status,
            reason: status.default_reason().to_owned(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// Raw values of a header (all lines, in order), e.g. `WWW-Authenticate`.
    pub fn headers<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers.get_all(name)
    }

    /// Appends a header (builder style).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Like [`Request::stamp_source`], for a response built from a request
    /// that was not stamped on arrival.
    pub fn stamp_source(&mut self, source: std::net::SocketAddr) -> bool {
        crate::received::stamp_top_via(&mut self.headers, source)
    }

    /// Sets the body and its Content-Type (Content-Length is written on serialization).
    pub fn with_body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers.set("Content-Type", content_type);
        self.body = body;
        self
    }

    /// Adds `;tag=` to the To header when it has none. Returns false when there
    /// is no To header.
    pub fn set_to_tag(&mut self, tag: &str) -> bool {
        let Some(to) = self.headers.get("To") else {
            return false;
        };
        let has_tag = self
            .headers
            .to_addr()
            .ok()
            .flatten()
            .is_some_and(|t| t.tag().is_some());
        if !has_tag {
            let v = format!("{};tag={}", to.trim_end(), tag);
            self.headers.set("To", &v);
        }
        true
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"SIP/2.0 ");
        crate::headers::write_decimal(out, usize::from(self.status.as_u16()));
        out.push(b' ');
        out.extend(
            self.reason
                .bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
        self.headers.write(out, self.body.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        self.write_to(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, parse_datagram};

    fn invite() -> Request {
        let mut r = Request::new(Method::Invite, Uri::parse("sip:bob@example.com").unwrap());
        r.headers
            .push("v", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1");
        r.headers
            .push("Via", "SIP/2.0/UDP b.example.com;branch=z9hG4bK2");
        r.headers.push("Max-Forwards", "70");
        r.headers.push("f", "<sip:alice@example.com>;tag=1");
        r.headers.push("t", "<sip:bob@example.com>");
        r.headers.push("i", "call-1");
        r.headers.push("CSeq", "1 INVITE");
        r.headers.push("Content-Length", "999");
        r.headers.push("X-Odd", "Keep ;; this");
        r.body = b"v=0\r\n\0".to_vec();
        r
    }

    #[test]
    fn serializes_canonical_names_and_length() {
        let text = String::from_utf8(invite().to_bytes()).unwrap();
        assert!(text.starts_with("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP a"));
        assert!(text.contains("\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: call-1\r\n"));
        assert!(text.contains("\r\nContent-Length: 6\r\nX-Odd: Keep ;; this\r\n\r\nv=0\r\n\0"));
        assert!(!text.contains("999"));
        let back = parse_datagram(text.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(back.body(), b"v=0\r\n\0");
        let mut no_cl = invite();
        no_cl.headers.remove("Content-Length");
        no_cl.body.clear();
        assert!(
            String::from_utf8(no_cl.to_bytes())
                .unwrap()
                .ends_with("X-Odd: Keep ;; this\r\nContent-Length: 0\r\n\r\n")
        );
    }

    #[test]
    fn stateless_to_tags_are_stable_per_request_and_carry_96_bits() {
        let a = invite().response_tagged(StatusCode::UNAUTHORIZED);
        let again = invite().response_tagged(StatusCode::UNAUTHORIZED);
        let tag = |r: &Response| r.to_addr().unwrap().unwrap().tag().unwrap().to_owned();
        assert_eq!(tag(&a), tag(&again), "a retransmission gets the same tag");
        assert_eq!(tag(&a).len(), 2 + 24);
        let mut other = invite();
        other.headers.set("Call-ID", "another-call");
        assert_ne!(
            tag(&other.response_tagged(StatusCode::UNAUTHORIZED)),
            tag(&a)
        );
    }

    #[test]
    fn response_tagged_is_response_plus_set_to_tag() {
        let mut two_tos = invite();
        two_tos.headers.push("To", "<sip:carol@example.com>");
        let mut tagged_to = invite();
        tagged_to.headers.set("To", "<sip:bob@example.com>;tag=x1");
        for req in [invite(), two_tos, tagged_to] {
            for status in [StatusCode::TRYING, StatusCode::OK, StatusCode::UNAUTHORIZED] {
                let mut slow = req.response(status);
                if status.as_u16() > 100 {
                    slow.set_to_tag(&stable_tag(&req.headers));
                }
                let fast = req.response_tagged(status);
                assert_eq!(fast.to_bytes(), slow.to_bytes());
            }
        }
    }

    #[test]
    fn response_copies_dialog_headers() {
        let req = invite();
        let r = req.response(StatusCode::RINGING);
        let names: Vec<_> = r.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Via", "Via", "From", "To", "Call-ID", "CSeq"]);
        assert_eq!(r.reason, "Ringing");
        assert_eq!(r.to_addr().unwrap().unwrap().tag(), None);
        let ok = req.response_tagged(StatusCode::OK);
        let tag = ok.to_addr().unwrap().unwrap().tag().unwrap().to_owned();
        assert_eq!(
            req.response_tagged(StatusCode::OK)
                .to_addr()
                .unwrap()
                .unwrap()
                .tag(),
            Some(tag.as_str())
        );
        assert!(
            req.response_tagged(StatusCode::TRYING)
                .to_addr()
                .unwrap()
                .unwrap()
                .tag()
                .is_none()
        );
        // an existing To-tag is kept
        let mut tagged = ok.clone();
        tagged.set_to_tag("other");
        assert_eq!(tagged.to_addr().unwrap().unwrap().tag(), Some(tag.as_str()));
        let with = req
            .response(StatusCode::OK)
            .with_header("Contact", "<sip:a@b>;expires=60")
            .with_body("text/plain", b"hi".to_vec());
        let t = String::from_utf8(with.to_bytes()).unwrap();
        assert!(t.ends_with("Contact: <sip:a@b>;expires=60\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"));
        let text = String::from_utf8(ok.to_bytes()).unwrap();
        assert!(
            text.starts_with(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
            )
        );
        assert!(text.ends_with("CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"));
        let mut back = parse_datagram(text.as_bytes(), &Limits::default())
            .unwrap()
            .as_response()
            .unwrap()
            .clone();
        assert_eq!(
            back.headers.remove("l"),
            1,
            "serializer adds Content-Length"
        );
        assert_eq!(back, ok);
    }

    #[test]
    fn methods_and_status_codes() {
        assert_eq!(Method::from_token("REGISTER"), Method::Register);
        assert_eq!(
            Method::from_token("register"),
            Method::Extension("register".into())
        );
        assert_eq!(Method::from_token("RE%47IST%45R").as_str(), "RE%47IST%45R");
        assert_eq!(Method::from_token("RE%47IST%45R").standard_name(), None);
        for name in [
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "REGISTER",
            "OPTIONS",
            "INFO",
            "UPDATE",
            "PRACK",
            "SUBSCRIBE",
            "NOTIFY",
            "REFER",
            "MESSAGE",
            "PUBLISH",
        ] {
            let m = Method::from_token(name);
            assert!(!matches!(m, Method::Extension(_)), "{name}");
            assert_eq!(m.as_str(), name);
            assert_eq!(m.standard_name(), Some(name));
        }
        assert_eq!(StatusCode::new(99), None);
        assert_eq!(StatusCode::new(700), None);
        assert_eq!(StatusCode::new(486).unwrap().default_reason(), "Busy Here");
        assert_eq!(
            StatusCode::new(499).unwrap().default_reason(),
            "Client Error"
        );
        assert!(StatusCode::OK.is_final() && StatusCode::OK.is_success());
        assert!(StatusCode::TRYING.is_provisional());
    }
}

#[cfg(test)]
#[path = "record_route_tests.rs"]
mod record_route_tests;
