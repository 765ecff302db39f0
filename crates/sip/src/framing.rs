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
    let head = buf.get(..head_end).unwrap_or(b"");
    let cl = match content_length(head) {
        Ok(cl) => cl,
        Err(e) => return Framing::Error(e),
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

/// The Content-Length of a header section (`head` ends before its CRLFCRLF).
/// Only Content-Length matters here: scan header lines (a folded value is
/// rare but legal, so unfold the one we find).
fn content_length(head: &[u8]) -> Result<u64, ParseError> {
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
            return Err(ParseError::header(
                "Content-Length",
                "not a number in range",
            ));
        };
        if cl.is_some_and(|c| c != n) {
            return Err(ParseError::Duplicate("Content-Length"));
        }
        cl = Some(n);
    }
    cl.ok_or(ParseError::MissingContentLength)
}

/// One thing [`StreamFramer::next_frame`] cut from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete message (framed by Content-Length; not yet parsed).
    Message(&'a [u8]),
    /// RFC 5626 keep-alive ping: answer with a CRLF pong.
    Ping,
    /// A lone CRLF followed by more bytes: nothing to answer.
    Pong,
    /// Need more bytes.
    Incomplete,
    /// Unrecoverable: answer what can be answered (the bytes so far are
    /// given for that), then close the connection.
    Error(ParseError, &'a [u8]),
}

/// A stream transport's receive buffer with incremental framing: the
/// search for a header's end resumes where the last one stopped, and a
/// header section is read for its Content-Length once, so the work per
/// connection is linear in the bytes received however they are split
/// (a message dripped a byte at a time costs no more than one sent whole).
/// Consumed bytes are dropped in amortised O(1).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes.
    start: usize,
    /// Where the next search for CRLFCRLF starts (absolute in `buf`).
    scanned: usize,
    /// The current message's end (absolute in `buf`), once its header is read.
    head: Option<usize>,
    /// Bytes examined so far (searches and header reads), for tests and metrics.
    work: u64,
}

impl StreamFramer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            if let Some(end) = self.head.as_mut() {
                *end -= self.start;
            }
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes examined so far by the framer. Linear in the bytes pushed.
    pub fn work(&self) -> u64 {
        self.work
    }

    fn consume(&mut self, len: usize) -> std::ops::Range<usize> {
        let from = self.start;
        self.start = (self.start + len).min(self.buf.len());
        self.scanned = self.start;
        self.head = None;
        from..self.start
    }

    /// The next message or keep-alive in the buffer, consuming it.
    pub fn next_frame(&mut self, limits: &Limits) -> Frame<'_> {
        let max = limits.max_message_size;
        if self.head.is_none() && self.scanned == self.start {
            let rest = &self.buf[self.start..];
            if rest.starts_with(b"\r\n\r\n") {
                self.consume(4);
                return Frame::Ping;
            }
            // a ping may arrive split: wait before calling its start a pong
            if rest.is_empty() || b"\r\n\r".starts_with(rest) {
                return Frame::Incomplete;
            }
            if rest.starts_with(b"\r\n") {
                self.consume(2);
                return Frame::Pong;
            }
        }
        let end = match self.head {
            Some(h) => h,
            None => {
                // resume the search 3 bytes back: a CRLFCRLF may straddle reads
                let from = self.scanned.saturating_sub(3).max(self.start);
                let hay = &self.buf[from..];
                self.work += hay.len() as u64;
                let Some(at) = find_head_end(hay) else {
                    self.scanned = self.buf.len();
                    if self.pending() > max {
                        let e = ParseError::MessageTooLarge { limit: max };
                        return Frame::Error(e, &self.buf[self.start..]);
                    }
                    return Frame::Incomplete;
                };
                let head_end = from + at;
                let head_len = head_end - self.start;
                if head_len.saturating_add(4) > max {
                    let e = ParseError::MessageTooLarge { limit: max };
                    return Frame::Error(e, &self.buf[self.start..]);
                }
                self.work += head_len as u64;
                let cl = match content_length(&self.buf[self.start..head_end]) {
                    Ok(cl) => cl,
                    Err(e) => return Frame::Error(e, &self.buf[self.start..]),
                };
                let total = u64::try_from(head_len + 4)
                    .unwrap_or(u64::MAX)
                    .saturating_add(cl);
                if total > max as u64 {
                    let e = ParseError::MessageTooLarge { limit: max };
                    return Frame::Error(e, &self.buf[self.start..]);
                }
                let end = self.start + total as usize;
                self.head = Some(end);
                self.scanned = head_end;
                end
            }
        };
        if self.buf.len() < end {
            return Frame::Incomplete;
        }
        let range = self.consume(end - self.start);
        Frame::Message(&self.buf[range])
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
        let mut f = StreamFramer::new();
        f.push(&garbage);
        assert!(matches!(
            f.next_frame(&l()),
            Frame::Error(ParseError::MessageTooLarge { .. }, _)
        ));
        let mut f = StreamFramer::new();
        f.push(nocl.as_bytes());
        assert!(matches!(
            f.next_frame(&l()),
            Frame::Error(ParseError::MissingContentLength, _)
        ));
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

    /// Everything the framer yields for `stream` cut into `chunk`-byte reads.
    fn frames(stream: &[u8], chunk: usize) -> (Vec<String>, u64) {
        let mut f = StreamFramer::new();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            f.push(piece);
            loop {
                match f.next_frame(&l()) {
                    Frame::Message(m) => out.push(String::from_utf8_lossy(m).into_owned()),
                    Frame::Ping => out.push("PING".into()),
                    Frame::Pong => out.push("PONG".into()),
                    Frame::Incomplete => break,
                    Frame::Error(e, _) => panic!("{e}"),
                }
            }
        }
        assert_eq!(f.pending(), 0);
        (out, f.work())
    }

    #[test]
    fn framer_gives_the_same_frames_however_the_stream_is_split() {
        let body = REG.replace("Content-Length: 0", "Content-Length: 5") + "hello";
        let stream = format!("\r\n\r\n{REG}\r\n{body}{REG}\r\n\r\n");
        let want = vec![
            "PING".to_owned(),
            REG.to_owned(),
            "PONG".to_owned(),
            body.clone(),
            REG.to_owned(),
            "PING".to_owned(),
        ];
        for chunk in [1, 2, 3, 7, 64, 10_000] {
            assert_eq!(frames(stream.as_bytes(), chunk).0, want, "chunk {chunk}");
        }
    }

    #[test]
    fn slow_drip_of_a_large_message_is_linear_not_quadratic() {
        // A 60 kB header section (just under the 64 kB limit), sent one
        // byte per read: the old framer rescanned the whole buffer on
        // every read, about n²/2 = 1.8e9 byte comparisons.
        let filler = "X-Pad: ".to_owned() + &"a".repeat(200) + "\r\n";
        let mut msg = REG.replace("Content-Length: 0\r\n", "");
        let head_end = msg.find("\r\n\r\n").unwrap() + 2;
        msg.insert_str(head_end, &filler.repeat(290));
        msg.insert_str(head_end, "Content-Length: 0\r\n");
        assert!(msg.len() > 55_000 && msg.len() < 65_000, "{}", msg.len());
        let (got, work) = frames(msg.as_bytes(), 1);
        assert_eq!(got, vec![msg.clone()]);
        let n = msg.len() as u64;
        eprintln!("framing work for {n} bytes dripped one per read: {work}");
        // 4 bytes looked at per read (3 of overlap) plus one read of the header section
        assert!(work <= 6 * n, "work {work} for {n} bytes");
        let (_, whole) = frames(msg.as_bytes(), msg.len());
        assert!(work <= 3 * whole, "dripped {work} vs whole {whole}");
    }
}
