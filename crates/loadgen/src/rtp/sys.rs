//! Batched UDP I/O for the media thread: `sendmmsg(2)` to many
//! destinations from one socket, `recvmmsg(2)` with the kernel's receive
//! timestamp (`SO_TIMESTAMPNS`) and drop counter (`SO_RXQ_OVFL`) per
//! datagram. Linux only; the only `unsafe` of the crate lives here.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::packet::PACKET;

/// Datagrams per system call.
pub const SEND_BATCH: usize = 16;
pub const RECV_BATCH: usize = 64;
/// Receive buffer per datagram: more than any RTP packet we expect.
const RECV_BUF: usize = 2048;
/// Control buffer per datagram (a timespec and a u32 cmsg, aligned).
const CTRL_WORDS: usize = 16;

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const v).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A non-blocking UDP socket bound to `addr` with kernel receive
/// timestamps and drop counting on, and buffers of `buf_bytes` asked for
/// (root may exceed `net.core.rmem_max` with the FORCE variants).
pub fn bind(addr: SocketAddr, buf_bytes: usize) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    let fd = s.as_raw_fd();
    let want = libc::c_int::try_from(buf_bytes).unwrap_or(libc::c_int::MAX);
    if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, want).is_err() {
        let _ = s.set_recv_buffer_size(buf_bytes);
    }
    if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, want).is_err() {
        let _ = s.set_send_buffer_size(buf_bytes);
    }
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)?;
    s.bind(&addr.into())?;
    Ok(s)
}

/// Up to [`SEND_BATCH`] packets waiting for one `sendmmsg`.
pub struct SendBatch {
    pkts: Box<[[u8; PACKET]; SEND_BATCH]>,
    dests: Vec<SockAddr>,
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl SendBatch {
    pub fn new() -> Self {
        SendBatch {
            pkts: Box::new([[0; PACKET]; SEND_BATCH]),
            dests: Vec::with_capacity(SEND_BATCH),
        }
    }

    pub fn len(&self) -> usize {
        self.dests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dests.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.dests.len() == SEND_BATCH
    }

    /// The buffer of the next packet; call [`SendBatch::commit`] after
    /// writing it. `None` when full.
    pub fn next_buf(&mut self) -> Option<&mut [u8; PACKET]> {
        self.pkts.get_mut(self.dests.len())
    }

    pub fn commit(&mut self, dest: SocketAddr) {
        if self.dests.len() < SEND_BATCH {
            self.dests.push(SockAddr::from(dest));
        }
    }

    /// Stamps every packet with `sent_ns` and sends the batch; returns how
    /// many the kernel took (the rest failed). The batch is empty after.
    pub fn flush(&mut self, sock: &Socket, sent_ns: u64) -> (u64, u64) {
        let n = self.dests.len();
        for p in self.pkts.iter_mut().take(n) {
            super::packet::stamp(p, sent_ns);
        }
        let mut iov: [libc::iovec; SEND_BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; SEND_BATCH];
        // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
        let mut hdrs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            iov[i].iov_base = self.pkts[i].as_mut_ptr().cast();
            iov[i].iov_len = PACKET;
            hdrs[i].msg_hdr.msg_name = self.dests[i].as_ptr() as *mut libc::c_void;
            hdrs[i].msg_hdr.msg_namelen = self.dests[i].len();
            hdrs[i].msg_hdr.msg_iov = &raw mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        let (mut done, mut failed) = (0usize, 0u64);
        while done < n {
            // SAFETY: hdrs[done..n] point at live buffers, iovecs and
            // addresses owned by self and this frame for the whole call.
            let r = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    hdrs.as_mut_ptr().add(done),
                    (n - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                done += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // drop the datagram that failed (buffer full, unreachable) and
            // go on with the rest
            failed += 1;
            done += 1;
        }
        self.dests.clear();
        (n as u64 - failed, failed)
    }
}

/// What arrived in one datagram of a [`RecvBatch`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    pub len: usize,
    pub from: Option<SocketAddr>,
    /// Kernel receive time, ns since the UNIX epoch.
    pub rx_ns: Option<u64>,
    /// The socket's cumulative drop counter, when the kernel attached it.
    pub drops: Option<u32>,
}

pub struct RecvBatch {
    bufs: Box<[[u8; RECV_BUF]; RECV_BATCH]>,
    names: Box<[libc::sockaddr_storage; RECV_BATCH]>,
    ctrl: Box<[[u64; CTRL_WORDS]; RECV_BATCH]>,
    pub meta: [Meta; RECV_BATCH],
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

fn to_socket_addr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(std::ptr::from_ref(ss).cast()) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 = unsafe { &*(std::ptr::from_ref(ss).cast()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        RecvBatch {
            bufs: Box::new([[0; RECV_BUF]; RECV_BATCH]),
            // SAFETY: sockaddr_storage is plain old data; zero is valid.
            names: Box::new(unsafe { std::mem::zeroed() }),
            ctrl: Box::new([[0; CTRL_WORDS]; RECV_BATCH]),
            meta: [Meta::default(); RECV_BATCH],
        }
    }

    /// The payload of datagram `i` of the last [`RecvBatch::recv`].
    pub fn packet(&self, i: usize) -> &[u8] {
        let len = self.meta.get(i).map_or(0, |m| m.len);
        self.bufs.get(i).and_then(|b| b.get(..len)).unwrap_or(&[])
    }

    /// Reads what is queued (up to [`RECV_BATCH`] datagrams) without
    /// blocking. `Ok(0)` when nothing was.
    pub fn recv(&mut self, sock: &Socket) -> io::Result<usize> {
        let mut iov: [libc::iovec; RECV_BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; RECV_BATCH];
        // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
        let mut hdrs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..RECV_BATCH {
            iov[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iov[i].iov_len = RECV_BUF;
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&raw mut self.names[i]).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut iov[i];
            h.msg_iovlen = 1;
            h.msg_control = self.ctrl[i].as_mut_ptr().cast();
            h.msg_controllen = CTRL_WORDS * 8;
        }
        // SAFETY: every header points at buffers owned by self or this
        // frame, with their true sizes, for the duration of the call.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = r as usize;
        for (i, hdr) in hdrs.iter().enumerate().take(n) {
            let h = &hdr.msg_hdr;
            let mut m = Meta {
                len: (hdr.msg_len as usize).min(RECV_BUF),
                from: to_socket_addr(&self.names[i], h.msg_namelen),
                rx_ns: None,
                drops: None,
            };
            // SAFETY: walks the control buffer the kernel filled, with the
            // libc macros, reading each payload as the type its
            // level/type pair documents (unaligned reads).
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(h);
                while !c.is_null() {
                    let data = libc::CMSG_DATA(c);
                    if (*c).cmsg_level == libc::SOL_SOCKET {
                        if (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                            let ts: libc::timespec = std::ptr::read_unaligned(data.cast());
                            m.rx_ns = Some(
                                (ts.tv_sec as u64)
                                    .saturating_mul(1_000_000_000)
                                    .saturating_add(ts.tv_nsec as u64),
                            );
                        } else if (*c).cmsg_type == libc::SO_RXQ_OVFL {
                            m.drops = Some(std::ptr::read_unaligned(data.cast::<u32>()));
                        }
                    }
                    c = libc::CMSG_NXTHDR(h, c);
                }
            }
            self.meta[i] = m;
        }
        Ok(n)
    }
}

/// The receive buffer the kernel granted a socket.
pub fn rcvbuf(sock: &Socket) -> usize {
    sock.recv_buffer_size().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::packet::{self, Probe};

    #[test]
    fn batches_go_out_and_come_back_with_kernel_timestamps() {
        let a = bind("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let b = bind("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        let a_addr = a.local_addr().unwrap().as_socket().unwrap();
        let b_addr = b.local_addr().unwrap().as_socket().unwrap();
        let mut batch = SendBatch::new();
        for i in 0..SEND_BATCH as u32 {
            let buf = batch.next_buf().unwrap();
            packet::write(
                buf,
                0,
                1,
                &Probe {
                    stream: 3,
                    epoch: 1,
                    index: i,
                    sent_ns: 0,
                },
            );
            batch.commit(b_addr);
        }
        assert!(batch.is_full() && batch.next_buf().is_none());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert_eq!(batch.flush(&a, now), (SEND_BATCH as u64, 0));
        assert!(batch.is_empty());
        let mut rx = RecvBatch::new();
        let mut got = 0;
        for _ in 0..1000 {
            let n = rx.recv(&b).unwrap();
            for i in 0..n {
                let m = rx.meta[i];
                assert_eq!(m.from, Some(a_addr));
                assert_eq!(m.len, PACKET);
                let rx_ns = m.rx_ns.expect("kernel timestamp");
                assert!(rx_ns >= now && rx_ns - now < 5_000_000_000);
                let (_, p) = packet::parse(rx.packet(i)).unwrap();
                assert_eq!((p.stream, p.index, p.sent_ns), (3, got, now));
                got += 1;
            }
            if got == SEND_BATCH as u32 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, SEND_BATCH as u32);
        assert_eq!(rx.recv(&b).unwrap(), 0);
        assert!(rcvbuf(&b) > 0);
    }
}
