//! SIP credentials and password policy, written once for the pages, the API and the CLI.

use md5::Md5;
use rand::Rng as _;
use rand::rngs::OsRng;
use sha2::{Digest as _, Sha256};
use store::{Ha1Md5, Ha1Sha256, NewCredential, SipDomain, SipUsername};

/// Length of generated SIP passwords: 20 characters from a 56-symbol alphabet, about 116 bits.
pub const SIP_PASSWORD_LEN: usize = 20;

/// Shortest SIP password an operator may choose (CLI, CSV import). Generated ones are longer.
pub const MIN_SIP_PASSWORD_LEN: usize = 8;

/// Longest password (SIP or login) anyone may choose.
pub const MAX_PASSWORD_LEN: usize = 200;

/// A strong SIP password without look-alike characters (no 0/O, 1/l/I), easy to type into a
/// phone's keypad menu if it has to be.
pub fn generate_sip_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..SIP_PASSWORD_LEN)
        .map(|_| char::from(ALPHABET[OsRng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// H(username:realm:password) for MD5 and SHA-256 digest authentication.
pub fn sip_ha1(username: &str, realm: &str, password: &str) -> (Ha1Md5, Ha1Sha256) {
    let input = format!("{username}:{realm}:{password}");
    let md5 = hex::encode(Md5::digest(input.as_bytes()));
    let sha = hex::encode(Sha256::digest(input.as_bytes()));
    (
        md5.parse().expect("MD5 hex is a valid HA1"),
        sha.parse().expect("SHA-256 hex is a valid HA1"),
    )
}

/// Checks a SIP password an operator chose. The message says what to change.
pub fn check_sip_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_SIP_PASSWORD_LEN {
        return Err(format!(
            "password is too short; expected at least {MIN_SIP_PASSWORD_LEN} characters"
        ));
    }
    if n > MAX_PASSWORD_LEN {
        return Err(format!(
            "password is too long; expected at most {MAX_PASSWORD_LEN} characters"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("password contains control characters; expected printable characters".into());
    }
    Ok(())
}

/// A new credential for `username` in the tenant's realm, with `password` (already checked
/// with [`check_sip_password`]) or a generated one; returns the password to show once.
pub fn new_credential(
    realm: &SipDomain,
    username: SipUsername,
    password: Option<&str>,
) -> (NewCredential, String) {
    let password = password.map_or_else(generate_sip_password, str::to_owned);
    let (ha1_md5, ha1_sha256) = sip_ha1(username.as_str(), realm.as_str(), &password);
    (
        NewCredential {
            username,
            ha1_md5,
            ha1_sha256,
            mac_address: None,
            model: None,
        },
        password,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha1_known_vector() {
        // RFC 2617 §3.5
        let (md5, _) = sip_ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(md5.as_str(), "939e7578ed9e3c518a452acee763bce9");
    }

    #[test]
    fn sip_password_policy_names_the_problem() {
        assert!(
            check_sip_password("short")
                .unwrap_err()
                .contains("at least 8")
        );
        assert!(check_sip_password("long\u{7}enough").is_err());
        assert!(
            check_sip_password(&"x".repeat(201))
                .unwrap_err()
                .contains("at most 200")
        );
        assert!(check_sip_password("long enough").is_ok());
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_sip_password();
        assert_eq!(a.chars().count(), SIP_PASSWORD_LEN);
        assert_ne!(a, generate_sip_password());
        assert!(check_sip_password(&a).is_ok());
    }
}
