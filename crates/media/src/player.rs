//! Prompt/file playback and call recording on 20 ms PCM frames, and the
//! one file format they read and write: 16-bit PCM WAV.
//!
//! [`Player`] plays an in-memory buffer of samples (shared, so one prompt
//! serves many legs) frame by frame, once or looping. [`Recorder`] collects
//! two legs tick by tick, keeping them aligned (a tick with no frame from a
//! leg records silence), up to a bounded length, and gives them back as
//! stereo interleaved samples (leg A left, leg B right), a mono mix, or a
//! WAV file.
//!
//! The call engine does not use these yet: hold music today comes from
//! [`crate::music`]; prompts and recording come with the new media plane.

use std::sync::Arc;

use crate::pcm::{Downsampler, Frame, Rate, Upsampler};

/// Why a WAV file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWav,
    #[error("the file ends inside a chunk header or the format chunk")]
    Truncated,
    #[error("no fmt chunk before the data chunk")]
    NoFormat,
    #[error("no data chunk")]
    NoData,
    #[error(
        "format {format} with {bits} bits per sample; only 16-bit PCM (format 1) is supported — convert with e.g. `sox in.wav -b 16 -e signed out.wav`"
    )]
    Unsupported { format: u16, bits: u16 },
    #[error(
        "{rate} Hz, {channels} channel(s); prompts must be mono at 8000 or 16000 Hz — convert with e.g. `sox in.wav -r 8000 -c 1 out.wav`"
    )]
    NotPromptFormat { rate: u32, channels: u16 },
}

/// A decoded WAV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    /// Interleaved when there is more than one channel.
    pub samples: Vec<i16>,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Parses a 16-bit PCM WAV file, skipping chunks other than `fmt ` and
/// `data`. A data chunk whose length runs past the end of the file is
/// read up to the end (as recorders that were cut off leave it).
pub fn read_wav(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut at = 12usize;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while at < bytes.len() {
        let id = bytes.get(at..at + 4).ok_or(WavError::Truncated)?;
        let len = le32(bytes, at + 4).ok_or(WavError::Truncated)? as usize;
        let body = at + 8;
        match id {
            b"fmt " => {
                let f = (|| {
                    Some((
                        le16(bytes, body)?,
                        le16(bytes, body + 2)?,
                        le32(bytes, body + 4)?,
                        le16(bytes, body + 14)?,
                    ))
                })()
                .ok_or(WavError::Truncated)?;
                fmt = Some(f);
            }
            b"data" => {
                let (format, channels, rate, bits) = fmt.ok_or(WavError::NoFormat)?;
                if format != 1 || bits != 16 || channels == 0 {
                    return Err(WavError::Unsupported { format, bits });
                }
                let end = body.saturating_add(len).min(bytes.len());
                let data = bytes.get(body..end).unwrap_or(&[]);
                let samples = data
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok(Wav {
                    rate,
                    channels,
                    samples,
                });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(len).saturating_add(len & 1);
    }
    Err(WavError::NoData)
}

/// A 16-bit PCM WAV file of `samples` (interleaved if `channels` > 1).
pub fn write_wav(samples: &[i16], rate: u32, channels: u16) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let block = u32::from(channels) * 2;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * block).to_le_bytes());
    out.extend_from_slice(&(block as u16).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Plays a buffer of samples as 20 ms frames.
#[derive(Debug, Clone)]
pub struct Player {
    samples: Arc<[i16]>,
    rate: Rate,
    looped: bool,
    pos: usize,
}

impl Player {
    pub fn new(samples: impl Into<Arc<[i16]>>, rate: Rate, looped: bool) -> Self {
        Player {
            samples: samples.into(),
            rate,
            looped,
            pos: 0,
        }
    }

    /// A player for a mono 8 or 16 kHz WAV prompt.
    pub fn from_wav(bytes: &[u8], looped: bool) -> Result<Player, WavError> {
        let wav = read_wav(bytes)?;
        let rate = match (wav.rate, wav.channels) {
            (8000, 1) => Rate::Narrow,
            (16000, 1) => Rate::Wide,
            (rate, channels) => return Err(WavError::NotPromptFormat { rate, channels }),
        };
        Ok(Player::new(wav.samples, rate, looped))
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Whether a non-looping player has played everything (an empty buffer
    /// is finished at once, looping or not).
    pub fn is_finished(&self) -> bool {
        self.samples.is_empty() || (!self.looped && self.pos >= self.samples.len())
    }

    pub fn rewind(&mut self) {
        self.pos = 0;
    }

    /// The next 20 ms; the last frame of a non-looping player is padded
    /// with silence, and a looping one wraps to the start mid-frame.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.is_finished() {
            return None;
        }
        let mut f = Frame::silence(self.rate);
        let out = f.samples_mut();
        let mut filled = 0;
        while filled < out.len() {
            if self.pos >= self.samples.len() {
                if !self.looped {
                    break;
                }
                self.pos = 0;
            }
            let n = (out.len() - filled).min(self.samples.len() - self.pos);
            out[filled..filled + n].copy_from_slice(&self.samples[self.pos..self.pos + n]);
            filled += n;
            self.pos += n;
        }
        Some(f)
    }
}

/// Which of two recorded legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Left.
    A,
    /// Right.
    B,
}

#[derive(Debug, Clone)]
struct Track {
    samples: Vec<i16>,
    up: Upsampler,
    down: Downsampler,
}

/// Records two legs side by side at one rate, up to `max_ticks` 20 ms
/// ticks (further ticks are not recorded).
#[derive(Debug, Clone)]
pub struct Recorder {
    rate: Rate,
    max_ticks: usize,
    ticks: usize,
    tracks: [Track; 2],
}

impl Recorder {
    pub fn new(rate: Rate, max_ticks: usize) -> Self {
        let track = || Track {
            samples: Vec::new(),
            up: Upsampler::new(),
            down: Downsampler::new(),
        };
        Recorder {
            rate,
            max_ticks,
            ticks: 0,
            tracks: [track(), track()],
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Ticks recorded so far.
    pub fn ticks(&self) -> usize {
        self.ticks
    }

    pub fn is_full(&self) -> bool {
        self.ticks >= self.max_ticks
    }

    /// One 20 ms tick: each leg's frame, or `None` for silence (nothing
    /// arrived, or the leg is on hold). Frames at the other rate are
    /// resampled. Returns false once the recorder is full.
    pub fn record(&mut self, a: Option<&Frame>, b: Option<&Frame>) -> bool {
        if self.is_full() {
            return false;
        }
        let rate = self.rate;
        for (track, frame) in self.tracks.iter_mut().zip([a, b]) {
            let f = match frame {
                None => Frame::silence(rate),
                Some(f) if f.rate() == rate => *f,
                Some(f) if rate == Rate::Wide => track.up.process(f),
                Some(f) => track.down.process(f),
            };
            track.samples.extend_from_slice(f.samples());
        }
        self.ticks += 1;
        true
    }

    /// One leg's samples.
    pub fn track(&self, channel: Channel) -> &[i16] {
        &self.tracks[channel as usize].samples
    }

    /// Stereo samples, A left and B right.
    pub fn interleaved(&self) -> Vec<i16> {
        let [a, b] = &self.tracks;
        a.samples
            .iter()
            .zip(&b.samples)
            .flat_map(|(&l, &r)| [l, r])
            .collect()
    }

    /// Both legs summed (saturating) into one channel.
    pub fn mono(&self) -> Vec<i16> {
        let [a, b] = &self.tracks;
        a.samples
            .iter()
            .zip(&b.samples)
            .map(|(&l, &r)| l.saturating_add(r))
            .collect()
    }

    /// The recording as a stereo WAV file.
    pub fn stereo_wav(&self) -> Vec<u8> {
        write_wav(&self.interleaved(), self.rate.hz(), 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tone::{dominates, sine};

    fn ramp(n: usize) -> Vec<i16> {
        (0..n as i16).collect()
    }

    #[test]
    fn plays_once_padding_the_last_frame() {
        let mut p = Player::new(ramp(400), Rate::Narrow, false);
        let a = p.next_frame().unwrap();
        let b = p.next_frame().unwrap();
        let c = p.next_frame().unwrap();
        assert_eq!(a.samples()[0], 0);
        assert_eq!(b.samples()[0], 160);
        assert_eq!(&c.samples()[..80], &ramp(400)[320..]);
        assert!(c.samples()[80..].iter().all(|&s| s == 0));
        assert!(p.is_finished());
        assert_eq!(p.next_frame(), None);
        p.rewind();
        assert_eq!(p.next_frame(), Some(a));
    }

    #[test]
    fn loops_seamlessly_mid_frame() {
        let mut p = Player::new(ramp(100), Rate::Narrow, true);
        let f = p.next_frame().unwrap();
        assert_eq!(&f.samples()[..100], &ramp(100)[..]);
        assert_eq!(&f.samples()[100..], &ramp(60)[..]);
        let g = p.next_frame().unwrap();
        assert_eq!(g.samples()[0], 60);
        assert!(!p.is_finished());
        let mut empty = Player::new(Vec::new(), Rate::Wide, true);
        assert_eq!(empty.next_frame(), None, "an empty loop must not spin");
    }

    #[test]
    fn wav_round_trips_and_prompts_load() {
        let x = sine(440.0, 16000, 5000, 1000);
        let bytes = write_wav(&x, 16000, 1);
        assert_eq!(bytes.len(), 44 + 2000);
        let w = read_wav(&bytes).unwrap();
        assert_eq!((w.rate, w.channels, &w.samples), (16000, 1, &x));
        let p = Player::from_wav(&bytes, false).unwrap();
        assert_eq!(p.rate(), Rate::Wide);
        let stereo = write_wav(&x, 44100, 2);
        let err = Player::from_wav(&stereo, false).unwrap_err();
        assert!(err.to_string().contains("mono at 8000 or 16000"), "{err}");
    }

    /// Hostile or odd files: refused with a reason, never a panic.
    #[test]
    fn malformed_wav_is_refused() {
        let good = write_wav(&[1, 2, 3], 8000, 1);
        assert_eq!(read_wav(b"RIFF"), Err(WavError::NotWav));
        assert_eq!(read_wav(&good[..20]), Err(WavError::Truncated));
        assert_eq!(read_wav(&good[..36]), Err(WavError::NoData));
        // A data length far past the end reads what is there.
        let mut long = good.clone();
        long[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_wav(&long).unwrap().samples, [1, 2, 3]);
        // A chunk length that would overflow the offset.
        let mut skip = good[..12].to_vec();
        skip.extend_from_slice(b"LIST");
        skip.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(read_wav(&skip), Err(WavError::NoData));
        let mut float = good.clone();
        float[20] = 3;
        assert!(matches!(
            read_wav(&float),
            Err(WavError::Unsupported { format: 3, .. })
        ));
        let mut data_first = good[..12].to_vec();
        data_first.extend_from_slice(&good[36..]);
        assert_eq!(read_wav(&data_first), Err(WavError::NoFormat));
    }

    /// Two legs recorded side by side: left is A, right is B, a missing
    /// frame is silence that keeps them aligned, a narrowband leg in a
    /// wideband recording is resampled.
    #[test]
    fn records_two_legs_as_stereo() {
        let mut r = Recorder::new(Rate::Wide, 10);
        let a = sine(500.0, 16000, 6000, 320 * 8);
        let b = sine(1500.0, 8000, 6000, 160 * 8);
        for t in 0..8 {
            let fa = Frame::from_samples(Rate::Wide, &a[t * 320..(t + 1) * 320]).unwrap();
            let fb = Frame::from_samples(Rate::Narrow, &b[t * 160..(t + 1) * 160]).unwrap();
            let b_frame = (t != 3).then_some(&fb);
            assert!(r.record(Some(&fa), b_frame));
        }
        assert_eq!(r.track(Channel::A).len(), r.track(Channel::B).len());
        let st = r.interleaved();
        let left: Vec<i16> = st.iter().step_by(2).copied().collect();
        let right: Vec<i16> = st.iter().skip(1).step_by(2).copied().collect();
        assert!(dominates(&left, 500.0, 16000) && !dominates(&left, 1500.0, 16000));
        assert!(dominates(&right[320 * 4..], 1500.0, 16000));
        assert!(right[320 * 3 + 40..320 * 4].iter().all(|&s| s.abs() < 300));
        let mono = r.mono();
        assert!(mono.len() == left.len());
        let w = read_wav(&r.stereo_wav()).unwrap();
        assert_eq!((w.channels, w.rate, w.samples), (2, 16000, st));
        // Bounded: ticks past the limit are not recorded.
        assert!(r.record(None, None) && r.record(None, None));
        assert!(r.is_full() && !r.record(None, None));
        assert_eq!(r.ticks(), 10);
    }
}
