//! The UDP listener: `n` sockets bound to one address with SO_REUSEPORT (the kernel spreads
//! peers across them by 4-tuple hash), each drained by its own task with one reused buffer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::{Flow, Inbound};

/// Largest datagram we read; anything longer is truncated by the kernel and fails to parse.
const RECV_BUF: usize = 65_535;

/// Binds `n` (at least 1) UDP sockets to `addr`. With port 0 the first socket picks the port
/// and the others join it. The sockets are non-blocking, not yet registered with a runtime.
pub(crate) fn bind_std(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::UdpSocket>> {
    let mut out = Vec::with_capacity(n.max(1));
    let mut at = addr;
    for _ in 0..n.max(1) {
        let s = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
        #[cfg(unix)]
        if n > 1 {
            s.set_reuse_port(true)?;
        }
        // Bursts of thousands of REGISTERs must not overflow the default ~200 kB buffer.
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        s.set_nonblocking(true)?;
        s.bind(&at.into())?;
        if let Some(local) = s.local_addr()?.as_socket() {
            at = local;
        }
        out.push(s.into());
    }
    Ok(out)
}

/// Receives datagrams until `stop` turns true, handing each to `sink` synchronously.
pub(crate) async fn run(
    sock: Arc<UdpSocket>,
    sink: Arc<dyn Inbound>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(local) = sock.local_addr() else {
        return;
    };
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        // drain everything the socket has before going back to the reactor
        loop {
            match sock.try_recv_from(&mut buf) {
                Ok((n, from)) => {
                    if let Some(data) = buf.get(..n) {
                        sink.on_datagram(Flow::udp(local, from), data);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors of earlier sends (ECONNREFUSED...) surface here: ignore them
                Err(_) => continue,
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            r = sock.readable() => {
                if r.is_err() {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}
