//! Plain std-timed micro benchmark (no criterion): the per-packet relay path
//! over many concurrent bridges, and per-call SDP work (parse, anchor,
//! answer). Run with `cargo bench -p media`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::rtp::build_rtp;
use media::{
    Action, Bridge, Capabilities, Component, Direction, Leg, LegConfig, LegOrigin, RelayConfig,
    Sdp, Side, anchor, answer,
};

const OFFER: &str = "v=0\r\n\
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

fn leg(port: u16) -> Leg {
    Leg::new(LegConfig {
        remote_rtp: Some(SocketAddr::from(([10, 0, 0, 5], port))),
        remote_rtcp: Some(SocketAddr::from(([10, 0, 0, 5], port + 1))),
        ..LegConfig::default()
    })
}

fn main() {
    let calls = 3000usize;
    let mut bridges: Vec<Bridge> = (0..calls)
        .map(|i| {
            Bridge::new(
                leg(10000 + 2 * i as u16),
                leg(40000 + 2 * i as u16),
                RelayConfig::default(),
            )
        })
        .collect();
    let from: Vec<SocketAddr> = (0..calls)
        .map(|i| SocketAddr::from(([192, 0, 2, 1], 20000 + i as u16)))
        .collect();
    let mut pkt = build_rtp(0, 0, 0, 0x1234, false, &[0xd5; 160]);
    let t0 = Instant::now();
    let rounds = 200u32; // 200 × 3000 × 2 directions = 1.2 M packets
    let start = Instant::now();
    let mut forwarded = 0u64;
    for r in 0..rounds {
        let now = t0 + Duration::from_millis(20 * u64::from(r));
        for (i, b) in bridges.iter_mut().enumerate() {
            for side in [Side::A, Side::B] {
                pkt[2..4].copy_from_slice(&(r as u16).to_be_bytes());
                pkt[4..8].copy_from_slice(&(r * 160).to_be_bytes());
                let act = b.on_packet(side, Component::Rtp, from[i], black_box(&mut pkt), now);
                if matches!(act, Action::Forward(_)) {
                    forwarded += 1;
                }
            }
        }
    }
    let el = start.elapsed();
    let n = u64::from(rounds) * calls as u64 * 2;
    assert_eq!(forwarded, n);
    println!(
        "relay: {n} packets over {calls} bridges in {el:?}: {:.0} ns/packet, {:.2} M packets/s",
        el.as_nanos() as f64 / n as f64,
        n as f64 / el.as_secs_f64() / 1e6
    );

    let iters = 20_000u32;
    let relay = "203.0.113.7".parse().unwrap();
    let caps = Capabilities::g711();
    let start = Instant::now();
    for i in 0..iters {
        let offer: Sdp = black_box(OFFER).parse().expect("parses");
        let mut origin = LegOrigin::new(u64::from(i));
        let out = anchor(&offer, relay, &[30000], &mut origin).expect("anchors");
        let ans = answer(&offer, &caps, Direction::SendRecv).expect("answers");
        black_box((out.to_string(), ans));
    }
    let el = start.elapsed();
    println!(
        "sdp: parse + anchor + serialize + answer: {:.1} µs per offer",
        el.as_secs_f64() * 1e6 / f64::from(iters)
    );
}
