//! Never panic: every RFC 4475 message, truncated at every length and with
//! random byte flips, through every entry point.

use std::path::PathBuf;

use sip::{Framing, Limits, error_response, frame_stream, parse_datagram, parse_stream_message};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn exercise(input: &[u8], limits: &Limits) {
    match parse_datagram(input, limits) {
        Ok(m) => {
            // whatever parsed must serialize and survive every accessor
            let _ = parse_datagram(&m.to_bytes(), limits);
            let _ = (m.vias(), m.from_addr(), m.to_addr(), m.cseq(), m.contacts());
            let _ = (
                m.routes(),
                m.record_routes(),
                m.max_forwards(),
                m.expires(),
                m.call_id(),
            );
            let _ = (m.allow().count(), m.supported().count(), m.content_type());
            if let Some(r) = m.as_request() {
                let _ = r.response_tagged(sip::StatusCode::OK).to_bytes();
                let _ = r.uri.as_ref().user_unescaped();
            }
        }
        Err(e) => {
            if let Some(r) = error_response(input, &e, limits) {
                let _ = r.to_bytes();
            }
        }
    }
    let _ = parse_stream_message(input, limits);
    if let Framing::Complete(n) = frame_stream(input, limits) {
        assert!(n <= input.len());
        let _ = parse_stream_message(&input[..n], limits);
    }
}

#[test]
fn truncated_prefixes_never_panic() {
    let limits = Limits::default();
    for msg in corpus() {
        for n in 0..=msg.len() {
            exercise(&msg[..n], &limits);
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let limits = Limits::default();
    let tight = Limits {
        max_message_size: 300,
        max_headers: 5,
        max_vias: 2,
        max_header_line: 40,
    };
    let interesting = b"\r\n \t:;,<>\"\\%@?=0123456789/[]*\0\xff\xc3";
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let corpus = corpus();
    for i in 0..6000 {
        let mut m = corpus[i % corpus.len()].clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(m.len());
            match rng.below(4) {
                0 => m[at] = interesting[rng.below(interesting.len())],
                1 => m[at] = rng.next() as u8,
                2 => {
                    m.remove(at);
                }
                _ => m.insert(at, interesting[rng.below(interesting.len())]),
            }
        }
        exercise(&m, if i % 5 == 0 { &tight } else { &limits });
    }
}
