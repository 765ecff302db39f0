//! The SDP parser and what the engine does with a peer's description.
//!
//! Never panics; a parsed description round-trips: its serialization
//! re-parses to the same description (lines of the session and of each m=
//! section come back in RFC 8866 order, which is the only change allowed),
//! and serializing that again gives the same bytes. Anchoring, answering,
//! negotiating and the relay's leg setup run on every parsed description.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use media::sdp::Line;
use media::{Capabilities, Direction, LegConfig, LegOrigin, Sdp, anchor, answer, negotiated};

/// RFC 8866 §5 order of the lines the model keeps verbatim.
fn rank(kind: u8) -> u8 {
    match kind {
        b'i' => 0,
        b'u' => 1,
        b'e' => 2,
        b'p' => 3,
        b'b' => 5,
        b't' | b'r' => 6,
        b'z' => 7,
        b'k' => 8,
        _ => 9,
    }
}

fn ordered(lines: &mut [Line]) {
    lines.sort_by_key(|l| rank(l.kind));
}

/// `sdp` as its serialization orders it; an absent `t=` is supplied.
fn normalized(sdp: &Sdp) -> Sdp {
    let mut s = sdp.clone();
    if !s.lines.iter().any(|l| l.kind == b't') {
        s.lines.push(Line {
            kind: b't',
            value: "0 0".into(),
        });
    }
    ordered(&mut s.lines);
    for m in &mut s.media {
        ordered(&mut m.lines);
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    let bytes = sdp.to_bytes();
    let back = match Sdp::parse(&bytes) {
        Ok(b) => b,
        Err(e) => panic!(
            "serialization does not re-parse: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(
        normalized(&sdp),
        back,
        "description changed in a round trip"
    );
    assert_eq!(back.to_bytes(), bytes, "serialization is not stable");

    for (i, m) in sdp.media.iter().enumerate() {
        let _ = (sdp.rtp_addr(i), sdp.rtcp_addr(i), sdp.direction(i));
        let _ = (
            m.rtpmaps().count(),
            m.ptime(),
            m.maxptime(),
            m.rtcp(),
            m.rtcp_mux(),
        );
        for pt in m.payload_types() {
            let _ = (m.rtpmap(pt), m.fmtp(pt));
        }
        let _ = media::codecs_of(m);
        let _ = LegConfig::from_sdp(&sdp, i);
    }
    let relay = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let ports: Vec<u16> = (0..sdp.media.len() as u16)
        .map(|i| 20_000 + 2 * i)
        .collect();
    if let Ok(anchored) = anchor(&sdp, relay, &ports, &mut LegOrigin::new(1)) {
        let reparsed = Sdp::parse(&anchored.to_bytes());
        assert!(
            reparsed.is_ok(),
            "anchored description does not parse: {reparsed:?}"
        );
    }
    let caps = Capabilities::from_sdp(&sdp);
    for local in [Direction::SendRecv, Direction::SendOnly] {
        if let Ok(a) = answer(&sdp, &caps, local) {
            let _ = negotiated(&sdp, &a.sdp);
            let reparsed = Sdp::parse(&a.sdp.to_bytes());
            assert!(reparsed.is_ok(), "answer does not parse: {reparsed:?}");
        }
    }
    let _ = negotiated(&sdp, &sdp);
});
