//! Parsing and building of `Authorization` / `Proxy-Authorization` and
//! `WWW-Authenticate` / `Proxy-Authenticate` header values (RFC 7616 §3.3–3.4,
//! RFC 3261 §25.1 auth-param grammar), bounded against hostile input.

use std::borrow::Cow;

use super::digest::{Algorithm, ResponseParams, compute_response, ha1};

/// Longest header value accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 4096;
/// Longest single parameter value accepted, in bytes (after unescaping).
pub const MAX_VALUE_LEN: usize = 1024;
/// Most parameters accepted in one header value (known and unknown).
pub const MAX_PARAMS: usize = 24;

/// Why a header value was refused. The caller answers 400, or 401 with a
/// fresh challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authorization header value longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("authentication scheme is not Digest")]
    NotDigest,
    #[error("malformed auth-param list near byte {0}")]
    Syntax(usize),
    #[error("value of parameter {0} is longer than {MAX_VALUE_LEN} bytes")]
    ValueTooLong(String),
    #[error("more than {MAX_PARAMS} parameters")]
    TooManyParams,
    #[error("duplicate parameter {0}")]
    Duplicate(String),
    #[error("missing required parameter {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("invalid nonce-count {0}")]
    BadNonceCount(String),
    #[error("invalid value for parameter {0}")]
    BadValue(&'static str),
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits `Digest <params>` and calls `f(name, value)` for each auth-param.
/// Accepts quoted-strings with `\` escapes and, leniently, unquoted values
/// (running to the next comma or whitespace). Empty list elements are
/// skipped, as the `#rule` allows.
fn parse_digest_params<'a>(
    input: &'a str,
    mut f: impl FnMut(&'a str, Cow<'a, str>) -> Result<(), AuthError>,
) -> Result<(), AuthError> {
    if input.len() > MAX_HEADER_LEN {
        return Err(AuthError::TooLong);
    }
    let bytes = input.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() && is_lws(bytes[pos]) {
        pos += 1;
    }
    let scheme_start = pos;
    while pos < bytes.len() && is_token_byte(bytes[pos]) {
        pos += 1;
    }
    if !input[scheme_start..pos].eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest);
    }
    if pos < bytes.len() && !is_lws(bytes[pos]) {
        return Err(AuthError::NotDigest);
    }
    let mut count = 0;
    loop {
        while pos < bytes.len() && (is_lws(bytes[pos]) || bytes[pos] == b',') {
            pos += 1;
        }
        if pos == bytes.len() {
            return Ok(());
        }
        let name_start = pos;
        while pos < bytes.len() && is_token_byte(bytes[pos]) {
            pos += 1;
        }
        if pos == name_start {
            return Err(AuthError::Syntax(pos));
        }
        let name = &input[name_start..pos];
        while pos < bytes.len() && is_lws(bytes[pos]) {
            pos += 1;
        }
        if bytes.get(pos) != Some(&b'=') {
            return Err(AuthError::Syntax(pos));
        }
        pos += 1;
        while pos < bytes.len() && is_lws(bytes[pos]) {
            pos += 1;
        }
        let value: Cow<'a, str> = if bytes.get(pos) == Some(&b'"') {
            pos += 1;
            let start = pos;
            let mut owned: Option<String> = None;
            loop {
                match bytes.get(pos) {
                    None => return Err(AuthError::Syntax(pos)),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        // Escaped character: copy what came before, then the
                        // escaped char itself (which may be multi-byte UTF-8).
                        let s = owned.get_or_insert_with(|| input[start..pos].to_owned());
                        let ch = input[pos + 1..]
                            .chars()
                            .next()
                            .ok_or(AuthError::Syntax(pos))?;
                        s.push(ch);
                        pos += 1 + ch.len_utf8();
                    }
                    Some(_) => {
                        let ch = input[pos..].chars().next().ok_or(AuthError::Syntax(pos))?;
                        if let Some(s) = owned.as_mut() {
                            s.push(ch);
                        }
                        pos += ch.len_utf8();
                    }
                }
                if pos - start > MAX_VALUE_LEN + 1 {
                    return Err(AuthError::ValueTooLong(name.to_owned()));
                }
            }
            let v = match owned {
                Some(s) => Cow::Owned(s),
                None => Cow::Borrowed(&input[start..pos]),
            };
            pos += 1; // closing quote
            v
        } else {
            let start = pos;
            while pos < bytes.len()
                && bytes[pos] != b','
                && !is_lws(bytes[pos])
                && bytes[pos] != b'"'
            {
                pos += 1;
            }
            if pos == start {
                return Err(AuthError::Syntax(pos));
            }
            Cow::Borrowed(&input[start..pos])
        };
        if value.len() > MAX_VALUE_LEN {
            return Err(AuthError::ValueTooLong(name.to_owned()));
        }
        while pos < bytes.len() && is_lws(bytes[pos]) {
            pos += 1;
        }
        if pos < bytes.len() && bytes[pos] != b',' {
            return Err(AuthError::Syntax(pos));
        }
        count += 1;
        if count > MAX_PARAMS {
            return Err(AuthError::TooManyParams);
        }
        f(name, value)?;
    }
}

/// Stores `value` into `slot`, refusing a second occurrence.
fn set_once(slot: &mut Option<String>, name: &str, value: Cow<'_, str>) -> Result<(), AuthError> {
    if slot.is_some() {
        return Err(AuthError::Duplicate(name.to_ascii_lowercase()));
    }
    *slot = Some(value.into_owned());
    Ok(())
}

/// Parsed `Authorization` / `Proxy-Authorization` credentials (Digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    /// The client's response digest, hex as sent.
    pub response: String,
    /// `MD5` when the parameter is absent.
    pub algorithm: Algorithm,
    /// `qop` as sent (`auth`, `auth-int`, ...); `None` for RFC 2069 clients.
    pub qop: Option<String>,
    /// Nonce-count exactly as sent (it enters the digest verbatim).
    pub nc: Option<String>,
    /// Nonce-count value; never 0.
    pub nc_value: Option<u32>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    /// `userhash=true` (RFC 7616 §3.4.4). We never offer it; the verifier refuses it.
    pub userhash: bool,
}

impl Credentials {
    /// Parses a header value such as
    /// `Digest username="bob", realm="x", nonce="..", uri="sip:x", response="..", qop=auth, nc=00000001, cnonce=".."`.
    ///
    /// Parameter names are case-insensitive and may come in any order;
    /// unknown parameters are ignored (counted against [`MAX_PARAMS`]);
    /// duplicates of known ones are an error. `username`, `realm`, `nonce`,
    /// `uri` and `response` are required; with `qop`, `nc` and `cnonce` are too.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let (mut username, mut realm, mut nonce, mut uri, mut response) =
            (None, None, None, None, None);
        let (mut algorithm, mut qop, mut nc, mut cnonce, mut opaque, mut userhash) =
            (None, None, None, None, None, None);
        parse_digest_params(value, |name, v| {
            // lowercased on the stack: every known name is short, longer ones are ignored anyway
            let mut lower = [0u8; 16];
            let Some(key) = lower.get_mut(..name.len()) else {
                return Ok(());
            };
            for (d, s) in key.iter_mut().zip(name.bytes()) {
                *d = s.to_ascii_lowercase();
            }
            let slot = match &*key {
                b"username" => &mut username,
                b"realm" => &mut realm,
                b"nonce" => &mut nonce,
                b"uri" => &mut uri,
                b"response" => &mut response,
                b"algorithm" => &mut algorithm,
                b"qop" => &mut qop,
                b"nc" => &mut nc,
                b"cnonce" => &mut cnonce,
                b"opaque" => &mut opaque,
                b"userhash" => &mut userhash,
                _ => return Ok(()),
            };
            set_once(slot, name, v)
        })?;
        let algorithm = match algorithm {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(AuthError::UnsupportedAlgorithm(a))?,
        };
        let nc_value = match &nc {
            None => None,
            Some(s) => {
                let ok = !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
                match u32::from_str_radix(s, 16) {
                    Ok(n) if ok && n > 0 => Some(n),
                    _ => return Err(AuthError::BadNonceCount(s.clone())),
                }
            }
        };
        if qop.is_some() {
            if nc.is_none() {
                return Err(AuthError::Missing("nc"));
            }
            if cnonce.is_none() {
                return Err(AuthError::Missing("cnonce"));
            }
        }
        let userhash = match userhash.as_deref() {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(_) => return Err(AuthError::BadValue("userhash")),
        };
        Ok(Credentials {
            username: username.ok_or(AuthError::Missing("username"))?,
            realm: realm.ok_or(AuthError::Missing("realm"))?,
            nonce: nonce.ok_or(AuthError::Missing("nonce"))?,
            uri: uri.ok_or(AuthError::Missing("uri"))?,
            response: response.ok_or(AuthError::Missing("response"))?,
            algorithm,
            qop,
            nc,
            nc_value,
            cnonce,
            opaque,
            userhash,
        })
    }

    /// Serializes as a header value (client side; also used by tests).
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("Digest ");
        push_quoted_param(&mut out, "username", &self.username);
        push_quoted_param(&mut out, "realm", &self.realm);
        push_quoted_param(&mut out, "nonce", &self.nonce);
        push_quoted_param(&mut out, "uri", &self.uri);
        push_quoted_param(&mut out, "response", &self.response);
        push_token_param(&mut out, "algorithm", self.algorithm.as_str());
        if let Some(o) = &self.opaque {
            push_quoted_param(&mut out, "opaque", o);
        }
        if let Some(q) = &self.qop {
            push_token_or_quoted_param(&mut out, "qop", q);
        }
        if let Some(nc) = &self.nc {
            push_token_param(&mut out, "nc", nc);
        }
        if let Some(c) = &self.cnonce {
            push_quoted_param(&mut out, "cnonce", c);
        }
        if self.userhash {
            push_token_param(&mut out, "userhash", "true");
        }
        out
    }
}

fn push_sep(out: &mut String) {
    if !out.ends_with(' ') {
        out.push_str(", ");
    }
}

fn push_token_param(out: &mut String, name: &str, value: &str) {
    push_sep(out);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}

/// A value that is a token goes out bare; anything else (empty, or with
/// spaces, commas or quotes, as a peer may have sent it quoted) is quoted, so
/// that it reads back the same.
fn push_token_or_quoted_param(out: &mut String, name: &str, value: &str) {
    if !value.is_empty() && value.bytes().all(is_token_byte) {
        push_token_param(out, name, value);
    } else {
        push_quoted_param(out, name, value);
    }
}

fn push_quoted_param(out: &mut String, name: &str, value: &str) {
    push_sep(out);
    out.push_str(name);
    out.push_str("=\"");
    for ch in value.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

/// A Digest challenge (`WWW-Authenticate` / `Proxy-Authenticate` value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether `qop` offers `auth`. A challenge without `qop` is RFC 2069 style.
    pub qop_auth: bool,
    /// The raw `qop` option list, if present (e.g. `auth,auth-int`).
    pub qop: Option<String>,
    pub stale: bool,
}

impl Challenge {
    /// Parses a challenge (client side: trunks, load generator, tests).
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let (mut realm, mut nonce, mut opaque, mut algorithm, mut qop, mut stale) =
            (None, None, None, None, None, None);
        parse_digest_params(value, |name, v| {
            let slot = match name.to_ascii_lowercase().as_str() {
                "realm" => &mut realm,
                "nonce" => &mut nonce,
                "opaque" => &mut opaque,
                "algorithm" => &mut algorithm,
                "qop" => &mut qop,
                "stale" => &mut stale,
                _ => return Ok(()),
            };
            set_once(slot, name, v)
        })?;
        let algorithm = match algorithm {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(AuthError::UnsupportedAlgorithm(a))?,
        };
        let qop_auth = qop
            .as_deref()
            .is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")));
        Ok(Challenge {
            realm: realm.ok_or(AuthError::Missing("realm"))?,
            nonce: nonce.ok_or(AuthError::Missing("nonce"))?,
            opaque,
            algorithm,
            qop_auth,
            qop,
            stale: stale.is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Serializes as a header value: realm, qop, nonce, opaque, algorithm,
    /// stale.
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("Digest ");
        push_quoted_param(&mut out, "realm", &self.realm);
        if let Some(q) = &self.qop {
            push_quoted_param(&mut out, "qop", q);
        } else if self.qop_auth {
            push_quoted_param(&mut out, "qop", "auth");
        }
        push_quoted_param(&mut out, "nonce", &self.nonce);
        if let Some(o) = &self.opaque {
            push_quoted_param(&mut out, "opaque", o);
        }
        push_token_param(&mut out, "algorithm", self.algorithm.as_str());
        if self.stale {
            push_token_param(&mut out, "stale", "true");
        }
        out
    }

    /// Client side: answers this challenge. Uses `qop=auth` when offered and
    /// the RFC 2069 form otherwise. `nc` must be > 0 and increase per request
    /// on the same nonce; `cnonce` should be fresh random per nonce.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> Credentials {
        let ha1 = ha1(self.algorithm, username, &self.realm, password);
        let nc_str = format!("{nc:08x}");
        let qop = self.qop_auth.then_some("auth");
        let response = compute_response(&ResponseParams {
            algorithm: self.algorithm,
            ha1: &ha1,
            nonce: &self.nonce,
            nc: &nc_str,
            cnonce,
            qop,
            method,
            uri,
        })
        .unwrap_or_default();
        Credentials {
            username: username.to_owned(),
            realm: self.realm.clone(),
            nonce: self.nonce.clone(),
            uri: uri.to_owned(),
            response,
            algorithm: self.algorithm,
            qop: qop.map(str::to_owned),
            nc: qop.map(|_| nc_str),
            nc_value: qop.map(|_| nc),
            cnonce: qop.map(|_| cnonce.to_owned()),
            opaque: self.opaque.clone(),
            userhash: false,
        }
    }
}
