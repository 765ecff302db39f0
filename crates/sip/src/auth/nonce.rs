//! Stateless, authenticated nonces.
//!
//! Wire form: base64url without padding (43 characters) of 32 bytes:
//! `issued (u64 BE, seconds since the UNIX epoch) || random (8 bytes) ||
//! tag (first 16 bytes of HMAC-SHA256(secret, label || issued || random || realm))`.
//!
//! The realm is bound in so that a nonce issued for one tenant is useless in
//! another. The source IP is deliberately *not* bound: phones behind NAT see
//! their public port and sometimes address rebind between the challenge and
//! the answer (and dual-stack or TCP/UDP fail-over does the same), and a
//! rebinding would turn into spurious authentication failures that feed the
//! brute-force guard. The nonce secures freshness, not location; the digest
//! already proves knowledge of the password. A 128-bit truncated tag is ample
//! for an online forgery attempt.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const LABEL: &[u8] = b"switchboard sip digest nonce v1";
const RAW_LEN: usize = 32;
/// Length of a nonce on the wire.
pub const NONCE_LEN: usize = 43;

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

    fn tag(&self, issued: u64, random: &[u8], realm: &str) -> [u8; 16] {
        let mut m = self.mac.clone();
        m.update(LABEL);
        m.update(&issued.to_be_bytes());
        m.update(random);
        m.update(realm.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A keyed value derived from the secret for another purpose (opaque).
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(b"switchboard derive ");
        m.update(purpose);
        m.finalize().into_bytes().into()
    }

    pub fn mint(&self, realm: &str, issued: u64, random: [u8; 8]) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..8].copy_from_slice(&issued.to_be_bytes());
        raw[8..16].copy_from_slice(&random);
        raw[16..].copy_from_slice(&self.tag(issued, &random, realm));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decodes and authenticates `nonce` for `realm`. `None` if malformed or
    /// forged. The comparison of tags is constant-time.
    pub fn check(&self, nonce: &str, realm: &str) -> Option<CheckedNonce> {
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
        let mut m = self.mac.clone();
        m.update(LABEL);
        m.update(&ts);
        m.update(&raw[8..16]);
        m.update(realm.as_bytes());
        m.verify_truncated_left(&raw[16..RAW_LEN]).ok()?;
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&raw[16..RAW_LEN]);
        Some(CheckedNonce { issued, tag })
    }
}
