//! One anchored call driven through the public API the way the engine will:
//! offer from a NATed desk phone, anchored to a softphone, answered, bridged;
//! tones both ways checked by frequency; hold re-offer; media timeout; ports
//! returned.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use media::rtp::{build_rtp, parse_rtp, payload};
use media::tone::{ToneGenerator, dominant};
use media::{
    Action, Bridge, Capabilities, Component, Direction, Leg, LegConfig, LegOrigin, PortPool, PtMap,
    RelayConfig, Sdp, Side, anchor, answer, codecs_of, g711, negotiated,
};

/// A desk phone behind NAT: its SDP names its private address.
const DESK_PHONE_OFFER: &str = "v=0\r\n\
o=- 38990 38990 IN IP4 10.0.0.5\r\n\
s=SDP data\r\n\
c=IN IP4 10.0.0.5\r\n\
t=0 0\r\n\
m=audio 11800 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// The softphone's own capabilities (it answers what it is offered).
const SOFTPHONE_CAPS: &str = "v=0\r\n\
o=- 1 1 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 10002 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// 20 ms of a tone as a PCMU packet.
fn tone_packet(g: &mut ToneGenerator, seq: u16, ssrc: u32) -> Vec<u8> {
    let pcm = g.samples(160);
    let ulaw: Vec<u8> = pcm.iter().map(|s| g711::linear_to_ulaw(*s)).collect();
    build_rtp(0, seq, u32::from(seq) * 160, ssrc, false, &ulaw)
}

fn decode(pkt: &[u8]) -> Vec<i16> {
    let h = parse_rtp(pkt).unwrap();
    payload(pkt, &h)
        .iter()
        .map(|b| g711::ulaw_to_linear(*b))
        .collect()
}

#[test]
fn an_anchored_call_carries_tones_both_ways_through_nat() {
    let public: IpAddr = "203.0.113.7".parse().unwrap(); // SWITCHBOARD_PUBLIC_ADDR
    let pool = PortPool::new("30000-30099".parse().unwrap());
    let ports_a = pool.allocate().unwrap(); // faces the desk phone
    let ports_b = pool.allocate().unwrap(); // faces the softphone
    let (mut origin_a, mut origin_b) = (LegOrigin::new(9001), LegOrigin::new(9002));

    // INVITE from A: anchor its offer toward B.
    let offer_a: Sdp = DESK_PHONE_OFFER.parse().unwrap();
    let offer_b = anchor(&offer_a, public, &[ports_b.rtp()], &mut origin_b).unwrap();
    assert_eq!(
        offer_b.rtp_addr(0),
        Some(SocketAddr::new(public, ports_b.rtp()))
    );
    assert_eq!(offer_b.media[0].formats, ["0", "8", "9", "101"]);

    // B answers (here: the softphone's own offer/answer logic).
    let b_caps: Sdp = SOFTPHONE_CAPS.parse().unwrap();
    let mut answer_b = answer(
        &offer_b,
        &Capabilities::from_sdp(&b_caps),
        Direction::SendRecv,
    )
    .unwrap()
    .sdp;
    answer_b.connection = b_caps.connection.clone();
    answer_b.media[0].port = 10002;
    let answer_b: Sdp = answer_b.to_string().parse().unwrap();
    let streams = negotiated(&offer_b, &answer_b).unwrap();
    let agreed: Vec<u8> = streams[0].codecs.iter().map(|c| c.pt).collect();
    assert_eq!(
        agreed,
        [0, 8, 101],
        "G.711 always, G.722 not shared, DTMF kept"
    );

    // 200 OK to A: B's answer anchored on A's ports.
    let answer_a = anchor(&answer_b, public, &[ports_a.rtp()], &mut origin_a).unwrap();
    assert_eq!(
        answer_a.rtp_addr(0),
        Some(SocketAddr::new(public, ports_a.rtp()))
    );
    assert!(!answer_a.to_string().contains("127.0.0.1"));

    // The relay: each leg from the SDP it sent; PT maps from what each was told.
    let mut leg_a = Leg::new(LegConfig::from_sdp(&offer_a, 0));
    let mut leg_b = Leg::new(LegConfig::from_sdp(&answer_b, 0));
    let to_b = PtMap::between(
        &codecs_of(&answer_a.media[0]),
        &codecs_of(&answer_b.media[0]),
    );
    let to_a = PtMap::between(&codecs_of(&offer_b.media[0]), &codecs_of(&offer_a.media[0]));
    assert!(
        to_b.is_identity() && to_a.is_identity(),
        "pass-through keeps numbers"
    );
    leg_b.set_pt_map(to_b);
    leg_a.set_pt_map(to_a);
    let mut bridge = Bridge::new(leg_a, leg_b, RelayConfig::default());
    let t0 = Instant::now();
    bridge.arm_media_timeout(t0);

    // A sends 440 Hz from its NAT mapping; B sends 880 Hz from where it said.
    let nat = addr("198.51.100.20:62000");
    let (mut g440, mut g880) = (
        ToneGenerator::new(440.0, 8000, 8000),
        ToneGenerator::new(880.0, 8000, 8000),
    );
    let (mut heard_by_b, mut heard_by_a) = (Vec::new(), Vec::new());
    for i in 0..25u16 {
        let now = t0 + Duration::from_millis(20 * u64::from(i));
        let mut p = tone_packet(&mut g440, i, 0x1111);
        match bridge.on_packet(Side::A, Component::Rtp, nat, &mut p, now) {
            Action::Forward(f) => {
                assert_eq!((f.via, f.to), (Side::B, addr("127.0.0.1:10002")));
                heard_by_b.extend(decode(&p[..f.len]));
            }
            Action::Drop(r) => panic!("A->B dropped: {r:?}"),
        }
        let mut p = tone_packet(&mut g880, i, 0x2222);
        match bridge.on_packet(
            Side::B,
            Component::Rtp,
            addr("127.0.0.1:10002"),
            &mut p,
            now,
        ) {
            Action::Forward(f) => {
                assert_eq!(f.to, nat, "latched, not the 10.0.0.5 of A's SDP");
                heard_by_a.extend(decode(&p[..f.len]));
            }
            Action::Drop(r) => panic!("B->A dropped: {r:?}"),
        }
    }
    assert_eq!(dominant(&heard_by_b, 8000, &[440.0, 880.0]), Some(440.0));
    assert_eq!(dominant(&heard_by_a, 8000, &[440.0, 880.0]), Some(880.0));

    // A puts B on hold with a re-INVITE: new version toward B, answered recvonly.
    let mut hold = offer_a.clone();
    hold.media[0].set_direction(Direction::SendOnly);
    let hold_b = anchor(&hold, public, &[ports_b.rtp()], &mut origin_b).unwrap();
    assert_eq!(
        hold_b.origin.session_version,
        offer_b.origin.session_version + 1
    );
    let reply = answer(
        &hold_b,
        &Capabilities::from_sdp(&b_caps),
        Direction::SendRecv,
    )
    .unwrap();
    assert_eq!(reply.streams[0].direction, Direction::RecvOnly);
    // A refresh with the same offer keeps the version.
    let again = anchor(&hold, public, &[ports_b.rtp()], &mut origin_b).unwrap();
    assert_eq!(again.origin.session_version, hold_b.origin.session_version);

    // Then silence: the media timeout fires 30 s after the last packet.
    let last = t0 + Duration::from_millis(480);
    let timeout = Duration::from_secs(30);
    assert!(!bridge.media_timed_out(last + timeout - Duration::from_millis(1), timeout));
    assert!(bridge.media_timed_out(last + timeout, timeout));

    // Hang-up: the guards go, every port is back.
    drop(bridge);
    assert_eq!(pool.available(), pool.capacity() - 2);
    drop((ports_a, ports_b));
    assert_eq!(pool.available(), pool.capacity());
}

#[test]
fn an_offer_without_a_common_codec_is_refused_for_a_488() {
    let g729_only = DESK_PHONE_OFFER.replace("RTP/AVP 0 8 9 101", "RTP/AVP 18 101");
    let offer: Sdp = g729_only.parse().unwrap();
    let err = answer(&offer, &Capabilities::g711(), Direction::SendRecv).unwrap_err();
    assert_eq!(err, media::NegotiationError::NoCommonCodec);
}
