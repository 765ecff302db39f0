//! The media thread: owns the shared RTP sockets and runs [`Media`] every
//! millisecond: commands in, due packets out in batches, everything queued
//! read in batches. Receive times are the kernel's (`SO_TIMESTAMPNS`), so
//! the 1 ms polling does not add to the measured latency.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::Socket;

use super::sys::{self, RecvBatch, SendBatch};
use super::{Media, MediaCmd, RtpStats, packet};

/// Messages to the media thread.
#[derive(Debug)]
enum Msg {
    Cmd(MediaCmd),
    /// Stop sending everything, keep receiving for the given time, then end.
    Shutdown(Duration),
}

/// Where a command goes: socket `k` belongs to thread `k % threads`, as
/// its local socket `k / threads` (both sides of a call may be on
/// different threads: each side is accounted where it receives).
fn route(cmd: MediaCmd, threads: usize) -> (usize, MediaCmd) {
    let t = threads.max(1);
    match cmd {
        MediaCmd::Start(mut spec) => {
            let thread = spec.socket % t;
            spec.socket /= t;
            (thread, MediaCmd::Start(spec))
        }
        MediaCmd::Stop { id, epoch, socket } => (
            socket % t,
            MediaCmd::Stop {
                id,
                epoch,
                socket: socket / t,
            },
        ),
    }
}

/// Sends commands to the media threads (the scenario holds one).
#[derive(Clone)]
pub struct MediaSender(Vec<mpsc::Sender<Msg>>);

impl MediaSender {
    pub fn send(&self, cmd: MediaCmd) {
        let (thread, cmd) = route(cmd, self.0.len());
        if let Some(tx) = self.0.get(thread) {
            // a thread only ends after Shutdown: a failed send means it
            // panicked, which `finish` reports
            let _ = tx.send(Msg::Cmd(cmd));
        }
    }
}

/// The driver's handle on the media threads.
pub struct MediaHandle {
    tx: MediaSender,
    threads: Vec<JoinHandle<RtpStats>>,
}

impl MediaHandle {
    pub fn clone_sender(&self) -> MediaSender {
        self.tx.clone()
    }

    pub fn send(&self, cmd: MediaCmd) {
        self.tx.send(cmd);
    }

    /// Ends the threads after `linger` (packets in flight still count) and
    /// returns their counters, added up.
    pub fn finish(self, linger: Duration) -> io::Result<RtpStats> {
        for tx in &self.tx.0 {
            let _ = tx.send(Msg::Shutdown(linger));
        }
        let mut total = RtpStats::default();
        for t in self.threads {
            let s = t
                .join()
                .map_err(|_| io::Error::other("a media thread panicked"))?;
            total.merge(&s);
        }
        Ok(total)
    }
}

/// The bound, not yet running, media sockets.
pub struct MediaSockets {
    sockets: Vec<Socket>,
    pub local: Vec<SocketAddr>,
}

fn epoch_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl MediaSockets {
    /// Binds `count` sockets on `ip`, each with `buf_bytes` of buffers.
    pub fn bind(ip: IpAddr, count: usize, buf_bytes: usize) -> io::Result<Self> {
        let mut sockets = Vec::with_capacity(count);
        let mut local = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            let s = sys::bind(SocketAddr::new(ip, 0), buf_bytes).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind an RTP socket on {ip}: {e}"))
            })?;
            local.push(
                s.local_addr()?
                    .as_socket()
                    .ok_or_else(|| io::Error::other("RTP socket has no IP address"))?,
            );
            sockets.push(s);
        }
        Ok(MediaSockets { sockets, local })
    }

    /// Starts `threads` media threads (at most one per socket); socket `k`
    /// goes to thread `k % threads`.
    pub fn spawn(self, threads: usize) -> io::Result<MediaHandle> {
        let t = threads.clamp(1, self.sockets.len().max(1));
        let mut parts: Vec<Vec<Socket>> = (0..t).map(|_| Vec::new()).collect();
        for (k, s) in self.sockets.into_iter().enumerate() {
            parts[k % t].push(s);
        }
        let mut txs = Vec::with_capacity(t);
        let mut handles = Vec::with_capacity(t);
        for (i, socks) in parts.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            txs.push(tx);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("sb-loadgen-rtp{i}"))
                    .spawn(move || run(socks, rx))?,
            );
        }
        Ok(MediaHandle {
            tx: MediaSender(txs),
            threads: handles,
        })
    }
}

fn run(sockets: Vec<Socket>, rx: mpsc::Receiver<Msg>) -> RtpStats {
    let mut media = Media::new();
    media.stats.sockets = sockets.len();
    media.stats.rcvbuf = sockets.first().map_or(0, sys::rcvbuf);
    let mut batches: Vec<SendBatch> = sockets.iter().map(|_| SendBatch::new()).collect();
    let mut recv = RecvBatch::new();
    let mut drops = vec![0u32; sockets.len()];
    let start = Instant::now();
    let mut end: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let now_ms = now.duration_since(start).as_millis() as u64;
        loop {
            match rx.try_recv() {
                Ok(Msg::Cmd(c)) => media.command(c, now_ms),
                Ok(Msg::Shutdown(linger)) => {
                    end = Some(now + linger);
                    stop_all(&mut media);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    if end.is_none() {
                        end = Some(now);
                    }
                    break;
                }
            }
        }
        // how late this wake-up is against the first millisecond still unsent
        let due = media.next_due_ms().unwrap_or(now_ms);
        let lag = now.saturating_duration_since(start + Duration::from_millis(due));
        media.stats.max_send_lag_us = media.stats.max_send_lag_us.max(lag.as_micros() as u64);
        send_due(&mut media, &sockets, &mut batches, now_ms);
        for (i, s) in sockets.iter().enumerate() {
            drain(&mut media, i, s, &mut recv, &mut drops[i]);
        }
        if end.is_some_and(|e| now >= e) {
            break;
        }
        let next = start + Duration::from_millis(now_ms + 1);
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
    media.stats.local_drops = drops.iter().map(|d| u64::from(*d)).sum();
    media.stats
}

fn stop_all(media: &mut Media) {
    let live: Vec<(u32, u32, usize)> = media
        .streams
        .iter()
        .enumerate()
        .filter(|(_, s)| s.sending)
        .map(|(i, s)| (i as u32, s.epoch, s.socket))
        .collect();
    for (id, epoch, socket) in live {
        media.command(MediaCmd::Stop { id, epoch, socket }, 0);
    }
}

fn send_due(media: &mut Media, sockets: &[Socket], batches: &mut [SendBatch], now_ms: u64) {
    let (mut sent, mut failed) = (0u64, 0u64);
    media.due(now_ms, |sock, dest, pt, ssrc, probe| {
        let (Some(batch), Some(s)) = (batches.get_mut(sock), sockets.get(sock)) else {
            failed += 1;
            return;
        };
        if let Some(buf) = batch.next_buf() {
            packet::write(buf, pt, ssrc, probe);
            batch.commit(dest);
        }
        if batch.is_full() {
            let (ok, bad) = batch.flush(s, epoch_ns());
            sent += ok;
            failed += bad;
        }
    });
    for (batch, s) in batches.iter_mut().zip(sockets) {
        if !batch.is_empty() {
            let (ok, bad) = batch.flush(s, epoch_ns());
            sent += ok;
            failed += bad;
        }
    }
    media.sent(sent);
    media.send_failed(failed);
}

fn drain(media: &mut Media, i: usize, sock: &Socket, recv: &mut RecvBatch, drops: &mut u32) {
    loop {
        // an error (e.g. an ICMP error surfacing) means nothing to read
        let n = recv.recv(sock).unwrap_or_default();
        for k in 0..n {
            let m = recv.meta[k];
            if let Some(d) = m.drops {
                *drops = (*drops).max(d);
            }
            let rx_ns = match m.rx_ns {
                Some(t) => t,
                None => {
                    media.stats.user_timestamps += 1;
                    epoch_ns()
                }
            };
            media.on_packet(i, m.from, recv.packet(k), rx_ns);
        }
        if n < sys::RECV_BATCH {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::StreamSpec;

    #[test]
    fn commands_go_to_the_thread_owning_the_socket() {
        let spec = StreamSpec {
            id: 7,
            epoch: 1,
            socket: 5,
            dest: "127.0.0.1:9".parse().unwrap(),
            pt: 0,
            ssrc: 1,
        };
        let (t, cmd) = route(MediaCmd::Start(spec), 2);
        assert_eq!(
            (t, cmd),
            (1, MediaCmd::Start(StreamSpec { socket: 2, ..spec }))
        );
        let stop = MediaCmd::Stop {
            id: 7,
            epoch: 1,
            socket: 5,
        };
        assert_eq!(
            route(stop, 3),
            (
                2,
                MediaCmd::Stop {
                    id: 7,
                    epoch: 1,
                    socket: 1
                }
            )
        );
        assert_eq!(route(stop, 1), (0, stop));
        assert_eq!(route(stop, 0), (0, stop));
    }

    /// Two call sides on two sockets talking through a trivial relay
    /// (two more sockets forwarding to each other's latched peer).
    #[test]
    fn a_call_through_a_relay_loses_nothing() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let socks = MediaSockets::bind(lo, 2, 1 << 20).unwrap();
        let (a_side, b_side) = (socks.local[0], socks.local[1]);
        let ra = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let rb = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (ra_addr, rb_addr) = (ra.local_addr().unwrap(), rb.local_addr().unwrap());
        for (from, to, peer) in [
            (ra.try_clone().unwrap(), rb.try_clone().unwrap(), b_side),
            (rb.try_clone().unwrap(), ra.try_clone().unwrap(), a_side),
        ] {
            from.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut idle = 0;
                while idle < 20 {
                    match from.recv_from(&mut buf) {
                        Ok((n, _)) => {
                            idle = 0;
                            let _ = to.send_to(&buf[..n], peer);
                        }
                        Err(_) => idle += 1,
                    }
                }
            });
        }
        // one thread per socket: the two sides are accounted on different threads
        let h = socks.spawn(2).unwrap();
        let spec = |id, socket, dest| StreamSpec {
            id,
            epoch: 1,
            socket,
            dest,
            pt: 0,
            ssrc: id,
        };
        h.send(MediaCmd::Start(spec(0, 0, ra_addr)));
        h.send(MediaCmd::Start(spec(1, 1, rb_addr)));
        std::thread::sleep(Duration::from_millis(210));
        h.send(MediaCmd::Stop {
            id: 0,
            epoch: 1,
            socket: 0,
        });
        h.send(MediaCmd::Stop {
            id: 1,
            epoch: 1,
            socket: 1,
        });
        let s = h.finish(Duration::from_millis(100)).unwrap();
        assert!(s.sent >= 18 && s.sent <= 26, "{s:?}");
        assert_eq!(
            (s.received, s.misrouted, s.foreign),
            (s.sent, 0, 0),
            "{s:?}"
        );
        assert_eq!(s.lost(), 0);
        assert_eq!(s.latency.count(), s.sent);
        assert!(s.latency.quantile(0.99).unwrap() < 100_000, "{s:?}");
        assert_eq!(s.user_timestamps, 0);
    }
}

/// The media thread's own capacity, without a relay: `SB_RTP_CALLS` calls
/// (default 3000) whose two sides send straight to each other's socket for
/// `SB_RTP_SECONDS` (default 10). Run it in release mode:
/// `cargo test --release -p loadgen -- --ignored --nocapture media_thread_capacity`.
#[cfg(test)]
mod capacity {
    use super::*;
    use crate::rtp::StreamSpec;

    fn env(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    #[test]
    #[ignore = "a measurement, not a test: minutes of CPU"]
    fn media_thread_capacity() {
        let calls = env("SB_RTP_CALLS", 3000) as u32;
        let secs = env("SB_RTP_SECONDS", 10);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let socks = MediaSockets::bind(lo, 8, 4 << 20).unwrap();
        let local = socks.local.clone();
        let threads = env("SB_RTP_THREADS", 1) as usize;
        let cpu0 = crate::cpu::own().unwrap();
        let h = socks.spawn(threads).unwrap();
        for c in 0..calls {
            let (a, b) = (2 * c, 2 * c + 1);
            let (sa, sb) = (a as usize % 8, b as usize % 8);
            for (id, socket, peer) in [(a, sa, sb), (b, sb, sa)] {
                h.send(MediaCmd::Start(StreamSpec {
                    id,
                    epoch: 1,
                    socket,
                    dest: local[peer],
                    pt: 0,
                    ssrc: id,
                }));
            }
            if c % 200 == 199 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(Duration::from_secs(secs));
        let s = h.finish(Duration::from_millis(200)).unwrap();
        let cpu = crate::cpu::own().unwrap().since(&cpu0);
        println!(
            "{calls} calls, {secs} s: sent {} received {} lost {} skipped {} local drops {} \
             max send lag {:.1} ms; latency p50 {:?} p99 {:?} µs; cpu {:.2} s user + {:.2} s sys",
            s.sent,
            s.received,
            s.lost(),
            s.skipped,
            s.local_drops,
            s.max_send_lag_us as f64 / 1000.0,
            s.latency.quantile(0.5),
            s.latency.quantile(0.99),
            cpu.user.as_secs_f64(),
            cpu.system.as_secs_f64()
        );
        assert_eq!(s.misrouted, 0);
    }
}
