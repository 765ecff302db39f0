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

/// The anchoring state of one call. Ports are taken only when the call
/// actually rings something ([`CallMedia::open`]), so calls refused by the
/// dial plan never touch the relay.
#[derive(Debug)]
pub(crate) struct CallMedia {
    call: u64,
    addr: IpAddr,
    streams: usize,
    a_ports: Vec<u16>,
    b_ports: Vec<u16>,
    origin_a: LegOrigin,
    origin_b: LegOrigin,
    open: bool,
    /// The last description sent to each side (A, B).
    last: [Vec<u8>; 2],
    /// The last description each side sent (what it accepts), A then B.
    declared: [Option<Sdp>; 2],
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

impl CallMedia {
    /// Checks the caller's offer; allocates nothing yet.
    pub fn new(
        call: u64,
        offer: &Sdp,
        addr: IpAddr,
        max_streams: usize,
    ) -> Result<CallMedia, MediaError> {
        let n = offer.media.len();
        if n == 0 {
            return Err(MediaError::NoOffer);
        }
        if n > max_streams {
            return Err(MediaError::TooManyStreams(n));
        }
        Ok(CallMedia {
            call,
            addr,
            streams: n,
            a_ports: Vec::new(),
            b_ports: Vec::new(),
            origin_a: LegOrigin::new(call.wrapping_mul(2).wrapping_add(0x1000)),
            origin_b: LegOrigin::new(call.wrapping_mul(2).wrapping_add(0x1001)),
            open: false,
            last: [Vec::new(), Vec::new()],
            declared: [None, None],
        })
    }

    /// Allocates ports for every m-line of the caller's offer, queues the
    /// `Open` and the A-leg configuration. Idempotent.
    pub fn open(
        &mut self,
        pool: &PortPool,
        offer: &Sdp,
        out: &mut VecDeque<MediaCommand>,
    ) -> Result<(), MediaError> {
        if self.open {
            return Ok(());
        }
        let mut streams = Vec::with_capacity(self.streams);
        for _ in 0..self.streams {
            // On failure the pairs taken so far drop back into the pool.
            let a = pool.allocate().map_err(|_| MediaError::Exhausted)?;
            let b = pool.allocate().map_err(|_| MediaError::Exhausted)?;
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

    pub fn streams(&self) -> usize {
        self.streams
    }

    /// Rewrites `sdp` (received from the other side) for sending to `to`.
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
        let bytes = anchor(sdp, self.addr, ports, origin)?.to_bytes();
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
        for index in 0..sdp.media.len().min(self.streams()) {
            let mut config = LegConfig::from_sdp(sdp, index);
            let receiver = sdp.media.get(index).map(codecs_of).unwrap_or_default();
            let sender = peer_told
                .as_ref()
                .and_then(|p| p.media.get(index))
                .map(codecs_of)
                .unwrap_or_default();
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
