//! The receive side of one decoded leg: RTP packets in, one PCM frame per
//! 20 ms tick out, and keypad digits on the side.
//!
//! [`LegInput`] ties the pieces together for a leg that is mixed, recorded
//! or listened to for digits: audio packets (the leg's negotiated G.711 or
//! G.722 payload type) go through a [`JitterBuffer`] and are decoded at
//! the tick, a lost frame is concealed ([`Concealer`]), and RFC 4733
//! telephone-events go to a [`DtmfDetector`]. A new SSRC (the far end
//! restarted its stream, e.g. after a re-INVITE) resets the buffer and the
//! decoder. The caller passes only packets already accepted from the leg's
//! flow (the relay's latching decides that); anything else here is refused
//! with a reason, never a panic.
//!
//! The call engine does not use this yet.

use std::time::Instant;

use crate::dtmf::{DtmfDetector, DtmfError, DtmfEvent};
use crate::g711;
use crate::g722;
use crate::jitter::{Concealer, JitterBuffer, JitterConfig, Playout, Pushed};
use crate::mixer::MixCodec;
use crate::pcm::Frame;
use crate::rtp::{self, RtpError};

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegInputError {
    #[error("not RTP: {0}")]
    Rtp(#[from] RtpError),
    #[error("payload type {got} is neither the leg's audio ({audio}) nor its telephone-event type")]
    UnexpectedPayloadType { got: u8, audio: u8 },
    #[error(transparent)]
    Dtmf(#[from] DtmfError),
}

/// One leg's decoding receive path.
#[derive(Debug, Clone)]
pub struct LegInput {
    codec: MixCodec,
    audio_pt: u8,
    event_pt: Option<u8>,
    jitter_config: JitterConfig,
    jitter: JitterBuffer,
    concealer: Concealer,
    g722: g722::Decoder,
    dtmf: DtmfDetector,
    ssrc: Option<u32>,
    bad_frames: u64,
}

impl LegInput {
    /// `audio_pt` and `event_pt` are the payload types the leg negotiated
    /// for its codec and for telephone-event (8 kHz), if any.
    pub fn new(codec: MixCodec, audio_pt: u8, event_pt: Option<u8>, jitter: JitterConfig) -> Self {
        LegInput {
            codec,
            audio_pt,
            event_pt,
            jitter_config: jitter,
            jitter: JitterBuffer::new(jitter),
            concealer: Concealer::new(codec.rate()),
            g722: g722::Decoder::new(),
            dtmf: DtmfDetector::default(),
            ssrc: None,
            bad_frames: 0,
        }
    }

    pub fn codec(&self) -> MixCodec {
        self.codec
    }

    pub fn jitter(&self) -> &JitterBuffer {
        &self.jitter
    }

    /// Audio payloads that were not 20 ms long (concealed instead).
    pub fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    /// One RTP datagram from the leg.
    pub fn on_rtp(&mut self, packet: &[u8], now: Instant) -> Result<(), LegInputError> {
        let h = rtp::parse_rtp(packet)?;
        let payload = rtp::payload(packet, &h);
        if Some(h.payload_type) == self.event_pt {
            self.dtmf.on_packet(h.timestamp, payload, now)?;
            return Ok(());
        }
        if h.payload_type != self.audio_pt {
            return Err(LegInputError::UnexpectedPayloadType {
                got: h.payload_type,
                audio: self.audio_pt,
            });
        }
        if self.ssrc != Some(h.ssrc) {
            if self.ssrc.is_some() {
                self.jitter = JitterBuffer::new(self.jitter_config);
                self.g722 = g722::Decoder::new();
            }
            self.ssrc = Some(h.ssrc);
        }
        let _: Pushed = self.jitter.push(h.sequence, payload);
        Ok(())
    }

    /// The 20 ms tick: this tick's frame, or `None` while the buffer fills
    /// (or between talk-spurts).
    pub fn tick(&mut self) -> Option<Frame> {
        match self.jitter.pop() {
            Playout::Waiting => None,
            Playout::Lost { .. } => Some(self.concealer.conceal()),
            Playout::Packet { payload, .. } => {
                if payload.len() != MixCodec::FRAME_BYTES {
                    self.bad_frames += 1;
                    return Some(self.concealer.conceal());
                }
                let mut f = Frame::silence(self.codec.rate());
                let out = f.samples_mut();
                match self.codec {
                    MixCodec::Pcmu => {
                        for (o, &b) in out.iter_mut().zip(&payload) {
                            *o = g711::ulaw_to_linear(b);
                        }
                    }
                    MixCodec::Pcma => {
                        for (o, &b) in out.iter_mut().zip(&payload) {
                            *o = g711::alaw_to_linear(b);
                        }
                    }
                    MixCodec::G722 => self.g722.decode_into(&payload, out),
                }
                self.concealer.good(&f);
                Some(f)
            }
        }
    }

    /// The next keypad event.
    pub fn poll_dtmf(&mut self) -> Option<DtmfEvent> {
        self.dtmf.poll_event()
    }

    /// When [`Self::handle_timeout`] is next due (a digit whose end
    /// packets may have been lost).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dtmf.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.dtmf.handle_timeout(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::{char_event, encode_event};
    use crate::mixer::Mixer;
    use crate::rtp::build_rtp;
    use crate::tone::{ToneGenerator, tone_share};
    use std::time::Duration;

    const EVENT_PT: u8 = 101;

    fn ulaw(pcm: &[i16]) -> Vec<u8> {
        pcm.iter().map(|&s| g711::linear_to_ulaw(s)).collect()
    }

    /// Three phones send tones over a network that reorders, duplicates and
    /// drops packets; one of them keys a PIN whose first event packets and
    /// end packets are partly lost and duplicated. Through `LegInput` and the
    /// mixer, each phone hears the other two tones, and the PIN arrives
    /// intact, each digit once.
    #[test]
    fn rtp_through_jitter_buffer_and_mixer_with_a_pin() {
        let freqs = [500.0, 900.0, 1400.0];
        let mut gens: Vec<ToneGenerator> = freqs
            .iter()
            .map(|&f| ToneGenerator::new(f, 8000, 6000))
            .collect();
        let mut legs: Vec<LegInput> = (0..3)
            .map(|_| LegInput::new(MixCodec::Pcmu, 0, Some(EVENT_PT), JitterConfig::default()))
            .collect();
        let mut mixer = Mixer::default();
        for id in 0..3 {
            mixer.add(id, MixCodec::Pcmu).unwrap();
        }
        // The PIN from phone 0: each digit 100 ms, 200 ms apart.
        let mut dtmf: Vec<(usize, Vec<u8>)> = Vec::new();
        for (k, c) in "1234#".chars().enumerate() {
            let start_tick = 10 + k * 10;
            let ts = (start_tick * 160) as u32;
            let pkts = encode_event(char_event(c).unwrap(), ts, 100, 10);
            for (j, p) in pkts.iter().enumerate() {
                // Digit 2 loses its first two packets; digit 3 all but one
                // end packet; every end packet of digit 4 is sent twice more.
                if (k == 1 && j < 2) || (k == 2 && j >= pkts.len() - 2) {
                    continue;
                }
                let tick = start_tick + j.min(4);
                let pkt = build_rtp(
                    EVENT_PT,
                    5000 + (k * 10 + j) as u16,
                    p.timestamp,
                    7,
                    p.marker,
                    &p.payload,
                );
                dtmf.push((tick, pkt.clone()));
                if k == 3 && j >= pkts.len() - 3 {
                    dtmf.push((tick + 1, pkt));
                }
            }
        }
        let t0 = Instant::now();
        let mut heard: Vec<Vec<i16>> = vec![Vec::new(); 3];
        let mut held: Vec<(usize, Vec<u8>)> = Vec::new();
        for tick in 0..120usize {
            let now = t0 + Duration::from_millis(20 * tick as u64);
            for (id, g) in gens.iter_mut().enumerate() {
                let seq = tick as u16;
                let pkt = build_rtp(
                    0,
                    seq,
                    (tick * 160) as u32,
                    id as u32,
                    false,
                    &ulaw(&g.samples(160)),
                );
                match (id, tick % 7) {
                    (1, 3) => held.push((id, pkt)), // delivered one tick late: reordered
                    (2, 5) => {}                    // lost
                    (0, 2) => {
                        legs[id].on_rtp(&pkt, now).unwrap();
                        legs[id].on_rtp(&pkt, now).unwrap(); // duplicated
                    }
                    _ => legs[id].on_rtp(&pkt, now).unwrap(),
                }
            }
            for (id, pkt) in std::mem::take(&mut held) {
                if tick % 7 == 4 {
                    legs[id].on_rtp(&pkt, now).unwrap();
                } else {
                    held.push((id, pkt));
                }
            }
            for (_, pkt) in dtmf.iter().filter(|(t, _)| *t == tick) {
                legs[0].on_rtp(pkt, now).unwrap();
            }
            for leg in &mut legs {
                leg.handle_timeout(now);
            }
            for (id, leg) in legs.iter_mut().enumerate() {
                if let Some(f) = leg.tick() {
                    mixer.push_frame(id as u64, &f).unwrap();
                }
            }
            mixer.tick();
            for (id, h) in heard.iter_mut().enumerate() {
                let out = mixer.output(id as u64).unwrap();
                if tick >= 20 {
                    h.extend(out.payload.iter().map(|&b| g711::ulaw_to_linear(b)));
                }
            }
        }
        for (id, h) in heard.iter().enumerate() {
            for (other, &f) in freqs.iter().enumerate() {
                let share = tone_share(h, f, 8000);
                if other == id {
                    assert!(share < 0.01, "{id} hears itself: {share}");
                } else {
                    assert!(share > 0.3, "{id} misses {f} Hz: {share}");
                }
            }
        }
        let pin: String = std::iter::from_fn(|| legs[0].poll_dtmf())
            .filter_map(|e| e.began_char())
            .collect();
        assert_eq!(pin, "1234#");
        let s = legs[0].jitter().stats();
        assert!(s.duplicates >= 10, "{s:?}");
        assert!(legs[2].jitter().stats().lost >= 10);
        assert_eq!(
            legs[1].jitter().stats().late,
            0,
            "reordering within the depth is absorbed"
        );
    }

    #[test]
    fn foreign_packets_are_refused_with_a_reason() {
        let mut leg = LegInput::new(MixCodec::Pcma, 8, None, JitterConfig::default());
        let now = Instant::now();
        assert!(matches!(
            leg.on_rtp(&[0x80, 0], now),
            Err(LegInputError::Rtp(_))
        ));
        let err = leg
            .on_rtp(&build_rtp(0, 1, 0, 1, false, &[0; 160]), now)
            .unwrap_err();
        assert!(err.to_string().contains("payload type 0"), "{err}");
        // Telephone-events without a negotiated type are foreign too.
        assert!(
            leg.on_rtp(&build_rtp(101, 1, 0, 1, false, &[1, 0, 0, 160]), now)
                .is_err()
        );
        // A short audio payload is concealed, not decoded.
        leg.on_rtp(&build_rtp(8, 1, 0, 1, false, &[0xd5; 80]), now)
            .unwrap();
        leg.on_rtp(&build_rtp(8, 2, 160, 1, false, &[0xd5; 160]), now)
            .unwrap();
        assert_eq!(leg.tick().map(|f| f.energy()), Some(0));
        assert_eq!(leg.bad_frames(), 1);
    }

    /// A new SSRC restarts the stream: its packets are played, not
    /// dropped as late against the old sequence numbers.
    #[test]
    fn a_new_ssrc_resets_the_buffer() {
        let mut leg = LegInput::new(MixCodec::Pcmu, 0, None, JitterConfig::default());
        let now = Instant::now();
        let loud = ulaw(&[8000; 160]);
        for seq in 100..103u16 {
            leg.on_rtp(&build_rtp(0, seq, 0, 1, false, &[0xff; 160]), now)
                .unwrap();
        }
        leg.tick();
        leg.on_rtp(&build_rtp(0, 7, 0, 2, false, &loud), now)
            .unwrap();
        leg.on_rtp(&build_rtp(0, 8, 160, 2, false, &loud), now)
            .unwrap();
        let f = leg.tick().unwrap();
        assert!(f.energy() > 1_000_000, "{}", f.energy());
        assert_eq!(leg.jitter().stats().late, 0);
    }
}
