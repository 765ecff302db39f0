//! Parse errors for the SIP message layer.

/// Why a SIP message (or one of its headers) was rejected.
///
/// Every variant carries a short human reason through `Display`; use
/// [`ParseError::status_code`] to pick the SIP status a server should answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message exceeds the size limit of {limit} bytes")]
    MessageTooLarge { limit: usize },
    #[error("more than {limit} header fields")]
    TooManyHeaders { limit: usize },
    #[error("more than {limit} Via values")]
    TooManyVias { limit: usize },
    #[error("header line longer than {limit} bytes")]
    HeaderLineTooLong { limit: usize },
    #[error("incomplete message: {0}")]
    Incomplete(&'static str),
    #[error("missing Content-Length on a stream transport")]
    MissingContentLength,
    #[error("Content-Length {claimed} exceeds the {available} body bytes received")]
    BodyTooShort { claimed: u64, available: usize },
    #[error("unsupported SIP version {0:?}")]
    UnsupportedVersion(String),
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    #[error("malformed {header} header: {reason}")]
    Header {
        header: &'static str,
        reason: &'static str,
    },
    #[error("malformed header line: {0}")]
    HeaderLine(&'static str),
    #[error("more than one {0} header")]
    Duplicate(&'static str),
    #[error("missing mandatory {0} header")]
    Missing(&'static str),
    #[error("malformed URI: {0}")]
    Uri(&'static str),
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    #[error("header section is not valid UTF-8")]
    NotUtf8,
}

impl ParseError {
    /// The status a server should answer a request that failed with this error.
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::UnsupportedVersion(_) => 505,
            ParseError::MessageTooLarge { .. } => 513,
            _ => 400,
        }
    }

    pub(crate) fn header(header: &'static str, reason: &'static str) -> Self {
        ParseError::Header { header, reason }
    }
}
