//! Domain values, parsed once at the edge, and the records the directory stores.

mod ids;
mod phone;
mod records;
mod values;

use std::fmt;

pub use ids::*;
pub use phone::E164;
pub use records::*;
pub use values::*;

/// Why a piece of input is not a valid domain value: the field it belongs to and a message that
/// quotes the input and says what is expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub field: &'static str,
    pub message: String,
}

impl ParseError {
    pub fn new(field: &'static str, message: String) -> Self {
        Self { field, message }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// A business's time zone must be an IANA name the bundled tz database knows
/// ("Europe/London", "America/New_York"); a fixed offset or an abbreviation ("BST") is refused,
/// because it would not follow the clock changes.
pub fn check_time_zone(name: &str) -> Result<(), crate::StoreError> {
    let known = !name.is_empty()
        && name.len() <= 64
        && name.contains('/')
        && jiff::tz::db().get(name).is_ok();
    if known {
        Ok(())
    } else {
        Err(crate::StoreError::invalid(
            "time_zone",
            format!("\"{name}\" is not a time zone; use a name such as Europe/London"),
        ))
    }
}

#[cfg(test)]
mod time_zone_tests {
    use super::check_time_zone;

    #[test]
    fn iana_names_pass_and_others_are_refused() {
        for ok in ["Europe/London", "Europe/Dublin", "America/New_York"] {
            assert!(check_time_zone(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "BST",
            "UTC+1",
            "Europe/Londres",
            "London",
            "../etc/passwd",
        ] {
            let e = check_time_zone(bad).unwrap_err();
            assert!(e.to_string().contains("Europe/London"), "{bad}: {e}");
        }
    }
}
