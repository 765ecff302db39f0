//! The SIP transaction layer (RFC 3261 §17, with the RFC 6026 Accepted states),
//! sans-IO.
//!
//! A [`TransactionLayer`] holds every live client and server transaction. It is
//! fed with inputs — [`receive`](TransactionLayer::receive),
//! [`send_request`](TransactionLayer::send_request),
//! [`send_response`](TransactionLayer::send_response),
//! [`cancel`](TransactionLayer::cancel),
//! [`transport_error`](TransactionLayer::transport_error) and
//! [`handle_timeout`](TransactionLayer::handle_timeout) — each with the current
//! time, and drained with [`poll_transmit`](TransactionLayer::poll_transmit),
//! [`poll_event`](TransactionLayer::poll_event) and
//! [`poll_timeout`](TransactionLayer::poll_timeout). It never reads a clock,
//! opens a socket or keeps global state, so tests drive it on a virtual clock.
//!
//! A driver owns one layer per SIP element and loops:
//!
//! 1. parse what a socket delivered and [`receive`](TransactionLayer::receive) it;
//! 2. drain [`poll_transmit`](TransactionLayer::poll_transmit) into the
//!    sockets (reporting failures with
//!    [`transport_error`](TransactionLayer::transport_error));
//! 3. drain [`poll_event`](TransactionLayer::poll_event) into the TU, which
//!    answers [`Event::Request`]s with
//!    [`send_response`](TransactionLayer::send_response), starts requests with
//!    [`send_request`](TransactionLayer::send_request) and cancels INVITEs
//!    with [`cancel`](TransactionLayer::cancel); ACKs for 2xx go out with
//!    [`send_stateless`](TransactionLayer::send_stateless);
//! 4. sleep until [`poll_timeout`](TransactionLayer::poll_timeout), then call
//!    [`handle_timeout`](TransactionLayer::handle_timeout).
//!
//! What the layer does not do: 2xx retransmission and ACK for 2xx (the TU's
//! job under RFC 6026), §18.2.2 `maddr` and DNS (the transport's), Via
//! `received`/`rport` stamping (the transport's, before `receive`).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sip::transaction::{Config, Event, Target, TransactionLayer, Transport};
//! use sip::{Method, Request, Uri};
//!
//! let mut layer = TransactionLayer::new(Config::default(), 7);
//! let t0 = Instant::now();
//! let mut req = Request::new(Method::Options, Uri::parse("sip:bob@127.0.0.1").unwrap());
//! req.headers.push("Via", "SIP/2.0/UDP 127.0.0.1:5070;rport"); // branch added by the layer
//! req.headers.push("From", "<sip:alice@127.0.0.1>;tag=a1");
//! req.headers.push("To", "<sip:bob@127.0.0.1>");
//! req.headers.push("Call-ID", "c1");
//! req.headers.push("CSeq", "1 OPTIONS");
//! let dest = Target::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap());
//! let key = layer.send_request(req, dest, t0).unwrap();
//! let first = layer.poll_transmit().unwrap(); // hand first.bytes to the UDP socket
//! assert_eq!(first.dest, dest);
//! // Nothing answers: Timer E retransmits at T1 = 500 ms ...
//! assert_eq!(layer.poll_timeout(), Some(t0 + Duration::from_millis(500)));
//! // ... and Timer F gives up at 64*T1.
//! let mut now = t0;
//! while let Some(at) = layer.poll_timeout() {
//!     now = at;
//!     layer.handle_timeout(now);
//!     while layer.poll_transmit().is_some() {}
//! }
//! assert_eq!(now, t0 + Duration::from_secs(32));
//! assert!(matches!(layer.poll_event(), Some(Event::Timeout { key: k, .. }) if k == key));
//! ```

mod build;
mod client;
mod key;
mod layer;
mod machine;
mod server;
mod timers;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

pub use build::{ack_for_non_2xx, cancel_for, response_target};
pub use key::{BranchGenerator, Role, TxKey};
pub use layer::TransactionLayer;
pub use timers::{Config, Timer};

use crate::ParseError;
use crate::message::{Request, Response};

/// The transport a message travels on. TCP, TLS, WS and WSS are reliable:
/// RFC 3261 §17 skips the retransmission timers (A, E, G) and zeroes the
/// wait timers (D, I, J, K) for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// The Via transport token (`UDP`, `TCP`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Maps a Via transport token, case-insensitively.
    pub fn from_via(token: &str) -> Option<Transport> {
        [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(token))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message comes from or goes to: a transport and a socket address.
/// For connection-oriented transports the driver maps it to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Target {
    pub fn new(transport: Transport, addr: SocketAddr) -> Self {
        Target { transport, addr }
    }
}

/// Bytes for the driver to send. `key` names the transaction that sent them,
/// so a failed send can be reported with
/// [`TransactionLayer::transport_error`]; it is `None` for stateless sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub dest: Target,
    pub bytes: Arc<[u8]>,
    pub key: Option<TxKey>,
}

/// What the transaction layer tells its user (the UA core, proxy core or B2BUA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request that created a new server transaction. Answer it with
    /// [`TransactionLayer::send_response`]. For a CANCEL, `cancels` is the key
    /// of the live INVITE server transaction it targets (`None`: answer 481).
    Request {
        key: TxKey,
        request: Request,
        source: Target,
        cancels: Option<TxKey>,
    },
    /// A response for a client transaction: every provisional, the final
    /// response once, and (RFC 6026 Accepted) every further 2xx.
    Response { key: TxKey, response: Response },
    /// An ACK the layer does not absorb: an ACK for a 2xx (its own branch, so
    /// `invite` is `None`), or one matching an INVITE server transaction in
    /// the Accepted state (`invite` is that transaction's key).
    Ack {
        request: Request,
        source: Target,
        invite: Option<TxKey>,
    },
    /// A response matching no client transaction (a proxy forwards it
    /// statelessly; a UA core may use it for 2xx retransmissions).
    StrayResponse { response: Response, source: Target },
    /// Timer B, F or H fired, or the TU left a server transaction
    /// [`Timer::Unanswered`] (the transaction then terminates); or the
    /// optional proxy Timer C fired in Proceeding (the transaction stays; the
    /// core should [`cancel`](TransactionLayer::cancel) it).
    Timeout { key: TxKey, timer: Timer },
    /// The driver reported a failed send.
    TransportError { key: TxKey },
    /// The transaction is gone; its key no longer matches anything.
    Terminated { key: TxKey },
}

impl Event {
    /// The transaction the event is about, if any.
    pub fn key(&self) -> Option<&TxKey> {
        match self {
            Event::Request { key, .. }
            | Event::Response { key, .. }
            | Event::Timeout { key, .. }
            | Event::TransportError { key }
            | Event::Terminated { key } => Some(key),
            Event::Ack { invite, .. } => invite.as_ref(),
            Event::StrayResponse { .. } => None,
        }
    }
}

/// Transaction states (RFC 3261 §17 and RFC 6026). Terminated transactions
/// are removed, so they have no state to observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// A CANCEL waiting for the INVITE's first provisional response (§9.1).
    Pending,
    Calling,
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("message has no Via header")]
    MissingVia,
    #[error("message has no {0} header")]
    MissingHeader(&'static str),
    #[error("malformed message: {0}")]
    Malformed(#[from] ParseError),
    #[error("no such transaction")]
    UnknownTransaction,
    #[error("a transaction with this key already exists")]
    DuplicateTransaction,
    #[error("not allowed in the transaction's current state")]
    InvalidState,
    #[error("ACK is not sent through a transaction; use send_stateless")]
    AckNotTransactional,
    #[error("response from an address its request was not sent to; dropped")]
    ForeignSource,
    #[error("transaction table is full ({0} live transactions)")]
    TableFull(usize),
}
