//! RTCP, multiplexing, timeout, counters and garbage input.

use super::*;

fn sender_report(ssrc: u32, rtp_ts: u32, reported: u32) -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0; 8]); // NTP
    p.extend_from_slice(&rtp_ts.to_be_bytes());
    p.extend_from_slice(&[0; 8]); // counts
    p.extend_from_slice(&reported.to_be_bytes());
    p.extend_from_slice(&[0; 20]);
    p
}

#[test]
fn rtcp_is_relayed_on_its_own_port_with_ssrcs_kept_consistent() {
    let (mut b, c) = bridge();
    // Establish both directions, then switch A's SSRC so rewriting is live.
    send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(1, 1000, 0xaaaa),
        c.at(0),
    )
    .unwrap();
    send(
        &mut b,
        Side::B,
        "10.0.0.6:5000",
        &voice(1, 50, 0xbbbb),
        c.at(0),
    )
    .unwrap();
    let (_, h) = send(
        &mut b,
        Side::A,
        "10.0.0.5:4000",
        &voice(900, 70_000, 0xa2a2),
        c.at(20),
    )
    .unwrap();
    assert_eq!(h.ssrc, 0xaaaa);

    // A's SR about its new SSRC reaches B as a report about 0xaaaa, with its
    // RTP time moved into B's timeline.
    let mut sr = sender_report(0xa2a2, 70_000, 0xbbbb);
    let Action::Forward(f) = b.on_packet(
        Side::A,
        Component::Rtcp,
        addr("10.0.0.5:4001"),
        &mut sr,
        c.at(30),
    ) else {
        panic!()
    };
    assert_eq!(
        (f.via, f.component, f.to),
        (Side::B, Component::Rtcp, addr("10.0.0.6:5001"))
    );
    assert_eq!(rtp::read_u32(&sr, 4), 0xaaaa);
    assert_eq!(rtp::read_u32(&sr, 16), h.timestamp);

    // B's SR carries a report block about 0xaaaa, the SSRC B receives; A
    // is sending as 0xa2a2 now, so the block is pointed at that.
    let mut sr = sender_report(0xbbbb, 50, 0xaaaa);
    let Action::Forward(f) = b.on_packet(
        Side::B,
        Component::Rtcp,
        addr("10.0.0.6:5001"),
        &mut sr,
        c.at(30),
    ) else {
        panic!()
    };
    assert_eq!(f.to, addr("10.0.0.5:4001"));
    assert_eq!(
        rtp::read_u32(&sr, 4),
        0xbbbb,
        "B's stream was never rewritten"
    );
    assert_eq!(
        rtp::read_u32(&sr, 28),
        0xa2a2,
        "block describes A's current stream"
    );

    // While A hears music on hold, A's reports are about the music, not B:
    // their blocks are left alone.
    let mut moh = voice(1, 0, 0x4d4f);
    assert!(matches!(
        b.inject(Side::A, 1, &mut moh, c.at(35)),
        Action::Forward(_)
    ));
    let mut sr = sender_report(0xa2a2, 70_160, 0xbbbb);
    let Action::Forward(_) = b.on_packet(
        Side::A,
        Component::Rtcp,
        addr("10.0.0.5:4001"),
        &mut sr,
        c.at(36),
    ) else {
        panic!()
    };
    assert_eq!(rtp::read_u32(&sr, 28), 0xbbbb);

    let mut junk = vec![0x81, 200, 0, 40, 0, 0];
    let r = b.on_packet(
        Side::B,
        Component::Rtcp,
        addr("10.0.0.6:5001"),
        &mut junk,
        c.at(40),
    );
    assert!(matches!(r, Action::Drop(DropReason::Malformed(_))));
    assert_eq!(b.leg(Side::B).unwrap().stats().rtcp_in, 1);
    assert_eq!(
        b.leg(Side::B).unwrap().stats().rtcp_out,
        2,
        "both of A's SRs"
    );
}

#[test]
fn muxed_rtcp_is_told_apart_from_rtp() {
    let (mut b, c) = bridge();
    for side in [Side::A, Side::B] {
        let mut cfg = b.leg(side).unwrap().config().clone();
        cfg.rtcp_mux = true;
        b.leg_mut(side).unwrap().update(cfg);
    }
    let mut rr = vec![0x80, 201, 0, 1, 0, 0, 0, 9];
    let Action::Forward(f) = b.on_packet(
        Side::A,
        Component::Rtp,
        addr("127.0.0.1:40000"),
        &mut rr,
        c.at(0),
    ) else {
        panic!()
    };
    assert_eq!((f.component, f.to), (Component::Rtp, addr("10.0.0.6:5000")));
    assert_eq!(b.leg(Side::A).unwrap().stats().rtcp_in, 1);
    assert_eq!(
        b.leg(Side::A).unwrap().latched(),
        Some(addr("127.0.0.1:40000"))
    );
    let (f, _) = send(&mut b, Side::B, "10.0.0.6:5000", &voice(1, 0, 3), c.at(10)).unwrap();
    assert_eq!(f.to, addr("127.0.0.1:40000"));
}

#[test]
fn media_timeout_counts_from_answer_or_last_rtp() {
    let (mut b, c) = bridge();
    let timeout = Duration::from_secs(30);
    assert!(
        !b.media_timed_out(c.at(100_000), timeout),
        "not armed before answer"
    );
    assert_eq!(b.poll_timeout(), None);
    b.arm_media_timeout(c.at(0));
    assert_eq!(
        b.poll_timeout(),
        Some(c.at(60_000)),
        "configured default 60 s"
    );
    assert!(!b.media_timed_out(c.at(29_999), timeout));
    assert!(b.media_timed_out(c.at(30_000), timeout));
    // RTP from either side pushes the deadline.
    send(
        &mut b,
        Side::B,
        "10.0.0.6:5000",
        &voice(1, 0, 3),
        c.at(20_000),
    )
    .unwrap();
    assert!(!b.media_timed_out(c.at(49_999), timeout));
    assert!(b.media_timed_out(c.at(50_000), timeout));
    assert_eq!(b.poll_timeout(), Some(c.at(80_000)));
    // Dropped garbage does not count as media.
    let mut junk = vec![0u8; 40];
    b.on_packet(
        Side::A,
        Component::Rtp,
        addr("10.0.0.5:4000"),
        &mut junk,
        c.at(45_000),
    );
    assert!(b.media_timed_out(c.at(50_000), timeout));
    b.disarm_media_timeout();
    assert!(!b.media_timed_out(c.at(90_000), timeout));
}

#[test]
fn stats_count_both_directions() {
    let (mut b, c) = bridge();
    for i in 0..10 {
        send(
            &mut b,
            Side::A,
            "10.0.0.5:4000",
            &voice(i, 160 * u32::from(i), 1),
            c.at(20 * u64::from(i)),
        )
        .unwrap();
    }
    let a = *b.leg(Side::A).unwrap().stats();
    let bs = *b.leg(Side::B).unwrap().stats();
    assert_eq!((a.rtp_in, a.bytes_in, a.rtp_out), (10, 1720, 0));
    assert_eq!((bs.rtp_out, bs.bytes_out, bs.rtp_in), (10, 1720, 0));
    assert_eq!(a.last_rtp_in, Some(c.at(180)));
    assert_eq!(bs.last_out, Some(c.at(180)));
}

/// Deterministic garbage on every port of both legs: no panic, no
/// forwarding of anything that is not valid RTP/RTCP, latches untouched.
#[test]
fn malformed_datagrams_are_dropped_without_panic() {
    let (mut b, c) = bridge();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut forwarded = 0;
    for i in 0..20_000u64 {
        let len = (rnd() % 80) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if i % 3 == 0 && len > 0 {
            buf[0] = 0x80 | (buf[0] & 0x3f); // version 2, so deeper checks run
        }
        let side = if i % 2 == 0 { Side::A } else { Side::B };
        let comp = if i % 5 == 0 {
            Component::Rtcp
        } else {
            Component::Rtp
        };
        let from = if i % 2 == 0 {
            "10.0.0.5:4000"
        } else {
            "10.0.0.6:5000"
        };
        let copy = buf.clone();
        match b.on_packet(side, comp, addr(from), &mut buf, c.at(i)) {
            Action::Forward(f) => {
                forwarded += 1;
                assert_eq!(f.len, copy.len());
                match comp {
                    Component::Rtp => assert!(parse_rtp(&copy).is_ok()),
                    Component::Rtcp => assert!(rtp::parse_rtcp(&copy).is_ok()),
                }
            }
            Action::Drop(_) => assert_eq!(buf, copy, "dropped packets are untouched"),
        }
    }
    let dropped = b.leg(Side::A).unwrap().stats().dropped + b.leg(Side::B).unwrap().stats().dropped;
    assert_eq!(dropped + forwarded, 20_000);
    assert!(dropped > 10_000, "{dropped}");
}

#[test]
fn leg_config_from_sdp() {
    let sdp: Sdp = crate::sdp::tests::samples::BARESIP.parse().unwrap();
    let cfg = LegConfig::from_sdp(&sdp, 0);
    assert_eq!(cfg.remote_rtp, Some(addr("127.0.0.1:10002")));
    assert_eq!(cfg.remote_rtcp, Some(addr("127.0.0.1:10003")));
    assert!(cfg.rtcp_mux);
    assert_eq!(cfg.clock_rate(96), 48000);
    assert_eq!(cfg.clock_rate(9), 8000);
    let video = LegConfig::from_sdp(&sdp, 1);
    assert_eq!(video.clock_rate(100), 90000);
    assert_eq!(LegConfig::from_sdp(&sdp, 7).remote_rtp, None);
}
