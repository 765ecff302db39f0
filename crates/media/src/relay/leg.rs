//! One leg of a bridge: its addresses, symmetric-RTP latches, the stream
//! it is sent and its counters.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::stream::{OutStream, Source};
use super::{Action, Component, DropReason, Forward, Side};
use crate::codec::{Codec, PtMap, codecs_of};
use crate::g711;
use crate::rtp::{self, RtpHeader};
use crate::sdp::Sdp;

/// Symmetric RTP: whether to send to where a leg's packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatchPolicy {
    /// Send to the SDP address; accept packets from anywhere.
    Off,
    /// Latch only to a source with the SDP address's IP; drop others.
    SameIp,
    /// Latch to the first valid source, whatever its address (NAT).
    #[default]
    Any,
}

/// G.711 law conversion for packets toward a leg (PCMU and PCMA are always
/// accepted by Switchboard, so legs may disagree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transcode {
    /// The leg takes PCMA (8) only: convert PCMU (0) to it.
    UlawToAlaw,
    /// The leg takes PCMU (0) only: convert PCMA (8) to it.
    AlawToUlaw,
}

impl Transcode {
    /// The conversion needed for media toward a receiver that declared
    /// `receiver` codecs, from a sender that may use any of `sender`:
    /// needed only when the receiver has one G.711 law and not the other.
    pub fn between(sender: &[Codec], receiver: &[Codec]) -> Option<Transcode> {
        let has = |list: &[Codec], c: &Codec| list.iter().any(|x| x.same_format(c));
        let (mu, a) = (Codec::pcmu(), Codec::pcma());
        match (has(receiver, &mu), has(receiver, &a)) {
            (false, true) if has(sender, &mu) => Some(Transcode::UlawToAlaw),
            (true, false) if has(sender, &a) => Some(Transcode::AlawToUlaw),
            _ => None,
        }
    }
}

/// What the relay knows about a leg from signalling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegConfig {
    /// Where the leg's SDP asks for RTP (`None`: refused, legacy hold).
    pub remote_rtp: Option<SocketAddr>,
    /// Where the leg's SDP asks for RTCP.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTCP shares the RTP port (RFC 5761), as agreed on this leg.
    pub rtcp_mux: bool,
    pub latch: LatchPolicy,
    /// RTP clock rate of each payload type the leg receives.
    pub clock_rates: Vec<(u8, u32)>,
    /// Payload type rewriting for packets toward this leg.
    pub pt_map: PtMap,
    pub transcode: Option<Transcode>,
    /// The IPs this leg's media may come from: its signalling source and
    /// the connection addresses of its SDP. Packets from any other IP are
    /// dropped and never latched. Empty: any source (no signalling known).
    pub sources: Vec<IpAddr>,
}

impl LegConfig {
    /// From the description this leg sent (its offer or answer) and the
    /// m-line index: addresses, rtcp-mux and clock rates. Payload mapping
    /// and transcoding depend on the other leg; set them afterwards.
    pub fn from_sdp(sdp: &Sdp, index: usize) -> LegConfig {
        let media = sdp.media.get(index);
        LegConfig {
            remote_rtp: sdp.rtp_addr(index),
            remote_rtcp: sdp.rtcp_addr(index),
            rtcp_mux: media.is_some_and(|m| m.rtcp_mux()),
            latch: LatchPolicy::default(),
            clock_rates: media
                .map(|m| codecs_of(m).iter().map(|c| (c.pt, c.clock_rate)).collect())
                .unwrap_or_default(),
            pt_map: PtMap::default(),
            transcode: None,
            sources: Vec::new(),
        }
    }

    /// Allows media from `ip` too (unless unspecified, as in a `c=0.0.0.0`
    /// hold).
    pub fn allow_source(&mut self, ip: IpAddr) {
        if !ip.is_unspecified() && !self.sources.contains(&ip) {
            self.sources.push(ip);
        }
    }

    /// Allows the SDP's RTP and RTCP addresses.
    pub fn allow_sdp_sources(&mut self) {
        for a in [self.remote_rtp, self.remote_rtcp].into_iter().flatten() {
            self.allow_source(a.ip());
        }
    }

    pub(super) fn clock_rate(&self, pt: u8) -> u32 {
        self.clock_rates
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, r)| *r)
            .or_else(|| crate::codec::static_payload(pt).map(|(_, r, _)| r))
            .unwrap_or(8000)
    }
}

/// Counters for one leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    pub rtp_in: u64,
    pub rtp_out: u64,
    pub rtcp_in: u64,
    pub rtcp_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Datagrams from this leg that were dropped, for whatever reason.
    pub dropped: u64,
    pub last_rtp_in: Option<Instant>,
    pub last_in: Option<Instant>,
    pub last_out: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Latch {
    addr: SocketAddr,
    last_seen: Instant,
}

/// One call leg's media state: its addresses, latches, the stream it is
/// sent, and counters. A leg can move between bridges (transfer) and
/// keeps its outgoing SSRC and numbering when it does.
#[derive(Debug, Clone)]
pub struct Leg {
    pub(super) config: LegConfig,
    pub(super) rtp_latch: Option<Latch>,
    pub(super) rtcp_latch: Option<Latch>,
    pub(super) out: OutStream,
    pub(super) stats: LegStats,
}

/// Whether two addresses are the same host: equal, or both loopback (a
/// loopback source cannot come from another machine, and a process on
/// this one may send from any 127/8 address whatever it binds for SIP).
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a == b || (a.is_loopback() && b.is_loopback())
}

/// Accepts or refuses `from` as the source of a leg's packets. Only a
/// source among `sources` (when any are known) is admitted; once latched,
/// the latch moves only to another port of the same IP (a NAT rebinding)
/// after `quiet`, never to another host: a silent or held leg cannot be
/// captured by packets sprayed at the relay's ports.
pub(super) fn admit(
    latch: &mut Option<Latch>,
    policy: LatchPolicy,
    declared: Option<SocketAddr>,
    sources: &[IpAddr],
    from: SocketAddr,
    now: Instant,
    quiet: Duration,
) -> Result<(), DropReason> {
    if !sources.is_empty() && !sources.iter().any(|&s| same_host(s, from.ip())) {
        return Err(DropReason::ForeignSource);
    }
    match policy {
        LatchPolicy::Off => return Ok(()),
        LatchPolicy::SameIp if declared.map(|d| d.ip()) != Some(from.ip()) => {
            return Err(DropReason::ForeignSource);
        }
        _ => {}
    }
    match latch {
        Some(l) if l.addr == from => l.last_seen = now,
        Some(l) if !sources.is_empty() && !same_host(l.addr.ip(), from.ip()) => {
            return Err(DropReason::UnlatchedSource);
        }
        Some(l) if now.saturating_duration_since(l.last_seen) < quiet => {
            return Err(DropReason::UnlatchedSource);
        }
        _ => {
            *latch = Some(Latch {
                addr: from,
                last_seen: now,
            })
        }
    }
    Ok(())
}

impl Leg {
    pub fn new(config: LegConfig) -> Leg {
        Leg {
            config,
            rtp_latch: None,
            rtcp_latch: None,
            out: OutStream::default(),
            stats: LegStats::default(),
        }
    }

    pub fn config(&self) -> &LegConfig {
        &self.config
    }

    /// New signalling for this leg (re-INVITE). Latches are forgotten when
    /// the SDP address changes: the phone says it moved.
    pub fn update(&mut self, config: LegConfig) {
        if config.remote_rtp != self.config.remote_rtp {
            self.rtp_latch = None;
            self.rtcp_latch = None;
        }
        self.config = config;
    }

    /// [`Leg::update`] from a new description this leg sent, keeping the
    /// latch policy, payload map and transcoding already set.
    pub fn update_from_sdp(&mut self, sdp: &Sdp, index: usize) {
        let fresh = LegConfig::from_sdp(sdp, index);
        let mut config = LegConfig {
            latch: self.config.latch,
            pt_map: std::mem::take(&mut self.config.pt_map),
            transcode: self.config.transcode,
            sources: std::mem::take(&mut self.config.sources),
            ..fresh
        };
        if !config.sources.is_empty() {
            config.allow_sdp_sources();
        }
        self.update(config);
    }

    pub fn set_pt_map(&mut self, map: PtMap) {
        self.config.pt_map = map;
    }

    pub fn set_transcode(&mut self, t: Option<Transcode>) {
        self.config.transcode = t;
    }

    pub fn stats(&self) -> &LegStats {
        &self.stats
    }

    /// The address RTP is latched to, if any.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.rtp_latch.map(|l| l.addr)
    }

    /// Where RTP for this leg goes: the latched source, else the SDP.
    pub fn rtp_destination(&self) -> Option<SocketAddr> {
        self.latched().or(self.config.remote_rtp)
    }

    /// Where RTCP for this leg goes, and from which local port.
    pub fn rtcp_destination(&self) -> Option<(Component, SocketAddr)> {
        if self.config.rtcp_mux {
            return Some((Component::Rtp, self.rtp_destination()?));
        }
        if let Some(l) = self.rtcp_latch {
            return Some((Component::Rtcp, l.addr));
        }
        // Latched RTP somewhere the SDP didn't say: RTCP is beside it.
        if let Some(l) = self
            .rtp_latch
            .filter(|l| Some(l.addr) != self.config.remote_rtp)
        {
            let port = l.addr.port().checked_add(1)?;
            return Some((Component::Rtcp, SocketAddr::new(l.addr.ip(), port)));
        }
        Some((Component::Rtcp, self.config.remote_rtcp?))
    }

    /// The SSRC this leg receives from the relay, once anything was sent.
    pub fn output_ssrc(&self) -> Option<u32> {
        self.out.ssrc()
    }

    /// How many times the media source toward this leg has changed.
    pub fn source_switches(&self) -> u32 {
        self.out.switches()
    }

    /// Rewrites an RTP packet from `source` and addresses it to this leg.
    pub(super) fn send_rtp(
        &mut self,
        me: Side,
        source: Source,
        h: &RtpHeader,
        buf: &mut [u8],
        now: Instant,
    ) -> Action {
        let Some(to) = self.rtp_destination() else {
            return Action::Drop(DropReason::NoDestination);
        };
        let mut pt = self.config.pt_map.map(h.payload_type);
        match (self.config.transcode, pt) {
            (Some(Transcode::UlawToAlaw), 0) => {
                for b in rtp::payload_mut(buf, h) {
                    *b = g711::linear_to_alaw(g711::ulaw_to_linear(*b));
                }
                pt = 8;
            }
            (Some(Transcode::AlawToUlaw), 8) => {
                for b in rtp::payload_mut(buf, h) {
                    *b = g711::linear_to_ulaw(g711::alaw_to_linear(*b));
                }
                pt = 0;
            }
            _ => {}
        }
        let clock = self.config.clock_rate(pt);
        if !self.out.rewrite(source, h, buf, now, pt, clock) {
            return Action::Drop(DropReason::StaleSource);
        }
        self.stats.rtp_out += 1;
        self.stats.bytes_out += buf.len() as u64;
        self.stats.last_out = Some(now);
        Action::Forward(Forward {
            via: me,
            component: Component::Rtp,
            to,
            len: buf.len(),
        })
    }
}
