//! The digest arithmetic of RFC 7616 §3.4: HA1, HA2 and `response`, for MD5
//! and SHA-256 and their `-sess` variants, without heap formatting on the
//! server's hot path.

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm as named in the `algorithm` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (the default when the parameter is absent).
    Md5,
    /// `MD5-sess`: HA1 is re-hashed with the nonce and cnonce.
    Md5Sess,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Parses an `algorithm` value, case-insensitively. `SHA-512-256` and
    /// anything else unknown yield `None`.
    pub fn parse(s: &str) -> Option<Self> {
        const TABLE: [(&str, Algorithm); 4] = [
            ("MD5", Algorithm::Md5),
            ("MD5-sess", Algorithm::Md5Sess),
            ("SHA-256", Algorithm::Sha256),
            ("SHA-256-sess", Algorithm::Sha256Sess),
        ];
        TABLE
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, a)| a)
    }

    /// The canonical spelling used in challenges.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Whether this is a `-sess` variant.
    pub fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// The non-session algorithm whose HA1 the directory stores for this one:
    /// `MD5-sess` verifies against the stored MD5 HA1, and so on.
    pub fn base(self) -> Self {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
        }
    }

    /// Length in hex characters of a digest (HA1, response) for this algorithm.
    pub fn hex_len(self) -> usize {
        match self.base() {
            Algorithm::Md5 => 32,
            _ => 64,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lowercase hex digest held on the stack (up to SHA-256 size).
#[derive(Clone, Copy)]
pub(crate) struct HexBuf {
    buf: [u8; 64],
    len: usize,
}

impl HexBuf {
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        let len = (bytes.len() * 2).min(64);
        for (i, b) in bytes.iter().take(32).enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        HexBuf { buf, len }
    }

    /// Copies `s`, lowercasing it, if it is hex of exactly `len` characters.
    pub(crate) fn from_hex_str(s: &str, len: usize) -> Option<Self> {
        if s.len() != len || len > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut buf = [0u8; 64];
        for (d, b) in buf.iter_mut().zip(s.bytes()) {
            *d = b.to_ascii_lowercase();
        }
        Some(HexBuf { buf, len })
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ever filled with ASCII hex digits.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// Hashes the `parts` joined by `:` and returns lowercase hex.
fn hash_joined(alg: Algorithm, parts: &[&[u8]]) -> HexBuf {
    fn run<D: Digest>(parts: &[&[u8]]) -> HexBuf {
        let mut d = D::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(p);
        }
        HexBuf::from_bytes(&d.finalize())
    }
    match alg.base() {
        Algorithm::Md5 => run::<Md5>(parts),
        _ => run::<Sha256>(parts),
    }
}

/// `H(username ":" realm ":" password)` as lowercase hex, for the given
/// algorithm's hash (a `-sess` algorithm gives its base algorithm's HA1, which
/// is what the directory stores).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    hash_joined(
        alg,
        &[username.as_bytes(), realm.as_bytes(), password.as_bytes()],
    )
    .as_str()
    .to_owned()
}

/// MD5 HA1 (32 lowercase hex characters).
pub fn ha1_md5(username: &str, realm: &str, password: &str) -> String {
    ha1(Algorithm::Md5, username, realm, password)
}

/// SHA-256 HA1 (64 lowercase hex characters).
pub fn ha1_sha256(username: &str, realm: &str, password: &str) -> String {
    ha1(Algorithm::Sha256, username, realm, password)
}

/// Everything that goes into a digest `response` except the secret, which is
/// given as the stored HA1 (`H(user:realm:password)` of the base algorithm).
#[derive(Debug, Clone, Copy)]
pub struct ResponseParams<'a> {
    pub algorithm: Algorithm,
    /// Stored HA1 in hex, for `algorithm.base()`. Case-insensitive.
    pub ha1: &'a str,
    pub nonce: &'a str,
    /// Nonce-count exactly as sent on the wire (e.g. `00000001`).
    pub nc: &'a str,
    pub cnonce: &'a str,
    /// `Some("auth")` normally; `None` is the RFC 2069 form (client side only:
    /// the server refuses it).
    pub qop: Option<&'a str>,
    pub method: &'a str,
    pub uri: &'a str,
}

/// Computes `response` into a stack buffer. `None` if `ha1` is not hex of the
/// algorithm's length.
pub(crate) fn response_hex(p: &ResponseParams<'_>) -> Option<HexBuf> {
    let alg = p.algorithm;
    let stored = HexBuf::from_hex_str(p.ha1, alg.hex_len())?;
    let ha1 = if alg.is_sess() {
        hash_joined(
            alg,
            &[stored.as_bytes(), p.nonce.as_bytes(), p.cnonce.as_bytes()],
        )
    } else {
        stored
    };
    let ha2 = hash_joined(alg, &[p.method.as_bytes(), p.uri.as_bytes()]);
    Some(match p.qop {
        Some(qop) => hash_joined(
            alg,
            &[
                ha1.as_bytes(),
                p.nonce.as_bytes(),
                p.nc.as_bytes(),
                p.cnonce.as_bytes(),
                qop.as_bytes(),
                ha2.as_bytes(),
            ],
        ),
        None => hash_joined(alg, &[ha1.as_bytes(), p.nonce.as_bytes(), ha2.as_bytes()]),
    })
}

/// Client-side (and test) helper: the `response` parameter value, lowercase
/// hex. Returns `None` if `ha1` is not hex of the algorithm's digest length.
/// Used by the load generator and for trunk authentication.
pub fn compute_response(p: &ResponseParams<'_>) -> Option<String> {
    response_hex(p).map(|h| h.as_str().to_owned())
}

/// Constant-time equality of two byte strings of public length.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}
