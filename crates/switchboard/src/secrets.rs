//! Passwords the CLI handles. The rules (policy, generation, HA1) are the web app's service
//! layer's ([`web::service::credentials`]), so the CLI, the pages and the API agree.

use std::fmt;

use web::service::credentials;

/// A password held in memory. `Debug` never shows it; [`Secret::expose`]
/// is for hashing and for the one-time output the operator asked for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Validates an operator-chosen SIP password.
    pub fn chosen(password: &str) -> Result<Self, String> {
        credentials::check_sip_password(password)?;
        Ok(Self(password.to_owned()))
    }

    /// Validates an operator-chosen web login password (the web app's rule).
    pub fn chosen_login(password: &str) -> Result<Self, String> {
        web::crypto::check_new_password(password)?;
        Ok(Self(password.to_owned()))
    }

    /// A fresh random password from the OS random source.
    pub fn generate() -> Self {
        Self(credentials::generate_sip_password())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert!(a.expose().len() >= 20);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Secret(***)");
    }

    #[test]
    fn chosen_passwords_follow_the_web_rules() {
        assert!(Secret::chosen("short").unwrap_err().contains("at least 8"));
        assert!(Secret::chosen("long\u{7}enough").is_err());
        assert!(Secret::chosen("long enough").is_ok());
        // a login password is held to the web app's longer minimum
        assert!(Secret::chosen_login("nine char").is_err());
        assert!(Secret::chosen_login("a long chosen password").is_ok());
    }
}
