//! Low-level lexical helpers shared by the header and URI parsers: tokens,
//! quoted strings, comma lists and `;name=value` parameter lists.

use std::borrow::Cow;

/// `token` characters of RFC 3261 §25.1.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Given `s` starting with `"`, returns the byte length of the quoted string
/// including both quotes, or `None` when it is unterminated.
pub(crate) fn quoted_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            b'\r' | b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Removes the surrounding quotes and resolves `\x` quoted-pairs.
pub(crate) fn unquote(s: &str) -> Cow<'_, str> {
    let inner = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Splits `s` at `sep` bytes that are outside quoted strings and `<...>`.
/// Unterminated quotes or brackets make the rest one item (validators catch it).
pub(crate) struct SplitOutside<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitOutside<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let b = s.as_bytes();
        let mut i = 0;
        let mut angle = false;
        while i < b.len() {
            match b[i] {
                b'"' => match quoted_len(&s[i..]) {
                    Some(n) => {
                        i += n;
                        continue;
                    }
                    None => break_to_end(&mut i, b.len()),
                },
                b'<' => angle = true,
                b'>' => angle = false,
                c if c == self.sep && !angle => {
                    self.rest = s.get(i + 1..);
                    return s.get(..i);
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(s)
    }
}

fn break_to_end(i: &mut usize, len: usize) {
    *i = len;
}

pub(crate) fn split_outside(s: &str, sep: u8) -> SplitOutside<'_> {
    SplitOutside { rest: Some(s), sep }
}

/// Comma-separated list items, trimmed, empty items skipped.
pub(crate) fn list_items(s: &str) -> impl Iterator<Item = &str> {
    split_outside(s, b',')
        .map(trim_ws)
        .filter(|x| !x.is_empty())
}

/// A `;name[=value]` parameter list, kept as the raw text and scanned on access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    pub(crate) fn new(raw: &'a str) -> Self {
        Params { raw }
    }

    /// The raw text, e.g. `;tag=abc;lr`.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// `(name, value)` pairs in order; a valueless parameter has `None`.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + use<'a> {
        split_outside(self.raw, b';').filter_map(|item| {
            let item = trim_ws(item);
            if item.is_empty() {
                return None;
            }
            Some(match item.split_once('=') {
                Some((n, v)) => (trim_ws(n), Some(trim_ws(v))),
                None => (item, None),
            })
        })
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`, `None` if absent.
    /// Names compare case-insensitively.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of `name`, `None` when absent or valueless.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Strict check of a header parameter list (`*( SEMI generic-param )`):
/// no empty parameters, token names, token / host / quoted-string values.
pub(crate) fn validate_params(raw: &str, header: &'static str) -> Result<(), crate::ParseError> {
    validate_params_with(raw, header, |_, _| Ok(()))
}

/// [`validate_params`] that also hands each `(name, value)` to `check`.
pub(crate) fn validate_params_with<'a>(
    raw: &'a str,
    header: &'static str,
    mut check: impl FnMut(&'a str, Option<&'a str>) -> Result<(), crate::ParseError>,
) -> Result<(), crate::ParseError> {
    let raw = trim_ws(raw);
    if raw.is_empty() {
        return Ok(());
    }
    let Some(body) = raw.strip_prefix(';') else {
        return Err(crate::ParseError::header(
            header,
            "unexpected text after value",
        ));
    };
    for item in split_outside(body, b';') {
        let item = trim_ws(item);
        let (name, value) = match item.split_once('=') {
            Some((n, v)) => (trim_ws(n), Some(trim_ws(v))),
            None => (item, None),
        };
        if !is_token(name) {
            return Err(crate::ParseError::header(
                header,
                "empty or invalid parameter name",
            ));
        }
        if let Some(v) = value {
            let ok = if v.starts_with('"') {
                quoted_len(v) == Some(v.len())
            } else {
                !v.is_empty()
                    && v.bytes()
                        .all(|b| is_token_byte(b) || matches!(b, b':' | b'[' | b']'))
            };
            if !ok {
                return Err(crate::ParseError::header(header, "invalid parameter value"));
            }
        }
        check(name, value)?;
    }
    Ok(())
}

/// Parses an unsigned decimal that must fit `max`; never overflows.
pub(crate) fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        if v > max {
            return None;
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let v: Vec<_> = list_items(r#""a, b" <sip:x;a=1,2>, c ,, d"#).collect();
        assert_eq!(v, [r#""a, b" <sip:x;a=1,2>"#, "c", "d"]);
    }

    #[test]
    fn params_scan() {
        let p = Params::new(";tag = 1 ; lr;X=\"a;b\"");
        assert_eq!(p.value("TAG"), Some("1"));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.value("x"), Some("\"a;b\""));
        assert!(validate_params(p.as_str(), "t").is_ok());
        assert!(validate_params(";;", "t").is_err());
        assert!(validate_params(";a=", "t").is_err());
    }

    #[test]
    fn quoted_and_decimal() {
        assert_eq!(quoted_len(r#""a\"b" x"#), Some(6));
        assert_eq!(quoted_len(r#""abc"#), None);
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(parse_decimal("0068", 255), Some(68));
        assert_eq!(parse_decimal("99999999999999999999999", u64::MAX), None);
        assert_eq!(parse_decimal("-1", 10), None);
    }
}
