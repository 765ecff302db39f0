use super::*;

/// Offers written for these tests in the shape various desk phones and
/// softphones send; addresses are documentation and private ranges.
pub(crate) mod samples {
    pub const POLYCOM: &str = "v=0\r\n\
o=- 1700000001 1700000001 IN IP4 192.168.1.20\r\n\
s=Polycom IP Phone\r\n\
c=IN IP4 192.168.1.20\r\n\
t=0 0\r\n\
a=sendrecv\r\n\
m=audio 2222 RTP/AVP 9 102 0 8 18 127\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:102 G7221/16000\r\n\
a=fmtp:102 bitrate=32000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:127 telephone-event/8000\r\n\
a=fmtp:127 0-15\r\n";

    pub const YEALINK: &str = "v=0\r\n\
o=- 20010 20010 IN IP4 10.0.0.5\r\n\
s=SDP data\r\n\
c=IN IP4 10.0.0.5\r\n\
t=0 0\r\n\
m=audio 11800 RTP/AVP 0 8 9 18 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n";

    /// Cisco style: no rtpmap for static types, maxptime, a=rtcp.
    pub const CISCO: &str = "v=0\r\n\
o=Cisco-SIPUA 8833 0 IN IP4 172.16.4.9\r\n\
s=SIP Call\r\n\
b=AS:4064\r\n\
t=0 0\r\n\
m=audio 25522 RTP/AVP 0 8 18 101\r\n\
c=IN IP4 172.16.4.9\r\n\
b=TIAS:64000\r\n\
a=rtcp:25523\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=maxptime:20\r\n\
a=sendrecv\r\n";

    /// baresip: audio and video, rtcp-mux, rtcp with address, an unknown
    /// attribute.
    pub const BARESIP: &str = "v=0\r\n\
o=- 1433917453 2373946108 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 10002 RTP/AVP 96 9 0 8 101\r\n\
b=AS:64\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp:10003 IN IP4 127.0.0.1\r\n\
a=rtcp-mux\r\n\
a=label:1\r\n\
a=sendrecv\r\n\
a=ssrc:1866281735 cname:sip:alice@example.com\r\n\
m=video 10004 RTP/AVP 100 97\r\n\
b=AS:1500\r\n\
a=rtpmap:100 VP8/90000\r\n\
a=rtpmap:97 H264/90000\r\n\
a=fmtp:97 packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtcp-fb:* nack pli\r\n\
a=sendrecv\r\n";

    /// Linphone over IPv6 with ICE attributes and a legacy rejected stream.
    pub const LINPHONE_V6: &str = "v=0\r\n\
o=bob 2890 1243 IN IP6 2001:db8::10\r\n\
s=Talk\r\n\
c=IN IP6 2001:db8::10\r\n\
t=0 0\r\n\
a=ice-pwd:31ec21eb38b2ec6d36e8dc7b\r\n\
a=ice-ufrag:c8c3ea81\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
m=audio 7078 RTP/AVP 9 0 8 101 97\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:97 telephone-event/8000\r\n\
a=candidate:1 1 UDP 2130706431 2001:db8::10 7078 typ host\r\n\
a=ptime:20\r\n\
m=video 0 RTP/AVP 96\r\n\
a=rtpmap:96 VP8/90000\r\n";
}

use samples::*;

fn parse(s: &str) -> Sdp {
    Sdp::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{s}"))
}

#[test]
fn samples_round_trip_byte_exact() {
    for s in [POLYCOM, YEALINK, CISCO, BARESIP, LINPHONE_V6] {
        let sdp = parse(s);
        assert_eq!(sdp.to_string(), s);
        assert_eq!(parse(&sdp.to_string()), sdp);
    }
}

#[test]
fn bare_lf_and_trailing_space_are_tolerated() {
    let lf = YEALINK.replace("\r\n", " \n");
    assert_eq!(parse(&lf), parse(YEALINK));
}

#[test]
fn polycom_codecs_and_session_direction() {
    let sdp = parse(POLYCOM);
    let m = &sdp.media[0];
    assert_eq!(m.kind, "audio");
    assert_eq!(m.port, 2222);
    assert_eq!(
        m.payload_types().collect::<Vec<_>>(),
        [9, 102, 0, 8, 18, 127]
    );
    let te = m.rtpmap(127).unwrap();
    assert_eq!(
        (te.encoding.as_str(), te.clock_rate),
        ("telephone-event", 8000)
    );
    assert_eq!(m.fmtp(102), Some("bitrate=32000"));
    assert_eq!(m.fmtp(127), Some("0-15"));
    assert_eq!(m.direction_attr(), None);
    assert_eq!(sdp.direction(0), Some(Direction::SendRecv));
    assert_eq!(sdp.rtp_addr(0), Some("192.168.1.20:2222".parse().unwrap()));
    assert_eq!(sdp.rtcp_addr(0), Some("192.168.1.20:2223".parse().unwrap()));
}

#[test]
fn cisco_media_level_connection_rtcp_and_maxptime() {
    let sdp = parse(CISCO);
    assert!(sdp.connection.is_none());
    let m = &sdp.media[0];
    assert_eq!(m.connection.as_ref().unwrap().address, "172.16.4.9");
    assert_eq!(
        m.rtcp(),
        Some(RtcpAttr {
            port: 25523,
            connection: None
        })
    );
    assert_eq!(m.maxptime(), Some(20));
    assert_eq!(m.ptime(), None);
    assert_eq!(m.rtpmap(0), None, "static types need no rtpmap");
    assert_eq!(sdp.origin.session_version, 0);
    assert_eq!(
        sdp.lines[0],
        Line {
            kind: b'b',
            value: "AS:4064".into()
        }
    );
    assert_eq!(sdp.media[0].lines[0].value, "TIAS:64000");
}

#[test]
fn baresip_video_mux_and_unknown_attributes() {
    let sdp = parse(BARESIP);
    assert_eq!(sdp.media.len(), 2);
    let (a, v) = (&sdp.media[0], &sdp.media[1]);
    assert!(a.rtcp_mux());
    assert_eq!(
        a.rtcp().unwrap().connection.unwrap().ip(),
        Some("127.0.0.1".parse().unwrap())
    );
    assert_eq!(a.rtpmap(96).unwrap().channels, Some(2));
    assert_eq!(a.attr("label"), Some("1"));
    assert_eq!(
        a.attr("ssrc"),
        Some("1866281735 cname:sip:alice@example.com")
    );
    assert_eq!(v.kind, "video");
    assert_eq!(v.rtpmap(100).unwrap().clock_rate, 90000);
    assert_eq!(v.attr("rtcp-fb"), Some("* nack pli"));
    // a=rtcp wins over rtcp-mux when both are present.
    assert_eq!(sdp.rtcp_addr(0), Some("127.0.0.1:10003".parse().unwrap()));
    assert_eq!(sdp.rtcp_addr(1), Some("127.0.0.1:10005".parse().unwrap()));
}

#[test]
fn ipv6_and_rejected_stream() {
    let sdp = parse(LINPHONE_V6);
    assert_eq!(sdp.origin.addr_type, AddrType::Ip6);
    assert_eq!(sdp.connection.as_ref().unwrap().addr_type, AddrType::Ip6);
    assert_eq!(
        sdp.rtp_addr(0),
        Some("[2001:db8::10]:7078".parse().unwrap())
    );
    assert!(sdp.media[1].is_rejected());
    assert_eq!(sdp.rtp_addr(1), None);
    assert_eq!(sdp.attr("ice-ufrag"), Some("c8c3ea81"));
}

#[test]
fn legacy_hold_and_direction_precedence() {
    let held = YEALINK.replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0");
    let sdp = parse(&held);
    assert!(sdp.connection.as_ref().unwrap().is_legacy_hold());
    assert_eq!(sdp.direction(0), Some(Direction::SendOnly));
    assert_eq!(sdp.rtp_addr(0), None);

    let held = held.replace("a=sendrecv", "a=recvonly");
    assert_eq!(parse(&held).direction(0), Some(Direction::Inactive));

    // Session-level attribute applies unless the media overrides it.
    let s = POLYCOM.replace("a=sendrecv", "a=sendonly");
    let mut sdp = parse(&s);
    assert_eq!(sdp.direction(0), Some(Direction::SendOnly));
    sdp.media[0].set_direction(Direction::Inactive);
    assert_eq!(sdp.direction(0), Some(Direction::Inactive));
    assert!(Direction::Inactive.is_hold() && Direction::SendOnly.is_hold());
    assert!(!Direction::RecvOnly.is_hold());
}

#[test]
fn set_direction_replaces_in_place() {
    let mut sdp = parse(YEALINK);
    let before = sdp.media[0].attributes.len();
    sdp.media[0].set_direction(Direction::SendOnly);
    assert_eq!(sdp.media[0].attributes.len(), before);
    assert_eq!(sdp.media[0].attributes[6], Attribute::flag("sendonly"));
}

#[test]
fn missing_t_line_is_supplied_on_output() {
    let s =
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
    let out = parse(s).to_string();
    assert!(
        out.contains("c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio"),
        "{out}"
    );
}

#[test]
fn structural_errors_are_typed() {
    type Check = fn(&SdpError) -> bool;
    let cases: &[(&str, Check)] = &[
        ("", |e| matches!(e, SdpError::Missing { .. })),
        ("v=1\r\n", |e| *e == SdpError::BadVersion),
        ("v=0\r\ns=x\r\n", |e| matches!(e, SdpError::Missing { .. })),
        ("v=0\r\no=- 1 1 IN IP4 h\r\n", |e| {
            matches!(e, SdpError::Missing { .. })
        }),
        ("v=0\r\no=- x 1 IN IP4 h\r\ns=-\r\n", |e| {
            matches!(e, SdpError::Malformed { line: 2, .. })
        }),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 ::1\r\n", |e| {
            matches!(e, SdpError::Malformed { line: 4, .. })
        }),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP5 1.2.3.4\r\n",
            |e| matches!(e, SdpError::Malformed { .. }),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 99999 RTP/AVP 0\r\n",
            |e| matches!(e, SdpError::Malformed { .. }),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 4000 RTP/AVP\r\n",
            |e| matches!(e, SdpError::Malformed { .. }),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 4 RTP/AVP 0\r\na=rtpmap:200 X/8000\r\n",
            |e| matches!(e, SdpError::InvalidAttribute { line: 5, .. }),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 4 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
            |e| matches!(e, SdpError::InvalidAttribute { .. }),
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nm=audio 4 RTP/AVP 0\r\na=rtcp:abc\r\n",
            |e| matches!(e, SdpError::InvalidAttribute { .. }),
        ),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nhello\r\n", |e| {
            matches!(e, SdpError::Malformed { .. })
        }),
        ("v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\ni=a\x01b\r\n", |e| {
            matches!(e, SdpError::Malformed { .. })
        }),
        (
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nc=IN IP4 1.1.1.1\r\n",
            |e| matches!(e, SdpError::Malformed { .. }),
        ),
    ];
    for (input, check) in cases {
        let e = Sdp::parse(input.as_bytes()).expect_err(input);
        assert!(check(&e), "{input:?} gave {e:?}");
    }
    assert_eq!(Sdp::parse(&[0xff, 0xfe]), Err(SdpError::NotUtf8));
}

#[test]
fn bounds_are_enforced() {
    let head = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\n";
    let big = format!("{head}{}", "a=x\r\n".repeat(MAX_SDP_LEN / 5 + 1));
    assert!(matches!(
        Sdp::parse(big.as_bytes()),
        Err(SdpError::TooLarge { .. })
    ));
    let attrs = format!("{head}{}", "a=x\r\n".repeat(MAX_ATTRIBUTES + 1));
    assert!(matches!(
        Sdp::parse(attrs.as_bytes()),
        Err(SdpError::TooManyAttributes { .. })
    ));
    let media = format!("{head}{}", "m=audio 4 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1));
    assert_eq!(Sdp::parse(media.as_bytes()), Err(SdpError::TooManyMedia));
    let fmts = format!(
        "{head}m=audio 4 RTP/AVP{}\r\n",
        " 0".repeat(MAX_FORMATS + 1)
    );
    assert!(matches!(
        Sdp::parse(fmts.as_bytes()),
        Err(SdpError::TooManyFormats { .. })
    ));
    let long = format!("{head}i={}\r\n", "x".repeat(MAX_LINE_LEN));
    assert!(matches!(
        Sdp::parse(long.as_bytes()),
        Err(SdpError::LineTooLong { .. })
    ));
    let lines = format!("{head}{}", "b=x\r\n".repeat(MAX_LINES));
    assert_eq!(Sdp::parse(lines.as_bytes()), Err(SdpError::TooManyLines));
}

/// Deterministic mutation of every sample: truncations, byte flips and line
/// shuffles must give a value or an error, never a panic.
#[test]
fn mutated_input_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for s in [POLYCOM, YEALINK, CISCO, BARESIP, LINPHONE_V6] {
        let bytes = s.as_bytes();
        for cut in 0..bytes.len() {
            let _ = Sdp::parse(&bytes[..cut]);
        }
        for _ in 0..2000 {
            let mut b = bytes.to_vec();
            for _ in 0..(rnd() % 4 + 1) {
                let i = (rnd() as usize) % b.len();
                b[i] = rnd() as u8;
            }
            if let Ok(sdp) = Sdp::parse(&b) {
                // Whatever parses serializes to something that parses again.
                let again = Sdp::parse(&sdp.to_bytes());
                assert!(again.is_ok(), "{:?}", String::from_utf8_lossy(&b));
                for i in 0..sdp.media.len() {
                    let _ = (sdp.rtp_addr(i), sdp.rtcp_addr(i), sdp.direction(i));
                }
            }
        }
    }
}
