//! What an outside number costs, by the numbering plan (the `phonenumber`
//! crate's metadata), not by its prefix: a `+44` number is domestic only when
//! its region is `GB` (Jersey, Guernsey and the Isle of Man share +44 but
//! are separate regions, billed as international), and personal (070),
//! pager (076), UAN, shared-cost, voicemail-access and unclassifiable numbers
//! are special-rate numbers a business must allow (toll fraud's favourites).

use phonenumber::metadata::DATABASE;
use phonenumber::{Type, country};
use store::E164;

/// The charging class of an outside number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tariff {
    /// A UK (region GB) geographic, mobile, freephone, VoIP or
    /// standard-rate number.
    Domestic,
    /// Premium rate (09…, and whatever the metadata types so).
    Premium,
    /// Personal, pager, UAN, shared-cost, voicemail access or unknown type:
    /// the name of the kind, for the refusal.
    Special(&'static str),
    /// Any other region, the Crown Dependencies included.
    International,
}

/// Classifies `number` (see the module documentation).
pub fn tariff(number: &E164) -> Tariff {
    let Ok(n) = phonenumber::parse(None, number.as_str()) else {
        return Tariff::Special("unclassifiable");
    };
    let kind = n.number_type(&DATABASE);
    match kind {
        Type::PremiumRate => return Tariff::Premium,
        Type::PersonalNumber => return Tariff::Special("personal"),
        Type::Pager => return Tariff::Special("pager"),
        Type::Uan => return Tariff::Special("UAN"),
        Type::SharedCost => return Tariff::Special("shared-cost"),
        Type::Voicemail => return Tariff::Special("voicemail access"),
        Type::Unknown => return Tariff::Special("unknown-type"),
        _ => {}
    }
    if n.country().id() == Some(country::Id::GB) {
        Tariff::Domestic
    } else {
        Tariff::International
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Tariff {
        tariff(&s.parse().unwrap())
    }

    #[test]
    fn uk_ness_is_the_region_not_the_prefix() {
        assert_eq!(t("020 7946 0018"), Tariff::Domestic);
        assert_eq!(t("07400 123456"), Tariff::Domestic);
        assert_eq!(t("0800 123 4567"), Tariff::Domestic);
        // Guernsey, Jersey, Isle of Man: +44, but not GB.
        assert_eq!(t("+44 1481 256789"), Tariff::International);
        assert_eq!(t("+44 1534 456789"), Tariff::International);
        assert_eq!(t("+44 1624 756789"), Tariff::International);
        assert_eq!(t("+44 7781 123456"), Tariff::International);
        assert_eq!(t("+1 212 555 0123"), Tariff::International);
    }

    #[test]
    fn special_rate_kinds_are_told_apart() {
        assert_eq!(t("09098790000"), Tariff::Premium);
        assert_eq!(t("070 1234 5678"), Tariff::Special("personal"));
        assert!(matches!(t("076 4012 3456"), Tariff::Special("pager")));
    }
}
