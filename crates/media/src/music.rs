//! Music on hold: a generated, royalty-free melody in 20 ms G.711 frames.
//!
//! A slow arpeggio over four chords (C, A minor, F, G), each note a soft
//! sine with its octave, shaped by an attack/decay envelope so nothing
//! clicks, at a comfortable level (peaks about −10 dBFS, well below the clipping of G.711). No file to ship or
//! license; the same for every call, so it loops seamlessly every 9.6 s.

use crate::g711;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
const RATE: f64 = 8000.0;
/// Each note lasts 0.6 s.
const NOTE: usize = 4800;
/// The notes, in Hz (each 0.6 s, looping): C major, A minor, F major, G major arpeggios.
pub const MELODY: [f64; 16] = [
    261.63, 329.63, 392.00, 329.63, // C E G E
    220.00, 261.63, 329.63, 261.63, // A C E C
    174.61, 220.00, 261.63, 220.00, // F A C A
    196.00, 246.94, 293.66, 246.94, // G B D B
];
const LEVEL: f64 = 8000.0;

/// The music generator: call [`Music::next_frame`] every 20 ms.
#[derive(Debug, Clone, Default)]
pub struct Music {
    /// Samples produced so far (position in the loop).
    pos: usize,
}

impl Music {
    pub fn new() -> Self {
        Music { pos: 0 }
    }

    /// The next 20 ms of linear 16-bit samples.
    pub fn next_frame(&mut self) -> [i16; FRAME] {
        let mut out = [0i16; FRAME];
        let period = NOTE * MELODY.len();
        for s in &mut out {
            let n = self.pos / NOTE;
            let t = (self.pos % NOTE) as f64 / RATE;
            let f = MELODY[n % MELODY.len()];
            // 20 ms attack, exponential decay: a plucked, soft note
            let env = (t / 0.02).min(1.0) * (-t * 2.5).exp();
            let w = std::f64::consts::TAU * f * t;
            let v = LEVEL * env * (w.sin() + 0.35 * (2.0 * w).sin());
            *s = v.clamp(-32767.0, 32767.0) as i16;
            self.pos = (self.pos + 1) % period;
        }
        out
    }

    /// The next frame encoded for payload type `pt` (0 PCMU or 8 PCMA);
    /// `None` for a codec the player cannot produce.
    pub fn next_payload(&mut self, pt: u8) -> Option<[u8; FRAME]> {
        let encode: fn(i16) -> u8 = match pt {
            0 => g711::linear_to_ulaw,
            8 => g711::linear_to_alaw,
            _ => return None,
        };
        let frame = self.next_frame();
        let mut out = [0u8; FRAME];
        for (o, s) in out.iter_mut().zip(frame) {
            *o = encode(s);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone;

    #[test]
    fn plays_the_melody_audibly_and_loops() {
        let mut m = Music::new();
        // The first note: C4 dominates its first 0.3 s.
        let samples: Vec<i16> = (0..15).flat_map(|_| m.next_frame()).collect();
        let rms = (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
            / samples.len() as f64)
            .sqrt();
        assert!(rms > 1000.0, "too quiet: {rms}");
        assert!(tone::dominates(&samples, 261.63, 8000));
        // Every note is heard in turn.
        let mut m = Music::new();
        for (i, &f) in MELODY.iter().enumerate() {
            let note: Vec<i16> = (0..30).flat_map(|_| m.next_frame()).collect();
            assert!(
                tone::dominates(&note[..2400], f, 8000),
                "note {i} ({f} Hz) not dominant"
            );
        }
        // ...and the loop starts over.
        let again: Vec<i16> = (0..15).flat_map(|_| m.next_frame()).collect();
        assert_eq!(again, samples);
    }

    #[test]
    fn encodes_g711_only() {
        let mut m = Music::new();
        let mu = m.next_payload(0).unwrap();
        let mut m2 = Music::new();
        let a = m2.next_payload(8).unwrap();
        assert_ne!(mu, a);
        assert!(Music::new().next_payload(9).is_none());
        // PCMU decodes back close to the generated signal.
        let frame = Music::new().next_frame();
        for (byte, s) in mu.iter().zip(frame) {
            let d = (i32::from(g711::ulaw_to_linear(*byte)) - i32::from(s)).abs();
            assert!(d <= 300, "{d}");
        }
    }
}
