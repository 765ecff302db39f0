//! Media anchoring for one call: relay ports, SDP rewriting per leg, and
//! the commands the media driver executes.

use std::collections::VecDeque;
use std::net::IpAddr;

use media::{
    LegConfig, LegOrigin, PortPair, PortPool, PtMap, Sdp, Side, Transcode, anchor, codecs_of,
};

/// The relay ports of one m-line: `a` is where the caller's phone sends
/// (advertised on the A-leg), `b` where the callee's phone sends.
#[derive(Debug)]
pub struct StreamPorts {
    pub a: PortPair,
    pub b: PortPair,
}

/// Work for the media driver (the socket side of [`media::Bridge`]).
#[derive(Debug)]
pub enum MediaCommand {
    /// Bind the relay sockets of a new call and create its bridges, one per
    /// m-line. The driver owns the port pairs from here: dropping them (on
    /// [`MediaCommand::Close`]) returns them to the pool.
    Open {
        call: u64,
        streams: Vec<StreamPorts>,
    },
    /// What signalling says about leg `side` of m-line `index`'s bridge
    /// (`Leg::new` or `Leg::update`).
    Leg {
        call: u64,
        side: Side,
        index: usize,
        config: LegConfig,
    },
    /// The call was answered: arm the media timeout.
    Connected { call: u64 },
    /// The call's sides were exchanged (a transfer by the caller): what
    /// was side A is side B now, sockets included.
    Swap { call: u64 },
    /// Music on hold toward side `to` on or off (the other side put the
    /// call on hold, or took it off). Media from the holding side is not
    /// passed on meanwhile.
    Music { call: u64, to: Side, on: bool },
    /// The call is over: close its sockets and drop its port pairs.
    Close { call: u64 },
}

/// Why media could not be set up for an offer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MediaError {
    #[error("no usable SDP offer")]
    NoOffer,
    #[error("no audio or video stream to relay")]
    NoStream,
    #[error("too many m-lines ({0})")]
    TooManyStreams(usize),
    #[error("relay ports exhausted")]
    Exhausted,
    #[error("relay ports not allocated")]
    NotOpen,
    #[error("m-line count changed from {was} to {now}")]
    StreamCountChanged { was: usize, now: usize },
    #[error("cannot anchor: {0}")]
    Anchor(#[from] media::AnchorError),
}

/// How many streams of each kind one call may relay; further m-lines are
/// refused (port 0) and get no relay ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    /// Most m-lines an offer may have at all (beyond: 488).
    pub lines: usize,
    pub audio: usize,
    pub video: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            lines: 16,
            audio: 2,
            video: 2,
        }
    }
}

/// The anchoring state of one call. Ports are taken only when the call
/// actually rings something ([`CallMedia::open`]), so calls refused by the
/// dial plan never touch the relay.
#[derive(Debug)]
pub(crate) struct CallMedia {
    call: u64,
    addr: IpAddr,
    /// m-lines of the caller's offer.
    lines: usize,
    /// Per m-line, its relayed stream (index into the port lists and the
    /// relay's bridges), `None` for a refused line.
    slots: Vec<Option<usize>>,
    a_ports: Vec<u16>,
    b_ports: Vec<u16>,
    origin_a: LegOrigin,
    origin_b: LegOrigin,
    open: bool,
    /// The last description sent to each side (A, B).
    last: [Vec<u8>; 2],
    /// The last description each side sent (what it accepts), A then B.
    declared: [Option<Sdp>; 2],
    /// Where each side's signalling comes from (A, B): its media may come
    /// from there or from its SDP addresses, nowhere else.
    signal: [Option<IpAddr>; 2],
}

pub(crate) fn parse_sdp(body: &[u8], content_type: Option<&str>) -> Option<Sdp> {
    if body.is_empty() {
        return None;
    }
    let is_sdp = content_type.is_none_or(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
    });
    if !is_sdp {
        return None;
    }
    Sdp::parse(body).ok()
}

/// Which m-lines of `offer` are relayed: the first `limits.audio` audio and
/// `limits.video` video RTP streams not already refused, numbered in order.
fn slots_of(offer: &Sdp, limits: StreamLimits) -> Vec<Option<usize>> {
    let (mut audio, mut video, mut next) = (0, 0, 0);
    offer
        .media
        .iter()
        .map(|m| {
            if m.is_rejected() || !m.is_rtp() {
                return None;
            }
            let count = match m.kind.as_str() {
                "audio" => &mut audio,
                "video" => &mut video,
                _ => return None,
            };
            let cap = if m.kind == "audio" {
                limits.audio
            } else {
                limits.video
            };
            if *count >= cap {
                return None;
            }
            *count += 1;
            next += 1;
            Some(next - 1)
        })
        .collect()
}

impl CallMedia {
    /// Checks the caller's offer and chooses the streams to relay;
    /// allocates nothing yet.
    pub fn new(
        call: u64,
        offer: &Sdp,
        addr: IpAddr,
        limits: StreamLimits,
    ) -> Result<CallMedia, MediaError> {
        let n = offer.media.len();
        if n == 0 {
            return Err(MediaError::NoOffer);
        }
        if n > limits.lines {
            return Err(MediaError::TooManyStreams(n));
        }
        let slots = slots_of(offer, limits);
        if slots.iter().all(Option::is_none) {
            return Err(MediaError::NoStream);
        }
        Ok(CallMedia {
            call,
            addr,
            lines: n,
            slots,
            a_ports: Vec::new(),
            b_ports: Vec::new(),
            origin_a: LegOrigin::new(call.wrapping_mul(2).wrapping_add(0x1000)),
            origin_b: LegOrigin::new(call.wrapping_mul(2).wrapping_add(0x1001)),
            open: false,
            last: [Vec::new(), Vec::new()],
            declared: [None, None],
            signal: [None, None],
        })
    }

    /// Relayed streams (m-lines that get ports).
    pub fn relayed(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Allocates ports for every relayed m-line of the caller's offer
    /// (from the emergency reserve too when `emergency`), queues the `Open`
    /// and the A-leg configuration. Idempotent.
    pub fn open(
        &mut self,
        pool: &PortPool,
        offer: &Sdp,
        emergency: bool,
        out: &mut VecDeque<MediaCommand>,
    ) -> Result<(), MediaError> {
        if self.open {
            return Ok(());
        }
        let take = || {
            if emergency {
                pool.allocate_emergency()
            } else {
                pool.allocate()
            }
        };
        let n = self.relayed();
        let mut streams = Vec::with_capacity(n);
        for _ in 0..n {
            // On failure the pairs taken so far drop back into the pool.
            let a = take().map_err(|_| MediaError::Exhausted)?;
            let b = take().map_err(|_| MediaError::Exhausted)?;
            streams.push(StreamPorts { a, b });
        }
        self.a_ports = streams.iter().map(|s| s.a.rtp()).collect();
        self.b_ports = streams.iter().map(|s| s.b.rtp()).collect();
        self.open = true;
        out.push_back(MediaCommand::Open {
            call: self.call,
            streams,
        });
        self.configure(Side::A, offer, out);
        Ok(())
    }

    /// Queues `Close` if ports were allocated.
    pub fn close(&mut self, out: &mut VecDeque<MediaCommand>) {
        if std::mem::take(&mut self.open) {
            out.push_back(MediaCommand::Close { call: self.call });
        }
    }

    /// m-lines of the call's descriptions.
    pub fn streams(&self) -> usize {
        self.lines
    }

    /// Rewrites `sdp` (received from the other side) for sending to `to`:
    /// relayed m-lines get the relay's ports, the others port 0 (refused).
    pub fn sdp_for(&mut self, to: Side, sdp: &Sdp) -> Result<Vec<u8>, MediaError> {
        if !self.open {
            return Err(MediaError::NotOpen);
        }
        if sdp.media.len() != self.streams() {
            return Err(MediaError::StreamCountChanged {
                was: self.streams(),
                now: sdp.media.len(),
            });
        }
        let (ports, origin) = match to {
            Side::A => (&self.a_ports, &mut self.origin_a),
            Side::B => (&self.b_ports, &mut self.origin_b),
        };
        let mut trimmed = sdp.clone();
        let mut line_ports = Vec::with_capacity(self.lines);
        for (m, slot) in trimmed.media.iter_mut().zip(&self.slots) {
            match slot.and_then(|k| ports.get(k)) {
                Some(&p) => line_ports.push(p),
                None => {
                    m.port = 0;
                    line_ports.push(0);
                }
            }
        }
        let bytes = anchor(&trimmed, self.addr, &line_ports, origin)?.to_bytes();
        self.last[usize::from(to == Side::B)] = bytes.clone();
        Ok(bytes)
    }

    /// The description last sent to `side` (empty before any).
    pub fn last_sent(&self, side: Side) -> &[u8] {
        &self.last[usize::from(side == Side::B)]
    }

    /// Queues the leg configuration of `side` from the SDP it sent, and
    /// refreshes the other side's: payload numbers and G.711 law are mapped
    /// toward each leg from what its peer was told to send with (the two
    /// legs may disagree after a hold or resume answered locally).
    pub fn configure(&mut self, side: Side, sdp: &Sdp, out: &mut VecDeque<MediaCommand>) {
        if !self.open {
            return;
        }
        self.declared[usize::from(side == Side::B)] = Some(sdp.clone());
        for s in [side, side.other()] {
            self.configure_leg(s, out);
        }
    }

    fn configure_leg(&self, side: Side, out: &mut VecDeque<MediaCommand>) {
        let Some(sdp) = &self.declared[usize::from(side == Side::B)] else {
            return;
        };
        // The peer sends with the numbers of the description it received.
        let peer_told = Sdp::parse(self.last_sent(side.other())).ok();
        for line in 0..sdp.media.len().min(self.streams()) {
            let Some(index) = self.slots.get(line).copied().flatten() else {
                continue;
            };
            let mut config = LegConfig::from_sdp(sdp, line);
            let receiver = sdp.media.get(line).map(codecs_of).unwrap_or_default();
            let sender = peer_told
                .as_ref()
                .and_then(|p| p.media.get(line))
                .map(codecs_of)
                .unwrap_or_default();
            if let Some(ip) = self.signal[usize::from(side == Side::B)] {
                config.allow_source(ip);
                config.allow_sdp_sources();
            }
            config.pt_map = PtMap::between(&sender, &receiver);
            config.transcode = Transcode::between(&sender, &receiver);
            out.push_back(MediaCommand::Leg {
                call: self.call,
                side,
                index,
                config,
            });
        }
    }

    /// Records where `side`'s signalling comes from: its media is accepted
    /// (and latched) only from there and from its SDP addresses.
    pub fn set_signal(&mut self, side: Side, ip: IpAddr) {
        self.signal[usize::from(side == Side::B)] = Some(ip);
    }

    /// The last description `side` sent (what it accepts).
    pub fn declared(&self, side: Side) -> Option<&Sdp> {
        self.declared[usize::from(side == Side::B)].as_ref()
    }

    /// Exchanges sides A and B (ports, descriptions, origins) and tells the
    /// relay to do the same.
    pub fn swap_sides(&mut self, out: &mut VecDeque<MediaCommand>) {
        std::mem::swap(&mut self.a_ports, &mut self.b_ports);
        std::mem::swap(&mut self.origin_a, &mut self.origin_b);
        self.last.swap(0, 1);
        self.declared.swap(0, 1);
        self.signal.swap(0, 1);
        if self.open {
            out.push_back(MediaCommand::Swap { call: self.call });
        }
    }

    /// Answers an offer from `side` here, without asking the other side
    /// (a hold or a resume): the codecs `side` offered that it was already
    /// told it may receive, or PCMU/PCMA (the relay converts between the
    /// two laws). `None` when nothing fits: relay the offer instead.
    pub fn local_answer(&mut self, side: Side, offer: &Sdp) -> Option<Vec<u8>> {
        let told = Sdp::parse(self.last_sent(side)).ok()?;
        if offer.media.len() != self.streams() {
            return None;
        }
        self.answer_with(side, offer, &told)
    }

    /// Answers `offer` from `side` with the codecs `other` describes (and
    /// PCMU/PCMA), anchored on `side`'s relay ports; `None` if nothing fits.
    pub fn answer_with(&mut self, side: Side, offer: &Sdp, other: &Sdp) -> Option<Vec<u8>> {
        let caps = media::Capabilities::from_sdp(other);
        let mut answer = media::answer(offer, &caps, media::Direction::SendRecv).ok()?;
        // Our own address, not the offer's (a legacy `c=0.0.0.0` hold).
        answer.sdp.connection = Some(media::sdp::Connection::new(self.addr));
        self.sdp_for(side, &answer.sdp).ok()
    }
}
