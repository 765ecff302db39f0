//! The decoded receive path of a leg (conferences, IVR, recording): RTP
//! validation, the jitter buffer, G.711/G.722 decoding with loss concealment
//! and the RFC 4733 telephone-event detector, fed a sequence of datagrams.
//!
//! Never panics; every frame played out is one 20 ms frame at the leg's rate.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media::jitter::JitterConfig;
use media::leg_input::LegInput;
use media::mixer::MixCodec;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let (codec, audio_pt) = match flags % 3 {
        0 => (MixCodec::Pcmu, 0),
        1 => (MixCodec::Pcma, 8),
        _ => (MixCodec::G722, 9),
    };
    let depth = 1 + u16::from(flags >> 2 & 7);
    let jitter = JitterConfig {
        depth,
        prefill: u16::from(flags >> 5).min(depth),
    };
    let mut leg = LegInput::new(codec, audio_pt, Some(101), jitter);
    let start = Instant::now();
    let mut now = start;
    // records: one length byte, then that many bytes of datagram
    while let Some((&len, tail)) = rest.split_first() {
        let (packet, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        now += Duration::from_millis(20);
        let _ = leg.on_rtp(packet, now);
        for _ in 0..=(len & 1) {
            if let Some(frame) = leg.tick() {
                assert_eq!(frame.samples().len(), leg.codec().rate().frame_len());
            }
        }
        while leg.poll_dtmf().is_some() {}
        if let Some(due) = leg.poll_timeout() {
            if due <= now + Duration::from_millis(100) {
                leg.handle_timeout(due.max(now));
            }
        }
    }
    let _ = leg.bad_frames();
});
