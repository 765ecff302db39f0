//! SIP protocol core, sans-IO: messages, transactions, dialogs and digest
//! authentication. Nothing here opens a socket, spawns a task or reads a clock:
//! every time-dependent call takes `now`.
//!
//! # Messages
//!
//! * [`parse_datagram`] parses one UDP datagram; [`StreamFramer`] cuts messages
//!   (and RFC 5626 keep-alives) out of a TCP/TLS byte stream incrementally, in
//!   work linear in the bytes received ([`frame_stream`] is the one-shot form
//!   for a whole buffer), and [`parse_stream_message`] parses one cut message.
//!   All take [`Limits`].
//! * A parsed [`Request`] / [`Response`] keeps its headers in an ordered
//!   [`Headers`] list (unknown headers verbatim, folded lines unfolded). Through
//!   `Deref` every message offers raw access (`get`, `get_all`, `values`,
//!   `headers(name)`) and typed accessors (`vias`, `top_via`, `from_addr`,
//!   `to_addr`, `call_id`, `cseq`, `contacts`, `max_forwards`, `expires`,
//!   `content_length`, `content_type`, `routes`, `record_routes`, `allow`,
//!   `supported`, `require`, `user_agent`). Authorization-style headers are read
//!   raw with `headers("Authorization")`.
//! * Parsing validates what RFC 3261 / RFC 4475 require; a failure is a
//!   [`ParseError`] whose [`ParseError::status_code`] is the answer to send, and
//!   [`error_response`] builds that answer from the raw bytes.
//! * [`Request::response`] / [`Request::response_tagged`] build responses per
//!   RFC 3261 §8.2.6; `to_bytes` serializes with canonical header names and a
//!   correct Content-Length.

pub mod auth;
pub mod guard;
pub mod transaction;

mod error;
mod framing;
mod headers;
mod message;
mod parse;
mod received;
mod syntax;
mod typed;
mod uri;
mod via;

pub use error::ParseError;
pub use framing::{Frame, Framing, StreamFramer, frame_stream, is_keepalive};
pub use headers::{Headers, canonical_name};
pub use message::{Message, Method, Request, Response, StatusCode, Version};
pub use parse::{Limits, check_mandatory, error_response, parse_datagram, parse_stream_message};
pub use syntax::Params;
pub use typed::{CSeq, Contacts, NameAddr};
pub use uri::{Scheme, Uri, UriRef, unescape};
pub use via::{MAGIC_COOKIE, Via};
