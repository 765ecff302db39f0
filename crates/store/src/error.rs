//! The store's error type. Raw database errors never leave the crate: constraint violations are
//! mapped to the field a user has to fix, connection trouble to `Unavailable`.

use crate::model::ParseError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or belongs to another tenant.
    #[error("{entity} not found")]
    NotFound { entity: &'static str },

    /// A uniqueness rule: the value is taken (e.g. field "number" for a duplicate extension).
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },

    /// The input breaks a rule (a CHECK, a reference to something that does not exist or belongs
    /// to another tenant, a value out of range).
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },

    /// A bulk operation failed on one row; nothing was written. `index` is 0-based.
    #[error("row {} (0-based index {index}): {error}", index + 1)]
    Row {
        index: usize,
        error: Box<StoreError>,
    },

    /// The database cannot be reached (connection refused, pool timeout, I/O). Worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),

    /// Anything else: a bug or a corrupt row. Log it; do not show it to users.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn not_found(entity: &'static str) -> Self {
        StoreError::NotFound { entity }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn conflict(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            field,
            message: message.into(),
        }
    }

    /// The field a user has to fix, for `Conflict`, `Invalid` and `Row`.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            StoreError::Conflict { field, .. } | StoreError::Invalid { field, .. } => Some(field),
            StoreError::Row { error, .. } => error.field(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    #[allow(dead_code)] // used by the bulk operations of the backends
    pub(crate) fn at_row(self, index: usize) -> Self {
        match self {
            e @ (StoreError::Unavailable(_) | StoreError::Internal(_)) => e,
            e => StoreError::Row {
                index,
                error: Box::new(e),
            },
        }
    }
}

impl From<ParseError> for StoreError {
    fn from(e: ParseError) -> Self {
        StoreError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
