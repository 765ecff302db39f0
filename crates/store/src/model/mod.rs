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
