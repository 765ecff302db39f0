//! The RTP parser and the relay's RTP path.
//!
//! Never panics; an accepted header describes bytes inside the datagram;
//! a packet rebuilt from the parsed fields parses to the same fields; and the
//! bridge (latching, payload-type mapping, G.711 transcoding, SSRC and
//! numbering rewrite) forwards or drops the datagram without panicking or
//! changing its length.
#![no_main]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use media::codec::PtMap;
use media::rtp::{self, RTP_HEADER_LEN};
use media::{Action, Bridge, Component, LatchPolicy, Leg, LegConfig, RelayConfig, Side, Transcode};

fn leg(port: u16, flags: u8) -> Leg {
    let mut pt_map = PtMap::default();
    if flags & 1 != 0 {
        pt_map.insert(101, 96);
    }
    Leg::new(LegConfig {
        remote_rtp: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        remote_rtcp: Some(SocketAddr::from(([127, 0, 0, 1], port + 1))),
        rtcp_mux: flags & 2 != 0,
        latch: match flags >> 2 & 3 {
            0 => LatchPolicy::Off,
            1 => LatchPolicy::SameIp,
            _ => LatchPolicy::Any,
        },
        clock_rates: vec![(0, 8000), (8, 8000), (96, 90_000), (101, 8000)],
        pt_map,
        transcode: match flags >> 4 & 3 {
            1 => Some(Transcode::UlawToAlaw),
            2 => Some(Transcode::AlawToUlaw),
            _ => None,
        },
        // Any source, the packets' own address, another host, or both.
        sources: match flags >> 6 & 3 {
            0 => vec![],
            1 => vec![IpAddr::from([127, 0, 0, 1])],
            2 => vec![IpAddr::from([192, 0, 2, 1])],
            _ => vec![IpAddr::from([192, 0, 2, 1]), IpAddr::from([127, 0, 0, 1])],
        },
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, packet)) = data.split_first() else {
        return;
    };
    let Ok(h) = rtp::parse_rtp(packet) else {
        return;
    };
    assert!(h.header_len >= RTP_HEADER_LEN);
    assert!(h.header_len + h.payload_len <= packet.len());
    assert!(h.payload_type < 128);
    let payload = rtp::payload(packet, &h);
    assert_eq!(payload.len(), h.payload_len);

    let rebuilt = rtp::build_rtp(
        h.payload_type,
        h.sequence,
        h.timestamp,
        h.ssrc,
        h.marker,
        payload,
    );
    let again = rtp::parse_rtp(&rebuilt).expect("a rebuilt packet parses");
    assert_eq!(
        (
            again.payload_type,
            again.sequence,
            again.timestamp,
            again.ssrc,
            again.marker
        ),
        (h.payload_type, h.sequence, h.timestamp, h.ssrc, h.marker)
    );
    assert_eq!(rtp::payload(&rebuilt, &again), payload);

    let now = Instant::now();
    let mut bridge = Bridge::new(
        leg(4000, flags),
        leg(6000, flags.rotate_left(3)),
        RelayConfig::default(),
    );
    let from = SocketAddr::from(([127, 0, 0, 1], 4000));
    for (i, side) in [Side::A, Side::B, Side::A].into_iter().enumerate() {
        let mut buf = packet.to_vec();
        let at = now + Duration::from_millis(20 * i as u64);
        match bridge.on_packet(side, Component::Rtp, from, &mut buf, at) {
            Action::Forward(f) => {
                assert_eq!(f.len, packet.len());
                assert!(
                    rtp::parse_rtp(&buf[..f.len]).is_ok(),
                    "forwarded packet is not RTP"
                );
            }
            Action::Drop(_) => {}
        }
    }
    let mut buf = packet.to_vec();
    let _ = bridge.inject(Side::B, 1, &mut buf, now + Duration::from_millis(80));
});
