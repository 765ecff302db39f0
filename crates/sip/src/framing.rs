//! Cutting messages out of a stream transport (TCP, TLS, WebSocket-less
//! streams): Content-Length framing and RFC 5626 CRLF keep-alives.

use crate::ParseError;
use crate::parse::Limits;
use crate::syntax::{is_ws, parse_decimal};

/// What [`frame_stream`] found at the start of a stream buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// A complete message occupies `buf[..len]`.
    Complete(usize),
    /// Need more bytes.
    Incomplete,
    /// RFC 5626 keep-alive ping (`CRLFCRLF`): consume `len` bytes and answer with a `CRLF` pong.
    Ping(usize),
    /// A CRLF followed by something other than CRLF (an RFC 5626 pong, or a stray
    /// line end): consume `len` bytes, no answer. A lone CRLF at the end of the
    /// buffer is `Incomplete`: it may be the first half of a ping.
    Pong(usize),
    /// Unrecoverable: answer if possible, then close the connection.
    Error(ParseError),
}

/// Finds the first message (or keep-alive) in a stream buffer.
pub fn frame_stream(buf: &[u8], limits: &Limits) -> Framing {
    if buf.starts_with(b"\r\n\r\n") {
        return Framing::Ping(4);
    }
    // `\r`, `\r\n` or `\r\n\r` may be a ping cut by the transport: wait for
    // the next byte rather than take its first half for a pong
    if b"\r\n\r\n".starts_with(buf) {
        return Framing::Incomplete;
    }
    if buf.starts_with(b"\r\n") {
        return Framing::Pong(2);
    }
    let Some(head_end) = find_head_end(buf) else {
        if buf.len() > limits.max_message_size {
            return Framing::Error(ParseError::MessageTooLarge {
                limit: limits.max_message_size,
            });
        }
        return Framing::Incomplete;
    };
    if head_end.saturating_add(4) > limits.max_message_size {
        return Framing::Error(ParseError::MessageTooLarge {
            limit: limits.max_message_size,
        });
    }
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
    memchr::memmem::find(buf, b"\r\n\r\n")
}

/// True for a datagram that is only CRLFs (a keep-alive some phones send over
/// UDP); the transport should drop it (or answer `\r\n`) instead of parsing it.
pub fn is_keepalive(datagram: &[u8]) -> bool {
    !datagram.is_empty() && datagram.iter().all(|b| *b == b'\r' || *b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_stream_message;
    use crate::parse::tests::REG;

    fn l() -> Limits {
        Limits::default()
    }

    #[test]
    fn stream_framing() {
        let two = format!("{REG}{REG}");
        assert_eq!(
            frame_stream(two.as_bytes(), &l()),
            Framing::Complete(REG.len())
        );
        assert_eq!(
            frame_stream(&REG.as_bytes()[..REG.len() - 1], &l()),
            Framing::Incomplete
        );
        let body = REG.replace("Content-Length: 0", "l :\r\n 5") + "hello";
        assert_eq!(
            frame_stream(body.as_bytes(), &l()),
            Framing::Complete(body.len())
        );
        assert_eq!(
            frame_stream(&body.as_bytes()[..body.len() - 1], &l()),
            Framing::Incomplete
        );
        let m = parse_stream_message(body.as_bytes(), &l()).unwrap();
        assert_eq!(m.body(), b"hello");
        assert_eq!(frame_stream(b"\r\n\r\nINVITE", &l()), Framing::Ping(4));
        assert_eq!(frame_stream(b"\r\nSIP/2.0", &l()), Framing::Pong(2));
        assert_eq!(frame_stream(b"\r", &l()), Framing::Incomplete);
        assert_eq!(frame_stream(b"", &l()), Framing::Incomplete);
        assert!(is_keepalive(b"\r\n\r\n") && is_keepalive(b"\r\n"));
        assert!(!is_keepalive(b"") && !is_keepalive(REG.as_bytes()));
        let nocl = REG.replace("Content-Length: 0\r\n", "");
        assert_eq!(
            frame_stream(nocl.as_bytes(), &l()),
            Framing::Error(ParseError::MissingContentLength)
        );
        let neg = REG.replace("Content-Length: 0", "Content-Length: -5");
        assert!(matches!(
            frame_stream(neg.as_bytes(), &l()),
            Framing::Error(_)
        ));
        let claim = REG.replace("Content-Length: 0", "Content-Length: 99999999999");
        assert!(matches!(
            frame_stream(claim.as_bytes(), &l()),
            Framing::Error(ParseError::MessageTooLarge { .. })
        ));
        let garbage = vec![b'x'; 70_000];
        assert!(matches!(
            frame_stream(&garbage, &l()),
            Framing::Error(ParseError::MessageTooLarge { .. })
        ));
    }

    /// A CRLFCRLF ping that arrives in two TCP reads (`\r\n` then `\r\n`)
    /// is still one ping, answered once, not two pongs left unanswered
    /// (the client would then declare the flow dead, RFC 5626 §4.4.1).
    #[test]
    fn ping_split_across_reads_is_still_a_ping() {
        for cut in 1..4 {
            let first = &b"\r\n\r\n"[..cut];
            assert_eq!(frame_stream(first, &l()), Framing::Incomplete, "{first:?}");
        }
        assert_eq!(frame_stream(b"\r\n\r\n", &l()), Framing::Ping(4));
        assert_eq!(frame_stream(b"\r\nR", &l()), Framing::Pong(2));
        assert_eq!(frame_stream(b"\r\n\rR", &l()), Framing::Pong(2));
    }
}
