//! Transports shared by every scenario: how requests leave (a [`Wire`]) and
//! how responses come back (reader tasks feeding a [`Sink`]).
//!
//! Everything runs on one thread (a `current_thread` runtime and a
//! `LocalSet`), so the generator stays far lighter than the server it
//! measures: sends are synchronous non-blocking calls made while a scenario
//! handles an event, and each source socket has one reader task.

pub mod tcp;
pub mod udp;

use std::io;
use std::net::SocketAddr;
use std::str::FromStr;

/// The SIP transport of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// As written in a Via sent-protocol (`SIP/2.0/UDP`).
    pub fn via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// As written in a URI `transport=` parameter and in reports.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    /// Reliable transports get no retransmissions (RFC 3261 §17.1.2.2).
    pub fn reliable(self) -> bool {
        self == Transport::Tcp
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            _ => Err(format!("unknown transport `{s}`; expected udp or tcp")),
        }
    }
}

/// Sends a request to the server from source number `source`. Never blocks:
/// UDP uses a non-blocking send, TCP appends to the connection's queue.
pub trait Wire {
    fn send(&self, source: usize, bytes: &[u8]) -> io::Result<()>;
}

/// Where reader tasks deliver what arrives.
pub trait Sink {
    /// One complete message: a datagram, or one framed off a stream.
    fn deliver(&self, source: usize, msg: &[u8]);
    /// Bytes that did not parse as SIP.
    fn malformed(&self, source: usize);
    /// A connection broke (reliable transports).
    fn broken(&self, source: usize);
}

/// The bound sources of a run: their local addresses (for Via and
/// Contact), the wire to send on, and the reader tasks to start.
pub struct Net {
    pub transport: Transport,
    pub local: Vec<SocketAddr>,
    inner: Inner,
}

enum Inner {
    Udp(udp::UdpNet),
    Tcp(tcp::TcpNet),
}

impl Net {
    /// Binds one socket (UDP) or opens one connection (TCP) per source IP.
    pub async fn open(
        transport: Transport,
        sources: &[std::net::IpAddr],
        server: SocketAddr,
    ) -> io::Result<Net> {
        match transport {
            Transport::Udp => {
                let n = udp::UdpNet::bind(sources, server)?;
                Ok(Net {
                    transport,
                    local: n.local.clone(),
                    inner: Inner::Udp(n),
                })
            }
            Transport::Tcp => {
                let n = tcp::TcpNet::connect(sources, server).await?;
                Ok(Net {
                    transport,
                    local: n.local.clone(),
                    inner: Inner::Tcp(n),
                })
            }
        }
    }

    /// Starts the reader (and writer) tasks on the current `LocalSet`; returns
    /// the wire and the task handles (abort them to stop).
    pub fn start(
        self,
        sink: std::rc::Rc<dyn Sink>,
    ) -> (std::rc::Rc<dyn Wire>, Vec<tokio::task::JoinHandle<()>>) {
        match self.inner {
            Inner::Udp(n) => n.start(sink),
            Inner::Tcp(n) => n.start(sink),
        }
    }
}
