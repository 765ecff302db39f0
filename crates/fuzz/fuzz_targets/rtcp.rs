//! The RTCP parser and the relay's RTCP path (sender SSRC, SR timestamp and
//! report-block rewriting).
//!
//! Never panics; the parts of an accepted compound packet tile the datagram
//! exactly; and the bridge, primed with RTP whose SSRCs match the report so
//! the rewrites happen, forwards or drops it without panicking or changing its
//! length, and what it forwards is still valid RTCP.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media::rtp;
use media::{Action, Bridge, Component, Leg, LegConfig, RelayConfig, Side};

fn leg(port: u16, rtcp_mux: bool) -> Leg {
    Leg::new(LegConfig {
        remote_rtp: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        remote_rtcp: Some(SocketAddr::from(([127, 0, 0, 1], port + 1))),
        rtcp_mux,
        ..LegConfig::default()
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, packet)) = data.split_first() else {
        return;
    };
    let parts = rtp::parse_rtcp(packet);
    if let Ok(parts) = &parts {
        let mut at = 0;
        for p in parts {
            assert_eq!(p.offset, at, "parts leave a gap");
            assert!(p.len >= 4 && p.len % 4 == 0);
            assert!((200..=206).contains(&p.packet_type));
            at += p.len;
        }
        assert_eq!(at, packet.len(), "parts do not cover the datagram");
    }

    let muxed = flags & 1 != 0;
    let now = Instant::now();
    let mut bridge = Bridge::new(leg(4000, muxed), leg(6000, muxed), RelayConfig::default());
    let a = SocketAddr::from(([127, 0, 0, 1], 4000));
    let b = SocketAddr::from(([127, 0, 0, 1], 6000));
    // A sends with the report's sender SSRC; B with the SSRC its first report
    // block names, so that block is about the stream A receives.
    let block = if packet.get(1) == Some(&rtp::RTCP_SR) {
        28
    } else {
        8
    };
    let mut from_a = rtp::build_rtp(0, 1, 160, u32_at(packet, 4), false, &[0xff; 160]);
    let mut from_b = rtp::build_rtp(0, 1, 160, u32_at(packet, block), false, &[0xff; 160]);
    let _ = bridge.on_packet(Side::A, Component::Rtp, a, &mut from_a, now);
    let _ = bridge.on_packet(Side::B, Component::Rtp, b, &mut from_b, now);

    let (component, from) = match muxed {
        true => (Component::Rtp, a),
        false => (Component::Rtcp, SocketAddr::from(([127, 0, 0, 1], 4001))),
    };
    let mut buf = packet.to_vec();
    let at = now + Duration::from_millis(20);
    match bridge.on_packet(Side::A, component, from, &mut buf, at) {
        Action::Forward(f) if component == Component::Rtcp || rtp::is_rtcp(packet) => {
            assert_eq!(f.len, packet.len());
            assert!(parts.is_ok(), "forwarded RTCP the parser refused");
            assert_eq!(
                rtp::parse_rtcp(&buf).map(|p| p.len()),
                parts.map(|p| p.len())
            );
        }
        Action::Forward(_) | Action::Drop(_) => {}
    }
});
