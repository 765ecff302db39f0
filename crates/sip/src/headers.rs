//! Ordered header storage. Header text lives in one `String` arena; each entry
//! is a pair of byte ranges, so parsing allocates once for the whole section.

use std::fmt;

use crate::syntax::list_items;

/// Canonical spellings of the well-known headers; an entry's `canon` indexes this.
const NAMES: [&str; 65] = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Expires",
    "Route",
    "Record-Route",
    "Authorization",
    "Proxy-Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Authentication-Info",
    "User-Agent",
    "Server",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Content-Encoding",
    "Content-Disposition",
    "Content-Language",
    "Subject",
    "Event",
    "Allow-Events",
    "Refer-To",
    "Referred-By",
    "Session-Expires",
    "Identity",
    "Accept-Contact",
    "Reject-Contact",
    "Request-Disposition",
    "Date",
    "Min-Expires",
    "Min-SE",
    "Retry-After",
    "Timestamp",
    "Warning",
    "Organization",
    "Priority",
    "Path",
    "Service-Route",
    "Subscription-State",
    "Reason",
    "RSeq",
    "RAck",
    "Replaces",
    "Privacy",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "MIME-Version",
    "Alert-Info",
    "Call-Info",
    "Error-Info",
    "In-Reply-To",
    "Reply-To",
    "Flow-Timer",
];

/// Ids (indexes into `NAMES`) of the headers the parser validates.
pub(crate) mod id {
    pub const VIA: u8 = 0;
    pub const FROM: u8 = 1;
    pub const TO: u8 = 2;
    pub const CALL_ID: u8 = 3;
    pub const CSEQ: u8 = 4;
    pub const CONTACT: u8 = 5;
    pub const MAX_FORWARDS: u8 = 6;
    pub const CONTENT_LENGTH: u8 = 7;
    pub const CONTENT_TYPE: u8 = 8;
    pub const EXPIRES: u8 = 9;
    pub const ROUTE: u8 = 10;
    pub const RECORD_ROUTE: u8 = 11;
    pub const DATE: u8 = 40;
}

/// Index into `NAMES` of a header name given in any case or compact form.
fn canonical_id(name: &str) -> Option<u8> {
    let b = name.as_bytes();
    let mut buf = [0u8; 24];
    if b.is_empty() || b.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(b) {
        *d = s.to_ascii_lowercase();
    }
    Some(match buf.get(..b.len()).unwrap_or(b"") {
        b"via" | b"v" => 0,
        b"from" | b"f" => 1,
        b"to" | b"t" => 2,
        b"call-id" | b"i" => 3,
        b"cseq" => 4,
        b"contact" | b"m" => 5,
        b"max-forwards" => 6,
        b"content-length" | b"l" => 7,
        b"content-type" | b"c" => 8,
        b"expires" => 9,
        b"route" => 10,
        b"record-route" => 11,
        b"authorization" => 12,
        b"proxy-authorization" => 13,
        b"www-authenticate" => 14,
        b"proxy-authenticate" => 15,
        b"authentication-info" => 16,
        b"user-agent" => 17,
        b"server" => 18,
        b"allow" => 19,
        b"supported" | b"k" => 20,
        b"require" => 21,
        b"proxy-require" => 22,
        b"unsupported" => 23,
        b"accept" => 24,
        b"accept-encoding" => 25,
        b"accept-language" => 26,
        b"content-encoding" | b"e" => 27,
        b"content-disposition" => 28,
        b"content-language" => 29,
        b"subject" | b"s" => 30,
        b"event" | b"o" => 31,
        b"allow-events" | b"u" => 32,
        b"refer-to" | b"r" => 33,
        b"referred-by" | b"b" => 34,
        b"session-expires" | b"x" => 35,
        b"identity" | b"y" => 36,
        b"accept-contact" | b"a" => 37,
        b"reject-contact" | b"j" => 38,
        b"request-disposition" | b"d" => 39,
        b"date" => 40,
        b"min-expires" => 41,
        b"min-se" => 42,
        b"retry-after" => 43,
        b"timestamp" => 44,
        b"warning" => 45,
        b"organization" => 46,
        b"priority" => 47,
        b"path" => 48,
        b"service-route" => 49,
        b"subscription-state" => 50,
        b"reason" => 51,
        b"rseq" => 52,
        b"rack" => 53,
        b"replaces" => 54,
        b"privacy" => 55,
        b"p-asserted-identity" => 56,
        b"p-preferred-identity" => 57,
        b"mime-version" => 58,
        b"alert-info" => 59,
        b"call-info" => 60,
        b"error-info" => 61,
        b"in-reply-to" => 62,
        b"reply-to" => 63,
        b"flow-timer" => 64,
        _ => return None,
    })
}

/// Canonical name of a known-header id.
pub(crate) fn known_name(id: u8) -> &'static str {
    NAMES.get(usize::from(id)).copied().unwrap_or("")
}

/// The canonical spelling of a header name, for well-known headers and their
/// compact forms (RFC 3261 §7.3.3 and the IANA registry); `None` for others.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    canonical_id(name).and_then(|i| NAMES.get(usize::from(i)).copied())
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    name: (usize, usize),
    value: (usize, usize),
    canon: Option<u8>,
}

/// An ordered list of `(name, value)` header fields, unknown ones kept verbatim
/// (folded lines are unfolded). Lookups accept canonical, any-case or compact names.
#[derive(Clone, Default)]
pub struct Headers {
    buf: String,
    entries: Vec<Entry>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Built by the parser: `buf` holds the header text, ranges index into it.
    pub(crate) fn from_parts(buf: String, raw: Vec<((usize, usize), (usize, usize))>) -> Self {
        let mut entries = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            let canon = buf.get(name.0..name.1).and_then(canonical_id);
            entries.push(Entry { name, value, canon });
        }
        Headers { buf, entries }
    }

    fn name_of(&self, e: &Entry) -> &str {
        match e.canon.and_then(|i| NAMES.get(usize::from(i))) {
            Some(n) => n,
            None => self.buf.get(e.name.0..e.name.1).unwrap_or(""),
        }
    }

    fn value_of(&self, e: &Entry) -> &str {
        self.buf.get(e.value.0..e.value.1).unwrap_or("")
    }

    fn matches(&self, e: &Entry, canon: Option<u8>, name: &str) -> bool {
        entry_matches(&self.buf, e, canon, name)
    }

    /// `(known-header id, value)` for every field, in order (see [`id`]).
    pub(crate) fn iter_known(&self) -> impl Iterator<Item = (Option<u8>, &str)> {
        self.entries.iter().map(|e| (e.canon, self.value_of(e)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All fields in order as `(name, value)`; known names in canonical spelling.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (self.name_of(e), self.value_of(e)))
    }

    /// Raw values of every field called `name` (one item per header line).
    pub fn get_all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        let canon = canonical_id(name);
        self.entries
            .iter()
            .filter(move |e| self.matches(e, canon, name))
            .map(|e| self.value_of(e))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Number of header lines called `name`.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// Comma-separated values across all `name` lines, split outside quotes and `<...>`.
    pub fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.get_all(name).flat_map(list_items)
    }

    /// Appends a field. CR, LF and NUL in the value, and separators in the name,
    /// are replaced so a field can never inject another one.
    pub fn push(&mut self, name: &str, value: &str) {
        let start = self.buf.len();
        self.buf.reserve(name.len() + value.len());
        if name.bytes().all(crate::syntax::is_token_byte) {
            self.buf.push_str(name);
        } else {
            self.buf.extend(name.chars().map(|c| {
                if c.is_ascii() && crate::syntax::is_token_byte(c as u8) {
                    c
                } else {
                    '-'
                }
            }));
        }
        let name_r = (start, self.buf.len());
        let vstart = self.buf.len();
        push_sanitized_value(&mut self.buf, value);
        let value_r = (vstart, self.buf.len());
        let canon = canonical_id(name);
        self.entries.push(Entry {
            name: name_r,
            value: value_r,
            canon,
        });
    }

    /// Appends, in order, the fields whose known-header id is in `ids`, copied verbatim.
    /// With `to` given, the first `To` field gets that value instead and later `To` fields
    /// are left out.
    pub(crate) fn copy_known_into(&self, out: &mut Headers, ids: &[u8], to: Option<&str>) {
        let mut to_done = false;
        for e in &self.entries {
            let Some(c) = e.canon else { continue };
            if !ids.contains(&c) {
                continue;
            }
            let value = match to {
                Some(v) if c == id::TO => {
                    if to_done {
                        continue;
                    }
                    to_done = true;
                    v
                }
                _ => self.value_of(e),
            };
            out.push_known(c, value);
        }
    }

    /// Appends a field with a known-header id (canonical name), value sanitised as in
    /// [`Headers::push`].
    fn push_known(&mut self, canon: u8, value: &str) {
        let name = known_name(canon);
        let start = self.buf.len();
        self.buf.reserve(name.len() + value.len());
        self.buf.push_str(name);
        let name_r = (start, self.buf.len());
        let vstart = self.buf.len();
        push_sanitized_value(&mut self.buf, value);
        let value_r = (vstart, self.buf.len());
        self.entries.push(Entry {
            name: name_r,
            value: value_r,
            canon: Some(canon),
        });
    }

    /// Removes every field called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let canon = canonical_id(name);
        let before = self.entries.len();
        let buf = &self.buf;
        self.entries.retain(|e| !entry_matches(buf, e, canon, name));
        before - self.entries.len()
    }

    /// Replaces all fields called `name` by one, at the position of the first.
    pub fn set(&mut self, name: &str, value: &str) {
        let canon = canonical_id(name);
        let pos = self
            .entries
            .iter()
            .position(|e| self.matches(e, canon, name));
        self.remove(name);
        self.push(name, value);
        if let Some(pos) = pos {
            if let Some(e) = self.entries.pop() {
                self.entries.insert(pos.min(self.entries.len()), e);
            }
        }
    }

    /// Writes the fields, canonical names, `Content-Length` replaced by `body_len`
    /// (at the first one's position, or at the end).
    pub(crate) fn write(&self, out: &mut Vec<u8>, body_len: usize) {
        let mut cl_written = false;
        for (name, value) in self.iter() {
            if name == "Content-Length" {
                if !cl_written {
                    write_cl(out, body_len);
                    cl_written = true;
                }
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !cl_written {
            write_cl(out, body_len);
        }
    }
}

/// Appends `value` with CR, LF and NUL replaced by spaces.
fn push_sanitized_value(buf: &mut String, value: &str) {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
        buf.extend(value.chars().map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        }));
    } else {
        buf.push_str(value);
    }
}

fn entry_matches(buf: &str, e: &Entry, canon: Option<u8>, name: &str) -> bool {
    match (canon, e.canon) {
        (Some(c), Some(d)) => c == d,
        (None, None) => buf
            .get(e.name.0..e.name.1)
            .is_some_and(|n| n.eq_ignore_ascii_case(name)),
        _ => false,
    }
}

fn write_cl(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(b"Content-Length: ");
    write_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, without going through `fmt`.
pub(crate) fn write_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(b"0"));
}

impl PartialEq for Headers {
    /// Same fields in the same order (names compared canonically/case-insensitively).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((a, x), (b, y))| a.eq_ignore_ascii_case(b) && x == y)
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive_lookup() {
        let mut h = Headers::new();
        h.push("v", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b");
        h.push("VIA", "SIP/2.0/TCP c");
        h.push("X-Custom", "Keep  this ,; raw");
        assert_eq!(h.count("Via"), 2);
        assert_eq!(h.values("v").count(), 3);
        assert_eq!(h.get("x-custom"), Some("Keep  this ,; raw"));
        let names: Vec<_> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Via", "Via", "X-Custom"]);
    }

    #[test]
    fn set_remove_and_injection() {
        let mut h = Headers::new();
        h.push("To", "a");
        h.push("From", "b");
        h.push("t", "c");
        h.set("TO", "d\r\nVia: evil");
        let all: Vec<_> = h.iter().collect();
        assert_eq!(all, [("To", "d  Via: evil"), ("From", "b")]);
        assert_eq!(h.remove("from"), 1);
        assert_eq!(h.len(), 1);
    }
}
