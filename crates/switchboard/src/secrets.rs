//! Passwords: generation, SIP digest HA1 values and argon2id hashing.

use std::fmt;

use anyhow::Context as _;
use md5::Md5;
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};

/// Length of generated passwords: 24 alphanumeric characters, about 142 bits.
pub const GENERATED_LEN: usize = 24;
/// Shortest password an operator may choose for a SIP credential or web user.
pub const MIN_LEN: usize = 8;

/// A password held in memory. `Debug` never shows it; [`Secret::expose`]
/// is for hashing and for the one-time output the operator asked for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Validates an operator-chosen password.
    pub fn chosen(password: &str) -> Result<Self, String> {
        if password.chars().count() < MIN_LEN {
            return Err(format!(
                "password is too short; expected at least {MIN_LEN} characters"
            ));
        }
        if password.chars().any(char::is_control) {
            return Err(
                "password contains control characters; expected printable characters".into(),
            );
        }
        Ok(Self(password.to_owned()))
    }

    /// A fresh random alphanumeric password from the OS random source.
    pub fn generate() -> Self {
        let s: String = OsRng
            .sample_iter(&Alphanumeric)
            .take(GENERATED_LEN)
            .map(char::from)
            .collect();
        Self(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// SIP digest HA1 values, lowercase hex of H(username:realm:password), for
/// MD5 (RFC 2617) and SHA-256 (RFC 7616/8760).
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1 {
    pub md5: String,
    pub sha256: String,
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ha1(***)")
    }
}

impl Ha1 {
    pub fn compute(username: &str, realm: &str, password: &Secret) -> Self {
        let input = format!("{username}:{realm}:{}", password.expose());
        Self {
            md5: hex::encode(Md5::digest(input.as_bytes())),
            sha256: hex::encode(Sha256::digest(input.as_bytes())),
        }
    }
}

/// Hashes a web login password with argon2id (PHC string) off the async
/// runtime, since a hash takes tens of milliseconds of CPU.
pub async fn argon2id_hash(password: Secret) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon2::Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
    })
    .await
    .context("password hashing task failed")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_matches_known_vectors() {
        // RFC 2617 §3.5 example: Mufasa / testrealm@host.com / Circle Of Life.
        let pw = Secret::chosen("Circle Of Life").unwrap();
        let ha1 = Ha1::compute("Mufasa", "testrealm@host.com", &pw);
        assert_eq!(ha1.md5, "939e7578ed9e3c518a452acee763bce9");
        // RFC 7616 §3.9.1 credentials; HA1 cross-checked with coreutils sha256sum.
        let pw = Secret::chosen("Circle of Life").unwrap();
        let ha1 = Ha1::compute("Mufasa", "http-auth@example.org", &pw);
        assert_eq!(
            ha1.sha256,
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );
        assert!(!format!("{ha1:?}").contains("7987"));
    }

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert!(a.expose().len() >= 20);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Secret(***)");
    }

    #[test]
    fn chosen_password_is_validated() {
        assert!(Secret::chosen("short").unwrap_err().contains("at least 8"));
        assert!(Secret::chosen("long\u{7}enough").is_err());
        assert!(Secret::chosen("long enough").is_ok());
    }

    #[tokio::test]
    async fn argon2id_hash_is_a_phc_string_that_verifies() {
        use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
        let hash = argon2id_hash(Secret::chosen("correct horse").unwrap())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
    }
}
