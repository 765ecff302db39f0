//! The stream a leg receives from the relay: one SSRC and continuous
//! sequence numbers and timestamps, whatever sits behind the bridge.

use std::time::Instant;

use super::Side;
use crate::rtp::{self, RtpHeader};

/// The RTP clock of video payloads (RFC 3551); audio clocks are lower.
const VIDEO_CLOCK: u32 = 90_000;

/// Who produced a packet the relay sends to a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The leg on this side of the bridge.
    Leg(Side),
    /// Something the engine generates (music on hold, a prompt), by tag.
    Local(u32),
}

/// An input stream: its producer and the SSRC it uses.
type Key = (Source, u32);

/// Output state toward one leg. The first source's SSRC, numbers and
/// timestamps pass unchanged; on every change of source (another producer,
/// or a new SSRC from the same one) the offsets are re-based so the leg
/// sees sequence `last + 1`, a timestamp advanced by the wall-clock time
/// since the last packet, and (for audio) the marker bit.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutStream {
    ssrc: Option<u32>,
    current: Option<Key>,
    /// The SSRC a producer replaced: late packets of it are dropped instead
    /// of switching back.
    stale: Option<Key>,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    last_at: Option<Instant>,
    switches: u32,
}

/// Samples of `clock_rate` in the time since `since`, at least 20 ms worth
/// so two packets can never share a timestamp across a switch.
fn samples_since(since: Option<Instant>, now: Instant, clock_rate: u32) -> u32 {
    let floor = u64::from(clock_rate / 50).max(1);
    let elapsed = since.map_or(0, |t| now.saturating_duration_since(t).as_micros());
    let samples = (elapsed as u64).saturating_mul(u64::from(clock_rate)) / 1_000_000;
    samples.max(floor) as u32 // wraps like RTP time does
}

impl OutStream {
    /// The SSRC this leg sees, once anything has been sent.
    pub(crate) fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    /// How many times the source changed after the first.
    pub(crate) fn switches(&self) -> u32 {
        self.switches
    }

    /// Forgets the current producer: the next packet re-bases the stream
    /// whatever its SSRC (the far side of the bridge was replaced).
    pub(crate) fn source_changed(&mut self) {
        self.current = None;
        self.stale = None;
    }

    /// Rewrites `buf` (whose header is `h`) for this leg. `out_pt` is the
    /// payload type after mapping, `clock_rate` its RTP clock. Returns false
    /// for a late packet of a replaced SSRC, which must be dropped.
    pub(crate) fn rewrite(
        &mut self,
        source: Source,
        h: &RtpHeader,
        buf: &mut [u8],
        now: Instant,
        out_pt: u8,
        clock_rate: u32,
    ) -> bool {
        let key = (source, h.ssrc);
        if self.stale == Some(key) {
            return false;
        }
        let mut marker = h.marker;
        if self.current != Some(key) {
            match self.ssrc {
                None => self.ssrc = Some(h.ssrc),
                Some(_) => {
                    let advance = samples_since(self.last_at, now, clock_rate);
                    self.seq_offset = self.last_seq.wrapping_add(1).wrapping_sub(h.sequence);
                    self.ts_offset = self.last_ts.wrapping_add(advance).wrapping_sub(h.timestamp);
                    self.switches += 1;
                    // Audio marks the start of a talkspurt; in video the
                    // marker ends a frame, so it is left as sent there.
                    marker |= clock_rate < VIDEO_CLOCK;
                }
            }
            self.stale = self.current.filter(|(s, _)| *s == source);
            self.current = Some(key);
            // Force the first packet of the new source to be "newest".
            self.last_at = None;
        }
        let seq = h.sequence.wrapping_add(self.seq_offset);
        let ts = h.timestamp.wrapping_add(self.ts_offset);
        // Track the newest packet sent; reordered older ones don't move it.
        if self.last_at.is_none() || (seq.wrapping_sub(self.last_seq) as i16) > 0 {
            self.last_seq = seq;
            self.last_ts = ts;
            self.last_at = Some(now);
        }
        rtp::set_sequence(buf, seq);
        rtp::set_timestamp(buf, ts);
        rtp::set_ssrc(buf, self.ssrc.unwrap_or(h.ssrc));
        rtp::set_payload_type(buf, out_pt);
        rtp::set_marker(buf, marker);
        true
    }

    /// For an RTCP sender report from `source` about `ssrc`: the SSRC and
    /// timestamp offset its media is sent to this leg with.
    pub(crate) fn sender_map(&self, source: Source, ssrc: u32) -> Option<(u32, u32)> {
        (self.current == Some((source, ssrc))).then_some((self.ssrc?, self.ts_offset))
    }

    /// For a report block this leg wrote about `reported` (the SSRC it
    /// receives from us): the SSRC `source` really sends the stream with.
    /// `None` when the stream comes from elsewhere (music on hold).
    pub(crate) fn reported(&self, reported: u32, source: Source) -> Option<u32> {
        let (current, input) = self.current?;
        (current == source && Some(reported) == self.ssrc).then_some(input)
    }
}
