//! The sans-IO RTP/RTCP relay of one anchored call: a [`Bridge`] of two
//! [`Leg`]s. The socket driver hands it each datagram with the leg and
//! component (RTP or RTCP port) it arrived on; the bridge validates it,
//! latches the sender's address, rewrites it in place and says where to
//! send it.

mod leg;
mod stream;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use leg::admit;
pub use leg::{LatchPolicy, Leg, LegConfig, LegStats, Transcode};
pub use stream::Source;

use crate::rtp::{self, RtpError};

/// One side of a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Which of a leg's two local ports a datagram used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Rtp,
    Rtcp,
}

/// Relay tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// How long a latched source must be silent before another source may
    /// take its place (a phone roaming, or a NAT rebinding).
    pub relatch_after: Duration,
    /// No RTP from either leg for this long on an armed bridge ends the
    /// call.
    pub media_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            relatch_after: Duration::from_secs(2),
            media_timeout: Duration::from_secs(60),
        }
    }
}

/// Why a datagram was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed(RtpError),
    /// No leg on the side it arrived on.
    NoLeg,
    /// The other side of the bridge is empty.
    NoPeer,
    /// The receiving leg has neither an SDP nor a latched address.
    NoDestination,
    /// From an address other than the latched one, inside the quiet period.
    UnlatchedSource,
    /// From an IP other than the SDP's, under [`LatchPolicy::SameIp`].
    ForeignSource,
    /// Forwarding from this side is switched off (hold, music on hold).
    Blocked,
    /// A late packet of an SSRC its producer has replaced.
    StaleSource,
}

/// A datagram to send, after in-place rewriting of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The leg whose local port sends it.
    pub via: Side,
    pub component: Component,
    pub to: SocketAddr,
    /// The rewritten bytes are `buf[..len]` (always the whole buffer: the
    /// relay never changes a packet's length).
    pub len: usize,
}

/// What to do with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Forward(Forward),
    Drop(DropReason),
}

/// The media relay of one call: two legs, either of which may be empty
/// while the engine rearranges the call.
#[derive(Debug, Clone)]
pub struct Bridge {
    legs: [Option<Leg>; 2],
    forwarding: [bool; 2],
    config: RelayConfig,
    armed_at: Option<Instant>,
}

fn idx(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// Mutable access to the legs on `side` and the other side.
fn pair(legs: &mut [Option<Leg>; 2], side: Side) -> (&mut Option<Leg>, &mut Option<Leg>) {
    let [a, b] = legs;
    match side {
        Side::A => (a, b),
        Side::B => (b, a),
    }
}

impl Bridge {
    /// A bridge of two legs. Either may come from another bridge (a
    /// transfer): what it hears next is re-based onto its stream.
    pub fn new(a: Leg, b: Leg, config: RelayConfig) -> Bridge {
        let mut bridge = Bridge::empty(config);
        bridge.set_leg(Side::A, a);
        bridge.set_leg(Side::B, b);
        bridge
    }

    /// A bridge with no legs yet.
    pub fn empty(config: RelayConfig) -> Bridge {
        Bridge {
            legs: [None, None],
            forwarding: [true, true],
            config,
            armed_at: None,
        }
    }

    pub fn leg(&self, side: Side) -> Option<&Leg> {
        self.legs[idx(side)].as_ref()
    }

    pub fn leg_mut(&mut self, side: Side) -> Option<&mut Leg> {
        self.legs[idx(side)].as_mut()
    }

    /// Puts `leg` on `side`, returning the one it replaces (transfer).
    /// The leg on the other side then counts as having a new source, even
    /// if the newcomer happens to reuse an SSRC it has heard before.
    pub fn set_leg(&mut self, side: Side, mut leg: Leg) -> Option<Leg> {
        leg.out.source_changed();
        if let Some(other) = self.legs[idx(side.other())].as_mut() {
            other.out.source_changed();
        }
        self.legs[idx(side)].replace(leg)
    }

    pub fn take_leg(&mut self, side: Side) -> Option<Leg> {
        self.legs[idx(side)].take()
    }

    /// Whether media arriving from `side` is passed across (off while the
    /// engine plays something else to the other side).
    pub fn set_forwarding(&mut self, from: Side, on: bool) {
        self.forwarding[idx(from)] = on;
    }

    /// Handles a datagram that arrived on `side`'s `component` port from
    /// `from`. `buf` is rewritten in place when the answer is `Forward`.
    pub fn on_packet(
        &mut self,
        side: Side,
        component: Component,
        from: SocketAddr,
        buf: &mut [u8],
        now: Instant,
    ) -> Action {
        let Bridge {
            legs,
            forwarding,
            config,
            ..
        } = self;
        let (src, dst) = pair(legs, side);
        let Some(src) = src.as_mut() else {
            return Action::Drop(DropReason::NoLeg);
        };
        src.stats.last_in = Some(now);
        let muxed = component == Component::Rtp && src.config.rtcp_mux && rtp::is_rtcp(buf);
        let action = if component == Component::Rtcp || muxed {
            relay_rtcp(
                src,
                dst.as_mut(),
                side,
                muxed,
                from,
                buf,
                now,
                config,
                forwarding[idx(side)],
            )
        } else {
            relay_rtp(
                src,
                dst.as_mut(),
                side,
                from,
                buf,
                now,
                config,
                forwarding[idx(side)],
            )
        };
        if matches!(action, Action::Drop(_)) {
            src.stats.dropped += 1;
        }
        action
    }

    /// Sends an RTP packet the engine generated (music on hold, a prompt)
    /// to the leg on `to`, as source `tag`; numbering stays continuous for
    /// the leg across changes between generated and relayed media.
    pub fn inject(&mut self, to: Side, tag: u32, buf: &mut [u8], now: Instant) -> Action {
        let h = match rtp::parse_rtp(buf) {
            Ok(h) => h,
            Err(e) => return Action::Drop(DropReason::Malformed(e)),
        };
        match self.legs[idx(to)].as_mut() {
            Some(leg) => leg.send_rtp(to, Source::Local(tag), &h, buf, now),
            None => Action::Drop(DropReason::NoLeg),
        }
    }

    /// Starts the media timeout (on answer, or on resume from hold).
    pub fn arm_media_timeout(&mut self, now: Instant) {
        self.armed_at = Some(now);
    }

    /// Stops the media timeout (while both sides are held or inactive).
    pub fn disarm_media_timeout(&mut self) {
        self.armed_at = None;
    }

    /// The latest RTP received from either leg.
    pub fn last_rtp(&self) -> Option<Instant> {
        self.legs
            .iter()
            .flatten()
            .filter_map(|l| l.stats.last_rtp_in)
            .max()
    }

    /// When the media timeout will fire if no RTP arrives before then, with
    /// the configured timeout; `None` when disarmed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let armed = self.armed_at?;
        let since = self.last_rtp().map_or(armed, |l| l.max(armed));
        Some(since + self.config.media_timeout)
    }

    /// Whether an armed bridge has had no RTP from either leg for `timeout`.
    pub fn media_timed_out(&self, now: Instant, timeout: Duration) -> bool {
        let Some(armed) = self.armed_at else {
            return false;
        };
        let since = self.last_rtp().map_or(armed, |l| l.max(armed));
        now.saturating_duration_since(since) >= timeout
    }
}

#[allow(clippy::too_many_arguments)]
fn relay_rtp(
    src: &mut Leg,
    dst: Option<&mut Leg>,
    side: Side,
    from: SocketAddr,
    buf: &mut [u8],
    now: Instant,
    config: &RelayConfig,
    forwarding: bool,
) -> Action {
    let h = match rtp::parse_rtp(buf) {
        Ok(h) => h,
        Err(e) => return Action::Drop(DropReason::Malformed(e)),
    };
    let declared = src.config.remote_rtp;
    if let Err(r) = admit(
        &mut src.rtp_latch,
        src.config.latch,
        declared,
        &src.config.sources,
        from,
        now,
        config.relatch_after,
    ) {
        return Action::Drop(r);
    }
    src.stats.rtp_in += 1;
    src.stats.bytes_in += buf.len() as u64;
    src.stats.last_rtp_in = Some(now);
    if !forwarding {
        return Action::Drop(DropReason::Blocked);
    }
    match dst {
        Some(dst) => dst.send_rtp(side.other(), Source::Leg(side), &h, buf, now),
        None => Action::Drop(DropReason::NoPeer),
    }
}

#[allow(clippy::too_many_arguments)]
fn relay_rtcp(
    src: &mut Leg,
    dst: Option<&mut Leg>,
    side: Side,
    muxed: bool,
    from: SocketAddr,
    buf: &mut [u8],
    now: Instant,
    config: &RelayConfig,
    forwarding: bool,
) -> Action {
    let parts = match rtp::parse_rtcp(buf) {
        Ok(p) => p,
        Err(e) => return Action::Drop(DropReason::Malformed(e)),
    };
    let admitted = match muxed {
        true => admit(
            &mut src.rtp_latch,
            src.config.latch,
            src.config.remote_rtp,
            &src.config.sources,
            from,
            now,
            config.relatch_after,
        ),
        false => admit(
            &mut src.rtcp_latch,
            src.config.latch,
            src.config.remote_rtcp,
            &src.config.sources,
            from,
            now,
            config.relatch_after,
        ),
    };
    if let Err(r) = admitted {
        return Action::Drop(r);
    }
    src.stats.rtcp_in += 1;
    src.stats.bytes_in += buf.len() as u64;
    if !forwarding {
        return Action::Drop(DropReason::Blocked);
    }
    let Some(dst) = dst else {
        return Action::Drop(DropReason::NoPeer);
    };
    let Some((component, to)) = dst.rtcp_destination() else {
        return Action::Drop(DropReason::NoDestination);
    };
    // Keep reports consistent with the rewritten RTP: the sender's SSRC
    // (and an SR's RTP time) as the far leg sees them, and report blocks
    // about our output SSRC pointed back at the stream they describe.
    for p in parts
        .iter()
        .filter(|p| matches!(p.packet_type, rtp::RTCP_SR | rtp::RTCP_RR))
    {
        if p.len >= 8 {
            let sender = rtp::read_u32(buf, p.offset + 4);
            if let Some((ssrc, ts_offset)) = dst.out.sender_map(Source::Leg(side), sender) {
                rtp::write_u32(buf, p.offset + 4, ssrc);
                if p.packet_type == rtp::RTCP_SR && p.len >= 28 {
                    let ts = rtp::read_u32(buf, p.offset + 16).wrapping_add(ts_offset);
                    rtp::write_u32(buf, p.offset + 16, ts);
                }
            }
        }
        let (first, count) = rtp::report_blocks(p);
        for block in (0..count).map(|i| first + 24 * i) {
            if let Some(input) = src
                .out
                .reported(rtp::read_u32(buf, block), Source::Leg(side.other()))
            {
                rtp::write_u32(buf, block, input);
            }
        }
    }
    dst.stats.rtcp_out += 1;
    dst.stats.bytes_out += buf.len() as u64;
    dst.stats.last_out = Some(now);
    Action::Forward(Forward {
        via: side.other(),
        component,
        to,
        len: buf.len(),
    })
}
