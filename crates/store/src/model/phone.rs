//! `E164`: a valid public telephone number in E.164 form, parsed with the `phonenumber` crate
//! (default region GB, so UK national forms such as `020 7946 0018` are accepted).

use std::fmt;
use std::str::FromStr;

use phonenumber::{Mode, PhoneNumber, Type, country, metadata::DATABASE};
use serde::{Deserialize, Serialize};

use super::{NumberType, ParseError};

/// A valid telephone number, kept as its E.164 text (`+442079460018`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

const EXPECTED: &str = "expected a UK number such as 020 7946 0018 or 07400 123456, \
                        or an international number starting with + or 00";

fn invalid(input: &str, why: &str) -> ParseError {
    ParseError::new(
        "e164",
        format!("{input:?} is not a valid phone number ({why}): {EXPECTED}"),
    )
}

fn parse_phone(input: &str) -> Result<PhoneNumber, ParseError> {
    let t = input.trim();
    if t.is_empty() {
        return Err(invalid(input, "it is empty"));
    }
    if t.len() > 40 {
        return Err(invalid(input, "it is too long"));
    }
    if let Some(c) = t
        .chars()
        .find(|c| !(c.is_ascii_digit() || " +()-./".contains(*c)))
    {
        return Err(invalid(input, &format!("unexpected character {c:?}")));
    }
    if t.chars().filter(|c| c.is_ascii_digit()).count() < 3 {
        return Err(invalid(input, "too few digits"));
    }
    // "+44 (0)20 ..." is the usual UK way to show the trunk prefix next to the country code; it
    // is dropped only there (right after an international prefix and country code).
    let cleaned = match t.find("(0)") {
        Some(i)
            if (t.starts_with('+') || t.starts_with("00"))
                && t[..i]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '+' || c == ' ') =>
        {
            format!("{}{}", &t[..i], &t[i + 3..])
        }
        _ => t.to_owned(),
    };
    let number = phonenumber::parse(Some(country::GB), &cleaned)
        .map_err(|_| invalid(input, "it cannot be read as a phone number"))?;
    if number.extension().is_some() {
        return Err(invalid(input, "extensions are not allowed"));
    }
    if !number.is_valid() {
        return Err(invalid(input, "no such number range in the numbering plan"));
    }
    Ok(number)
}

impl E164 {
    /// The E.164 text, e.g. `+442079460018`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the leading `+` (what goes in a SIP URI user part towards most trunks).
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// True for +44 numbers.
    pub fn is_uk(&self) -> bool {
        self.0.starts_with("+44")
    }

    fn reparse(&self) -> Option<PhoneNumber> {
        phonenumber::parse(None, &self.0).ok()
    }

    /// The kind of number according to the numbering plan metadata.
    pub fn number_type(&self) -> NumberType {
        let Some(n) = self.reparse() else {
            return NumberType::Other;
        };
        match n.number_type(&DATABASE) {
            Type::FixedLine | Type::FixedLineOrMobile => NumberType::Geographic,
            Type::Mobile => NumberType::Mobile,
            Type::TollFree => NumberType::Freephone,
            Type::PremiumRate => NumberType::Premium,
            Type::SharedCost | Type::StandardRate => NumberType::NonGeographic,
            Type::PersonalNumber => NumberType::Personal,
            Type::Uan => NumberType::Uan,
            Type::Voip => NumberType::Voip,
            _ => NumberType::Other,
        }
    }

    /// Human form: national format for UK numbers (`020 7946 0018`), international otherwise.
    pub fn display(&self) -> String {
        match self.reparse() {
            Some(n) if self.is_uk() => n.format().mode(Mode::National).to_string(),
            Some(n) => n.format().mode(Mode::International).to_string(),
            None => self.0.clone(),
        }
    }

    /// The number `offset` above this one, if it is still a valid number (used for ranges).
    pub fn offset(&self, offset: u64) -> Option<E164> {
        let n: u64 = self.digits().parse().ok()?;
        let next = n.checked_add(offset)?;
        let text = format!("+{next}");
        // The country code stays the same only if the length does.
        if text.len() != self.0.len() {
            return None;
        }
        text.parse().ok()
    }
}

impl FromStr for E164 {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let n = parse_phone(s)?;
        Ok(E164(n.format().mode(Mode::E164).to_string()))
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for E164 {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl TryFrom<&str> for E164 {
    type Error = ParseError;
    fn try_from(s: &str) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<E164> for String {
    fn from(e: E164) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uk_forms() {
        let table = [
            ("020 7946 0018", "+442079460018", NumberType::Geographic),
            (
                "+44 (0)20 7946 0018",
                "+442079460018",
                NumberType::Geographic,
            ),
            ("0044 20 7946 0018", "+442079460018", NumberType::Geographic),
            ("+44 20 7946 0018", "+442079460018", NumberType::Geographic),
            ("(020) 7946-0018", "+442079460018", NumberType::Geographic),
            ("07400 123456", "+447400123456", NumberType::Mobile),
            ("+44 113 496 0000", "+441134960000", NumberType::Geographic),
            ("0113 496 0999", "+441134960999", NumberType::Geographic),
            ("0800 123 4567", "+448001234567", NumberType::Freephone),
            ("+1 212 555 0123", "+12125550123", NumberType::Geographic),
        ];
        for (input, e164, kind) in table {
            let n: E164 = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(n.as_str(), e164, "{input}");
            assert_eq!(n.number_type(), kind, "{input}");
        }
        let n: E164 = "+442079460018".parse().unwrap();
        assert_eq!(n.display(), "020 7946 0018");
        assert_eq!(n.digits(), "442079460018");
    }

    #[test]
    fn rejects_invalid_with_a_message_quoting_the_input() {
        let table = [
            ("", "empty"),
            ("01632 960123", "numbering plan"),
            ("07700 900123", "numbering plan"),
            ("020 7946", "numbering plan"),
            ("hello", "unexpected character"),
            ("0800 FLOWERS", "unexpected character"),
            ("12", "too few digits"),
            ("+44 20 7946 0018 ext 12", "unexpected character"),
            ("020 7946 (0)0018", "numbering plan"),
        ];
        for (input, why) in table {
            let e = input.parse::<E164>().expect_err(input);
            assert_eq!(e.field, "e164");
            assert!(e.message.contains(&format!("{input:?}")), "{input}: {e}");
            assert!(e.message.contains(why), "{input}: {e}");
            assert!(e.message.contains("expected a UK number"), "{input}: {e}");
        }
    }

    #[test]
    fn offsets_stay_in_range() {
        let n: E164 = "+441134960000".parse().unwrap();
        assert_eq!(n.offset(5).unwrap().as_str(), "+441134960005");
        assert_eq!(n.offset(0).unwrap(), n);
    }
}
