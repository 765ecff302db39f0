use super::*;
use crate::codec::TELEPHONE_EVENT;
use crate::sdp::tests::samples::*;

fn sdp(s: &str) -> Sdp {
    s.parse().unwrap()
}

fn pts(s: &Stream) -> Vec<u8> {
    s.codecs.iter().map(|c| c.pt).collect()
}

#[test]
fn g711_engine_answers_a_yealink_offer() {
    let a = answer(&sdp(YEALINK), &Capabilities::g711(), Direction::SendRecv).unwrap();
    assert_eq!(pts(&a.streams[0]), [0, 8, 101]);
    let m = &a.sdp.media[0];
    assert_eq!(m.formats, ["0", "8", "101"]);
    assert_eq!(m.rtpmap(101).unwrap().encoding, TELEPHONE_EVENT);
    assert_eq!(m.fmtp(101), Some("0-15"));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.direction_attr(), Some(Direction::SendRecv));
    // The answer is a valid description on its own.
    let text = a.sdp.to_string();
    assert_eq!(sdp(&text), a.sdp);
}

#[test]
fn shared_codecs_pass_through_with_the_offers_numbers() {
    // Polycom calls a Yealink: G.722, G.729 and DTMF are shared; G.722.1 is
    // not. telephone-event keeps the offer's 127.
    let caps = Capabilities::from_sdp(&sdp(YEALINK));
    let a = answer(&sdp(POLYCOM), &caps, Direction::SendRecv).unwrap();
    assert_eq!(pts(&a.streams[0]), [9, 0, 8, 18, 127]);
    assert_eq!(a.sdp.media[0].fmtp(18), Some("annexb=no"));
    assert!(a.sdp.media[0].rtpmap(102).is_none());
}

#[test]
fn g711_is_always_supported() {
    // The answerer's own description has only G.722, yet PCMU/PCMA offered
    // are accepted.
    let g722_only = YEALINK.replace(
        "m=audio 11800 RTP/AVP 0 8 9 18 101",
        "m=audio 11800 RTP/AVP 9",
    );
    let caps = Capabilities::from_sdp(&sdp(&g722_only));
    let a = answer(&sdp(CISCO), &caps, Direction::SendRecv).unwrap();
    assert_eq!(pts(&a.streams[0]), [0, 8]);
}

#[test]
fn no_common_codec_is_an_error() {
    let g729 = YEALINK.replace("RTP/AVP 0 8 9 18 101", "RTP/AVP 18 101");
    let r = answer(&sdp(&g729), &Capabilities::g711(), Direction::SendRecv);
    assert_eq!(
        r,
        Err(NegotiationError::NoCommonCodec),
        "DTMF alone is no call"
    );
}

#[test]
fn directions_are_answered_per_rfc3264() {
    let cases = [
        ("sendrecv", Direction::SendRecv, Direction::SendRecv),
        ("sendonly", Direction::SendRecv, Direction::RecvOnly),
        ("recvonly", Direction::SendRecv, Direction::SendOnly),
        ("inactive", Direction::SendRecv, Direction::Inactive),
        ("sendrecv", Direction::SendOnly, Direction::SendOnly),
        ("sendonly", Direction::SendOnly, Direction::Inactive),
        ("recvonly", Direction::RecvOnly, Direction::Inactive),
    ];
    for (offered, local, expected) in cases {
        let offer = sdp(&YEALINK.replace("a=sendrecv", &format!("a={offered}")));
        let a = answer(&offer, &Capabilities::g711(), local).unwrap();
        assert_eq!(a.streams[0].direction, expected, "{offered} / {local:?}");
        assert_eq!(a.sdp.direction(0), Some(expected));
    }
    // An RFC 2543 hold offer (c=0.0.0.0) is answered as a sendonly one.
    let held = sdp(&YEALINK.replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0"));
    let a = answer(&held, &Capabilities::g711(), Direction::SendRecv).unwrap();
    assert_eq!(a.streams[0].direction, Direction::RecvOnly);
}

#[test]
fn refused_streams_get_port_zero() {
    // Video the answerer lacks is refused; audio goes on.
    let a = answer(&sdp(BARESIP), &Capabilities::g711(), Direction::SendRecv).unwrap();
    assert!(a.streams[0].accepted);
    assert!(!a.streams[1].accepted);
    assert_eq!(a.sdp.media[1].port, 0);
    assert_eq!(a.sdp.media[1].kind, "video");
    assert!(a.sdp.media[1].attributes.is_empty());
    assert!(a.streams[0].rtcp_mux);

    // A stream already refused in the offer stays refused.
    let caps = Capabilities::from_sdp(&sdp(BARESIP));
    let a = answer(&sdp(LINPHONE_V6), &caps, Direction::SendRecv).unwrap();
    assert_eq!(a.sdp.media[1].port, 0);
    assert_eq!(pts(&a.streams[0]), [9, 0, 8, 97], "8 kHz events only");
}

#[test]
fn video_is_answered_like_audio() {
    let caps = Capabilities::from_sdp(&sdp(BARESIP));
    let a = answer(&sdp(BARESIP), &caps, Direction::SendRecv).unwrap();
    assert!(a.streams[1].accepted);
    assert_eq!(pts(&a.streams[1]), [100, 97]);
    assert_eq!(
        a.sdp.media[1].fmtp(97),
        Some("packetization-mode=1;profile-level-id=42e01f")
    );
    assert_eq!(a.sdp.media[0].rtpmap(96).unwrap().channels, Some(2));
    assert!(
        a.sdp.media[0]
            .to_string()
            .contains("a=rtpmap:96 opus/48000/2\r\n")
    );
}

#[test]
fn t38_passes_when_both_sides_have_it() {
    let fax = "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n\
m=image 4000 udptl t38\r\na=T38FaxVersion:0\r\na=T38FaxRateManagement:transferredTCF\r\n";
    let a = answer(
        &sdp(fax),
        &Capabilities::from_sdp(&sdp(fax)),
        Direction::SendRecv,
    )
    .unwrap();
    assert_eq!(a.sdp.media[0].formats, ["t38"]);
    assert_eq!(a.sdp.media[0].attr("T38FaxVersion"), Some("0"));
    let r = answer(&sdp(fax), &Capabilities::g711(), Direction::SendRecv);
    assert_eq!(r, Err(NegotiationError::NoCommonCodec));
}

#[test]
fn negotiated_reads_an_answer_passed_through() {
    let offer = sdp(POLYCOM);
    let reply = "v=0\r\no=- 5 5 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
m=audio 11800 RTP/AVP 8 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\na=recvonly\r\n";
    let s = negotiated(&offer, &sdp(reply)).unwrap();
    assert_eq!(pts(&s[0]), [8, 96], "answer numbers; 96 is the offer's 127");
    assert_eq!(s[0].direction, Direction::RecvOnly);
    assert!(!s[0].rtcp_mux);

    let two = answer(&sdp(BARESIP), &Capabilities::g711(), Direction::SendRecv).unwrap();
    assert_eq!(
        negotiated(&offer, &two.sdp),
        Err(NegotiationError::MediaCountMismatch {
            offer: 1,
            answer: 2
        })
    );
    let video = reply.replace("m=audio", "m=video");
    assert_eq!(
        negotiated(&offer, &sdp(&video)),
        Err(NegotiationError::MediaKindMismatch { index: 0 })
    );
}
