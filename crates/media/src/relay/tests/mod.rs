use super::*;
use crate::codec::PtMap;
use crate::g711;
use crate::rtp::{RtpHeader, build_rtp, parse_rtp};
use crate::sdp::Sdp;

mod io;

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) fn leg(rtp: &str) -> Leg {
    let rtp = addr(rtp);
    Leg::new(LegConfig {
        remote_rtp: Some(rtp),
        remote_rtcp: Some(SocketAddr::new(rtp.ip(), rtp.port() + 1)),
        ..LegConfig::default()
    })
}

pub(super) struct Clock(Instant);

impl Clock {
    pub(super) fn at(&self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

pub(super) fn bridge() -> (Bridge, Clock) {
    let b = Bridge::new(
        leg("10.0.0.5:4000"),
        leg("10.0.0.6:5000"),
        RelayConfig::default(),
    );
    (b, Clock(Instant::now()))
}

/// Sends one RTP packet and returns where it went and what it became.
pub(super) fn send(
    b: &mut Bridge,
    side: Side,
    from: &str,
    pkt: &[u8],
    now: Instant,
) -> Result<(Forward, RtpHeader), DropReason> {
    let mut buf = pkt.to_vec();
    match b.on_packet(side, Component::Rtp, addr(from), &mut buf, now) {
        Action::Forward(f) => Ok((f, parse_rtp(&buf[..f.len]).unwrap())),
        Action::Drop(r) => Err(r),
    }
}

pub(super) fn voice(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    build_rtp(0, seq, ts, ssrc, false, &[0xd5; 160])
}

#[test]
fn latches_to_the_real_source_and_keeps_sdp_for_a_silent_leg() {
    let (mut b, c) = bridge();
    // A's SDP says 10.0.0.5:4000 but it is behind NAT at 127.0.0.1:40000.
    let (f, _) = send(&mut b, Side::A, "127.0.0.1:40000", &voice(1, 0, 7), c.at(0)).unwrap();
    // B has sent nothing: its SDP address is used.
    assert_eq!(
        (f.via, f.component, f.to),
        (Side::B, Component::Rtp, addr("10.0.0.6:5000"))
    );
    assert_eq!(
        b.leg(Side::A).unwrap().latched(),
        Some(addr("127.0.0.1:40000"))
    );
    assert_eq!(b.leg(Side::B).unwrap().latched(), None);
    // B's media goes where A's packets come from, not to A's SDP address.
    let (f, _) = send(&mut b, Side::B, "10.0.0.6:5000", &voice(1, 0, 9), c.at(5)).unwrap();
    assert_eq!((f.via, f.to), (Side::A, addr("127.0.0.1:40000")));
    // RTCP to A follows the latch too (port + 1), without RTCP from A yet.
    assert_eq!(
        b.leg(Side::A).unwrap().rtcp_destination(),
        Some((Component::Rtcp, addr("127.0.0.1:40001")))
    );
}

#[test]
fn relatches_only_after_a_quiet_period() {
    let (mut b, c) = bridge();
    send(&mut b, Side::A, "192.0.2.1:1000", &voice(1, 0, 7), c.at(0)).unwrap();
    // An interloper while A is active is refused.
    let r = send(
        &mut b,
        Side::A,
        "192.0.2.99:6666",
        &voice(2, 160, 7),
        c.at(20),
    );
    assert_eq!(r.unwrap_err(), DropReason::UnlatchedSource);
    send(
        &mut b,
        Side::A,
        "192.0.2.1:1000",
        &voice(3, 320, 7),
        c.at(40),
    )
    .unwrap();
    // A goes quiet for longer than relatch_after, then appears elsewhere
    // (NAT rebinding): the new address takes over.
    send(
        &mut b,
        Side::A,
        "192.0.2.1:1002",
        &voice(4, 480, 7),
        c.at(2100),
    )
    .unwrap();
    assert_eq!(
        b.leg(Side::A).unwrap().latched(),
        Some(addr("192.0.2.1:1002"))
    );
    assert_eq!(b.leg(Side::A).unwrap().stats().dropped, 1);
}

#[test]
fn same_ip_policy_and_latching_off() {
    let (mut b, c) = bridge();
    let mut cfg = b.leg(Side::A).unwrap().config().clone();
    cfg.latch = LatchPolicy::SameIp;
    b.leg_mut(Side::A).unwrap().update(cfg);
    let r = send(&mut b, Side::A, "127.0.0.1:40000", &voice(1, 0, 7), c.at(0));
    assert_eq!(r.unwrap_err(), DropReason::ForeignSource);
    send(
        &mut b,
        Side::A,
        "10.0.0.5:4444",
        &voice(2, 160, 7),
        c.at(20),
    )
    .unwrap();
    assert_eq!(
        b.leg(Side::A).unwrap().latched(),
        Some(addr("10.0.0.5:4444"))
    );

    let mut cfg = b.leg(Side::B).unwrap().config().clone();
    cfg.latch = LatchPolicy::Off;
    b.leg_mut(Side::B).unwrap().update(cfg);
    send(&mut b, Side::B, "198.51.100.1:9", &voice(1, 0, 9), c.at(30)).unwrap();
    let (f, _) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4444",
        &voice(3, 320, 7),
        c.at(40),
    )
    .unwrap();
    assert_eq!(f.to, addr("10.0.0.6:5000"), "no latching: SDP address");
}

#[test]
fn a_new_sdp_address_forgets_the_latch() {
    let (mut b, c) = bridge();
    send(&mut b, Side::A, "127.0.0.1:40000", &voice(1, 0, 7), c.at(0)).unwrap();
    let mut cfg = b.leg(Side::A).unwrap().config().clone();
    cfg.remote_rtp = Some(addr("10.0.0.50:4000"));
    b.leg_mut(Side::A).unwrap().update(cfg);
    assert_eq!(
        b.leg(Side::A).unwrap().rtp_destination(),
        Some(addr("10.0.0.50:4000"))
    );
}

#[test]
fn a_re_invite_keeps_the_latch_unless_the_phone_moved() {
    let (mut b, c) = bridge();
    let mut map = PtMap::default();
    map.insert(101, 96);
    b.leg_mut(Side::A).unwrap().set_pt_map(map.clone());
    send(&mut b, Side::A, "127.0.0.1:40000", &voice(1, 0, 7), c.at(0)).unwrap();
    let sdp = |ip: &str| -> Sdp {
        format!(
            "v=0\r\no=- 1 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"
        )
        .parse()
        .unwrap()
    };
    let a = b.leg_mut(Side::A).unwrap();
    a.update_from_sdp(&sdp("10.0.0.5"), 0); // hold, same address
    assert_eq!(a.latched(), Some(addr("127.0.0.1:40000")));
    assert_eq!(a.config().pt_map, map, "engine settings survive");
    a.update_from_sdp(&sdp("0.0.0.0"), 0); // RFC 2543 hold
    assert_eq!((a.latched(), a.rtp_destination()), (None, None));
    a.update_from_sdp(&sdp("10.0.0.5"), 0);
    assert_eq!(a.rtp_destination(), Some(addr("10.0.0.5:4000")));
}

/// The phone on B hears one continuous stream while what is behind the
/// bridge changes three times.
#[test]
fn ssrc_seq_and_timestamp_stay_continuous_across_source_switches() {
    let (mut b, c) = bridge();
    let mut t = 0;
    let mut last = None;
    for i in 0..5u16 {
        let (_, h) = send(
            &mut b,
            Side::A,
            "10.0.0.5:4000",
            &voice(100 + i, 8000 + 160 * u32::from(i), 0xaaaa),
            c.at(t),
        )
        .unwrap();
        assert_eq!(
            (h.sequence, h.ssrc),
            (100 + i, 0xaaaa),
            "first source passes unchanged"
        );
        last = Some(h);
        t += 20;
    }
    let before = last.unwrap();

    // 1. The phone on A restarts its stream: new SSRC, numbers, clock.
    let (_, h) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(60000, 4_000_000_000, 0xbbbb),
        c.at(t),
    )
    .unwrap();
    assert_eq!(h.ssrc, 0xaaaa);
    assert_eq!(h.sequence, before.sequence + 1);
    assert_eq!(h.timestamp, before.timestamp + 160, "20 ms later at 8 kHz");
    assert!(h.marker);
    let (_, h2) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(60001, 4_000_000_160, 0xbbbb),
        c.at(t + 20),
    )
    .unwrap();
    assert_eq!(
        (h2.sequence, h2.timestamp),
        (h.sequence + 1, h.timestamp + 160)
    );
    assert!(!h2.marker);
    // A late packet of the replaced SSRC is dropped, not switched back to.
    let r = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(105, 8800, 0xaaaa),
        c.at(t + 25),
    );
    assert_eq!(r.unwrap_err(), DropReason::StaleSource);
    t += 40;

    // 2. Music on hold replaces A for 1 s; sequence wraps in the source.
    b.set_forwarding(Side::A, false);
    let r = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(60002, 4_000_000_320, 0xbbbb),
        c.at(t),
    );
    assert_eq!(r.unwrap_err(), DropReason::Blocked);
    let mut prev = h2;
    for i in 0..50u16 {
        let mut moh = voice(65530u16.wrapping_add(i), 77 + 160 * u32::from(i), 0x1234);
        let now = c.at(t + 500 + 20 * u64::from(i));
        let Action::Forward(f) = b.inject(Side::B, 1, &mut moh, now) else {
            panic!()
        };
        assert_eq!(f.to, addr("10.0.0.6:5000"));
        let h = parse_rtp(&moh).unwrap();
        assert_eq!(h.ssrc, 0xaaaa);
        assert_eq!(h.sequence, prev.sequence.wrapping_add(1));
        let step = h.timestamp.wrapping_sub(prev.timestamp);
        // 520 ms since A's last packet went out: the timestamp says so.
        assert_eq!(step, if i == 0 { 520 * 8 } else { 160 }, "packet {i}");
        assert_eq!(h.marker, i == 0);
        prev = h;
    }
    t += 500 + 50 * 20;

    // 3. A comes back (unhold).
    b.set_forwarding(Side::A, true);
    let (_, h) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(60100, 4_000_100_000, 0xbbbb),
        c.at(t),
    )
    .unwrap();
    assert_eq!(
        (h.ssrc, h.sequence),
        (0xaaaa, prev.sequence.wrapping_add(1))
    );
    assert_eq!(h.timestamp.wrapping_sub(prev.timestamp), 160);
    assert!(h.marker);
    assert_eq!(b.leg(Side::B).unwrap().source_switches(), 3);
    assert_eq!(b.leg(Side::B).unwrap().output_ssrc(), Some(0xaaaa));
}

/// Blind transfer: B leaves this bridge for another one facing C; B keeps
/// hearing the same SSRC with continuous numbering.
#[test]
fn a_leg_keeps_its_stream_when_moved_to_another_bridge() {
    let (mut b1, c) = bridge();
    let (_, h) = send(
        &mut b1,
        Side::A,
        "10.0.0.5:4000",
        &voice(10, 1600, 0xaaaa),
        c.at(0),
    )
    .unwrap();
    let b_leg = b1.take_leg(Side::B).unwrap();
    let mut b2 = Bridge::new(leg("10.0.0.7:6000"), b_leg, RelayConfig::default());
    let (f, h2) = send(
        &mut b2,
        Side::A,
        "10.0.0.7:6000",
        &voice(31000, 90, 0xcccc),
        c.at(3000),
    )
    .unwrap();
    assert_eq!(f.to, addr("10.0.0.6:5000"));
    assert_eq!((h2.ssrc, h2.sequence), (0xaaaa, h.sequence + 1));
    assert_eq!(h2.timestamp, h.timestamp + 3000 * 8);
    // Nothing is left to forward to on the old bridge.
    let r = send(
        &mut b1,
        Side::A,
        "10.0.0.5:4000",
        &voice(11, 1760, 0xaaaa),
        c.at(3010),
    );
    assert_eq!(r.unwrap_err(), DropReason::NoPeer);
}

/// A new party that happens to use the SSRC of the one it replaced is still
/// a new source: the numbering is re-based, not jumped.
#[test]
fn replacing_a_leg_rebases_even_on_a_colliding_ssrc() {
    let (mut b, c) = bridge();
    let (_, h) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(10, 1600, 0xaaaa),
        c.at(0),
    )
    .unwrap();
    b.set_leg(Side::A, leg("10.0.0.8:7000"));
    let (_, h2) = send(
        &mut b,
        Side::A,
        "10.0.0.8:7000",
        &voice(40000, 5, 0xaaaa),
        c.at(20),
    )
    .unwrap();
    assert_eq!(
        (h2.ssrc, h2.sequence, h2.timestamp),
        (0xaaaa, 11, h.timestamp + 160)
    );
    assert!(h2.marker);
}

#[test]
fn video_switches_keep_the_frame_marker_as_sent() {
    let (mut b, c) = bridge();
    let mut cfg = b.leg(Side::B).unwrap().config().clone();
    cfg.clock_rates = vec![(100, 90_000)];
    b.leg_mut(Side::B).unwrap().update(cfg);
    let frame = |seq, ts, ssrc, end| build_rtp(100, seq, ts, ssrc, end, &[0; 900]);
    send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &frame(1, 0, 1, true),
        c.at(0),
    )
    .unwrap();
    let (_, h) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &frame(50, 9, 2, false),
        c.at(40),
    )
    .unwrap();
    assert_eq!((h.sequence, h.timestamp, h.marker), (2, 3600, false));
}

#[test]
fn reordered_packets_keep_their_relative_numbers() {
    let (mut b, c) = bridge();
    send(&mut b, Side::A, "10.0.0.5:4000", &voice(10, 0, 1), c.at(0)).unwrap();
    send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(12, 320, 1),
        c.at(40),
    )
    .unwrap();
    let (_, late) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(11, 160, 1),
        c.at(45),
    )
    .unwrap();
    assert_eq!((late.sequence, late.timestamp), (11, 160));
    // A switch after the reordering continues from the newest, not the late one.
    let (_, h) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(500, 0, 2),
        c.at(60),
    )
    .unwrap();
    assert_eq!(h.sequence, 13);
}

#[test]
fn telephone_event_payload_type_is_rewritten_per_leg() {
    let (mut b, c) = bridge();
    let mut map = PtMap::default();
    map.insert(101, 96);
    b.leg_mut(Side::B).unwrap().set_pt_map(map);
    let event = build_rtp(101, 1, 0, 5, true, &[1, 0x80, 0, 160]);
    let (_, h) = send(&mut b, Side::A, "10.0.0.5:4000", &event, c.at(0)).unwrap();
    assert_eq!((h.payload_type, h.marker), (96, true));
    let (_, h) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(2, 160, 5),
        c.at(20),
    )
    .unwrap();
    assert_eq!(h.payload_type, 0);
    // Toward A nothing is mapped.
    let (_, h) = send(
        &mut b,
        Side::B,
        "10.0.0.6:5000",
        &build_rtp(96, 1, 0, 6, false, &[1, 0, 0, 160]),
        c.at(30),
    )
    .unwrap();
    assert_eq!(h.payload_type, 96);
}

#[test]
fn transcoding_is_chosen_only_when_a_law_is_missing() {
    use crate::codec::Codec;
    let mu = vec![Codec::pcmu()];
    let a = vec![Codec::pcma()];
    let g722 = vec![Codec::from_static(9).unwrap()];
    let both = vec![Codec::pcmu(), Codec::pcma()];
    let a_g722 = vec![Codec::pcma(), Codec::from_static(9).unwrap()];
    assert_eq!(Transcode::between(&mu, &a), Some(Transcode::UlawToAlaw));
    assert_eq!(
        Transcode::between(&a_g722, &mu),
        Some(Transcode::AlawToUlaw)
    );
    assert_eq!(Transcode::between(&mu, &both), None);
    assert_eq!(Transcode::between(&g722, &a), None);
    assert_eq!(Transcode::between(&mu, &g722), None);
}

#[test]
fn g711_laws_are_converted_when_legs_disagree() {
    let (mut b, c) = bridge();
    b.leg_mut(Side::B)
        .unwrap()
        .set_transcode(Some(Transcode::UlawToAlaw));
    let samples = [0i16, 1000, -1000, 12000, -30000];
    let ulaw: Vec<u8> = samples.iter().map(|s| g711::linear_to_ulaw(*s)).collect();
    let mut buf = build_rtp(0, 1, 0, 5, false, &ulaw);
    let Action::Forward(_) = b.on_packet(
        Side::A,
        Component::Rtp,
        addr("10.0.0.5:4000"),
        &mut buf,
        c.at(0),
    ) else {
        panic!()
    };
    let h = parse_rtp(&buf).unwrap();
    assert_eq!(h.payload_type, 8);
    for (s, a) in samples.iter().zip(rtp::payload(&buf, &h)) {
        let back = i32::from(g711::alaw_to_linear(*a));
        assert!(
            (back - i32::from(*s)).abs() <= i32::from(*s).abs() / 8 + 16,
            "{s} -> {back}"
        );
    }
}

/// A leg whose media may come only from `ip` (its signalling and SDP).
fn guarded_leg(rtp: &str) -> Leg {
    let mut config = leg(rtp).config().clone();
    config.allow_sdp_sources();
    Leg::new(config)
}

#[test]
fn rtp_from_another_address_does_not_capture_a_held_leg() {
    let mut b = Bridge::new(
        guarded_leg("10.0.0.5:4000"),
        guarded_leg("10.0.0.6:5000"),
        RelayConfig::default(),
    );
    let c = Clock(Instant::now());
    // A talks, then holds (silent for a minute).
    send(&mut b, Side::A, "10.0.0.5:4000", &voice(1, 0, 7), c.at(0)).unwrap();
    // An attacker sprays RTP at both relay ports while A is held and B
    // has never sent anything.
    for (i, side) in [Side::A, Side::B].into_iter().enumerate() {
        let r = send(
            &mut b,
            side,
            "198.51.100.66:4000",
            &voice(9, 0, 66),
            c.at(60_000 + i as u64),
        );
        assert_eq!(r.unwrap_err(), DropReason::ForeignSource);
    }
    assert_eq!(
        b.leg(Side::A).unwrap().latched(),
        Some(addr("10.0.0.5:4000"))
    );
    assert_eq!(b.leg(Side::B).unwrap().latched(), None);
    // Media still flows to the real parties.
    let (f, _) = send(
        &mut b,
        Side::B,
        "10.0.0.6:5000",
        &voice(1, 0, 9),
        c.at(60_010),
    )
    .unwrap();
    assert_eq!(f.to, addr("10.0.0.5:4000"));
    // Once latched, another port of the same host may take over after the
    // quiet period (NAT rebinding), another host never.
    let r = send(
        &mut b,
        Side::A,
        "10.0.0.5:4002",
        &voice(2, 160, 7),
        c.at(63_000),
    );
    assert!(r.is_ok());
    assert_eq!(
        b.leg(Side::A).unwrap().latched(),
        Some(addr("10.0.0.5:4002"))
    );
}

#[test]
fn a_loopback_party_may_send_from_any_loopback_address() {
    // A phone on this host signalling from 127.0.0.2 whose RTP socket
    // leaves from 127.0.0.1: a loopback source never comes from elsewhere.
    let mut config = leg("127.0.0.2:4000").config().clone();
    config.allow_sdp_sources();
    let mut b = Bridge::new(
        Leg::new(config),
        leg("10.0.0.6:5000"),
        RelayConfig::default(),
    );
    let c = Clock(Instant::now());
    send(&mut b, Side::A, "127.0.0.1:4000", &voice(1, 0, 7), c.at(0)).unwrap();
    let r = send(
        &mut b,
        Side::A,
        "192.0.2.1:4000",
        &voice(2, 160, 7),
        c.at(9_000),
    );
    assert_eq!(r.unwrap_err(), DropReason::ForeignSource);
}
