//! TCP stream reassembly, driven the way the transports drive it (append
//! what a read returned, consume every complete frame, wait on `Incomplete`,
//! close on `Error`): the server's incremental `StreamFramer` and the
//! one-shot `frame_stream` (the load generator's and test clients').
//!
//! The stream is cut into reads of fuzzer-chosen sizes. For both framers the
//! frames found must not depend on where the cuts fall: the same messages,
//! pings, pongs and closing error as `frame_stream` finds when the whole
//! stream arrives at once. Every complete frame is parsed as the transport
//! parses it, and the bytes handed over for an error answer are what was
//! left unframed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{Frame, Framing, Limits, StreamFramer, frame_stream, parse_stream_message};

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

/// Read sizes 1..=64 from a small generator seeded by the first input byte.
fn reads(seed: u8, mut stream: &[u8]) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x100;
    let mut out = Vec::new();
    while !stream.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 64 + 1) as usize;
        let (read, tail) = stream.split_at(n.min(stream.len()));
        out.push(read);
        stream = tail;
    }
    out
}

/// The server's framer fed `reads`: its frames, whether it closed, and the
/// bytes it still holds.
fn stream_framer(reads: &[&[u8]], limits: &Limits) -> (Vec<Event>, bool, usize) {
    let mut framer = StreamFramer::new();
    let mut events = Vec::new();
    let mut left: Vec<u8> = Vec::new();
    for read in reads {
        framer.push(read);
        left.extend_from_slice(read);
        loop {
            match framer.next_frame(limits) {
                Frame::Message(m) => {
                    assert!(left.starts_with(m), "a frame that is not the next bytes");
                    left.drain(..m.len());
                    let _ = parse_stream_message(m, limits);
                    events.push(Event::Message(m.to_vec()));
                }
                Frame::Ping => {
                    assert!(left.starts_with(b"\r\n\r\n"));
                    left.drain(..4);
                    events.push(Event::Ping);
                }
                Frame::Pong => {
                    assert!(left.starts_with(b"\r\n"));
                    left.drain(..2);
                    events.push(Event::Pong);
                }
                Frame::Incomplete => break,
                Frame::Error(e, rest) => {
                    assert_eq!(
                        rest,
                        &left[..],
                        "error answer is not given the unframed bytes"
                    );
                    let _ = sip::error_response(rest, &e, limits);
                    events.push(Event::Error);
                    return (events, true, left.len());
                }
            }
        }
        assert_eq!(framer.pending(), left.len());
    }
    (events, false, left.len())
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let limits = limits();

    let mut whole = stream.to_vec();
    let mut expected = Vec::new();
    let whole_closed = drain(&mut whole, &limits, &mut expected);

    let reads = reads(seed, stream);
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let mut closed = false;
    for read in &reads {
        buf.extend_from_slice(read);
        closed = drain(&mut buf, &limits, &mut got);
        if closed {
            break;
        }
    }
    assert_eq!(
        got, expected,
        "frame_stream: frames depend on how the stream was cut"
    );
    assert_eq!(closed, whole_closed);
    if !closed {
        assert_eq!(buf, whole, "frame_stream: different bytes left waiting");
    }

    let (events, closed, pending) = stream_framer(&reads, &limits);
    assert_eq!(
        events, expected,
        "StreamFramer: frames differ from frame_stream's"
    );
    assert_eq!(closed, whole_closed);
    if !closed {
        assert_eq!(
            pending,
            whole.len(),
            "StreamFramer: different bytes left waiting"
        );
    }
});
