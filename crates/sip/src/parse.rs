//! Parsing entry points: datagrams, framed stream messages, stream framing,
//! limits, and the 400/505 answer for requests that fail to parse.

use crate::ParseError;
use crate::headers::Headers;
use crate::message::{Message, Method, Request, Response, StatusCode, Version, stable_tag};
use crate::syntax::{is_token, is_token_byte, is_ws};
use crate::uri::Uri;

/// Resource limits applied to every message. Exceeding one is a typed error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Whole message (start line + headers + body), in bytes.
    pub max_message_size: usize,
    /// Header lines (after unfolding).
    pub max_headers: usize,
    /// Via values across all Via lines.
    pub max_vias: usize,
    /// One header field after unfolding, and each physical line, in bytes.
    pub max_header_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 64 * 1024,
            max_headers: 256,
            max_vias: 64,
            max_header_line: 8 * 1024,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Datagram,
    Stream,
}

/// Parses one UDP datagram. Content-Length larger than what arrived is an error;
/// bytes after the body are ignored; without Content-Length the body is the
/// rest of the datagram. Leading CRLFs are skipped.
pub fn parse_datagram(input: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    parse(input, limits, Mode::Datagram)
}

/// Parses one message cut from a stream by [`frame_stream`](crate::frame_stream) (`&buf[..len]`).
/// Content-Length is mandatory.
pub fn parse_stream_message(input: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    parse(input, limits, Mode::Stream)
}

fn strip_leading_crlf(mut input: &[u8]) -> &[u8] {
    while let Some(rest) = input.strip_prefix(b"\r\n") {
        input = rest;
    }
    input
}

struct Raw<'a> {
    start_line: &'a str,
    headers: Headers,
    body_start: usize,
    input: &'a [u8],
}

fn incomplete(input: &[u8], limits: &Limits) -> ParseError {
    if input.len() > limits.max_message_size {
        ParseError::MessageTooLarge {
            limit: limits.max_message_size,
        }
    } else {
        ParseError::Incomplete("no empty line after the headers")
    }
}

/// Framing and header splitting only (no semantic checks). One pass over the
/// header section; one copy of it into the header arena.
fn split<'a>(input: &'a [u8], limits: &Limits, mode: Mode) -> Result<Raw<'a>, ParseError> {
    let input = strip_leading_crlf(input);
    // the message proper (not ignored trailing datagram bytes) must fit
    let scan = input.get(..limits.max_message_size).unwrap_or(input);
    let mut ranges: Vec<((usize, usize), (usize, usize))> = Vec::with_capacity(16);
    let mut folds: Vec<usize> = Vec::new();
    let mut pos = 0usize;
    let mut start_line_end: Option<usize> = None;
    let (head_end, body_start) = loop {
        let Some(at) = scan
            .get(pos..)
            .and_then(|r| memchr::memchr2(b'\r', b'\n', r))
        else {
            if mode == Mode::Datagram && pos == input.len() && pos > 0 {
                // a datagram ends the message: tolerate a missing final empty line
                break (pos, pos);
            }
            return Err(incomplete(input, limits));
        };
        let line_end = pos + at;
        match (scan.get(line_end), scan.get(line_end + 1)) {
            (Some(b'\r'), Some(b'\n')) => {}
            (Some(b'\r'), None) => return Err(incomplete(input, limits)),
            _ => return Err(ParseError::HeaderLine("bare CR or LF")),
        }
        let lf = line_end + 1;
        let line = scan.get(pos..line_end).unwrap_or(b"");
        if line.len() > limits.max_header_line {
            return Err(ParseError::HeaderLineTooLong {
                limit: limits.max_header_line,
            });
        }
        if start_line_end.is_none() {
            start_line_end = Some(line_end);
        } else if line.is_empty() {
            break (pos, lf + 1);
        } else if line.first().is_some_and(|b| is_ws(*b)) {
            // continuation: join with the previous field
            let Some(last) = ranges.last_mut() else {
                return Err(ParseError::HeaderLine(
                    "continuation line before any header",
                ));
            };
            folds.push(pos.saturating_sub(2));
            last.1.1 = line_end;
            if line_end - last.1.0 > limits.max_header_line {
                return Err(ParseError::HeaderLineTooLong {
                    limit: limits.max_header_line,
                });
            }
        } else {
            let colon = memchr::memchr(b':', line).ok_or(ParseError::HeaderLine("no colon"))?;
            let mut name_end = colon;
            while name_end > 0 && line.get(name_end - 1).is_some_and(|b| is_ws(*b)) {
                name_end -= 1;
            }
            let name = line.get(..name_end).unwrap_or(b"");
            if name.is_empty() || !name.iter().all(|b| is_token_byte(*b)) {
                return Err(ParseError::HeaderLine("bad header name"));
            }
            if ranges.len() >= limits.max_headers {
                return Err(ParseError::TooManyHeaders {
                    limit: limits.max_headers,
                });
            }
            ranges.push(((pos, pos + name_end), (pos + colon + 1, line_end)));
        }
        pos = lf + 1;
    };
    let sl_end = start_line_end.unwrap_or(0);
    let start_line = std::str::from_utf8(input.get(..sl_end).unwrap_or(b""))
        .map_err(|_| ParseError::StartLine("not UTF-8"))?;
    // header arena: bytes from the first header line to the end of the last
    let base = (sl_end + 2).min(head_end);
    let mut buf = input.get(base..head_end).unwrap_or(b"").to_vec();
    for f in folds {
        if let Some(crlf) = buf.get_mut(f - base..f - base + 2) {
            crlf.copy_from_slice(b"  ");
        }
    }
    for (n, v) in ranges.iter_mut() {
        *n = (n.0 - base, n.1 - base);
        *v = (v.0 - base, v.1 - base);
        while v.0 < v.1 && buf.get(v.0).is_some_and(|b| is_ws(*b)) {
            v.0 += 1;
        }
        while v.1 > v.0 && buf.get(v.1 - 1).is_some_and(|b| is_ws(*b)) {
            v.1 -= 1;
        }
    }
    let buf = String::from_utf8(buf).map_err(|_| ParseError::NotUtf8)?;
    Ok(Raw {
        start_line,
        headers: Headers::from_parts(buf, ranges),
        body_start,
        input,
    })
}

fn parse_version(v: &str) -> Result<Version, ParseError> {
    let rest = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .and_then(|_| v.get(4..))
        .ok_or(ParseError::StartLine("bad SIP-Version"))?;
    let well_formed = rest.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && (a.bytes().chain(b.bytes())).all(|c| c.is_ascii_digit())
    });
    if !well_formed {
        return Err(ParseError::StartLine("bad SIP-Version"));
    }
    if rest == "2.0" {
        Ok(Version::Sip20)
    } else {
        Err(ParseError::UnsupportedVersion(v.chars().take(16).collect()))
    }
}

fn is_response_line(line: &str) -> bool {
    line.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
}

fn parse_request_line(line: &str) -> Result<(Method, Uri), ParseError> {
    let mut it = line.splitn(3, ' ');
    let (Some(m), Some(u), Some(v)) = (it.next(), it.next(), it.next()) else {
        return Err(ParseError::StartLine(
            "expected METHOD SP Request-URI SP SIP-Version",
        ));
    };
    if !is_token(m) {
        return Err(ParseError::StartLine("bad method"));
    }
    if u.is_empty() || v.contains([' ', '\t']) {
        return Err(ParseError::StartLine(
            "extra whitespace (LWS in Request-URI?)",
        ));
    }
    if u.starts_with('<') {
        return Err(ParseError::StartLine("Request-URI enclosed in <>"));
    }
    parse_version(v)?;
    let uri = Uri::parse(u)?;
    if uri.is_sip() && uri.headers().is_some() {
        return Err(ParseError::StartLine(
            "headers are not allowed in a Request-URI",
        ));
    }
    Ok((Method::from_token(m), uri))
}

fn parse_status_line(line: &str) -> Result<(StatusCode, &str), ParseError> {
    let mut it = line.splitn(3, ' ');
    let (Some(v), Some(code)) = (it.next(), it.next()) else {
        return Err(ParseError::StartLine(
            "expected SIP-Version SP Status-Code SP Reason",
        ));
    };
    parse_version(v)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::StartLine("status code is not 3 digits"));
    }
    let status = code
        .parse::<u16>()
        .ok()
        .and_then(StatusCode::new)
        .ok_or(ParseError::StartLine("status code outside 100..699"))?;
    let reason = it.next().unwrap_or("");
    if reason.bytes().any(|b| b < b' ' && b != b'\t') {
        return Err(ParseError::StartLine("control character in reason phrase"));
    }
    Ok((status, reason))
}

fn parse(input: &[u8], limits: &Limits, mode: Mode) -> Result<Message, ParseError> {
    let raw = split(input, limits, mode)?;
    let start = if is_response_line(raw.start_line) {
        let (status, reason) = parse_status_line(raw.start_line)?;
        Err((status, reason))
    } else {
        Ok(parse_request_line(raw.start_line)?)
    };
    let h = &raw.headers;
    crate::typed::validate(h, limits.max_vias)?;
    let available = raw.input.len().saturating_sub(raw.body_start);
    let body_len = match h.content_length()? {
        Some(cl) if cl > available as u64 => {
            return Err(ParseError::BodyTooShort {
                claimed: cl,
                available,
            });
        }
        Some(cl) => cl as usize,
        None if mode == Mode::Stream => return Err(ParseError::MissingContentLength),
        None => available,
    };
    if raw.body_start.saturating_add(body_len) > limits.max_message_size {
        return Err(ParseError::MessageTooLarge {
            limit: limits.max_message_size,
        });
    }
    let body = raw
        .input
        .get(raw.body_start..raw.body_start + body_len)
        .unwrap_or(b"")
        .to_vec();
    match start {
        Err((status, reason)) => Ok(Message::Response(Response {
            version: Version::Sip20,
            status,
            reason: reason.to_owned(),
            headers: raw.headers,
            body,
        })),
        Ok((method, uri)) => {
            if let Some(cseq) = h.cseq()? {
                if cseq.method != method {
                    return Err(ParseError::CSeqMismatch);
                }
            }
            Ok(Message::Request(Request {
                method,
                uri,
                version: Version::Sip20,
                headers: raw.headers,
                body,
            }))
        }
    }
}

/// For bytes that failed to parse as a request, builds the error response a
/// server should send (RFC 3261 §8.2.6): status from [`ParseError::status_code`],
/// reason phrase naming the problem, Via(s) / From / To (+ To-tag) / Call-ID /
/// CSeq copied as received. `None` for responses, ACKs, keep-alives, when no Via
/// can be found (nowhere to send it), or when even the header lines cannot be
/// split within the limits (the datagram is simply dropped).
pub fn error_response(input: &[u8], err: &ParseError, limits: &Limits) -> Option<Response> {
    let raw = split(input, limits, Mode::Datagram).ok()?;
    // never answer a response, and never answer an ACK (RFC 3261: no response to ACK)
    let method = raw.start_line.split(' ').next().unwrap_or("");
    if is_response_line(raw.start_line) || method.is_empty() || method == "ACK" {
        return None;
    }
    raw.headers.get("Via")?;
    let status = StatusCode::new(err.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = Response::new(status);
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for (i, v) in raw.headers.get_all(name).enumerate() {
            if name == "Via" || i == 0 {
                r.headers.push(name, v);
            }
        }
    }
    let reason: String = err
        .to_string()
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    r.reason = format!("{} ({})", status.default_reason(), reason);
    r.set_to_tag(&stable_tag(&raw.headers));
    Some(r)
}

/// Checks that a request carries the headers RFC 3261 §8.1.1 makes mandatory
/// (To, From, Call-ID, CSeq, Via; Max-Forwards is tolerated missing for RFC 2543 peers).
pub fn check_mandatory(req: &Request) -> Result<(), ParseError> {
    for name in ["To", "From", "Call-ID", "CSeq", "Via"] {
        if req.headers.get(name).is_none() {
            return Err(ParseError::Missing(name));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Framing, frame_stream};

    pub(crate) const REG: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:1001@example.com>\r\n\
From: \"Desk 1001\" <sip:1001@example.com>;tag=a73kszlfl\r\n\
Call-ID: 1j9FpLxk3uxtm8tn@192.0.2.10\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:1001@192.0.2.10:5060;transport=udp>;expires=3600\r\n\
Content-Length: 0\r\n\r\n";

    fn l() -> Limits {
        Limits::default()
    }

    fn req(s: &str) -> Request {
        match parse_datagram(s.as_bytes(), &l()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_register() {
        let r = req(REG);
        assert_eq!(r.method, Method::Register);
        assert_eq!(r.uri.host(), "example.com");
        assert_eq!(r.headers.len(), 8);
        assert_eq!(r.top_via().unwrap().unwrap().rport(), Some(None));
        assert!(check_mandatory(&r).is_ok());
    }

    #[test]
    fn start_line_rules() {
        let with = |line: &str| REG.replacen("REGISTER sip:example.com SIP/2.0", line, 1);
        assert!(matches!(
            parse_datagram(with("REGISTER sip:example.com SIP/7.0").as_bytes(), &l()),
            Err(ParseError::UnsupportedVersion(_))
        ));
        for bad in [
            "REGISTER  sip:example.com SIP/2.0",
            "REGISTER sip:example.com SIP/2.0 ",
            "REGISTER <sip:example.com> SIP/2.0",
            "REGISTER sip:example.com;\tlr SIP/2.0",
            "REGISTER sip:example.com",
            "REGISTER sip:example.com HTTP/1.1",
            "REG@STER sip:example.com SIP/2.0",
            "REGISTER sip:example.com?Route=x SIP/2.0",
            "INVITE sip:example.com SIP/2.0",
        ] {
            let e = parse_datagram(with(bad).as_bytes(), &l()).expect_err(bad);
            assert_eq!(e.status_code(), 400, "{bad}: {e}");
        }
        let resp = |line: &str| {
            let s = format!(
                "{line}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            );
            parse_datagram(s.as_bytes(), &l())
        };
        assert!(resp("SIP/2.0 180 Ringing").is_ok());
        assert!(resp("SIP/2.0 699 x").is_ok());
        for bad in [
            "SIP/2.0 099 x",
            "SIP/2.0 700 x",
            "SIP/2.0 20 x",
            "SIP/2.0 2000 x",
            "SIP/2.0 abc x",
        ] {
            assert!(resp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn datagram_body_rules() {
        let body = REG.replace("Content-Length: 0", "Content-Length: 4") + "abcdEXTRA";
        assert_eq!(req(&body).body, b"abcd");
        let short = REG.replace("Content-Length: 0", "Content-Length: 40") + "abcd";
        assert!(matches!(
            parse_datagram(short.as_bytes(), &l()),
            Err(ParseError::BodyTooShort {
                claimed: 40,
                available: 4
            })
        ));
        let huge = REG.replace("Content-Length: 0", "Content-Length: 99999999999");
        assert!(parse_datagram(huge.as_bytes(), &l()).is_err());
        let none = REG.replace("Content-Length: 0\r\n", "") + "v=0\r\n\0x";
        assert_eq!(req(&none).body, b"v=0\r\n\0x");
        // leading keep-alive CRLFs are skipped
        assert!(parse_datagram(format!("\r\n\r\n{REG}").as_bytes(), &l()).is_ok());
        // missing Content-Length is fatal on a stream
        assert_eq!(
            parse_stream_message(none.as_bytes(), &l()),
            Err(ParseError::MissingContentLength)
        );
    }

    #[test]
    fn limit_message_size() {
        let lim = Limits {
            max_message_size: 200,
            ..l()
        };
        assert!(matches!(
            parse_datagram(REG.as_bytes(), &lim),
            Err(ParseError::MessageTooLarge { limit: 200 })
        ));
        let big_body =
            REG.replace("Content-Length: 0", "Content-Length: 70000") + &"x".repeat(70000);
        let e = parse_datagram(big_body.as_bytes(), &l()).unwrap_err();
        assert_eq!(e, ParseError::MessageTooLarge { limit: 65536 });
        assert_eq!(e.status_code(), 513);
        assert!(matches!(
            frame_stream(big_body.as_bytes(), &l()),
            Framing::Error(ParseError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn limit_header_count() {
        let lim = Limits {
            max_headers: 8,
            ..l()
        };
        assert!(parse_datagram(REG.as_bytes(), &lim).is_ok());
        let more = REG.replacen("Max-Forwards", "X-A: 1\r\nMax-Forwards", 1);
        assert_eq!(
            parse_datagram(more.as_bytes(), &lim).unwrap_err(),
            ParseError::TooManyHeaders { limit: 8 }
        );
    }

    #[test]
    fn limit_via_count() {
        let lim = Limits { max_vias: 3, ..l() };
        let three = REG.replacen(
            "Max-Forwards",
            "Via: SIP/2.0/UDP a, SIP/2.0/UDP b\r\nMax-Forwards",
            1,
        );
        assert!(parse_datagram(three.as_bytes(), &lim).is_ok());
        let four = REG.replacen(
            "Max-Forwards",
            "v: SIP/2.0/UDP a, SIP/2.0/UDP b\r\nVia: SIP/2.0/UDP c\r\nMax-Forwards",
            1,
        );
        assert_eq!(
            parse_datagram(four.as_bytes(), &lim).unwrap_err(),
            ParseError::TooManyVias { limit: 3 }
        );
    }

    #[test]
    fn limit_header_line() {
        let lim = Limits {
            max_header_line: 100,
            ..l()
        };
        let long = REG.replacen(
            "Max-Forwards",
            &format!("X-Long: {}\r\nMax-Forwards", "y".repeat(100)),
            1,
        );
        assert_eq!(
            parse_datagram(long.as_bytes(), &lim).unwrap_err(),
            ParseError::HeaderLineTooLong { limit: 100 }
        );
        // folded pieces count together
        let folded = REG.replacen(
            "Max-Forwards",
            &format!("X-Long: {0}\r\n {0}\r\nMax-Forwards", "y".repeat(60)),
            1,
        );
        assert_eq!(
            parse_datagram(folded.as_bytes(), &lim).unwrap_err(),
            ParseError::HeaderLineTooLong { limit: 100 }
        );
        assert!(parse_datagram(folded.as_bytes(), &l()).is_ok());
    }

    #[test]
    fn header_line_errors() {
        for bad in [
            "No colon here",
            " leading: fold-before-any",
            "Bad Name: x",
            "X-A: a\rb",
        ] {
            let s = REG.replacen("Via", &format!("{bad}\r\nVia"), 1);
            let s = if bad.starts_with(' ') {
                REG.replacen(
                    "REGISTER sip:example.com SIP/2.0\r\n",
                    &format!("REGISTER sip:example.com SIP/2.0\r\n{bad}\r\n"),
                    1,
                )
            } else {
                s
            };
            assert!(parse_datagram(s.as_bytes(), &l()).is_err(), "{bad}");
        }
        let mut latin1 = REG.as_bytes().to_vec();
        let at = REG.find("Desk").unwrap();
        latin1[at + 1] = 0xe9;
        assert_eq!(
            parse_datagram(&latin1, &l()).unwrap_err(),
            ParseError::NotUtf8
        );
    }

    #[test]
    fn error_response_for_bad_request() {
        let bad = REG.replace("CSeq: 1 REGISTER", "CSeq: 1 INVITE");
        let e = parse_datagram(bad.as_bytes(), &l()).unwrap_err();
        assert_eq!(e, ParseError::CSeqMismatch);
        let r = error_response(bad.as_bytes(), &e, &l()).unwrap();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.reason.starts_with("Bad Request (CSeq method"));
        let names: Vec<_> = r.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Via", "From", "To", "Call-ID", "CSeq"]);
        let tag = r.to_addr().unwrap().unwrap().tag().unwrap().to_owned();
        // same request, same tag (retransmission); serializes and re-parses
        let again = error_response(bad.as_bytes(), &e, &l()).unwrap();
        assert_eq!(again.to_addr().unwrap().unwrap().tag(), Some(tag.as_str()));
        assert!(parse_datagram(&r.to_bytes(), &l()).is_ok());
        // ACKs are never answered
        let ack = bad
            .replace("REGISTER sip:example.com", "ACK sip:example.com")
            .replace("1 INVITE", "1 ACK");
        let ack = ack.replace("Max-Forwards: 70", "Max-Forwards: 700");
        let e = parse_datagram(ack.as_bytes(), &l()).unwrap_err();
        assert!(error_response(ack.as_bytes(), &e, &l()).is_none());
        // responses are never answered
        let resp = "SIP/2.0 999 x\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        let e = parse_datagram(resp.as_bytes(), &l()).unwrap_err();
        assert!(error_response(resp.as_bytes(), &e, &l()).is_none());
    }
}
