//! What kind of thing a dialled string is, before any directory lookup.

use store::{E164, ExtensionNumber};

/// A dialled string, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dialled {
    /// 2 to 6 digits: an extension, ring group, IVR menu or conference room.
    Short(ExtensionNumber),
    /// `999` or `112`.
    Emergency(&'static str),
    /// A public number in any UK or international form, normalised.
    Number(E164),
    /// Not a number we can route; the text says why.
    Invalid(String),
}

/// Strips what phones put around digits (spaces, dashes, dots, brackets) and
/// classifies the rest. The `+` of an international number is kept.
pub fn classify(dialled: &str) -> Dialled {
    let compact: String = dialled
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    match compact.as_str() {
        "999" => return Dialled::Emergency("999"),
        "112" => return Dialled::Emergency("112"),
        _ => {}
    }
    if compact.is_empty() {
        return Dialled::Invalid("nothing was dialled".into());
    }
    if compact.len() <= 6 && compact.chars().all(|c| c.is_ascii_digit()) {
        return match compact.parse::<ExtensionNumber>() {
            Ok(n) => Dialled::Short(n),
            Err(e) => Dialled::Invalid(e.message),
        };
    }
    // `E164::from_str` reads national UK forms (07…, 020…) with the GB default
    // region, `+…`, and the `00` international prefix (0044…, 001…).
    match dialled.trim().parse::<E164>() {
        Ok(n) => Dialled::Number(n),
        Err(e) => Dialled::Invalid(e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_short_emergency_and_public_numbers() {
        assert_eq!(classify("1001"), Dialled::Short("1001".parse().unwrap()));
        assert_eq!(classify(" 20 "), Dialled::Short("20".parse().unwrap()));
        assert_eq!(classify("999"), Dialled::Emergency("999"));
        assert_eq!(classify("112"), Dialled::Emergency("112"));
        for form in [
            "07400123456",
            "07400 123456",
            "+447400123456",
            "00447400123456",
            "+44 (0)7400 123456",
        ] {
            assert_eq!(
                classify(form),
                Dialled::Number("+447400123456".parse().unwrap()),
                "{form}"
            );
        }
        assert_eq!(
            classify("0012125550123"),
            Dialled::Number("+12125550123".parse().unwrap())
        );
        assert!(matches!(classify("1"), Dialled::Invalid(_)));
        assert!(matches!(classify(""), Dialled::Invalid(_)));
        assert!(matches!(classify("alice"), Dialled::Invalid(_)));
        assert!(matches!(classify("01632 960123"), Dialled::Invalid(_)));
    }
}
