use super::*;
use crate::tone::{ToneGenerator, tone_share};

/// One simulated phone: sends a tone (or silence) in its codec and decodes
/// what the mixer sends back, like the far end would.
struct Phone {
    id: ParticipantId,
    codec: MixCodec,
    tone: Option<f64>,
    tone_gen: ToneGenerator,
    enc: g722::Encoder,
    dec: g722::Decoder,
    heard: Vec<i16>,
}

impl Phone {
    fn new(id: ParticipantId, codec: MixCodec, tone: Option<f64>, amplitude: i16) -> Phone {
        Phone {
            id,
            codec,
            tone,
            tone_gen: ToneGenerator::new(tone.unwrap_or(0.0), codec.rate().hz(), amplitude),
            enc: g722::Encoder::new(),
            dec: g722::Decoder::new(),
            heard: Vec::new(),
        }
    }

    fn payload(&mut self) -> Vec<u8> {
        let pcm = if self.tone.is_some() {
            self.tone_gen.samples(self.codec.rate().frame_len())
        } else {
            vec![0; self.codec.rate().frame_len()]
        };
        let mut out = Vec::new();
        match self.codec {
            MixCodec::Pcmu => out.extend(pcm.iter().map(|&s| g711::linear_to_ulaw(s))),
            MixCodec::Pcma => out.extend(pcm.iter().map(|&s| g711::linear_to_alaw(s))),
            MixCodec::G722 => self.enc.encode(&pcm, &mut out),
        }
        out
    }

    fn hear(&mut self, payload: &[u8], keep: bool) {
        let pcm: Vec<i16> = match self.codec {
            MixCodec::Pcmu => payload.iter().map(|&b| g711::ulaw_to_linear(b)).collect(),
            MixCodec::Pcma => payload.iter().map(|&b| g711::alaw_to_linear(b)).collect(),
            MixCodec::G722 => {
                let mut v = Vec::new();
                self.dec.decode(payload, &mut v);
                v
            }
        };
        if keep {
            self.heard.extend(pcm);
        }
    }

    fn share(&self, freq: f64) -> f64 {
        tone_share(&self.heard, freq, self.codec.rate().hz())
    }
}

/// Runs `ticks` ticks; what each phone hears after the first 10 is kept.
fn run(mixer: &mut Mixer, phones: &mut [Phone], ticks: usize) {
    for t in 0..ticks {
        for p in phones.iter_mut() {
            let payload = p.payload();
            mixer.push_payload(p.id, &payload).unwrap();
        }
        mixer.tick();
        for p in phones.iter_mut() {
            let out = mixer.output(p.id).unwrap();
            assert_eq!(out.codec, p.codec);
            assert_eq!(out.payload.len(), 160);
            let bytes = out.payload.to_vec();
            p.hear(&bytes, t >= 10);
        }
    }
}

fn room(config: MixerConfig, phones: &[Phone]) -> Mixer {
    let mut m = Mixer::new(config);
    for p in phones {
        m.add(p.id, p.codec).unwrap();
    }
    m
}

fn talkers(n: usize) -> MixerConfig {
    MixerConfig {
        max_talkers: n,
        ..MixerConfig::default()
    }
}

/// Asserts every phone hears every other phone's tone and not its own.
fn assert_hears_others_not_self(phones: &[Phone], absent: &[f64]) {
    for p in phones {
        for q in phones {
            let Some(f) = q.tone else { continue };
            let share = p.share(f);
            if p.id == q.id || absent.contains(&f) {
                assert!(share < 0.01, "{} hears {f} Hz: {share}", p.id);
            } else {
                assert!(share > 0.15, "{} misses {f} Hz: {share}", p.id);
            }
        }
    }
}

#[test]
fn each_participant_hears_the_others_but_not_itself() {
    let mut phones: Vec<Phone> = [400.0, 700.0, 1100.0, 1700.0]
        .iter()
        .enumerate()
        .map(|(i, &f)| Phone::new(i as u64 + 1, MixCodec::Pcmu, Some(f), 6000))
        .collect();
    let mut m = room(talkers(4), &phones);
    run(&mut m, &mut phones, 50);
    assert_eq!(m.rate(), Rate::Narrow);
    assert_eq!(m.talkers().len(), 4);
    assert_hears_others_not_self(&phones, &[]);
}

/// µ-law, A-law and G.722 phones in one room: the room runs wideband and
/// everyone hears the others through their own codec.
#[test]
fn ulaw_alaw_and_g722_participants_mix_together() {
    let mut phones = vec![
        Phone::new(1, MixCodec::Pcmu, Some(500.0), 6000),
        Phone::new(2, MixCodec::Pcma, Some(900.0), 6000),
        Phone::new(3, MixCodec::G722, Some(1300.0), 6000),
        Phone::new(4, MixCodec::G722, Some(2100.0), 6000),
        Phone::new(5, MixCodec::Pcma, None, 0),
        Phone::new(6, MixCodec::G722, None, 0),
    ];
    let mut m = room(talkers(4), &phones);
    assert_eq!(m.rate(), Rate::Wide);
    run(&mut m, &mut phones, 60);
    assert_hears_others_not_self(&phones, &[]);
    // The silent listeners get the shared mixes.
    assert!(m.output(5).unwrap().shared && m.output(6).unwrap().shared);
    // Without G.722 participants the room falls back to narrowband.
    m.remove(3);
    m.remove(4);
    m.remove(6);
    assert_eq!(m.rate(), Rate::Narrow);
}

/// Only the loudest N are mixed: a fourth, quieter voice is heard by
/// nobody, and the talkers are the three loudest.
#[test]
fn only_the_loudest_talkers_are_mixed() {
    let mut phones = vec![
        Phone::new(1, MixCodec::Pcmu, Some(400.0), 8000),
        Phone::new(2, MixCodec::Pcmu, Some(700.0), 7000),
        Phone::new(3, MixCodec::Pcmu, Some(1100.0), 6000),
        Phone::new(4, MixCodec::Pcmu, Some(1700.0), 1500),
        Phone::new(5, MixCodec::Pcmu, None, 0),
    ];
    let mut m = room(MixerConfig::default(), &phones);
    run(&mut m, &mut phones, 40);
    let mut t = m.talkers();
    t.sort();
    assert_eq!(t, [1, 2, 3]);
    assert!(!m.is_talking(4));
    for p in &phones {
        assert!(p.share(1700.0) < 0.01, "{} hears the fourth voice", p.id);
    }
    assert!(phones[4].share(400.0) > 0.15 && phones[3].share(1100.0) > 0.1);
}

/// A newcomer only slightly louder than the weakest talker does not take
/// its place; one more than `hysteresis` louder does.
#[test]
fn talker_set_has_hysteresis() {
    let mut phones = vec![
        Phone::new(1, MixCodec::Pcmu, Some(400.0), 5000),
        Phone::new(2, MixCodec::Pcmu, Some(700.0), 4000),
        Phone::new(3, MixCodec::Pcmu, None, 0),
    ];
    let mut m = room(talkers(1), &phones);
    // Only phone 2 talks at first.
    phones[0].tone = None;
    run(&mut m, &mut phones, 5);
    assert_eq!(m.talkers(), [2]);
    // Phone 1 talks 1.25× louder (1.56× the energy): below 2×, no swap.
    phones[0].tone = Some(400.0);
    run(&mut m, &mut phones, 20);
    assert_eq!(m.talkers(), [2]);
    // Much louder (4× the energy): it takes over.
    phones[0].tone_gen = ToneGenerator::new(400.0, 8000, 8000);
    run(&mut m, &mut phones, 2);
    assert_eq!(m.talkers(), [1]);
}

/// Non-talkers of one codec share one encoded payload; each talker gets
/// its own. Twelve listeners cost one encode, not twelve.
#[test]
fn the_non_talker_mix_is_encoded_once_per_codec() {
    let mut phones = vec![
        Phone::new(1, MixCodec::Pcmu, Some(600.0), 6000),
        Phone::new(2, MixCodec::Pcma, Some(1000.0), 6000),
    ];
    for id in 10..22 {
        let codec = if id % 2 == 0 {
            MixCodec::Pcmu
        } else {
            MixCodec::Pcma
        };
        phones.push(Phone::new(id, codec, None, 0));
    }
    let mut m = room(MixerConfig::default(), &phones);
    run(&mut m, &mut phones, 12);
    assert_eq!(
        m.stats(),
        TickStats {
            talkers: 2,
            encodes: 2 + 2
        }
    );
    let a = m.output(10).unwrap();
    let b = m.output(12).unwrap();
    assert!(a.shared && b.shared && !m.output(1).unwrap().shared);
    assert!(std::ptr::eq(a.payload, b.payload));
    assert_ne!(m.output(1).unwrap().payload, a.payload);
}

/// A muted participant's tone is absent from everyone's output, and it
/// still hears the others; unmuting brings it back.
#[test]
fn a_muted_participant_is_not_heard() {
    let mk = || {
        vec![
            Phone::new(1, MixCodec::Pcmu, Some(450.0), 6000),
            Phone::new(2, MixCodec::G722, Some(950.0), 6000),
            Phone::new(3, MixCodec::Pcma, Some(1450.0), 6000),
        ]
    };
    let mut phones = mk();
    let mut m = room(MixerConfig::default(), &phones);
    m.set_muted(2, true).unwrap();
    run(&mut m, &mut phones, 50);
    assert_eq!(m.is_muted(2), Some(true));
    assert!(!m.is_talking(2));
    assert_hears_others_not_self(&phones, &[950.0]);
    assert!(phones[1].share(450.0) > 0.15 && phones[1].share(1450.0) > 0.15);

    m.set_muted(2, false).unwrap();
    for p in &mut phones {
        p.heard.clear();
    }
    run(&mut m, &mut phones, 50);
    assert_hears_others_not_self(&phones, &[]);
}

/// Loud voices in phase clip at full scale instead of wrapping round.
#[test]
fn adds_saturate() {
    let mut m = Mixer::new(talkers(3));
    for id in 1..=3 {
        m.add(id, MixCodec::Pcmu).unwrap();
    }
    m.add(9, MixCodec::Pcmu).unwrap();
    let loud = Frame::from_samples(Rate::Narrow, &[30000; 160]).unwrap();
    for _ in 0..3 {
        for id in 1..=3 {
            m.push_frame(id, &loud).unwrap();
        }
        m.tick();
    }
    let heard: Vec<i16> = m
        .output(9)
        .unwrap()
        .payload
        .iter()
        .map(|&b| g711::ulaw_to_linear(b))
        .collect();
    assert!(heard.iter().all(|&s| s > 30000), "{:?}", &heard[..4]);
    let own: Vec<i16> = m
        .output(1)
        .unwrap()
        .payload
        .iter()
        .map(|&b| g711::ulaw_to_linear(b))
        .collect();
    assert!(own.iter().all(|&s| s > 30000));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let mut m = Mixer::default();
    m.add(1, MixCodec::G722).unwrap();
    assert_eq!(m.add(1, MixCodec::Pcmu), Err(MixerError::AlreadyJoined(1)));
    assert_eq!(m.push_payload(2, &[0; 160]), Err(MixerError::Unknown(2)));
    let err = m.push_payload(1, &[0; 80]).unwrap_err();
    assert!(
        err.to_string().contains("20 ms frames of 160 bytes"),
        "{err}"
    );
    assert!(matches!(
        m.push_frame(1, &Frame::silence(Rate::Narrow)),
        Err(MixerError::WrongRate { .. })
    ));
    assert!(m.set_muted(7, true).is_err());
    assert!(m.output(7).is_none());
    assert!(!m.remove(7));
    assert!(m.remove(1) && m.is_empty());
    assert_eq!(MixCodec::from_payload_type(9), Some(MixCodec::G722));
    assert_eq!(MixCodec::from_payload_type(18), None);
}

/// Someone leaving mid-call just stops being mixed; the others go on.
#[test]
fn a_participant_leaving_is_dropped_from_the_mix() {
    let mut phones = vec![
        Phone::new(1, MixCodec::Pcmu, Some(500.0), 6000),
        Phone::new(2, MixCodec::Pcmu, Some(800.0), 6000),
        Phone::new(3, MixCodec::Pcmu, Some(1200.0), 6000),
    ];
    let mut m = room(MixerConfig::default(), &phones);
    run(&mut m, &mut phones, 15);
    assert!(m.remove(2));
    let mut rest: Vec<Phone> = phones.into_iter().filter(|p| p.id != 2).collect();
    for p in &mut rest {
        p.heard.clear();
    }
    run(&mut m, &mut rest, 30);
    assert!(rest[0].share(800.0) < 0.01 && rest[0].share(1200.0) > 0.5);
    assert!(rest[1].share(500.0) > 0.5);
}

/// A G.722 listener that starts talking moves from the shared stream to
/// its own; its own encoder continues from the shared encoder's state, so
/// the far end's decoder (which tracked the shared stream) plays on with
/// no glitch at the switch.
#[test]
fn a_g722_listener_turning_talker_continues_its_stream() {
    let mut phones = vec![
        Phone::new(1, MixCodec::G722, Some(700.0), 8000),
        Phone::new(2, MixCodec::G722, None, 0),
        Phone::new(3, MixCodec::G722, Some(3100.0), 2500),
    ];
    let mut m = room(talkers(3), &phones);
    run(&mut m, &mut phones, 40);
    assert!(!m.is_talking(2) && m.output(2).unwrap().shared);
    // Phone 2 starts talking at 5 kHz, where its own voice is easy to
    // exclude from the measurement.
    phones[1].tone = Some(5000.0);
    phones[1].tone_gen = ToneGenerator::new(5000.0, 16000, 6000);
    phones[1].heard.clear();
    for p in phones.iter_mut() {
        let payload = p.payload();
        m.push_payload(p.id, &payload).unwrap();
    }
    m.tick();
    assert!(m.is_talking(2) && !m.output(2).unwrap().shared);
    let bytes = m.output(2).unwrap().payload.to_vec();
    phones[1].hear(&bytes, true);
    // The first 20 ms after the switch: what phone 2 hears is still the
    // others' 700 + 3100 Hz, at their level, with nothing else in it.
    let heard = &phones[1].heard;
    let rms =
        (heard.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / heard.len() as f64).sqrt();
    let expected = (8000f64.powi(2) / 2.0 + 2500f64.powi(2) / 2.0).sqrt();
    assert!(
        (rms - expected).abs() < expected * 0.1,
        "rms {rms} vs {expected}"
    );
    let share = tone_share(heard, 700.0, 16000) + tone_share(heard, 3100.0, 16000);
    assert!(share > 0.97, "share {share}");
}
