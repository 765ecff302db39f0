//! UDP: one socket per source IP, connected to the server so the kernel
//! skips a route lookup per send and filters foreign datagrams.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use tokio::net::UdpSocket;

use super::{Sink, Wire};

pub struct UdpNet {
    sockets: Vec<Rc<UdpSocket>>,
    /// The same sockets (dup'ed descriptors) for sending: a plain
    /// non-blocking `send`, without tokio's readiness bookkeeping (which
    /// answers WouldBlock until the reactor has seen the socket once).
    senders: Vec<std::net::UdpSocket>,
    pub local: Vec<SocketAddr>,
}

impl UdpNet {
    pub fn bind(sources: &[IpAddr], server: SocketAddr) -> io::Result<Self> {
        let mut sockets = Vec::with_capacity(sources.len());
        let mut local = Vec::with_capacity(sources.len());
        let mut senders = Vec::with_capacity(sources.len());
        for ip in sources {
            let std_sock = std::net::UdpSocket::bind(SocketAddr::new(*ip, 0)).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind UDP source {ip}: {e}"))
            })?;
            std_sock.connect(server)?;
            std_sock.set_nonblocking(true)?;
            local.push(std_sock.local_addr()?);
            senders.push(std_sock.try_clone()?);
            sockets.push(Rc::new(UdpSocket::from_std(std_sock)?));
        }
        Ok(UdpNet {
            sockets,
            senders,
            local,
        })
    }

    pub fn start(self, sink: Rc<dyn Sink>) -> (Rc<dyn Wire>, Vec<tokio::task::JoinHandle<()>>) {
        let mut tasks = Vec::with_capacity(self.sockets.len());
        for (i, sock) in self.sockets.iter().enumerate() {
            let sock = Rc::clone(sock);
            let sink = Rc::clone(&sink);
            tasks.push(tokio::task::spawn_local(async move {
                let mut buf = vec![0u8; 65_536];
                loop {
                    match sock.recv(&mut buf).await {
                        Ok(n) => sink.deliver(i, buf.get(..n).unwrap_or(&[])),
                        // ICMP port unreachable surfaces as ECONNREFUSED on a
                        // connected socket: the retransmission timer copes.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                        Err(_) => tokio::task::yield_now().await,
                    }
                }
            }));
        }
        (Rc::new(UdpWire(self.senders)), tasks)
    }
}

struct UdpWire(Vec<std::net::UdpSocket>);

impl Wire for UdpWire {
    fn send(&self, source: usize, bytes: &[u8]) -> io::Result<()> {
        let sock = self
            .0
            .get(source)
            .ok_or_else(|| io::Error::other("no such source"))?;
        sock.send(bytes).map(|_| ())
    }
}
