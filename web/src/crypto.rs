//! Secrets the web app makes and checks: random tokens (sessions, CSRF, API tokens, setup links)
//! and their SHA-256 hashes, argon2id login password hashes (off the async runtime), generated
//! SIP passwords and their digest HA1s.

use argon2::password_hash::{
    PasswordHash as PhcHash, PasswordHasher, PasswordVerifier, SaltString,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};
use store::{PasswordHash, TokenHash};

use crate::error::Internal;

/// 256 random bits, URL-safe base64 without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a token, the only form in which it is stored.
pub fn token_hash(token: &str) -> TokenHash {
    let hex = hex::encode(Sha256::digest(token.as_bytes()));
    hex.parse().expect("SHA-256 hex is a valid token hash")
}

/// Compares two secrets without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Shortest login password a user may choose.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Checks a password a user chose. Returns the message to show beside the field.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(format!(
            "Choose a password of at least {MIN_PASSWORD_LEN} characters."
        ));
    }
    if n > 200 {
        return Err("Choose a password of at most 200 characters.".into());
    }
    if password.chars().any(char::is_control) {
        return Err("The password must not contain control characters.".into());
    }
    Ok(())
}

/// argon2id with the crate's default parameters, on a blocking thread.
pub async fn hash_password(password: String) -> Result<PasswordHash, Internal> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let phc = argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| Internal::new(format!("argon2 hash failed: {e}")))?
            .to_string();
        phc.parse::<PasswordHash>()
            .map_err(|e| Internal::new(format!("argon2 produced an unexpected hash: {e}")))
    })
    .await
    .map_err(|e| Internal::new(format!("password hashing task failed: {e}")))?
}

/// Verifies a password against a stored argon2id PHC string, on a blocking thread.
pub async fn verify_password(password: String, hash: PasswordHash) -> Result<bool, Internal> {
    verify_password_or_decoy(password, Some(hash)).await
}

/// As [`verify_password`]; with no hash (no such account) it verifies against [`decoy_hash`]
/// and answers `false`, so both cases cost the same.
pub async fn verify_password_or_decoy(
    password: String,
    hash: Option<PasswordHash>,
) -> Result<bool, Internal> {
    tokio::task::spawn_blocking(move || {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| decoy_hash().clone());
        let parsed = PhcHash::new(hash.as_str())
            .map_err(|e| Internal::new(format!("stored password hash unreadable: {e}")))?;
        let ok = argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(real && ok)
    })
    .await
    .map_err(|e| Internal::new(format!("password verification task failed: {e}")))?
}

/// A hash of a password nobody knows, verified against when the e-mail address is unknown so
/// that a failed login takes as long whether or not the account exists.
pub fn decoy_hash() -> &'static PasswordHash {
    static DECOY: std::sync::OnceLock<PasswordHash> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon2::Argon2::default()
            .hash_password(random_token().as_bytes(), &salt)
            .expect("argon2 hash of a random token")
            .to_string()
            .parse()
            .expect("argon2id PHC string")
    })
}

// SIP passwords and HA1s live with the rest of the credential rules.
pub use crate::service::credentials::{SIP_PASSWORD_LEN, generate_sip_password, sip_ha1};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&random_token()));
    }

    #[tokio::test]
    async fn argon2id_round_trip() {
        let h = hash_password("correct horse battery".into()).await.unwrap();
        assert!(h.as_str().starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse battery".into(), h.clone())
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), h).await.unwrap());
        assert!(
            !verify_password_or_decoy("anything".into(), None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn password_rules() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long enough pass").is_ok());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }
}
