//! One call's relay task: its sockets, its bridges (one per m-line), the
//! media timeout and the published counters.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use media::{Action, Bridge, Component, DropReason, Leg, LegConfig, Side};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant as TokioInstant, sleep_until};

use super::stats::{CallMediaStats, LegMediaStats, MediaStats, StreamStats};
use super::{BoundPair, MediaDriverConfig, MediaEvent};
use crate::call::StreamPorts;

/// Datagrams read from one socket before the others get a turn.
const BATCH: usize = 64;

/// Work for a call task, from [`super::MediaDriver`].
#[derive(Debug)]
pub(crate) enum CallCmd {
    Leg {
        side: Side,
        index: usize,
        config: LegConfig,
    },
    Connected,
    /// Sides A and B exchange roles (a transfer by the caller).
    Swap,
    /// Music on hold toward `to` on or off (the other side holds).
    Music {
        to: Side,
        on: bool,
    },
    Close,
}

/// Socket `i` of a call is m-line `i / 4`, side `(i / 2) % 2`, component
/// `i % 2`.
fn socket_index(stream: usize, side: Side, component: Component) -> usize {
    let s = match side {
        Side::A => 0,
        Side::B => 2,
    };
    let c = match component {
        Component::Rtp => 0,
        Component::Rtcp => 1,
    };
    4 * stream + s + c
}

fn socket_role(i: usize) -> (usize, Side, Component) {
    let side = if (i / 2) % 2 == 0 { Side::A } else { Side::B };
    let component = if i % 2 == 0 {
        Component::Rtp
    } else {
        Component::Rtcp
    };
    (i / 4, side, component)
}

/// The relay state a task mutates; the sockets and command receiver live
/// beside it so they can be polled while it is borrowed.
struct Relay {
    call: u64,
    bridges: Vec<Bridge>,
    ports: Vec<(u16, u16)>,
    buf: Vec<u8>,
    media_timeout: Duration,
    connected: bool,
    timed_out: bool,
    send_errors: u64,
    oversized: u64,
    before_leg: u64,
    /// A packet from a foreign source was logged already.
    foreign_logged: bool,
    /// Music on hold toward A, toward B (while the other side holds).
    music_to: [bool; 2],
    music: media::Music,
    music_seq: u16,
    music_ts: u32,
}

pub(crate) struct CallTask {
    relay: Relay,
    sockets: Vec<UdpSocket>,
    /// Dropped after the sockets, so a port is free when it is reused.
    port_pairs: Vec<StreamPorts>,
    rx: mpsc::UnboundedReceiver<CallCmd>,
    events: mpsc::UnboundedSender<MediaEvent>,
    stats: MediaStats,
    stats_interval: Duration,
}

enum Wake {
    Cmd(Option<CallCmd>),
    Readable(usize),
    MediaTimer,
    PublishTimer,
    MusicTick,
}

impl CallTask {
    pub(crate) fn new(
        call: u64,
        bound: Vec<[BoundPair; 2]>,
        port_pairs: Vec<StreamPorts>,
        config: &MediaDriverConfig,
        rx: mpsc::UnboundedReceiver<CallCmd>,
        events: mpsc::UnboundedSender<MediaEvent>,
        stats: MediaStats,
    ) -> CallTask {
        let mut sockets = Vec::with_capacity(4 * bound.len());
        for [a, b] in bound {
            sockets.extend([a.rtp, a.rtcp, b.rtp, b.rtcp]);
        }
        let relay = Relay {
            call,
            bridges: port_pairs
                .iter()
                .map(|_| Bridge::empty(config.relay()))
                .collect(),
            ports: port_pairs.iter().map(|s| (s.a.rtp(), s.b.rtp())).collect(),
            buf: vec![0; config.max_datagram.max(64)],
            media_timeout: config.media_timeout,
            connected: false,
            timed_out: false,
            send_errors: 0,
            oversized: 0,
            before_leg: 0,
            foreign_logged: false,
            music_to: [false; 2],
            music: media::Music::new(),
            music_seq: 0,
            music_ts: 0,
        };
        CallTask {
            relay,
            sockets,
            port_pairs,
            rx,
            events,
            stats,
            stats_interval: config.stats_interval,
        }
    }

    /// The counters as they are now.
    pub(crate) fn snapshot(&self) -> CallMediaStats {
        let mut s = CallMediaStats {
            call: self.relay.call,
            ..Default::default()
        };
        self.relay.fill(&mut s);
        s
    }

    pub(crate) async fn run(self) {
        let CallTask {
            mut relay,
            mut sockets,
            port_pairs,
            mut rx,
            events,
            stats,
            stats_interval,
        } = self;
        let far = TokioInstant::now() + Duration::from_secs(86_400 * 365);
        let media_timer = sleep_until(far);
        let publish_timer = sleep_until(far);
        tokio::pin!(media_timer, publish_timer);
        let mut media_armed = false;
        let mut dirty = false;
        let mut next = 0usize;
        let mut music_tick = tokio::time::interval(MUSIC_FRAME);
        // A late frame is sent at once, then the cadence continues (Delay):
        // the phone's jitter buffer absorbs one late packet, not a burst.
        music_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let playing = relay.music_to.iter().any(|m| *m);
            let wake = tokio::select! {
                cmd = rx.recv() => Wake::Cmd(cmd),
                i = poll_fn(|cx| poll_readable(&sockets, next, cx)) => Wake::Readable(i),
                _ = &mut media_timer, if media_armed => Wake::MediaTimer,
                _ = &mut publish_timer, if dirty => Wake::PublishTimer,
                _ = music_tick.tick(), if playing => Wake::MusicTick,
            };
            match wake {
                Wake::Cmd(None | Some(CallCmd::Close)) => break,
                Wake::Cmd(Some(CallCmd::Swap)) => {
                    // socket i serves stream i / 4, side (i / 2) % 2
                    for s in 0..sockets.len() / 4 {
                        sockets.swap(4 * s, 4 * s + 2);
                        sockets.swap(4 * s + 1, 4 * s + 3);
                    }
                    relay.swap_sides();
                }
                Wake::Cmd(Some(cmd)) => {
                    relay.on_cmd(cmd, Instant::now());
                    if !playing && relay.music_to.iter().any(|m| *m) {
                        // the interval was not polled while silent: start afresh
                        music_tick.reset();
                    }
                    relay.publish(&stats);
                    dirty = false;
                    media_armed = relay.rearm(&mut media_timer);
                }
                Wake::Readable(i) => {
                    next = (i + 1) % sockets.len().max(1);
                    relay.drain(&sockets, i);
                    if !dirty {
                        dirty = true;
                        publish_timer
                            .as_mut()
                            .reset(TokioInstant::now() + stats_interval);
                    }
                }
                Wake::MediaTimer => {
                    if relay.check_timeout(Instant::now()) {
                        tracing::info!(call = relay.call, "media timeout");
                        let _ = events.send(MediaEvent::TimedOut { call: relay.call });
                        relay.publish(&stats);
                        media_armed = false;
                    } else {
                        media_armed = relay.rearm(&mut media_timer);
                    }
                }
                Wake::PublishTimer => {
                    relay.publish(&stats);
                    dirty = false;
                }
                Wake::MusicTick => relay.play_music(&sockets, Instant::now()),
            }
        }
        stats.remove(relay.call);
        drop(sockets);
        drop(port_pairs);
    }
}

/// The first readable socket from `start` on, round robin.
fn poll_readable(sockets: &[UdpSocket], start: usize, cx: &mut Context<'_>) -> Poll<usize> {
    let n = sockets.len();
    for k in 0..n {
        let i = (start + k) % n;
        // An error is readiness too: try_recv_from reports it.
        if sockets[i].poll_recv_ready(cx).is_ready() {
            return Poll::Ready(i);
        }
    }
    Poll::Pending
}

impl Relay {
    fn on_cmd(&mut self, cmd: CallCmd, now: Instant) {
        match cmd {
            CallCmd::Leg {
                side,
                index,
                config,
            } => {
                let Some(bridge) = self.bridges.get_mut(index) else {
                    tracing::warn!(call = self.call, index, "leg for an m-line without relay");
                    return;
                };
                match bridge.leg_mut(side) {
                    Some(leg) => leg.update(config),
                    None => {
                        bridge.set_leg(side, Leg::new(config));
                    }
                }
            }
            CallCmd::Connected => {
                self.connected = true;
                if !self.music_to.iter().any(|m| *m) {
                    for b in &mut self.bridges {
                        b.arm_media_timeout(now);
                    }
                }
            }
            CallCmd::Music { to, on } => {
                let i = usize::from(to == Side::B);
                self.music_to[i] = on;
                for b in &mut self.bridges {
                    // what the holding side sends is not passed on meanwhile
                    b.set_forwarding(to.other(), !on);
                }
                // A held call may be silent both ways: no media timeout
                // until both parties are back.
                let holding = self.music_to.iter().any(|m| *m);
                for b in &mut self.bridges {
                    if holding {
                        b.disarm_media_timeout();
                    } else if self.connected {
                        b.arm_media_timeout(now);
                    }
                }
            }
            CallCmd::Close | CallCmd::Swap => {}
        }
    }

    /// Reads up to [`BATCH`] datagrams from socket `i` and relays them.
    fn drain(&mut self, sockets: &[UdpSocket], i: usize) {
        let (stream, side, component) = socket_role(i);
        let now = Instant::now();
        for _ in 0..BATCH {
            let (n, from) = match sockets[i].try_recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ICMP errors of earlier sends surface here: skip them.
                Err(_) => continue,
            };
            if n >= self.buf.len() {
                self.oversized += 1;
                continue;
            }
            self.relay_one(sockets, stream, side, component, n, from, now);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn relay_one(
        &mut self,
        sockets: &[UdpSocket],
        stream: usize,
        side: Side,
        component: Component,
        n: usize,
        from: SocketAddr,
        now: Instant,
    ) {
        let Some(bridge) = self.bridges.get_mut(stream) else {
            return;
        };
        let buf = &mut self.buf[..n];
        match bridge.on_packet(side, component, from, buf, now) {
            Action::Forward(f) => {
                let out = &sockets[socket_index(stream, f.via, f.component)];
                if out.try_send_to(&buf[..f.len], f.to).is_err() {
                    self.send_errors += 1;
                }
            }
            Action::Drop(DropReason::NoLeg) => self.before_leg += 1,
            Action::Drop(DropReason::ForeignSource) => {
                // Counted by the bridge on the leg; said once per call, so a
                // spray at the port range cannot flood the log.
                if !std::mem::replace(&mut self.foreign_logged, true) {
                    tracing::info!(
                        call = self.call,
                        %from,
                        ?side,
                        "media from an address other than the leg's signalling or SDP dropped"
                    );
                }
            }
            // Counted by the bridge on the leg.
            Action::Drop(_) => {}
        }
    }

    /// Sides A and B exchange roles (the sockets were swapped by the caller).
    fn swap_sides(&mut self) {
        self.music_to.swap(0, 1);
        for (bridge, ports) in self.bridges.iter_mut().zip(&mut self.ports) {
            let a = bridge.take_leg(Side::A);
            let b = bridge.take_leg(Side::B);
            if let Some(b) = b {
                bridge.set_leg(Side::A, b);
            }
            if let Some(a) = a {
                bridge.set_leg(Side::B, a);
            }
            for side in [Side::A, Side::B] {
                let music_toward_other = self.music_to[usize::from(side.other() == Side::B)];
                bridge.set_forwarding(side, !music_toward_other);
            }
            *ports = (ports.1, ports.0);
        }
    }

    /// One 20 ms frame of music to every side that is held, on each m-line
    /// whose leg takes PCMU or PCMA (video and other codecs get nothing).
    fn play_music(&mut self, sockets: &[UdpSocket], now: Instant) {
        self.music_seq = self.music_seq.wrapping_add(1);
        self.music_ts = self.music_ts.wrapping_add(media::music::FRAME as u32);
        let mut frames: [Option<(u8, [u8; media::music::FRAME])>; 2] = [None, None];
        for (stream, bridge) in self.bridges.iter_mut().enumerate() {
            for side in [Side::A, Side::B] {
                let i = usize::from(side == Side::B);
                if !self.music_to[i] {
                    continue;
                }
                let Some(pt) = bridge.leg(side).and_then(|l| g711_pt(l.config())) else {
                    continue;
                };
                // one frame per side per tick, shared by its m-lines
                let payload = match frames[i] {
                    Some((p, f)) if p == pt => f,
                    _ => {
                        let Some(f) = self.music.next_payload(pt) else {
                            continue;
                        };
                        frames[i] = Some((pt, f));
                        f
                    }
                };
                let mut pkt = media::rtp::build_rtp(
                    pt,
                    self.music_seq,
                    self.music_ts,
                    MUSIC_SSRC,
                    false,
                    &payload,
                );
                if let Action::Forward(f) = bridge.inject(side, MUSIC_SSRC, &mut pkt, now) {
                    let out = &sockets[socket_index(stream, f.via, f.component)];
                    if out.try_send_to(&pkt[..f.len], f.to).is_err() {
                        self.send_errors += 1;
                    }
                }
            }
        }
    }

    /// Points the media timer at the latest deadline of the armed bridges;
    /// false when none is armed (or the timeout already fired).
    fn rearm(&self, timer: &mut std::pin::Pin<&mut tokio::time::Sleep>) -> bool {
        if self.timed_out {
            return false;
        }
        match self.bridges.iter().filter_map(Bridge::poll_timeout).max() {
            Some(at) => {
                timer.as_mut().reset(TokioInstant::from_std(at));
                true
            }
            None => false,
        }
    }

    /// Whether every armed bridge has been silent for the media timeout
    /// (latched once true).
    fn check_timeout(&mut self, now: Instant) -> bool {
        let mut armed = self
            .bridges
            .iter()
            .filter(|b| b.poll_timeout().is_some())
            .peekable();
        if armed.peek().is_none() {
            return false;
        }
        if armed.all(|b| b.media_timed_out(now, self.media_timeout)) {
            self.timed_out = true;
        }
        self.timed_out
    }

    fn fill(&self, s: &mut CallMediaStats) {
        s.streams.resize(self.bridges.len(), StreamStats::default());
        for ((out, bridge), ports) in s.streams.iter_mut().zip(&self.bridges).zip(&self.ports) {
            out.a = leg_stats(bridge, Side::A);
            out.b = leg_stats(bridge, Side::B);
            out.ports = *ports;
        }
        s.connected = self.connected;
        s.timed_out = self.timed_out;
        s.send_errors = self.send_errors;
        s.oversized = self.oversized;
        s.before_leg = self.before_leg;
    }

    fn publish(&self, stats: &MediaStats) {
        stats.update(self.call, |s| self.fill(s));
    }
}

/// Music frames every 20 ms.
const MUSIC_FRAME: Duration = Duration::from_millis(20);
/// The source tag of music packets (the leg renumbers them onto its stream).
const MUSIC_SSRC: u32 = 0x6d75_7369;

/// The G.711 payload type a leg receives, PCMU first.
fn g711_pt(config: &media::LegConfig) -> Option<u8> {
    let takes = |pt: u8| config.clock_rates.iter().any(|(p, _)| *p == pt);
    if config.clock_rates.is_empty() || takes(0) {
        Some(0)
    } else if takes(8) {
        Some(8)
    } else {
        None
    }
}

fn leg_stats(bridge: &Bridge, side: Side) -> LegMediaStats {
    match bridge.leg(side) {
        Some(leg) => LegMediaStats {
            configured: true,
            sdp_rtp: leg.config().remote_rtp,
            latched: leg.latched(),
            counters: *leg.stats(),
        },
        None => LegMediaStats::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_roles_round_trip() {
        for i in 0..12 {
            let (stream, side, component) = socket_role(i);
            assert_eq!(socket_index(stream, side, component), i);
        }
        assert_eq!(socket_role(6), (1, Side::B, Component::Rtp));
    }
}
