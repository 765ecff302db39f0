//! SIP protocol core, sans-IO: messages, transactions, dialogs and digest
//! authentication. Nothing here opens a socket, spawns a task or reads a clock:
//! every time-dependent call takes `now`.
pub mod auth;
pub mod guard;

mod error;
mod headers;
mod message;
mod parse;
mod syntax;
mod typed;
mod uri;

pub use error::ParseError;
pub use headers::{Headers, canonical_name};
pub use message::{Message, Method, Request, Response, StatusCode, Version};
pub use parse::{
    Framing, Limits, check_mandatory, error_response, frame_stream, parse_datagram,
    parse_stream_message,
};
pub use syntax::Params;
pub use typed::{CSeq, Contacts, MAGIC_COOKIE, NameAddr, Via};
pub use uri::{Scheme, Uri, UriRef, unescape};
