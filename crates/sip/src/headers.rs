//! Ordered header storage. Header text lives in one `String` arena; each entry
//! is a pair of byte ranges, so parsing allocates once for the whole section.

use std::fmt;

use crate::syntax::list_items;

/// Canonical spelling of well-known headers, with their compact forms (RFC 3261
/// §7.3.3 and the IANA registry).
const KNOWN: &[(&str, Option<&str>)] = &[
    ("Via", Some("v")),
    ("From", Some("f")),
    ("To", Some("t")),
    ("Call-ID", Some("i")),
    ("CSeq", None),
    ("Contact", Some("m")),
    ("Max-Forwards", None),
    ("Content-Length", Some("l")),
    ("Content-Type", Some("c")),
    ("Expires", None),
    ("Route", None),
    ("Record-Route", None),
    ("Authorization", None),
    ("Proxy-Authorization", None),
    ("WWW-Authenticate", None),
    ("Proxy-Authenticate", None),
    ("Authentication-Info", None),
    ("User-Agent", None),
    ("Server", None),
    ("Allow", None),
    ("Supported", Some("k")),
    ("Require", None),
    ("Proxy-Require", None),
    ("Unsupported", None),
    ("Accept", None),
    ("Accept-Encoding", None),
    ("Accept-Language", None),
    ("Content-Encoding", Some("e")),
    ("Content-Disposition", None),
    ("Content-Language", None),
    ("Subject", Some("s")),
    ("Event", Some("o")),
    ("Allow-Events", Some("u")),
    ("Refer-To", Some("r")),
    ("Referred-By", Some("b")),
    ("Session-Expires", Some("x")),
    ("Identity", Some("y")),
    ("Accept-Contact", Some("a")),
    ("Reject-Contact", Some("j")),
    ("Request-Disposition", Some("d")),
    ("Date", None),
    ("Min-Expires", None),
    ("Min-SE", None),
    ("Retry-After", None),
    ("Timestamp", None),
    ("Warning", None),
    ("Organization", None),
    ("Priority", None),
    ("Path", None),
    ("Service-Route", None),
    ("Subscription-State", None),
    ("Reason", None),
    ("RSeq", None),
    ("RAck", None),
    ("Replaces", None),
    ("Privacy", None),
    ("P-Asserted-Identity", None),
    ("P-Preferred-Identity", None),
    ("MIME-Version", None),
    ("Alert-Info", None),
    ("Call-Info", None),
    ("Error-Info", None),
    ("In-Reply-To", None),
    ("Reply-To", None),
    ("Flow-Timer", None),
];

/// The canonical spelling of a header name, for known headers and their compact forms.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    if name.len() == 1 {
        return KNOWN
            .iter()
            .find(|(_, c)| c.is_some_and(|c| c.eq_ignore_ascii_case(name)))
            .map(|(n, _)| *n);
    }
    KNOWN
        .iter()
        .find(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
        .map(|(n, _)| *n)
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    name: (usize, usize),
    value: (usize, usize),
    canon: Option<&'static str>,
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
            let canon = buf.get(name.0..name.1).and_then(canonical_name);
            entries.push(Entry { name, value, canon });
        }
        Headers { buf, entries }
    }

    fn name_of(&self, e: &Entry) -> &str {
        e.canon
            .unwrap_or_else(|| self.buf.get(e.name.0..e.name.1).unwrap_or(""))
    }

    fn value_of(&self, e: &Entry) -> &str {
        self.buf.get(e.value.0..e.value.1).unwrap_or("")
    }

    fn matches(&self, e: &Entry, canon: Option<&'static str>, name: &str) -> bool {
        match (canon, e.canon) {
            (Some(c), Some(d)) => std::ptr::eq(c, d) || c == d,
            (Some(_), None) | (None, Some(_)) => false,
            (None, None) => self.name_of(e).eq_ignore_ascii_case(name),
        }
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
        let canon = canonical_name(name);
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
        self.buf.extend(name.chars().map(|c| {
            if c.is_ascii() && crate::syntax::is_token_byte(c as u8) {
                c
            } else {
                '-'
            }
        }));
        let name_r = (start, self.buf.len());
        let vstart = self.buf.len();
        self.buf.extend(value.chars().map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        }));
        let value_r = (vstart, self.buf.len());
        let canon = canonical_name(name);
        self.entries.push(Entry {
            name: name_r,
            value: value_r,
            canon,
        });
    }

    /// Removes every field called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let canon = canonical_name(name);
        let before = self.entries.len();
        let keep: Vec<Entry> = self
            .entries
            .iter()
            .copied()
            .filter(|e| !self.matches(e, canon, name))
            .collect();
        self.entries = keep;
        before - self.entries.len()
    }

    /// Replaces all fields called `name` by one, at the position of the first.
    pub fn set(&mut self, name: &str, value: &str) {
        let canon = canonical_name(name);
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

fn write_cl(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
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
