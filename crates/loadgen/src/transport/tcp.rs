//! TCP: one connection per source IP, Content-Length framing with
//! `sip::frame_stream`. Sends append to a per-connection queue that a writer
//! task flushes, so a burst of requests becomes one `write`.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;

use super::{Sink, Wire};

/// Bytes queued on one connection above which sends fail (the server is not
/// reading; failing is better than growing without bound).
const MAX_QUEUED: usize = 4 << 20;

struct Conn {
    out: RefCell<Vec<u8>>,
    ready: Notify,
    broken: Cell<bool>,
}

pub struct TcpNet {
    halves: Vec<(OwnedReadHalf, OwnedWriteHalf)>,
    pub local: Vec<SocketAddr>,
}

impl TcpNet {
    pub async fn connect(sources: &[IpAddr], server: SocketAddr) -> io::Result<Self> {
        let mut halves = Vec::with_capacity(sources.len());
        let mut local = Vec::with_capacity(sources.len());
        for ip in sources {
            let sock = match ip {
                IpAddr::V4(_) => TcpSocket::new_v4()?,
                IpAddr::V6(_) => TcpSocket::new_v6()?,
            };
            sock.bind(SocketAddr::new(*ip, 0)).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind TCP source {ip}: {e}"))
            })?;
            let stream =
                tokio::time::timeout(std::time::Duration::from_secs(5), sock.connect(server))
                    .await
                    .map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("connecting to {server} from {ip} timed out"),
                        )
                    })?
                    .map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("cannot connect to {server} from {ip}: {e}"),
                        )
                    })?;
            stream.set_nodelay(true)?;
            local.push(stream.local_addr()?);
            halves.push(stream.into_split());
        }
        Ok(TcpNet { halves, local })
    }

    pub fn start(self, sink: Rc<dyn Sink>) -> (Rc<dyn Wire>, Vec<tokio::task::JoinHandle<()>>) {
        let mut conns = Vec::with_capacity(self.halves.len());
        let mut tasks = Vec::with_capacity(self.halves.len() * 2);
        for (i, (mut rd, mut wr)) in self.halves.into_iter().enumerate() {
            let conn = Rc::new(Conn {
                out: RefCell::new(Vec::with_capacity(16 * 1024)),
                ready: Notify::new(),
                broken: Cell::new(false),
            });
            conns.push(Rc::clone(&conn));
            // writer
            let c = Rc::clone(&conn);
            let s = Rc::clone(&sink);
            tasks.push(tokio::task::spawn_local(async move {
                let mut spare = Vec::with_capacity(16 * 1024);
                loop {
                    c.ready.notified().await;
                    std::mem::swap(&mut spare, &mut *c.out.borrow_mut());
                    if spare.is_empty() {
                        continue;
                    }
                    if wr.write_all(&spare).await.is_err() {
                        c.broken.set(true);
                        s.broken(i);
                        return;
                    }
                    spare.clear();
                }
            }));
            // reader
            let c = conn;
            let s = Rc::clone(&sink);
            tasks.push(tokio::task::spawn_local(async move {
                let limits = sip::Limits::default();
                let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
                loop {
                    match rd.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let mut at = 0;
                    loop {
                        let rest = buf.get(at..).unwrap_or(&[]);
                        match sip::frame_stream(rest, &limits) {
                            sip::Framing::Complete(n) => {
                                s.deliver(i, rest.get(..n).unwrap_or(&[]));
                                at += n;
                            }
                            sip::Framing::Ping(n) => {
                                // RFC 5626: answer a CRLFCRLF ping with a CRLF pong
                                c.out.borrow_mut().extend_from_slice(b"\r\n");
                                c.ready.notify_one();
                                at += n;
                            }
                            sip::Framing::Pong(n) => at += n,
                            sip::Framing::Incomplete => break,
                            sip::Framing::Error(_) => {
                                s.malformed(i);
                                c.broken.set(true);
                                s.broken(i);
                                return;
                            }
                        }
                    }
                    buf.drain(..at);
                }
                c.broken.set(true);
                s.broken(i);
            }));
        }
        (Rc::new(TcpWire(conns)), tasks)
    }
}

struct TcpWire(Vec<Rc<Conn>>);

impl Wire for TcpWire {
    fn send(&self, source: usize, bytes: &[u8]) -> io::Result<()> {
        let c = self
            .0
            .get(source)
            .ok_or_else(|| io::Error::other("no such source"))?;
        if c.broken.get() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection closed",
            ));
        }
        let mut out = c.out.borrow_mut();
        if out.len() + bytes.len() > MAX_QUEUED {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "send queue full"));
        }
        let was_empty = out.is_empty();
        out.extend_from_slice(bytes);
        if was_empty {
            c.ready.notify_one();
        }
        Ok(())
    }
}
