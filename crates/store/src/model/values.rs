//! Validated text values. Each type is parsed once at the edge (`FromStr`/`TryFrom<String>`) and
//! keeps its canonical form, so the store and everything behind it can trust it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{E164, ParseError};

/// Implements `Display`, `AsRef<str>`, `TryFrom<String>`/`&str` and `From<T> for String` for a
/// `struct T(String)` that has a `FromStr` impl.
macro_rules! text_type {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, ParseError> {
                s.parse()
            }
        }
        impl TryFrom<&str> for $name {
            type Error = ParseError;
            fn try_from(s: &str) -> Result<Self, ParseError> {
                s.parse()
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A short dialable number inside a tenant: 2 to 6 digits. 999 and 112 are refused because
/// emergency calls must always route to a trunk. A new extension, ring group, IVR menu or
/// conference room must also not start with 0 ([`ExtensionNumber::check_new`]); parsing alone
/// accepts that, so a dialled "0…" and numbers stored before the rule still read.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExtensionNumber(String);
text_type!(ExtensionNumber);

impl ExtensionNumber {
    /// The numbering rules in words: shown next to number fields, and ending every error about
    /// one, in the web admin, the API and the CLI alike.
    pub const RULES: &'static str = "Extension numbers have 2 to 6 digits and do not start \
        with 0 (UK phones dial 0 for national and international numbers); 999 and 112 are \
        kept for emergency calls.";

    /// Whether something new may take this number: not one starting with 0, which would clash
    /// with national dialling (0201 against 020 numbers, 07… mobiles, 00 international).
    pub fn check_new(&self) -> Result<(), ParseError> {
        if self.0.starts_with('0') {
            return Err(ParseError::new(
                "number",
                format!("{} starts with 0. {}", self.0, Self::RULES),
            ));
        }
        Ok(())
    }
}

impl FromStr for ExtensionNumber {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        if !is_digits(t) || !(2..=6).contains(&t.len()) {
            return Err(ParseError::new(
                "number",
                format!(
                    "{s:?} is not a valid extension number, e.g. 201. {}",
                    Self::RULES
                ),
            ));
        }
        if t == "999" || t == "112" {
            return Err(ParseError::new(
                "number",
                format!(
                    "{t} is reserved for emergency calls and cannot be used as an extension \
                     number. {}",
                    Self::RULES
                ),
            ));
        }
        Ok(Self(t.to_owned()))
    }
}

/// A tenant's SIP domain (also the digest realm): a lowercase DNS hostname.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SipDomain(String);
text_type!(SipDomain);

impl FromStr for SipDomain {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let t = s.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if t.is_empty() || t.len() > 253 || !t.split('.').all(label_ok) {
            return Err(ParseError::new(
                "sip_domain",
                format!(
                    "{s:?} is not a valid SIP domain: expected a hostname such as acme.pbx.example.com"
                ),
            ));
        }
        Ok(Self(t))
    }
}

/// A tenant's URL slug: lowercase letters, digits and '-', starting with a letter or digit, at
/// most 63 characters.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);
text_type!(Slug);

impl FromStr for Slug {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        let ok = !t.is_empty()
            && t.len() <= 63
            && !t.starts_with('-')
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(ParseError::new(
                "slug",
                format!(
                    "{s:?} is not a valid slug: expected 1 to 63 lowercase letters, digits or '-', not starting with '-'"
                ),
            ));
        }
        Ok(Self(t.to_owned()))
    }
}

/// An e-mail address, stored lowercased (login is case-insensitive).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
text_type!(Email);

impl FromStr for Email {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let t = s.trim().to_lowercase();
        let ok = match t.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && t.len() <= 254
                    && !t.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if !ok {
            return Err(ParseError::new(
                "email",
                format!("{s:?} is not a valid e-mail address: expected name@example.com"),
            ));
        }
        Ok(Self(t))
    }
}

/// A device's MAC address, normalised to 12 lowercase hex digits. Accepts `00:11:22:AA:BB:CC`,
/// `00-11-22-aa-bb-cc`, `0011.22aa.bbcc` and `001122aabbcc`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddress(String);
text_type!(MacAddress);

impl FromStr for MacAddress {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let hex: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.'))
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::new(
                "mac_address",
                format!(
                    "{s:?} is not a valid MAC address: expected 12 hex digits such as 00:11:22:aa:bb:cc"
                ),
            ));
        }
        Ok(Self(hex))
    }
}

/// A SIP digest username: 1 to 64 of `A-Z a-z 0-9 . _ ~ + -` (no escaping needed in a SIP URI).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SipUsername(String);
text_type!(SipUsername);

impl FromStr for SipUsername {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~+-".contains(&b));
        if !ok {
            return Err(ParseError::new(
                "username",
                format!(
                    "{s:?} is not a valid SIP username: expected 1 to 64 letters, digits or . _ ~ + -"
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

macro_rules! hex_digest {
    ($(#[$doc:meta])* $name:ident, $len:literal, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);
        text_type!($name);

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                let t = s.trim().to_ascii_lowercase();
                if t.len() != $len || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ParseError::new(
                        $field,
                        format!("not a valid {}: expected {} hex digits", $field, $len),
                    ));
                }
                Ok(Self(t))
            }
        }

        // Password-equivalent for SIP: keep it out of logs.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(<redacted>)", stringify!($name))
            }
        }
    };
}

hex_digest!(/// HA1 = MD5(username ":" realm ":" password), hex (RFC 2617/7616).
    Ha1Md5, 32, "ha1_md5");
hex_digest!(/// HA1 = SHA-256(username ":" realm ":" password), hex (RFC 7616).
    Ha1Sha256, 64, "ha1_sha256");

/// An argon2id PHC string (`$argon2id$v=19$...`). Hashing happens outside the store.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);
text_type!(PasswordHash);

impl FromStr for PasswordHash {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if !s.starts_with("$argon2id$") || s.len() > 512 {
            return Err(ParseError::new(
                "password_hash",
                "not an argon2id PHC string: expected $argon2id$v=19$...".to_owned(),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A secret (a trunk password). `Debug` and `Display` never show it; use [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Declares a closed set of lowercase words stored as text, with `as_str`, `FromStr`, `Display`
/// and serde as that word.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ParseError::new(
                        $field,
                        format!("{:?} is not a valid {}: expected one of {}", s, $field,
                            [$($text),+].join(", ")),
                    )),
                }
            }
        }
    };
}

word_enum!(/// A web user's role. Operators run the platform and belong to no tenant.
    Role, "role" { Operator => "operator", Admin => "admin", Member => "member" });
word_enum!(/// A SIP transport. Trunks accept only udp, tcp and tls.
    Transport, "transport" { Udp => "udp", Tcp => "tcp", Tls => "tls", Ws => "ws", Wss => "wss" });
word_enum!(/// How a ring group rings its members.
    RingStrategy, "strategy" {
        Simultaneous => "simultaneous", Sequential => "sequential", RoundRobin => "round_robin" });
word_enum!(/// Direction of a call in a CDR.
    Direction, "direction" {
        Internal => "internal", Outbound => "outbound", Inbound => "inbound", Emergency => "emergency" });
word_enum!(/// How a call ended.
    Disposition, "disposition" {
        Answered => "answered", NoAnswer => "no_answer", Busy => "busy", Failed => "failed",
        Cancelled => "cancelled", Rejected => "rejected" });
word_enum!(/// Which side hung up.
    HangupBy, "hangup_by" { Caller => "caller", Callee => "callee", System => "system" });
word_enum!(/// The kind of a number, from the numbering plan (see [`E164::number_type`]).
    NumberType, "number_type" {
        Geographic => "geographic", Mobile => "mobile", Freephone => "freephone",
        NonGeographic => "non_geographic", Premium => "premium", Personal => "personal", Uan => "uan",
        Voip => "voip", Other => "other" });

/// Where a call forward goes: another extension of the same tenant or an outside number.
/// Stored as the extension's digits or the E.164 text (`+...`).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ForwardTarget {
    Extension(ExtensionNumber),
    External(E164),
}

impl FromStr for ForwardTarget {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        if is_digits(t) && t.len() <= 6 {
            return t
                .parse()
                .map(ForwardTarget::Extension)
                .map_err(|e: ParseError| ParseError::new("forward", e.message));
        }
        t.parse::<E164>().map(ForwardTarget::External).map_err(|_| {
            ParseError::new(
                "forward",
                format!("{s:?} is not a valid forward target: expected an extension number (2 to 6 digits) or a phone number such as 07400 123456"),
            )
        })
    }
}

impl fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardTarget::Extension(n) => n.fmt(f),
            ForwardTarget::External(e) => e.fmt(f),
        }
    }
}

impl TryFrom<String> for ForwardTarget {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<ForwardTarget> for String {
    fn from(t: ForwardTarget) -> String {
        t.to_string()
    }
}

/// A conference PIN: 1 to 12 digits.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pin(String);
text_type!(Pin);

impl FromStr for Pin {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let t = s.trim();
        if !is_digits(t) || t.len() > 12 {
            return Err(ParseError::new(
                "pin",
                "not a valid PIN: expected 1 to 12 digits".to_owned(),
            ));
        }
        Ok(Self(t.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_numbers() {
        assert_eq!("201".parse::<ExtensionNumber>().unwrap().as_str(), "201");
        assert_eq!(
            " 123456 ".parse::<ExtensionNumber>().unwrap().as_str(),
            "123456"
        );
        for bad in ["1", "1234567", "20a", "", "999", "112", "+44"] {
            let e = bad.parse::<ExtensionNumber>().unwrap_err();
            assert_eq!(e.field, "number", "{bad}");
        }
        assert!(
            "999"
                .parse::<ExtensionNumber>()
                .unwrap_err()
                .message
                .contains("emergency")
        );
        // 0-leading reads (a dialled or stored number) but nothing new may take it.
        let n: ExtensionNumber = "0201".parse().unwrap();
        let e = n.check_new().unwrap_err();
        assert_eq!(e.field, "number");
        assert!(
            e.message.starts_with("0201 starts with 0.")
                && e.message.ends_with(ExtensionNumber::RULES),
            "{}",
            e.message
        );
        assert!(
            "201"
                .parse::<ExtensionNumber>()
                .unwrap()
                .check_new()
                .is_ok()
        );
        assert!("12".parse::<ExtensionNumber>().unwrap().check_new().is_ok());
        for bad in ["1", "20a", "999"] {
            let e = bad.parse::<ExtensionNumber>().unwrap_err();
            assert!(e.message.ends_with(ExtensionNumber::RULES), "{}", e.message);
        }
    }

    #[test]
    fn domains_slugs_emails() {
        assert_eq!(
            "Acme.PBX.example.com."
                .parse::<SipDomain>()
                .unwrap()
                .as_str(),
            "acme.pbx.example.com"
        );
        for bad in ["", "-a.com", "a..b", "a_b.com", "a b"] {
            assert!(bad.parse::<SipDomain>().is_err(), "{bad}");
        }
        assert!("acme-ltd".parse::<Slug>().is_ok());
        for bad in ["Acme", "-acme", "", "a/b"] {
            assert!(bad.parse::<Slug>().is_err(), "{bad}");
        }
        assert_eq!(
            "Ann@Example.COM".parse::<Email>().unwrap().as_str(),
            "ann@example.com"
        );
        assert!(
            "ann"
                .parse::<Email>()
                .unwrap_err()
                .message
                .contains("\"ann\"")
        );
    }

    #[test]
    fn macs_and_secrets() {
        for ok in [
            "00:11:22:AA:BB:CC",
            "00-11-22-aa-bb-cc",
            "0011.22aa.bbcc",
            "001122aabbcc",
        ] {
            assert_eq!(ok.parse::<MacAddress>().unwrap().as_str(), "001122aabbcc");
        }
        assert!("00:11:22:aa:bb".parse::<MacAddress>().is_err());
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        let h: Ha1Md5 = "0123456789ABCDEF0123456789abcdef".parse().unwrap();
        assert_eq!(h.as_str(), "0123456789abcdef0123456789abcdef");
        assert!(!format!("{h:?}").contains("0123"));
    }

    #[test]
    fn words_and_forwards() {
        assert_eq!(
            "Round_Robin".parse::<RingStrategy>().unwrap(),
            RingStrategy::RoundRobin
        );
        assert!(
            "weird"
                .parse::<Role>()
                .unwrap_err()
                .message
                .contains("operator, admin, member")
        );
        assert_eq!("201".parse::<ForwardTarget>().unwrap().to_string(), "201");
        assert_eq!(
            "07400 123456".parse::<ForwardTarget>().unwrap().to_string(),
            "+447400123456"
        );
        assert!("12".parse::<ForwardTarget>().is_ok());
        assert!("x".parse::<ForwardTarget>().is_err());
    }
}
