//! Plain std-timed benchmark (no criterion) of the conference mixer: the
//! CPU one 20 ms tick costs per participant, and the share of one core that
//! mixing in real time needs. Run with `cargo bench -p media --bench mixer`.
//!
//! Every participant sends audio every tick (a tone, each at a different
//! level, all above the talk floor): the worst case for decoding and talker
//! selection; three talkers per room are mixed (the default). The timed
//! work per tick is what a room's task does: push every payload (decode and
//! energy), tick (select, mix, encode), and read every output.
//!
//! The figures are this thread's CPU time (Linux `/proc/thread-self/schedstat`),
//! not wall time, so a loaded machine does not inflate them; wall time is
//! printed beside it.

use std::hint::black_box;
use std::time::Instant;

use media::g711::linear_to_ulaw;
use media::g722;
use media::mixer::{MixCodec, Mixer, MixerConfig};
use media::tone::sine;

/// Ten different 20 ms payloads per participant, cycled.
const VARIANTS: usize = 10;

struct Room {
    mixer: Mixer,
    ids: Vec<u64>,
    payloads: Vec<Vec<Vec<u8>>>,
}

fn payloads(codec: MixCodec, n: u64) -> Vec<Vec<u8>> {
    let freq = 300.0 + 37.0 * (n % 50) as f64;
    let amp = 2000 + 97 * (n % 60) as i16;
    let len = codec.rate().frame_len();
    let pcm = sine(freq, codec.rate().hz(), amp, len * VARIANTS);
    let mut enc = g722::Encoder::new();
    pcm.chunks(len)
        .map(|f| match codec {
            MixCodec::G722 => {
                let mut out = Vec::new();
                enc.encode(f, &mut out);
                out
            }
            _ => f.iter().map(|&s| linear_to_ulaw(s)).collect(),
        })
        .collect()
}

fn room(first_id: u64, size: usize, g722_members: usize) -> Room {
    let mut mixer = Mixer::new(MixerConfig::default());
    let mut ids = Vec::new();
    let mut pl = Vec::new();
    for k in 0..size {
        let id = first_id + k as u64;
        let codec = if k < g722_members {
            MixCodec::G722
        } else {
            MixCodec::Pcmu
        };
        mixer.add(id, codec).expect("fresh id");
        ids.push(id);
        pl.push(payloads(codec, id));
    }
    Room {
        mixer,
        ids,
        payloads: pl,
    }
}

/// This thread's CPU time so far, in ns, where Linux reports it.
fn cpu_ns() -> Option<u128> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `ticks` ticks over all rooms; returns (ns per participant per tick,
/// fraction of one core).
fn run(name: &str, rooms: &mut [Room], ticks: usize) -> (f64, f64) {
    let participants: usize = rooms.iter().map(|r| r.ids.len()).sum();
    let mut checksum = 0u64;
    let start = Instant::now();
    let cpu_start = cpu_ns();
    for t in 0..ticks {
        for r in rooms.iter_mut() {
            for (id, p) in r.ids.iter().zip(&r.payloads) {
                r.mixer
                    .push_payload(*id, black_box(&p[t % VARIANTS]))
                    .expect("20 ms payload");
            }
            r.mixer.tick();
            for id in &r.ids {
                if let Some(out) = r.mixer.output(*id) {
                    checksum = checksum.wrapping_add(u64::from(black_box(out.payload)[7]));
                }
            }
        }
    }
    let wall = start.elapsed();
    black_box(checksum);
    let busy_ns = match (cpu_start, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64,
        _ => wall.as_nanos() as f64,
    };
    let per = busy_ns / (ticks * participants) as f64;
    let core = busy_ns / 1e9 / (ticks as f64 * 0.020);
    println!(
        "{name}: {participants} participants, {ticks} ticks, CPU {:.2} s (wall {wall:.2?}): \
         {:.2} µs per participant per 20 ms tick ({:.3} % of a core each); \
         {:.1} % of one core in real time",
        busy_ns / 1e9,
        per / 1000.0,
        per / 20e6 * 100.0,
        core * 100.0
    );
    (per, core)
}

fn main() {
    let ticks = 500; // 10 s of audio
    let mut small: Vec<Room> = (0..100).map(|r| room(r * 100, 10, 0)).collect();
    let mut big = vec![room(1_000_000, 200, 0)];
    let (_, a) = run("G.711, 100 rooms of 10", &mut small, ticks);
    let (_, b) = run("G.711, 1 room of 200", &mut big, ticks);
    println!(
        "G.711, 1,000 in rooms of 10 plus one room of 200 together: {:.1} % of one core",
        (a + b) * 100.0
    );
    // Wideband rooms: two G.722 phones in each room of ten, so the room
    // runs at 16 kHz and the eight G.711 phones are resampled.
    let mut mixed: Vec<Room> = (0..100).map(|r| room(r * 100, 10, 2)).collect();
    run(
        "G.711 + G.722 (2 of 10), 100 rooms of 10",
        &mut mixed,
        ticks,
    );
}
