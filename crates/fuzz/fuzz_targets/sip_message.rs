//! The SIP message parser, as a UDP datagram and as a framed stream message.
//!
//! Never panics; every typed accessor a handler may call on a parsed message
//! never panics; the answer built for an unparsable request never panics; and
//! a parsed message round-trips: `to_bytes` re-parses (datagram and stream) to
//! the same message, and serializing that again gives the same bytes.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use sip::transaction::{Target, Transport, cancel_for, response_target};
use sip::{
    Framing, Limits, Message, Request, StatusCode, error_response, frame_stream, parse_datagram,
    parse_stream_message,
};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match parse_datagram(data, &limits) {
        Ok(m) => {
            exercise(&m);
            round_trip(&m);
        }
        Err(e) => {
            let _ = e.status_code();
            let _ = e.to_string();
            if let Some(r) = error_response(data, &e, &limits) {
                // the answer frames as one message (nothing the peer sent
                // splits it), and keeps its status when it parses at all (it
                // copies the peer's Via, which may be what was malformed)
                let bytes = r.to_bytes();
                assert_eq!(
                    frame_stream(&bytes, &relaxed()),
                    Framing::Complete(bytes.len())
                );
                assert_eq!(bytes.split(|b| *b == b'\n').count(), r.headers.len() + 4);
                if let Ok(back) = parse_datagram(&bytes, &relaxed()) {
                    assert_eq!(back.as_response().map(|b| b.status), Some(r.status));
                }
            }
        }
    }
    if let Ok(m) = parse_stream_message(data, &limits) {
        exercise(&m);
    }
});

/// Limits for re-parsing our own serialization: canonical header names and
/// `": "` make a message a little longer than what was received, which must not
/// count as a round-trip failure.
fn relaxed() -> Limits {
    let l = Limits::default();
    Limits {
        max_message_size: l.max_message_size * 2,
        max_header_line: l.max_header_line * 2,
        ..l
    }
}

fn exercise(m: &Message) {
    let _ = m.vias().map(|v| {
        for via in v {
            let _ = (via.branch(), via.received(), via.rport(), via.maddr());
            let _ = via.is_rfc3261_branch();
        }
    });
    let _ = m.top_via();
    for a in [m.from_addr(), m.to_addr()].into_iter().flatten().flatten() {
        let _ = (
            a.display_name(),
            a.tag(),
            a.uri.canonical_aor(),
            a.uri.user_unescaped(),
        );
    }
    let _ = m.call_id();
    let _ = m.cseq();
    if let Ok(c) = m.contacts() {
        let _ = format!("{c:?}");
    }
    let _ = (
        m.max_forwards(),
        m.expires(),
        m.content_length(),
        m.content_type(),
    );
    for r in [m.routes(), m.record_routes()].into_iter().flatten() {
        for a in r {
            let _ = (
                a.uri.params().iter().count(),
                a.uri.transport(),
                a.q(),
                a.expires(),
            );
        }
    }
    let _ = m.allow().count();
    let _ = m.supported().count();
    let _ = m.require().count();
    let _ = m.user_agent();
    if let Message::Request(r) = m {
        request_helpers(r);
    }
}

fn request_helpers(r: &Request) {
    let _ = r.check_mandatory();
    let _ = r.uri.canonical_aor();
    let _ = r.uri.equivalent(&r.uri);
    let resp = r.response_tagged(StatusCode::new(486).unwrap_or(StatusCode::BAD_REQUEST));
    let _ = resp.to_bytes();
    let src = Target::new(
        Transport::Udp,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060),
    );
    let _ = response_target(r, src);
    let _ = cancel_for(r);
}

fn round_trip(m: &Message) {
    let bytes = m.to_bytes();
    let back = match parse_datagram(&bytes, &relaxed()) {
        Ok(b) => b,
        Err(e) => panic!(
            "serialization does not re-parse: {e}\n{:?}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(back.body(), m.body(), "body changed");
    match (m, &back) {
        (Message::Request(a), Message::Request(b)) => {
            assert_eq!(a.method, b.method);
            assert_eq!(a.uri, b.uri);
        }
        (Message::Response(a), Message::Response(b)) => {
            assert_eq!(a.status, b.status);
            assert_eq!(a.reason, b.reason);
        }
        _ => panic!("request/response changed kind"),
    }
    let names = |m: &Message| -> Vec<(String, String)> {
        m.iter()
            .filter(|(n, _)| *n != "Content-Length")
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    };
    assert_eq!(names(m), names(&back), "headers changed");
    let again = back.to_bytes();
    assert_eq!(bytes, again, "serialization is not stable");
    assert_eq!(
        frame_stream(&bytes, &relaxed()),
        Framing::Complete(bytes.len())
    );
    match parse_stream_message(&bytes, &relaxed()) {
        Ok(s) => assert_eq!(s, back),
        Err(e) => panic!("serialization does not parse as a stream message: {e}"),
    }
}
