//! SIP transports: flows, the outbound handle, and the UDP and TCP listeners.
//!
//! A [`Flow`] names where a message came from (transport, local address, remote address and,
//! for connection-oriented transports, the connection). Anything that must answer or later
//! reach a peer keeps the flow and sends through the cloneable [`Outbound`] handle.
//!
//! The transport boundary, for TLS and WebSocket to come:
//! * inbound, a listener hands each complete message (or datagram) with its [`Flow`] to an
//!   `Inbound` sink; a stream transport also answers RFC 5626 keep-alives itself;
//! * outbound, a connection-oriented transport registers a writer channel for each connection
//!   in the [`ConnTable`] and gets a [`ConnId`]; [`Outbound::send`] then routes bytes for a flow
//!   to that channel. The writer task owns the socket (TCP today; TLS or a WebSocket framer
//!   later), so nothing else changes when a transport is added.

mod nat;
pub(crate) mod tcp;
pub(crate) mod udp;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub use nat::{ResponseTarget, apply_rport_received};

/// The SIP transports. Only UDP and TCP have listeners so far; TLS and WebSocket (RFC 7118)
/// will register their connections in the same [`ConnTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl TransportKind {
    /// As written in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
            TransportKind::Ws => "WS",
            TransportKind::Wss => "WSS",
        }
    }

    /// Connection-oriented (responses go back on the connection).
    pub fn is_stream(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    pub fn to_store(self) -> store::Transport {
        match self {
            TransportKind::Udp => store::Transport::Udp,
            TransportKind::Tcp => store::Transport::Tcp,
            TransportKind::Tls => store::Transport::Tls,
            TransportKind::Ws => store::Transport::Ws,
            TransportKind::Wss => store::Transport::Wss,
        }
    }

    pub fn from_store(t: store::Transport) -> Self {
        match t {
            store::Transport::Udp => TransportKind::Udp,
            store::Transport::Tcp => TransportKind::Tcp,
            store::Transport::Tls => TransportKind::Tls,
            store::Transport::Ws => TransportKind::Ws,
            store::Transport::Wss => TransportKind::Wss,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_name())
    }
}

/// One accepted connection, unique for the life of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where a message came from, and so how to answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    pub kind: TransportKind,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Set for connection-oriented transports; `None` for UDP, and for bindings loaded from the
    /// directory after a restart (their connection is gone).
    pub conn: Option<ConnId>,
}

impl Flow {
    pub fn udp(local: SocketAddr, remote: SocketAddr) -> Self {
        Flow {
            kind: TransportKind::Udp,
            local,
            remote,
            conn: None,
        }
    }
}

/// Why bytes could not be sent on a flow.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the connection is gone")]
    ConnectionGone,
    #[error("the connection's send queue is full")]
    QueueFull,
    #[error("no {0} transport is running")]
    NoTransport(TransportKind),
    #[error("send failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Whether a stream listener takes a new connection from a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectionPolicy {
    /// Close it at once (a banned source).
    Refuse,
    /// Take it, within the per-IP connection limit.
    Limited,
    /// Take it without a per-IP limit (an exempt source: a trunk, an SBC).
    Unlimited,
}

/// What a listener hands complete inbound messages to.
pub(crate) trait Inbound: Send + Sync + 'static {
    /// Asked at accept, before anything is read from a new connection.
    fn connection_policy(&self, _remote: SocketAddr) -> ConnectionPolicy {
        ConnectionPolicy::Limited
    }
    /// One UDP datagram (not yet parsed).
    fn on_datagram(&self, flow: Flow, bytes: &[u8]);
    /// One message framed from a stream (`Content-Length` framing already checked).
    fn on_stream_message(&self, flow: Flow, bytes: &[u8]);
    /// An outbound connection to `remote` could not be made; what was queued
    /// for it is gone.
    fn connect_failed(&self, _kind: TransportKind, _remote: SocketAddr) {}
}

struct ConnEntry {
    kind: TransportKind,
    remote: SocketAddr,
    tx: mpsc::Sender<Bytes>,
}

/// The live connections of all connection-oriented transports, by [`ConnId`].
#[derive(Default)]
pub struct ConnTable {
    next: AtomicU64,
    conns: Mutex<Conns>,
}

/// The connections, and how many each source (IPv6: each /64) holds.
#[derive(Default)]
struct Conns {
    by_id: HashMap<ConnId, ConnEntry>,
    per_source: HashMap<IpAddr, usize>,
}

impl Conns {
    fn len(&self) -> usize {
        self.by_id.len()
    }

    fn insert(&mut self, id: ConnId, entry: ConnEntry) {
        *self
            .per_source
            .entry(sip::guard::source_group(entry.remote.ip()))
            .or_default() += 1;
        self.by_id.insert(id, entry);
    }

    fn remove(&mut self, id: &ConnId) -> Option<ConnEntry> {
        let e = self.by_id.remove(id)?;
        let key = sip::guard::source_group(e.remote.ip());
        if let Some(n) = self.per_source.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_source.remove(&key);
            }
        }
        Some(e)
    }

    fn get(&self, id: &ConnId) -> Option<&ConnEntry> {
        self.by_id.get(id)
    }

    fn iter(&self) -> impl Iterator<Item = (&ConnId, &ConnEntry)> {
        self.by_id.iter()
    }
}

impl ConnTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Conns> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an accepted connection's writer channel, unless `max` connections are open
    /// (`Err("too_many")`) or its source (IPv6: its /64) holds `max_per_source` already
    /// (`Err("too_many_from_source")`).
    pub(crate) fn register_inbound(
        &self,
        kind: TransportKind,
        remote: SocketAddr,
        tx: mpsc::Sender<Bytes>,
        max: usize,
        max_per_source: usize,
    ) -> Result<ConnId, &'static str> {
        let mut conns = self.lock();
        if conns.len() >= max {
            return Err("too_many");
        }
        let key = sip::guard::source_group(remote.ip());
        if conns.per_source.get(&key).copied().unwrap_or(0) >= max_per_source {
            return Err("too_many_from_source");
        }
        let id = ConnId(self.next.fetch_add(1, Ordering::Relaxed) + 1);
        conns.insert(id, ConnEntry { kind, remote, tx });
        Ok(id)
    }

    /// Open connections from `ip`'s source group (IPv6: its /64).
    pub fn from_source(&self, ip: IpAddr) -> usize {
        self.lock()
            .per_source
            .get(&sip::guard::source_group(ip))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn remove(&self, id: ConnId) {
        self.lock().remove(&id);
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn send(&self, id: ConnId, bytes: Bytes) -> Result<(), SendError> {
        let tx = match self.lock().get(&id) {
            Some(e) => e.tx.clone(),
            None => return Err(SendError::ConnectionGone),
        };
        tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => SendError::ConnectionGone,
        })
    }

    /// The open connection of `kind` to `remote`, if any (the newest one).
    pub fn find(&self, kind: TransportKind, remote: SocketAddr) -> Option<ConnId> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.kind == kind && e.remote == remote)
            .map(|(id, _)| *id)
            .max()
    }
}

/// A cloneable handle to send bytes on a flow: the shared UDP sockets, or the writer task of a
/// connection.
#[derive(Clone)]
pub struct Outbound {
    inner: Arc<OutboundInner>,
}

struct OutboundInner {
    udp: Vec<Arc<UdpSocket>>,
    conns: Arc<ConnTable>,
    /// Opens TCP connections for sends that find none (trunks over TCP).
    dialer: std::sync::OnceLock<tcp::TcpDialer>,
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound")
            .field("udp_sockets", &self.inner.udp.len())
            .field("connections", &self.inner.conns.len())
            .finish()
    }
}

impl Outbound {
    pub(crate) fn new(udp: Vec<Arc<UdpSocket>>, conns: Arc<ConnTable>) -> Self {
        Outbound {
            inner: Arc::new(OutboundInner {
                udp,
                conns,
                dialer: std::sync::OnceLock::new(),
            }),
        }
    }

    /// From now on, a TCP send that finds no connection to its destination
    /// opens one (see [`tcp::TcpDialer`]). Set once; later calls are ignored.
    pub(crate) fn enable_tcp_dial(&self, dialer: tcp::TcpDialer) {
        let _ = self.inner.dialer.set(dialer);
    }

    /// The connection table (for the calls engine: is the phone's connection still there?).
    pub fn connections(&self) -> &ConnTable {
        &self.inner.conns
    }

    /// Sends on the flow: UDP to `flow.remote`; a stream transport on `flow.conn` (an error if
    /// that connection is gone: the caller may then try the contact address), or without one on
    /// the newest connection to `flow.remote`; TCP with none opens one when dialling is enabled.
    pub fn send(&self, flow: &Flow, bytes: Bytes) -> Result<(), SendError> {
        match flow.kind {
            TransportKind::Udp => self.send_udp(flow.remote, bytes),
            kind => match flow.conn {
                Some(id) => self.inner.conns.send(id, bytes),
                None => match self.inner.conns.find(kind, flow.remote) {
                    Some(id) => self.inner.conns.send(id, bytes),
                    None if kind == TransportKind::Tcp => match self.inner.dialer.get() {
                        Some(d) => d.dial(&self.inner.conns, flow.remote, bytes),
                        None => Err(SendError::ConnectionGone),
                    },
                    None => Err(SendError::ConnectionGone),
                },
            },
        }
    }

    /// Sends one datagram from the shared UDP socket. Never waits: if the socket buffer is full
    /// the send finishes on a spawned task.
    pub fn send_udp(&self, to: SocketAddr, bytes: Bytes) -> Result<(), SendError> {
        let n = self.inner.udp.len();
        let Some(sock) = self.inner.udp.get(to.port() as usize % n.max(1)) else {
            return Err(SendError::NoTransport(TransportKind::Udp));
        };
        match sock.try_send_to(&bytes, to) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let sock = Arc::clone(sock);
                tokio::spawn(async move {
                    let _ = sock.send_to(&bytes, to).await;
                });
                Ok(())
            }
            Err(e) => Err(SendError::Io(e)),
        }
    }
}
