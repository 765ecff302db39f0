//! Stateless, authenticated nonces.
//!
//! Wire form: base64url without padding (48 characters) of 36 bytes:
//! `issued (u64 BE, seconds since the UNIX epoch) || random (12 bytes, from
//! the thread CSPRNG) || tag (first 16 bytes of HMAC-SHA256(secret, label ||
//! issued || random || source || realm))`.
//!
//! The realm is bound in so that a nonce issued for one tenant is useless in
//! another. The source IP the challenge was sent to is bound in too (when the
//! caller gives one), so that a failure can be pinned on an address: a wrong
//! response under a nonce that checks out for its source came from someone
//! who received our challenge there, not from a blind spoofer. A phone whose
//! address changed between challenge and answer sees its nonce refused and is
//! simply challenged again (not counted as a failure). IPv4-mapped IPv6
//! addresses bind as their IPv4 form. A 128-bit truncated tag is ample for an
//! online forgery attempt.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use std::net::IpAddr;

use rand::RngCore;

type HmacSha256 = Hmac<Sha256>;

/// An IPv4-mapped IPv6 address as IPv4; others unchanged.
pub(crate) fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

const LABEL: &[u8] = b"switchboard sip digest nonce v2";
const RANDOM_LEN: usize = 12;
const TAG_AT: usize = 8 + RANDOM_LEN;
const RAW_LEN: usize = TAG_AT + 16;
/// Length of a nonce on the wire.
pub const NONCE_LEN: usize = 48;

/// A nonce whose MAC checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckedNonce {
    /// Issue time, seconds since the UNIX epoch.
    pub issued: u64,
    /// The MAC tag: unique per nonce, used as the replay-tracker key.
    pub tag: [u8; 16],
}

/// Mints and checks nonces with one secret. Holds a pre-keyed HMAC so each
/// operation costs two SHA-256 compressions.
#[derive(Clone)]
pub(crate) struct NonceKey {
    mac: HmacSha256,
}

impl NonceKey {
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length; this cannot fail.
        let mac = HmacSha256::new_from_slice(secret)
            .unwrap_or_else(|_| HmacSha256::new(&Default::default()));
        NonceKey { mac }
    }

    fn keyed(
        &self,
        issued: &[u8; 8],
        random: &[u8],
        source: Option<IpAddr>,
        realm: &str,
    ) -> HmacSha256 {
        let mut m = self.mac.clone();
        m.update(LABEL);
        m.update(issued);
        m.update(random);
        match source.map(plain_ip) {
            None => m.update(&[0]),
            Some(IpAddr::V4(v4)) => {
                m.update(&[4]);
                m.update(&v4.octets());
            }
            Some(IpAddr::V6(v6)) => {
                m.update(&[6]);
                m.update(&v6.octets());
            }
        }
        m.update(realm.as_bytes());
        m
    }

    /// A keyed value derived from the secret for another purpose (opaque).
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(b"switchboard derive ");
        m.update(purpose);
        m.finalize().into_bytes().into()
    }

    pub fn mint(
        &self,
        realm: &str,
        source: Option<IpAddr>,
        issued: u64,
        random: [u8; RANDOM_LEN],
    ) -> String {
        let mut raw = [0u8; RAW_LEN];
        let ts = issued.to_be_bytes();
        raw[..8].copy_from_slice(&ts);
        raw[8..TAG_AT].copy_from_slice(&random);
        let full = self
            .keyed(&ts, &random, source, realm)
            .finalize()
            .into_bytes();
        raw[TAG_AT..].copy_from_slice(&full[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// A fresh nonce: 96 random bits from the thread CSPRNG.
    pub fn mint_random(&self, realm: &str, source: Option<IpAddr>, issued: u64) -> String {
        let mut random = [0u8; RANDOM_LEN];
        rand::thread_rng().fill_bytes(&mut random);
        self.mint(realm, source, issued, random)
    }

    /// Decodes and authenticates `nonce` for `realm` and the `source` it
    /// was issued to. `None` if malformed, forged, or issued to another
    /// source. The comparison of tags is constant-time.
    pub fn check(&self, nonce: &str, realm: &str, source: Option<IpAddr>) -> Option<CheckedNonce> {
        if nonce.len() != NONCE_LEN {
            return None;
        }
        let mut raw = [0u8; RAW_LEN + 3];
        let n = URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw).ok()?;
        if n != RAW_LEN {
            return None;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let issued = u64::from_be_bytes(ts);
        self.keyed(&ts, &raw[8..TAG_AT], source, realm)
            .verify_truncated_left(&raw[TAG_AT..RAW_LEN])
            .ok()?;
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&raw[TAG_AT..RAW_LEN]);
        Some(CheckedNonce { issued, tag })
    }
}
