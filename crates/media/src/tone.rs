//! Sine tone generation and single-frequency detection (Goertzel), on
//! 16-bit linear PCM.

use std::f64::consts::TAU;

/// A sine generator that keeps its phase across frames, so 20 ms packets
/// join without clicks.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    step: f64,
    phase: f64,
    amplitude: f64,
}

impl ToneGenerator {
    /// `amplitude` is the peak sample value.
    pub fn new(freq: f64, sample_rate: u32, amplitude: i16) -> Self {
        ToneGenerator {
            step: TAU * freq / f64::from(sample_rate.max(1)),
            phase: 0.0,
            amplitude: f64::from(amplitude),
        }
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = (self.amplitude * self.phase.sin()).round() as i16;
            self.phase = (self.phase + self.step) % TAU;
        }
    }

    /// The next `n` samples.
    pub fn samples(&mut self, n: usize) -> Vec<i16> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

/// `n` samples of a sine at `freq` Hz.
pub fn sine(freq: f64, sample_rate: u32, amplitude: i16, n: usize) -> Vec<i16> {
    ToneGenerator::new(freq, sample_rate, amplitude).samples(n)
}

/// The Goertzel filter's squared magnitude at `freq`: for a pure tone of
/// peak `A` over `N` samples at that frequency it is about `(A·N/2)²`.
pub fn goertzel_power(samples: &[i16], freq: f64, sample_rate: u32) -> f64 {
    let coeff = 2.0 * (TAU * freq / f64::from(sample_rate.max(1))).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The share of the buffer's energy at `freq`, about 1.0 for a pure tone
/// of that frequency and near 0 for other tones and noise.
pub fn tone_share(samples: &[i16], freq: f64, sample_rate: u32) -> f64 {
    let energy: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    if samples.is_empty() || energy == 0.0 {
        return 0.0;
    }
    2.0 * goertzel_power(samples, freq, sample_rate) / (samples.len() as f64 * energy)
}

/// RMS below which a buffer counts as silence.
pub const SILENCE_RMS: f64 = 100.0;

/// Whether `freq` dominates the buffer: at least half its energy, and the
/// buffer is not silence.
pub fn dominates(samples: &[i16], freq: f64, sample_rate: u32) -> bool {
    if samples.is_empty() {
        return false;
    }
    let energy: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    let rms = (energy / samples.len() as f64).sqrt();
    rms >= SILENCE_RMS && tone_share(samples, freq, sample_rate) >= 0.5
}

/// Of `candidates`, the frequency that dominates the buffer, if one does.
pub fn dominant(samples: &[i16], sample_rate: u32, candidates: &[f64]) -> Option<f64> {
    candidates
        .iter()
        .copied()
        .filter(|&f| dominates(samples, f, sample_rate))
        .max_by(|a, b| {
            tone_share(samples, *a, sample_rate).total_cmp(&tone_share(samples, *b, sample_rate))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711;

    const RATE: u32 = 8000;

    fn through_ulaw(x: &[i16]) -> Vec<i16> {
        x.iter()
            .map(|&s| g711::ulaw_to_linear(g711::linear_to_ulaw(s)))
            .collect()
    }

    fn through_alaw(x: &[i16]) -> Vec<i16> {
        x.iter()
            .map(|&s| g711::alaw_to_linear(g711::linear_to_alaw(s)))
            .collect()
    }

    #[test]
    fn tones_survive_g711_and_are_told_apart() {
        let a440 = sine(440.0, RATE, 8000, 1600);
        let a880 = sine(880.0, RATE, 8000, 1600);
        for (name, codec) in [
            ("ulaw", through_ulaw as fn(&[i16]) -> Vec<i16>),
            ("alaw", through_alaw),
        ] {
            let (x, y) = (codec(&a440), codec(&a880));
            assert!(dominates(&x, 440.0, RATE), "{name}");
            assert!(!dominates(&x, 880.0, RATE), "{name}");
            assert!(dominates(&y, 880.0, RATE), "{name}");
            assert!(!dominates(&y, 440.0, RATE), "{name}");
            assert!(tone_share(&x, 440.0, RATE) > 0.95, "{name}");
            assert!(tone_share(&x, 880.0, RATE) < 0.01, "{name}");
            assert_eq!(dominant(&x, RATE, &[440.0, 880.0, 1000.0]), Some(440.0));
            assert_eq!(dominant(&y, RATE, &[440.0, 880.0, 1000.0]), Some(880.0));
        }
    }

    #[test]
    fn a_quiet_tone_and_a_short_buffer_still_count() {
        // 20 ms (one packet), a tone at a frequency that is not on a DFT bin.
        let x = through_ulaw(&sine(697.0, RATE, 1000, 160));
        assert!(dominates(&x, 697.0, RATE));
        assert!(!dominates(&x, 1209.0, RATE));
    }

    #[test]
    fn silence_noise_and_mixtures() {
        assert!(!dominates(&[0; 800], 440.0, RATE));
        assert!(!dominates(&[], 440.0, RATE));
        assert_eq!(tone_share(&[], 440.0, RATE), 0.0);
        // A faint 440 under loud pseudo-random noise does not dominate.
        let mut seed = 12345u32;
        let noise: Vec<i16> = (0..1600)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((seed >> 16) as i16) / 4
            })
            .collect();
        let faint = sine(440.0, RATE, 300, 1600);
        let mix: Vec<i16> = noise
            .iter()
            .zip(&faint)
            .map(|(a, b)| a.saturating_add(*b))
            .collect();
        assert!(!dominates(&mix, 440.0, RATE));
        // A loud 440 over a quieter 880: 440 carries 90% of the energy.
        let both: Vec<i16> = sine(440.0, RATE, 6000, 1600)
            .iter()
            .zip(sine(880.0, RATE, 2000, 1600))
            .map(|(a, b)| a + b)
            .collect();
        assert_eq!(dominant(&both, RATE, &[440.0, 880.0]), Some(440.0));
    }

    #[test]
    fn generator_phase_is_continuous_across_frames() {
        let mut g = ToneGenerator::new(440.0, RATE, 10000);
        let mut framed = Vec::new();
        for _ in 0..10 {
            framed.extend(g.samples(160));
        }
        let whole = sine(440.0, RATE, 10000, 1600);
        let max_diff = framed
            .iter()
            .zip(&whole)
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .max()
            .unwrap();
        assert!(max_diff <= 1, "{max_diff}");
        assert!(whole.iter().all(|s| s.abs() <= 10000));
    }
}
