//! PCM frames and 2:1 sample-rate conversion for the media plane.
//!
//! A [`Frame`] is 20 ms of 16-bit linear mono audio at 8 kHz (160 samples,
//! G.711) or 16 kHz (320 samples, G.722). [`Upsampler`] and [`Downsampler`]
//! convert between the two rates with a half-band FIR low-pass filter
//! (47 taps, Kaiser window), run in polyphase form so that only the taps
//! that meet a non-zero input sample are computed. Both keep their filter
//! history across frames, so consecutive frames join without clicks.
//!
//! The call engine does not use this module yet: it is a building block of
//! the conferencing media plane (mixer, players, recorder).

/// Samples per 20 ms at 8 kHz.
pub const NARROW_LEN: usize = 160;
/// Samples per 20 ms at 16 kHz.
pub const WIDE_LEN: usize = 320;
/// The frame duration in milliseconds.
pub const FRAME_MS: u32 = 20;

/// A frame's sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rate {
    /// 8 kHz: G.711.
    Narrow,
    /// 16 kHz: G.722.
    Wide,
}

impl Rate {
    pub fn hz(self) -> u32 {
        match self {
            Rate::Narrow => 8000,
            Rate::Wide => 16000,
        }
    }

    /// Samples in one 20 ms frame.
    pub fn frame_len(self) -> usize {
        match self {
            Rate::Narrow => NARROW_LEN,
            Rate::Wide => WIDE_LEN,
        }
    }
}

/// 20 ms of mono 16-bit PCM at one [`Rate`]. Fixed storage (no allocation),
/// so frames can be copied around a mixer tick freely.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    rate: Rate,
    buf: [i16; WIDE_LEN],
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("rate", &self.rate)
            .field("energy", &self.energy())
            .finish()
    }
}

impl Frame {
    /// A silent frame.
    pub fn silence(rate: Rate) -> Frame {
        Frame {
            rate,
            buf: [0; WIDE_LEN],
        }
    }

    /// A frame from exactly one frame's worth of samples; `None` when the
    /// slice is not [`Rate::frame_len`] long.
    pub fn from_samples(rate: Rate, samples: &[i16]) -> Option<Frame> {
        if samples.len() != rate.frame_len() {
            return None;
        }
        let mut f = Frame::silence(rate);
        f.buf[..samples.len()].copy_from_slice(samples);
        Some(f)
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    pub fn samples(&self) -> &[i16] {
        &self.buf[..self.rate.frame_len()]
    }

    pub fn samples_mut(&mut self) -> &mut [i16] {
        let n = self.rate.frame_len();
        &mut self.buf[..n]
    }

    /// Mean square sample value: the frame's power, used to rank talkers.
    pub fn energy(&self) -> u64 {
        let s = self.samples();
        let sum: u64 = s
            .iter()
            .map(|&x| {
                let x = i64::from(x);
                (x * x) as u64
            })
            .sum();
        sum / s.len() as u64
    }

    /// Scales every sample by `gain` (0.0 to 1.0), saturating.
    pub fn scale(&mut self, gain: f32) {
        for s in self.samples_mut() {
            *s = (f32::from(*s) * gain).clamp(-32768.0, 32767.0) as i16;
        }
    }
}

/// Half the number of non-zero odd-distance taps on each side of the centre.
const HALF_TAPS: usize = 12;
/// Filter length: 4·HALF_TAPS − 1 taps, the centre at index 2·HALF_TAPS − 1.
const TAPS: usize = 4 * HALF_TAPS - 1;
const KAISER_BETA: f64 = 6.0;

/// The zeroth-order modified Bessel function, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    for k in 1..40 {
        let t = x / (2.0 * f64::from(k));
        term *= t * t;
        sum += term;
    }
    sum
}

/// The non-zero side taps of the half-band low-pass (cut-off at a quarter of
/// the high rate), nearest the centre first. The centre tap is 0.5 and every
/// even distance from it is zero, which is what makes the filter half-band.
fn half_band_taps() -> [f32; HALF_TAPS] {
    let centre = (TAPS - 1) as f64 / 2.0;
    let mut raw = [0f64; HALF_TAPS];
    for (k, tap) in raw.iter_mut().enumerate() {
        // Taps at odd distance n = 2k + 1 from the centre (both sides equal).
        let n = (2 * k + 1) as f64;
        let sinc = (std::f64::consts::FRAC_PI_2 * n).sin() / (std::f64::consts::PI * n);
        let r = n / centre;
        let window =
            bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(KAISER_BETA);
        *tap = sinc * window;
    }
    // Normalise so the DC gain is exactly 1: centre 0.5 + 2·Σ side = 1.
    let side: f64 = raw.iter().sum::<f64>() * 2.0;
    let mut out = [0f32; HALF_TAPS];
    for (o, r) in out.iter_mut().zip(raw) {
        *o = (r * 0.5 / side) as f32;
    }
    out
}

/// Rounds half away from zero; the float-to-int `as` saturates. (Not
/// `f32::round`, which is a libm call on baseline x86-64.)
fn saturate(x: f32) -> i16 {
    (x + 0.5f32.copysign(x)) as i16
}

/// 8 kHz → 16 kHz: zero-stuffing followed by the half-band low-pass, in
/// polyphase form (one output phase is the delayed input, the other the
/// side taps over the input history). Delay: 23 samples at 16 kHz.
#[derive(Debug, Clone)]
pub struct Upsampler {
    taps: [f32; HALF_TAPS],
    /// The last 2·HALF_TAPS input samples, oldest first, then the frame.
    hist: Vec<f32>,
}

impl Default for Upsampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Upsampler {
    pub fn new() -> Self {
        Upsampler {
            taps: half_band_taps(),
            hist: vec![0.0; 2 * HALF_TAPS],
        }
    }

    /// The 16 kHz frame for one 8 kHz frame. A wideband frame passes through.
    pub fn process(&mut self, input: &Frame) -> Frame {
        if input.rate() == Rate::Wide {
            return *input;
        }
        let h = 2 * HALF_TAPS;
        self.hist.truncate(h);
        self.hist
            .extend(input.samples().iter().map(|&s| f32::from(s)));
        let mut out = Frame::silence(Rate::Wide);
        let o = out.samples_mut();
        for m in 0..NARROW_LEN {
            // Input index of the newest sample for output pair m.
            let newest = h + m;
            // Odd phase: the centre tap (0.5, doubled by the interpolation
            // gain of 2) lands on one input sample.
            let centre = self.hist[newest - HALF_TAPS + 1];
            // Even phase: the side taps, symmetric around the centre.
            let mut acc = 0.0f32;
            for k in 0..HALF_TAPS {
                let near = self.hist[newest - HALF_TAPS - k];
                let far = self.hist[newest - HALF_TAPS + 1 + k];
                acc += self.taps[k] * (near + far);
            }
            o[2 * m] = saturate(2.0 * acc);
            o[2 * m + 1] = saturate(centre);
        }
        let len = self.hist.len();
        self.hist.drain(..len - h);
        out
    }

    /// Feeds a frame into the filter history without computing output: for
    /// a participant whose audio is not needed this tick, so that it joins
    /// without a click when it is.
    pub fn skip(&mut self, input: &Frame) {
        let s = input.samples();
        let h = 2 * HALF_TAPS;
        if s.len() >= h {
            self.hist.clear();
            self.hist
                .extend(s[s.len() - h..].iter().map(|&x| f32::from(x)));
        }
    }
}

/// 16 kHz → 8 kHz: the half-band low-pass then every other sample, only the
/// kept samples computed. Delay: 23 samples at 16 kHz.
#[derive(Debug, Clone)]
pub struct Downsampler {
    taps: [f32; HALF_TAPS],
    hist: Vec<f32>,
}

impl Default for Downsampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Downsampler {
    pub fn new() -> Self {
        Downsampler {
            taps: half_band_taps(),
            hist: vec![0.0; TAPS - 1],
        }
    }

    /// The 8 kHz frame for one 16 kHz frame. A narrowband frame passes through.
    pub fn process(&mut self, input: &Frame) -> Frame {
        if input.rate() == Rate::Narrow {
            return *input;
        }
        let h = TAPS - 1;
        self.hist.truncate(h);
        self.hist
            .extend(input.samples().iter().map(|&s| f32::from(s)));
        let mut out = Frame::silence(Rate::Narrow);
        let o = out.samples_mut();
        let c = (TAPS - 1) / 2;
        for (m, slot) in o.iter_mut().enumerate() {
            // The window ending at input sample 2m (newest), centre c back,
            // so the delay is a whole number of output samples.
            let end = h + 2 * m;
            let start = end + 1 - TAPS;
            let centre = start + c;
            let mut acc = 0.5 * self.hist[centre];
            for k in 0..HALF_TAPS {
                let d = 2 * k + 1;
                acc += self.taps[k] * (self.hist[centre - d] + self.hist[centre + d]);
            }
            *slot = saturate(acc);
        }
        let len = self.hist.len();
        self.hist.drain(..len - h);
        out
    }

    /// Feeds a frame into the filter history without computing output.
    pub fn skip(&mut self, input: &Frame) {
        let s = input.samples();
        let h = TAPS - 1;
        if s.len() >= h {
            self.hist.clear();
            self.hist
                .extend(s[s.len() - h..].iter().map(|&x| f32::from(x)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{ToneGenerator, tone_share};

    fn frames(freq: f64, rate: Rate, n: usize) -> Vec<Frame> {
        let mut g = ToneGenerator::new(freq, rate.hz(), 10000);
        (0..n)
            .map(|_| Frame::from_samples(rate, &g.samples(rate.frame_len())).unwrap())
            .collect()
    }

    fn joined(fs: &[Frame]) -> Vec<i16> {
        fs.iter().flat_map(|f| f.samples().to_vec()).collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn frame_lengths_and_energy() {
        assert_eq!(Frame::silence(Rate::Narrow).samples().len(), 160);
        assert_eq!(Frame::silence(Rate::Wide).samples().len(), 320);
        assert!(Frame::from_samples(Rate::Narrow, &[0; 320]).is_none());
        let f = Frame::from_samples(Rate::Narrow, &[100; 160]).unwrap();
        assert_eq!(f.energy(), 10_000);
        assert_eq!(Frame::silence(Rate::Wide).energy(), 0);
    }

    /// Upsampling keeps the tone, at its level, and leaves no image at
    /// 8000 − f: sample repetition would leave a strong one.
    #[test]
    fn upsampling_keeps_the_tone_and_suppresses_its_image() {
        let mut up = Upsampler::new();
        let out: Vec<Frame> = frames(1000.0, Rate::Narrow, 10)
            .iter()
            .map(|f| up.process(f))
            .collect();
        let y = joined(&out[2..]);
        assert!(
            tone_share(&y, 1000.0, 16000) > 0.99,
            "{}",
            tone_share(&y, 1000.0, 16000)
        );
        assert!(
            tone_share(&y, 7000.0, 16000) < 1e-4,
            "image {}",
            tone_share(&y, 7000.0, 16000)
        );
        let level = rms(&y) * 2f64.sqrt();
        assert!((level - 10000.0).abs() < 300.0, "level {level}");
        // Sample repetition, for contrast, fails the image test.
        let rep: Vec<i16> = joined(&frames(1000.0, Rate::Narrow, 10))
            .iter()
            .flat_map(|&s| [s, s])
            .collect();
        assert!(tone_share(&rep, 7000.0, 16000) > 1e-3);
    }

    /// Downsampling keeps an in-band tone and removes one above 4 kHz
    /// (which would otherwise alias to 8000 − f).
    #[test]
    fn downsampling_keeps_in_band_and_rejects_aliases() {
        let mut down = Downsampler::new();
        let out: Vec<Frame> = frames(1000.0, Rate::Wide, 10)
            .iter()
            .map(|f| down.process(f))
            .collect();
        let y = joined(&out[2..]);
        assert!(tone_share(&y, 1000.0, 8000) > 0.99);
        let level = rms(&y) * 2f64.sqrt();
        assert!((level - 10000.0).abs() < 300.0, "level {level}");

        let mut down = Downsampler::new();
        let out: Vec<Frame> = frames(6000.0, Rate::Wide, 10)
            .iter()
            .map(|f| down.process(f))
            .collect();
        let y = joined(&out[2..]);
        // ≥ 50 dB below the 10000-peak input.
        assert!(
            rms(&y) < 10000.0 / 2f64.sqrt() / 316.0,
            "alias rms {}",
            rms(&y)
        );
    }

    /// Up then down is the identity apart from the filter delay and a
    /// small ripple: frame boundaries leave no click.
    #[test]
    fn round_trip_is_continuous_across_frames() {
        let (mut up, mut down) = (Upsampler::new(), Downsampler::new());
        let input = frames(440.0, Rate::Narrow, 10);
        let out: Vec<Frame> = input.iter().map(|f| down.process(&up.process(f))).collect();
        let x = joined(&input);
        let y = joined(&out);
        // Total delay: 23 + 23 samples at 16 kHz = 23 samples at 8 kHz.
        let delay = 23;
        let err: f64 = (400..x.len() - delay)
            .map(|i| (f64::from(y[i + delay]) - f64::from(x[i])).powi(2))
            .sum::<f64>()
            / (x.len() - delay - 400) as f64;
        assert!(err.sqrt() < 100.0, "rms error {}", err.sqrt());
    }

    #[test]
    fn other_rate_frames_pass_through() {
        let f = frames(500.0, Rate::Wide, 1)[0];
        assert_eq!(Upsampler::new().process(&f), f);
        let g = frames(500.0, Rate::Narrow, 1)[0];
        assert_eq!(Downsampler::new().process(&g), g);
    }
}
