//! TCP stream reassembly: `frame_stream` driven the way the TCP transport
//! drives it (append what a read returned, consume every complete frame,
//! wait on `Incomplete`, close on `Error`).
//!
//! The stream is cut into reads of fuzzer-chosen sizes, and the frames found
//! must not depend on where the cuts fall: the same messages, pings and pongs
//! as when the whole stream arrives at once. Every complete frame lies inside
//! the buffer and is parsed as the transport parses it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{Framing, Limits, frame_stream, parse_stream_message};

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Message(Vec<u8>),
    Ping,
    Pong,
    Error,
}

/// Small limits so that the size checks are reachable with short inputs.
fn limits() -> Limits {
    Limits {
        max_message_size: 2048,
        max_headers: 32,
        max_vias: 8,
        max_header_line: 512,
    }
}

/// Consumes every frame at the front of `buf`; true once the connection
/// would be closed.
fn drain(buf: &mut Vec<u8>, limits: &Limits, events: &mut Vec<Event>) -> bool {
    loop {
        match frame_stream(buf, limits) {
            Framing::Complete(len) => {
                assert!(
                    len > 0 && len <= buf.len(),
                    "Complete({len}) of {}",
                    buf.len()
                );
                let msg: Vec<u8> = buf.drain(..len).collect();
                let _ = parse_stream_message(&msg, limits);
                events.push(Event::Message(msg));
            }
            Framing::Ping(len) => {
                assert!(len > 0 && len <= buf.len());
                buf.drain(..len);
                events.push(Event::Ping);
            }
            Framing::Pong(len) => {
                assert!(len > 0 && len <= buf.len());
                buf.drain(..len);
                events.push(Event::Pong);
            }
            Framing::Incomplete => return false,
            Framing::Error(e) => {
                let _ = sip::error_response(buf, &e, limits);
                events.push(Event::Error);
                return true;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let limits = limits();

    let mut whole = stream.to_vec();
    let mut expected = Vec::new();
    let whole_closed = drain(&mut whole, &limits, &mut expected);

    // read sizes 1..=64 from a small generator seeded by the first byte
    let mut state = u32::from(seed) | 0x100;
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let mut closed = false;
    let mut rest = stream;
    while !rest.is_empty() && !closed {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 64 + 1) as usize;
        let (read, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        buf.extend_from_slice(read);
        closed = drain(&mut buf, &limits, &mut got);
    }
    assert_eq!(got, expected, "frames depend on how the stream was cut");
    assert_eq!(closed, whole_closed);
    if !closed {
        assert_eq!(buf, whole, "different bytes left waiting");
    }
});
