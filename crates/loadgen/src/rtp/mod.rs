//! RTP for call scenarios: every answered call sends G.711-sized packets
//! both ways at 50 packets/s through the server's relay, and the receiver
//! accounts for each packet (loss, duplicates, misrouting, one-way latency).
//!
//! Built to carry thousands of calls from one thread: a call side does not
//! own a socket. A few unconnected sockets (`--rtp-sockets`) are shared by
//! all call sides; each packet names its sender stream in its payload
//! ([`packet`]), so the receiver needs no address table, and the relay
//! (which latches to the source address) answers each leg from its own
//! port, which is checked against what the stream was told in SDP. Sends
//! and receives are batched (`sendmmsg`/`recvmmsg`, [`sys`]); streams sit
//! in a 20-slot timer wheel of 1 ms slots, so each millisecond sends the
//! streams whose phase it is. Nothing is allocated per packet.
//!
//! [`Media`] is the sans-IO core (stream table, wheel, accounting);
//! [`engine`] runs it on its own thread over real sockets.

pub mod engine;
pub mod packet;
pub mod sys;

use std::net::SocketAddr;

use crate::histogram::Histogram;
use packet::Probe;

/// Milliseconds in one packet interval: the wheel has this many slots.
pub const PTIME_MS: u64 = 20;

/// One direction of one call: what a call side sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream slot: the scenario gives `2 * call_slot + side`.
    pub id: u32,
    /// Bumps each time the slot is reused, so late packets of an earlier
    /// call are told apart.
    pub epoch: u32,
    /// Which shared socket this call side sends from and receives on.
    pub socket: usize,
    /// The relay address from the SDP this side received.
    pub dest: SocketAddr,
    pub pt: u8,
    pub ssrc: u32,
}

/// The other direction of a call: streams come in pairs `2n` and `2n + 1`,
/// and each side receives its partner's packets.
pub fn partner(id: u32) -> u32 {
    id ^ 1
}

/// What the call scenario tells the media thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaCmd {
    /// Start sending (and expecting the partner's packets on `socket`).
    Start(StreamSpec),
    /// Stop sending; packets still in flight are counted when they arrive.
    /// `socket` is the one the stream was started on.
    Stop { id: u32, epoch: u32, socket: usize },
}

/// Counters of a run, from the media thread.
#[derive(Debug, Clone, Default)]
pub struct RtpStats {
    pub streams: u64,
    pub sent: u64,
    /// Distinct packets received (duplicates excluded).
    pub received: u64,
    pub duplicates: u64,
    /// Received on the wrong socket or from another address than the
    /// relay port the receiving side was given (counted, not received).
    pub misrouted: u64,
    /// Arrived after more than 64 newer packets of its stream.
    pub reordered_late: u64,
    /// Datagrams that were not one of our probes.
    pub foreign: u64,
    /// Packets the OS refused to send (socket buffer full).
    pub send_errors: u64,
    /// Datagrams the kernel dropped on our own sockets (`SO_RXQ_OVFL`):
    /// loss on the generator's side, not the server's.
    pub local_drops: u64,
    /// One-way latency through the relay, microseconds.
    pub latency: Histogram,
    /// Packets whose latency used a user-space receive time (no kernel
    /// timestamp); includes the generator's polling delay.
    pub user_timestamps: u64,
    /// Latest the sending wheel ever ran behind schedule, microseconds.
    pub max_send_lag_us: u64,
    /// Packet intervals skipped because the thread was more than a whole
    /// interval late.
    pub skipped: u64,
    /// Kernel receive buffer each socket got (bytes, as the kernel reports it).
    pub rcvbuf: usize,
    pub sockets: usize,
}

impl RtpStats {
    /// Adds another media thread's counters.
    pub fn merge(&mut self, o: &RtpStats) {
        self.streams += o.streams;
        self.sent += o.sent;
        self.received += o.received;
        self.duplicates += o.duplicates;
        self.misrouted += o.misrouted;
        self.reordered_late += o.reordered_late;
        self.foreign += o.foreign;
        self.send_errors += o.send_errors;
        self.local_drops += o.local_drops;
        self.latency.merge(&o.latency);
        self.user_timestamps += o.user_timestamps;
        self.max_send_lag_us = self.max_send_lag_us.max(o.max_send_lag_us);
        self.skipped += o.skipped;
        self.rcvbuf = self.rcvbuf.max(o.rcvbuf);
        self.sockets += o.sockets;
    }

    /// Packets sent and never received.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }

    /// Lost packets as a percentage of those sent.
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            100.0 * self.lost() as f64 / self.sent as f64
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) epoch: u32,
    pub(crate) sending: bool,
    /// In a wheel slot (a stopped stream leaves it lazily).
    wheeled: bool,
    pub(crate) socket: usize,
    dest: SocketAddr,
    pt: u8,
    ssrc: u32,
    /// Index of the next packet to send.
    next: u32,
    /// Receive side, for the partner's packets of this epoch arriving
    /// here: one past the highest index seen and a bitmap of the 64 below.
    rx_top: u32,
    rx_window: u64,
}

impl Stream {
    fn idle() -> Self {
        Stream {
            epoch: 0,
            sending: false,
            wheeled: false,
            socket: 0,
            dest: SocketAddr::from(([0, 0, 0, 0], 0)),
            pt: 0,
            ssrc: 0,
            next: 0,
            rx_top: 0,
            rx_window: 0,
        }
    }
}

/// Whether index `i` is new for a window (`top`, `bits`), updating it.
/// Returns `Some(true)` for a new packet, `Some(false)` for a duplicate and
/// `None` for one older than the window (counted, not deduplicated).
fn window_accept(top: &mut u32, bits: &mut u64, i: u32) -> Option<bool> {
    if i >= *top {
        let shift = i - *top + 1;
        *bits = if shift >= 64 { 0 } else { *bits << shift };
        *bits |= 1;
        *top = i + 1;
        return Some(true);
    }
    let back = *top - 1 - i; // 0 = the top packet itself
    if back >= 64 {
        return None;
    }
    let mask = 1u64 << back;
    if *bits & mask != 0 {
        Some(false)
    } else {
        *bits |= mask;
        Some(true)
    }
}

/// The sans-IO media core: stream table, send wheel and receive accounting.
pub struct Media {
    pub(crate) streams: Vec<Stream>,
    wheel: Vec<Vec<u32>>,
    /// The wheel has sent every slot up to and including this millisecond.
    done_ms: Option<u64>,
    pub stats: RtpStats,
}

impl Default for Media {
    fn default() -> Self {
        Self::new()
    }
}

impl Media {
    pub fn new() -> Self {
        Media {
            streams: Vec::new(),
            wheel: (0..PTIME_MS).map(|_| Vec::new()).collect(),
            done_ms: None,
            stats: RtpStats::default(),
        }
    }

    pub fn command(&mut self, cmd: MediaCmd, now_ms: u64) {
        match cmd {
            MediaCmd::Start(spec) => {
                let i = spec.id as usize;
                if self.streams.len() <= i {
                    self.streams.resize(i + 1, Stream::idle());
                }
                let s = &mut self.streams[i];
                let wheeled = s.wheeled;
                *s = Stream {
                    epoch: spec.epoch,
                    sending: true,
                    wheeled: true,
                    socket: spec.socket,
                    dest: spec.dest,
                    pt: spec.pt,
                    ssrc: spec.ssrc,
                    next: 0,
                    rx_top: 0,
                    rx_window: 0,
                };
                self.stats.streams += 1;
                if !wheeled {
                    // first packet at the next millisecond the wheel sends
                    let from = self.done_ms.map_or(now_ms, |d| d.max(now_ms) + 1);
                    self.wheel[(from % PTIME_MS) as usize].push(spec.id);
                }
            }
            MediaCmd::Stop { id, epoch, .. } => {
                if let Some(s) = self.streams.get_mut(id as usize) {
                    if s.epoch == epoch {
                        s.sending = false;
                    }
                }
            }
        }
    }

    /// Sends every packet due up to millisecond `now_ms` through `send`
    /// (socket, destination, stream spec fields); at most one interval of
    /// slots is caught up, the rest counts as skipped.
    pub fn due(&mut self, now_ms: u64, mut send: impl FnMut(usize, SocketAddr, u8, u32, &Probe)) {
        let first = match self.done_ms {
            Some(d) if d >= now_ms => return,
            Some(d) => d + 1,
            None => now_ms,
        };
        let first = if now_ms - first >= PTIME_MS {
            let skipped_slots = now_ms + 1 - PTIME_MS - first;
            // every stream missed about one packet per interval skipped
            let live = self.streams.iter().filter(|s| s.sending).count() as u64;
            self.stats.skipped += live * skipped_slots / PTIME_MS;
            now_ms + 1 - PTIME_MS
        } else {
            first
        };
        for ms in first..=now_ms {
            let slot = (ms % PTIME_MS) as usize;
            let mut list = std::mem::take(&mut self.wheel[slot]);
            list.retain(|&id| {
                let Some(s) = self.streams.get_mut(id as usize) else {
                    return false;
                };
                if !s.sending {
                    s.wheeled = false;
                    return false;
                }
                let probe = Probe {
                    stream: id,
                    epoch: s.epoch,
                    index: s.next,
                    sent_ns: 0,
                };
                s.next = s.next.wrapping_add(1);
                send(s.socket, s.dest, s.pt, s.ssrc, &probe);
                true
            });
            self.wheel[slot] = list;
        }
        self.done_ms = Some(now_ms);
    }

    /// The first millisecond whose slot has not been sent yet.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.done_ms.map(|d| d + 1)
    }

    /// A send the OS refused.
    pub fn send_failed(&mut self, n: u64) {
        self.stats.send_errors += n;
    }

    /// Packets handed to the OS.
    pub fn sent(&mut self, n: u64) {
        self.stats.sent += n;
    }

    /// One datagram received on `socket` from `from` at `rx_ns` (epoch ns).
    /// It is accounted to the receiving side (the sender's partner), which
    /// lives on this socket, so a media thread needs only its own streams.
    pub fn on_packet(&mut self, socket: usize, from: Option<SocketAddr>, pkt: &[u8], rx_ns: u64) {
        let Some((_, probe)) = packet::parse(pkt) else {
            self.stats.foreign += 1;
            return;
        };
        let rx = partner(probe.stream) as usize;
        match self.streams.get_mut(rx) {
            Some(r) if r.epoch == probe.epoch => {
                // on the receiver's socket, from the relay port it sends to
                if r.socket != socket || from.is_some_and(|f| f != r.dest) {
                    self.stats.misrouted += 1;
                    return;
                }
                match window_accept(&mut r.rx_top, &mut r.rx_window, probe.index) {
                    Some(false) => {
                        self.stats.duplicates += 1;
                        return;
                    }
                    None => self.stats.reordered_late += 1,
                    Some(true) => {}
                }
            }
            // before the receiving side started (the callee starts at the
            // ACK, the caller's first packets may come before), or a late
            // packet of an earlier call on these slots: counted, unchecked
            _ => {}
        }
        self.stats.received += 1;
        let us = rx_ns.saturating_sub(probe.sent_ns) / 1000;
        self.stats.latency.record(us);
    }

    /// Streams currently sending.
    pub fn sending(&self) -> usize {
        self.streams.iter().filter(|s| s.sending).count()
    }
}

#[cfg(test)]
mod tests;
