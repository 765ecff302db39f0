//! Parsing entry points: datagrams, framed stream messages, stream framing,
//! limits, and the 400/505 answer for requests that fail to parse.

use crate::ParseError;
use crate::headers::Headers;
use crate::message::{Message, Method, Request, Response, StatusCode, Version, stable_tag};
use crate::syntax::{is_token, is_token_byte, is_ws, parse_decimal};
use crate::uri::{Uri, UriParts};

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

/// Parses one message cut from a stream by [`frame_stream`] (`&buf[..len]`).
/// Content-Length is mandatory.
pub fn parse_stream_message(input: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    parse(input, limits, Mode::Stream)
}

/// What [`frame_stream`] found at the start of a stream buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// A complete message occupies `buf[..len]`.
    Complete(usize),
    /// Need more bytes.
    Incomplete,
    /// RFC 5626 keep-alive ping (`CRLFCRLF`): consume `len` bytes and answer with a `CRLF` pong.
    Ping(usize),
    /// A lone CRLF (an RFC 5626 pong, or stray line end): consume `len` bytes, no answer.
    Pong(usize),
    /// Unrecoverable: answer if possible, then close the connection.
    Error(ParseError),
}

/// Finds the first message (or keep-alive) in a stream buffer.
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Framing {
    if buf.starts_with(b"\r\n\r\n") {
        return Framing::Ping(4);
    }
    if buf.starts_with(b"\r\n") {
        return Framing::Pong(2);
    }
    if buf == b"\r" {
        return Framing::Incomplete;
    }
    let Some(head_end) = find_head_end(buf) else {
        if buf.len() > limits.max_message_size {
            return Framing::Error(ParseError::MessageTooLarge {
                limit: limits.max_message_size,
            });
        }
        return Framing::Incomplete;
    };
    // only Content-Length matters here: scan header lines (a folded CL value is
    // rare but legal, so unfold the one we find)
    let head = buf.get(..head_end).unwrap_or(b"");
    let mut cl: Option<u64> = None;
    let mut lines = head.split(|b| *b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = std::str::from_utf8(line.get(..colon).unwrap_or(b"")).unwrap_or("");
        let name = name.trim_end_matches([' ', '\t']);
        if !(name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")) {
            continue;
        }
        let mut value: Vec<u8> = line.get(colon + 1..).unwrap_or(b"").to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| is_ws(*b)) {
                value.extend_from_slice(next.strip_suffix(b"\r").unwrap_or(next));
                lines.next();
            } else {
                break;
            }
        }
        let v = std::str::from_utf8(&value)
            .unwrap_or("")
            .trim_matches([' ', '\t']);
        let Some(n) = parse_decimal(v, u64::MAX) else {
            return Framing::Error(ParseError::header(
                "Content-Length",
                "not a number in range",
            ));
        };
        if cl.is_some_and(|c| c != n) {
            return Framing::Error(ParseError::Duplicate("Content-Length"));
        }
        cl = Some(n);
    }
    let Some(cl) = cl else {
        return Framing::Error(ParseError::MissingContentLength);
    };
    let body_start = head_end + 4;
    let total = u64::try_from(body_start)
        .unwrap_or(u64::MAX)
        .saturating_add(cl);
    if total > limits.max_message_size as u64 {
        return Framing::Error(ParseError::MessageTooLarge {
            limit: limits.max_message_size,
        });
    }
    let total = total as usize;
    if buf.len() >= total {
        Framing::Complete(total)
    } else {
        Framing::Incomplete
    }
}

/// Index of the `\r\n\r\n` that ends the header section.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
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

/// Framing and header splitting only (no semantic checks).
fn split<'a>(input: &'a [u8], limits: &Limits, mode: Mode) -> Result<Raw<'a>, ParseError> {
    let input = strip_leading_crlf(input);
    if input.len() > limits.max_message_size {
        // datagrams may carry ignored trailing bytes; only the message proper counts
        let within = input
            .get(..limits.max_message_size.saturating_add(4))
            .unwrap_or(input);
        if find_head_end(within).is_none() {
            return Err(ParseError::MessageTooLarge {
                limit: limits.max_message_size,
            });
        }
    }
    let (head_end, body_start) = match find_head_end(input) {
        Some(p) => (p, p + 4),
        // a datagram ends the message: tolerate a missing final empty line
        None if mode == Mode::Datagram && input.ends_with(b"\r\n") => {
            (input.len() - 2, input.len())
        }
        None => return Err(ParseError::Incomplete("no empty line after the headers")),
    };
    if head_end > limits.max_message_size {
        return Err(ParseError::MessageTooLarge {
            limit: limits.max_message_size,
        });
    }
    let head = input.get(..head_end + 2).unwrap_or(b"");
    let sl_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head_end);
    let start_line = std::str::from_utf8(head.get(..sl_end).unwrap_or(b""))
        .map_err(|_| ParseError::StartLine("not UTF-8"))?;
    if start_line.len() > limits.max_header_line {
        return Err(ParseError::HeaderLineTooLong {
            limit: limits.max_header_line,
        });
    }
    let mut buf: Vec<u8> = head.get(sl_end + 2..).unwrap_or(b"").to_vec();
    let mut ranges: Vec<((usize, usize), (usize, usize))> = Vec::with_capacity(16);
    let mut pos = 0usize;
    while pos < buf.len() {
        let rel = buf
            .get(pos..)
            .and_then(|r| r.windows(2).position(|w| w == b"\r\n"))
            .ok_or(ParseError::HeaderLine("line without CRLF"))?;
        let line_end = pos + rel;
        let line = buf.get(pos..line_end).unwrap_or(b"");
        if line.len() > limits.max_header_line {
            return Err(ParseError::HeaderLineTooLong {
                limit: limits.max_header_line,
            });
        }
        if line.iter().any(|b| *b == b'\r' || *b == b'\n') {
            return Err(ParseError::HeaderLine("bare CR or LF"));
        }
        if line.first().is_some_and(|b| is_ws(*b)) {
            // continuation: join with the previous field
            let Some(last) = ranges.last_mut() else {
                return Err(ParseError::HeaderLine(
                    "continuation line before any header",
                ));
            };
            if let Some(crlf) = buf.get_mut(pos - 2..pos) {
                crlf.copy_from_slice(b"  ");
            }
            last.1.1 = line_end;
            if line_end - last.1.0 > limits.max_header_line {
                return Err(ParseError::HeaderLineTooLong {
                    limit: limits.max_header_line,
                });
            }
        } else {
            let colon = line
                .iter()
                .position(|b| *b == b':')
                .ok_or(ParseError::HeaderLine("no colon"))?;
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
        pos = line_end + 2;
    }
    // trim values
    for (_, v) in ranges.iter_mut() {
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
/// CSeq copied as received. `None` for responses, keep-alives, or when no Via
/// can be found (nowhere to send it).
pub fn error_response(input: &[u8], err: &ParseError, limits: &Limits) -> Option<Response> {
    let raw = split(input, limits, Mode::Datagram).ok()?;
    if is_response_line(raw.start_line) || raw.start_line.is_empty() {
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

#[allow(dead_code)]
fn _assert_uri_parts_used(s: &str) -> bool {
    UriParts::parse(s).is_ok()
}
