//! The conference mixer: N participants, one 20 ms tick at a time.
//!
//! Each tick the caller pushes every participant's payload (or a PCM frame,
//! e.g. a concealed one from the jitter buffer), calls [`Mixer::tick`], and
//! sends each participant [`Mixer::output`]. What a tick does:
//!
//! - decodes every input (G.711 µ/A-law at 8 kHz, G.722 at 16 kHz) and
//!   measures its energy; muted participants count as silent;
//! - picks the talkers: the loudest `max_talkers` (default 3) whose level
//!   is above a floor. Levels rise at once and decay by a quarter a tick;
//!   a full talker set changes only when a newcomer's level beats the
//!   weakest talker's by `hysteresis` (default 2×, 3 dB), so it does not
//!   flap between two voices of similar level;
//! - runs the room at 16 kHz when any participant uses G.722, else 8 kHz;
//!   narrowband talkers are upsampled and narrowband listeners' mixes
//!   downsampled (half-band FIR, see [`crate::pcm`]);
//! - sums the talkers (saturating to 16 bits). Every talker hears the sum
//!   minus its own voice, encoded for it alone; every other participant
//!   hears the whole sum, encoded once per codec and shared by all the
//!   listeners of that codec.
//!
//! A G.722 participant that becomes a talker takes over a copy of the
//! shared G.722 encoder's state, so its far-end decoder, which was tracking
//! the shared stream, stays in step. Going the other way the far-end
//! decoder's state is off for a moment (ADPCM re-converges within a few
//! milliseconds).
//!
//! Only 20 ms payloads are accepted (160 bytes for all three codecs). The
//! call engine does not use this yet: conference rooms will drive one
//! mixer each from their own task.

use std::collections::HashMap;

use crate::g711;
use crate::g722;
use crate::pcm::{Downsampler, Frame, Rate, Upsampler, WIDE_LEN};

#[cfg(test)]
mod tests;

/// Caller-chosen participant key (e.g. the leg id).
pub type ParticipantId = u64;

/// The codecs the mixer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MixCodec {
    Pcmu,
    Pcma,
    G722,
}

impl MixCodec {
    const ALL: [MixCodec; 3] = [MixCodec::Pcmu, MixCodec::Pcma, MixCodec::G722];

    pub fn rate(self) -> Rate {
        match self {
            MixCodec::Pcmu | MixCodec::Pcma => Rate::Narrow,
            MixCodec::G722 => Rate::Wide,
        }
    }

    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            MixCodec::Pcmu => 0,
            MixCodec::Pcma => 8,
            MixCodec::G722 => 9,
        }
    }

    /// The codec of a static payload type, if the mixer speaks it.
    pub fn from_payload_type(pt: u8) -> Option<MixCodec> {
        MixCodec::ALL.into_iter().find(|c| c.payload_type() == pt)
    }

    /// Bytes in 20 ms: 160 for all three.
    pub const FRAME_BYTES: usize = 160;

    fn index(self) -> usize {
        self as usize
    }
}

/// Mixer settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixerConfig {
    /// How many of the loudest participants are mixed.
    pub max_talkers: usize,
    /// How much louder (energy ratio) a newcomer must be than the weakest
    /// talker to replace it when the talker set is full.
    pub hysteresis: f64,
    /// Level (mean square) below which nobody counts as talking:
    /// 3,600 is an RMS of 60, about −55 dBFS.
    pub talk_floor: u64,
}

impl Default for MixerConfig {
    fn default() -> Self {
        MixerConfig {
            max_talkers: 3,
            hysteresis: 2.0,
            talk_floor: 3_600,
        }
    }
}

/// Why the mixer refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixerError {
    #[error("participant {0} is already in the mix")]
    AlreadyJoined(ParticipantId),
    #[error("participant {0} is not in the mix")]
    Unknown(ParticipantId),
    #[error("{codec:?} payload of {got} bytes; the mixer takes 20 ms frames of {expected} bytes")]
    BadPayloadLength {
        codec: MixCodec,
        expected: usize,
        got: usize,
    },
    #[error("a {got:?} frame for a {codec:?} participant; it needs {expected:?}")]
    WrongRate {
        codec: MixCodec,
        expected: Rate,
        got: Rate,
    },
}

/// One participant's encoded 20 ms for this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output<'a> {
    pub codec: MixCodec,
    pub payload: &'a [u8],
    /// The payload is the shared mix of its codec (the participant is not a
    /// talker), the same bytes every such listener gets.
    pub shared: bool,
}

/// What the last tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickStats {
    pub talkers: usize,
    /// Payloads encoded: one per talker plus one per codec with listeners.
    pub encodes: usize,
}

#[derive(Debug, Clone)]
struct Participant {
    id: ParticipantId,
    codec: MixCodec,
    muted: bool,
    decoder: Option<g722::Decoder>,
    encoder: Option<g722::Encoder>,
    up: Upsampler,
    down: Downsampler,
    /// This tick's input at the participant's own rate.
    input: Frame,
    has_input: bool,
    /// This tick's input at the room rate (valid for talkers).
    room_input: Frame,
    level: u64,
    talker: bool,
    out: Vec<u8>,
}

impl Participant {
    fn new(id: ParticipantId, codec: MixCodec) -> Self {
        let wide = codec == MixCodec::G722;
        Participant {
            id,
            codec,
            muted: false,
            decoder: wide.then(g722::Decoder::new),
            encoder: wide.then(g722::Encoder::new),
            up: Upsampler::new(),
            down: Downsampler::new(),
            input: Frame::silence(codec.rate()),
            has_input: false,
            room_input: Frame::silence(codec.rate()),
            level: 0,
            talker: false,
            out: Vec::with_capacity(MixCodec::FRAME_BYTES),
        }
    }
}

#[derive(Debug, Clone)]
struct SharedMix {
    encoder: g722::Encoder,
    payload: Vec<u8>,
}

/// One room's mixer. Sans-IO: no clock (the caller's tick is the clock).
#[derive(Debug, Clone)]
pub struct Mixer {
    config: MixerConfig,
    participants: Vec<Participant>,
    index: HashMap<ParticipantId, usize>,
    wide: bool,
    shared: [SharedMix; 3],
    shared_down: Downsampler,
    acc: Vec<i32>,
    stats: TickStats,
}

impl Default for Mixer {
    fn default() -> Self {
        Self::new(MixerConfig::default())
    }
}

fn saturate(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

fn encode(codec: MixCodec, frame: &Frame, g722: Option<&mut g722::Encoder>, out: &mut Vec<u8>) {
    out.clear();
    match codec {
        MixCodec::Pcmu => out.extend(frame.samples().iter().map(|&s| g711::linear_to_ulaw(s))),
        MixCodec::Pcma => out.extend(frame.samples().iter().map(|&s| g711::linear_to_alaw(s))),
        MixCodec::G722 => {
            if let Some(enc) = g722 {
                enc.encode(frame.samples(), out);
            }
        }
    }
}

impl Mixer {
    pub fn new(config: MixerConfig) -> Self {
        let shared = || SharedMix {
            encoder: g722::Encoder::new(),
            payload: Vec::with_capacity(MixCodec::FRAME_BYTES),
        };
        Mixer {
            config,
            participants: Vec::new(),
            index: HashMap::new(),
            wide: false,
            shared: [shared(), shared(), shared()],
            shared_down: Downsampler::new(),
            acc: vec![0; WIDE_LEN],
            stats: TickStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.participants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// The room's rate: wide while any participant uses G.722.
    pub fn rate(&self) -> Rate {
        if self.wide { Rate::Wide } else { Rate::Narrow }
    }

    pub fn stats(&self) -> TickStats {
        self.stats
    }

    /// The current talkers.
    pub fn talkers(&self) -> Vec<ParticipantId> {
        self.participants
            .iter()
            .filter(|p| p.talker)
            .map(|p| p.id)
            .collect()
    }

    pub fn is_talking(&self, id: ParticipantId) -> bool {
        self.get(id).is_some_and(|p| p.talker)
    }

    fn get(&self, id: ParticipantId) -> Option<&Participant> {
        self.index.get(&id).map(|&i| &self.participants[i])
    }

    fn get_mut(&mut self, id: ParticipantId) -> Result<&mut Participant, MixerError> {
        match self.index.get(&id) {
            Some(&i) => Ok(&mut self.participants[i]),
            None => Err(MixerError::Unknown(id)),
        }
    }

    pub fn add(&mut self, id: ParticipantId, codec: MixCodec) -> Result<(), MixerError> {
        if self.index.contains_key(&id) {
            return Err(MixerError::AlreadyJoined(id));
        }
        self.index.insert(id, self.participants.len());
        self.participants.push(Participant::new(id, codec));
        self.update_rate();
        Ok(())
    }

    /// Takes a participant out; it is simply absent from the next tick.
    pub fn remove(&mut self, id: ParticipantId) -> bool {
        let Some(i) = self.index.remove(&id) else {
            return false;
        };
        self.participants.swap_remove(i);
        if let Some(moved) = self.participants.get(i) {
            self.index.insert(moved.id, i);
        }
        self.update_rate();
        true
    }

    fn update_rate(&mut self) {
        let wide = self.participants.iter().any(|p| p.codec == MixCodec::G722);
        if wide != self.wide {
            self.wide = wide;
            // Filter histories belong to the old rate.
            self.shared_down = Downsampler::new();
            for p in &mut self.participants {
                p.up = Upsampler::new();
                p.down = Downsampler::new();
            }
        }
    }

    /// A muted participant still hears the room but adds nothing to it.
    pub fn set_muted(&mut self, id: ParticipantId, muted: bool) -> Result<(), MixerError> {
        self.get_mut(id)?.muted = muted;
        Ok(())
    }

    pub fn is_muted(&self, id: ParticipantId) -> Option<bool> {
        self.get(id).map(|p| p.muted)
    }

    /// This tick's 20 ms RTP payload from a participant, in its codec.
    pub fn push_payload(&mut self, id: ParticipantId, payload: &[u8]) -> Result<(), MixerError> {
        let p = self.get_mut(id)?;
        if payload.len() != MixCodec::FRAME_BYTES {
            return Err(MixerError::BadPayloadLength {
                codec: p.codec,
                expected: MixCodec::FRAME_BYTES,
                got: payload.len(),
            });
        }
        p.input = Frame::silence(p.codec.rate());
        let s = p.input.samples_mut();
        match (p.codec, p.decoder.as_mut()) {
            (MixCodec::Pcmu, _) => {
                for (o, &b) in s.iter_mut().zip(payload) {
                    *o = g711::ulaw_to_linear(b);
                }
            }
            (MixCodec::Pcma, _) => {
                for (o, &b) in s.iter_mut().zip(payload) {
                    *o = g711::alaw_to_linear(b);
                }
            }
            (MixCodec::G722, Some(dec)) => dec.decode_into(payload, s),
            (MixCodec::G722, None) => {}
        }
        p.has_input = true;
        Ok(())
    }

    /// This tick's audio from a participant as PCM at its codec's rate
    /// (a concealed frame, or a player's).
    pub fn push_frame(&mut self, id: ParticipantId, frame: &Frame) -> Result<(), MixerError> {
        let p = self.get_mut(id)?;
        if frame.rate() != p.codec.rate() {
            return Err(MixerError::WrongRate {
                codec: p.codec,
                expected: p.codec.rate(),
                got: frame.rate(),
            });
        }
        p.input = *frame;
        p.has_input = true;
        Ok(())
    }

    /// What a participant is sent for the last tick.
    pub fn output(&self, id: ParticipantId) -> Option<Output<'_>> {
        let p = self.get(id)?;
        Some(if p.talker {
            Output {
                codec: p.codec,
                payload: &p.out,
                shared: false,
            }
        } else {
            Output {
                codec: p.codec,
                payload: &self.shared[p.codec.index()].payload,
                shared: true,
            }
        })
    }

    fn select_talkers(&mut self) {
        let cfg = self.config;
        for p in &mut self.participants {
            let energy = if p.has_input && !p.muted {
                p.input.energy()
            } else {
                0
            };
            p.level = energy.max(p.level - p.level / 4);
            if p.muted {
                p.level = 0;
            }
            if p.talker && p.level < cfg.talk_floor {
                p.talker = false;
            }
        }
        let mut candidates: Vec<usize> = (0..self.participants.len())
            .filter(|&i| {
                let p = &self.participants[i];
                !p.talker && p.level >= cfg.talk_floor
            })
            .collect();
        candidates.sort_by_key(|&i| std::cmp::Reverse(self.participants[i].level));
        let mut talkers: Vec<usize> = (0..self.participants.len())
            .filter(|&i| self.participants[i].talker)
            .collect();
        // The limit may have been lowered: drop the weakest first.
        talkers.sort_by_key(|&i| std::cmp::Reverse(self.participants[i].level));
        while talkers.len() > cfg.max_talkers {
            if let Some(i) = talkers.pop() {
                self.participants[i].talker = false;
            }
        }
        for c in candidates {
            let level = self.participants[c].level;
            if talkers.len() < cfg.max_talkers {
                talkers.push(c);
            } else {
                let Some((w, &weakest)) = talkers
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, i)| self.participants[**i].level)
                else {
                    break; // max_talkers is 0
                };
                if (level as f64) <= self.participants[weakest].level as f64 * cfg.hysteresis {
                    break; // candidates are sorted: nobody further wins either
                }
                self.participants[weakest].talker = false;
                talkers[w] = c;
            }
            let shared_g722 = &self.shared[MixCodec::G722.index()].encoder;
            let p = &mut self.participants[c];
            p.talker = true;
            if p.codec == MixCodec::G722 {
                // Continue the stream the far end has been decoding.
                p.encoder = Some(shared_g722.clone());
            }
        }
    }

    /// Mixes one 20 ms tick. Inputs not pushed since the last tick count
    /// as silence; all inputs are consumed.
    pub fn tick(&mut self) {
        self.select_talkers();
        let room = self.rate();
        let n = room.frame_len();
        self.acc[..n].fill(0);
        let mut talkers = 0;
        for p in &mut self.participants {
            if !p.has_input {
                p.input = Frame::silence(p.codec.rate());
            }
            let narrow_in_wide = room == Rate::Wide && p.codec.rate() == Rate::Narrow;
            if p.talker {
                talkers += 1;
                p.room_input = if narrow_in_wide {
                    p.up.process(&p.input)
                } else {
                    p.input
                };
                for (a, &s) in self.acc[..n].iter_mut().zip(p.room_input.samples()) {
                    *a += i32::from(s);
                }
            } else if narrow_in_wide {
                p.up.skip(&p.input);
            }
            p.has_input = false;
        }
        let mut total = Frame::silence(room);
        for (o, &a) in total.samples_mut().iter_mut().zip(&self.acc[..n]) {
            *o = saturate(a);
        }
        let total_narrow = if room == Rate::Wide {
            self.shared_down.process(&total)
        } else {
            total
        };
        // The shared mixes, once per codec that has a listener.
        let mut listening = [false; 3];
        for p in &self.participants {
            if !p.talker {
                listening[p.codec.index()] = true;
            }
        }
        let mut encodes = 0;
        for codec in MixCodec::ALL {
            let s = &mut self.shared[codec.index()];
            if listening[codec.index()] || codec == MixCodec::G722 && self.wide {
                // The shared G.722 encoder runs every wide tick so that a
                // talker that falls silent can rejoin its stream.
                let frame = if codec.rate() == Rate::Wide {
                    &total
                } else {
                    &total_narrow
                };
                encode(codec, frame, Some(&mut s.encoder), &mut s.payload);
                encodes += usize::from(listening[codec.index()]);
            } else {
                s.payload.clear();
            }
        }
        // Each talker's own mix: everyone but itself.
        for p in &mut self.participants {
            let narrow_in_wide = room == Rate::Wide && p.codec.rate() == Rate::Narrow;
            if !p.talker {
                if narrow_in_wide {
                    p.down.skip(&total);
                }
                continue;
            }
            let mut own = Frame::silence(room);
            for ((o, &a), &mine) in own
                .samples_mut()
                .iter_mut()
                .zip(&self.acc[..n])
                .zip(p.room_input.samples())
            {
                *o = saturate(a - i32::from(mine));
            }
            let own = if narrow_in_wide {
                p.down.process(&own)
            } else {
                own
            };
            encode(p.codec, &own, p.encoder.as_mut(), &mut p.out);
            encodes += 1;
        }
        self.stats = TickStats { talkers, encodes };
    }
}
