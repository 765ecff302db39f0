//! RTP packets as the generator sends them (RFC 3550 fixed header, no CSRC,
//! no extension) with a probe in the first bytes of the G.711 payload:
//!
//! ```text
//! payload[0..4]   b"SBLG"
//! payload[4..8]   stream id (big endian): which sender, so the receiver
//!                 needs no table keyed by address
//! payload[8..12]  stream generation (a stream slot is reused by later calls)
//! payload[12..16] packet index (extended sequence number, from 0)
//! payload[16..24] send time, nanoseconds since the UNIX epoch (CLOCK_REALTIME,
//!                 the clock kernel receive timestamps use)
//! payload[24..]   0xFF (PCMU silence)
//! ```
//!
//! A relay that forwards the payload untouched (as an anchoring B2BUA does)
//! lets the receiver compute one-way latency on the same host and detect
//! loss, duplicates and misrouting.

/// RTP fixed header length.
pub const HEADER: usize = 12;
/// 20 ms of G.711 at 8 kHz.
pub const PAYLOAD: usize = 160;
pub const PACKET: usize = HEADER + PAYLOAD;
/// Timestamp units per packet (8 kHz clock, 20 ms).
pub const TS_STEP: u32 = 160;
const MAGIC: &[u8; 4] = b"SBLG";
/// Offset of the send time in the packet (rewritten just before sending).
pub const SENT_AT: usize = HEADER + 16;

/// What identifies a sender's packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub stream: u32,
    pub epoch: u32,
    pub index: u32,
    pub sent_ns: u64,
}

/// Writes a whole packet into `buf` (at least [`PACKET`] bytes).
pub fn write(buf: &mut [u8], pt: u8, ssrc: u32, probe: &Probe) {
    let Some(buf) = buf.get_mut(..PACKET) else {
        return;
    };
    let seq = probe.index as u16; // wraps, as RTP sequence numbers do
    let ts = probe.index.wrapping_mul(TS_STEP);
    buf[0] = 0x80; // V=2, no padding, no extension, no CSRC
    buf[1] = pt & 0x7f; // marker clear
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let p = &mut buf[HEADER..];
    p[0..4].copy_from_slice(MAGIC);
    p[4..8].copy_from_slice(&probe.stream.to_be_bytes());
    p[8..12].copy_from_slice(&probe.epoch.to_be_bytes());
    p[12..16].copy_from_slice(&probe.index.to_be_bytes());
    p[16..24].copy_from_slice(&probe.sent_ns.to_be_bytes());
    p[24..].fill(0xff);
}

/// Rewrites the send time of a packet built by [`write`].
pub fn stamp(buf: &mut [u8], sent_ns: u64) {
    if let Some(t) = buf.get_mut(SENT_AT..SENT_AT + 8) {
        t.copy_from_slice(&sent_ns.to_be_bytes());
    }
}

/// The RTP header fields a receiver checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
}

/// Parses the header and the probe of a received packet. `None` for
/// anything that is not one of ours (RTCP, other traffic, truncated).
pub fn parse(pkt: &[u8]) -> Option<(Header, Probe)> {
    if pkt.len() < HEADER + 24 || pkt[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(pkt[0] & 0x0f);
    let mut at = HEADER + 4 * csrc;
    if pkt[0] & 0x10 != 0 {
        // header extension: 4 bytes of profile/length, then length words
        let ext = pkt.get(at..at + 4)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        at += 4 + 4 * words;
    }
    let pt = pkt[1] & 0x7f;
    if (72..=79).contains(&pt) {
        return None; // RTCP range (RFC 5761)
    }
    let h = Header {
        pt,
        seq: u16::from_be_bytes([pkt[2], pkt[3]]),
        ts: u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
        ssrc: u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
    };
    let p = pkt.get(at..at + 24)?;
    if &p[0..4] != MAGIC {
        return None;
    }
    let u32_at = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&p[16..24]);
    Some((
        h,
        Probe {
            stream: u32_at(4),
            epoch: u32_at(8),
            index: u32_at(12),
            sent_ns: u64::from_be_bytes(t),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_stamp_parse_round_trip() {
        let mut buf = [0u8; PACKET];
        let probe = Probe {
            stream: 4242,
            epoch: 7,
            index: 70_000,
            sent_ns: 1,
        };
        write(&mut buf, 8, 0xdead_beef, &probe);
        stamp(&mut buf, 1_700_000_000_123_456_789);
        let (h, p) = parse(&buf).unwrap();
        assert_eq!(h.pt, 8);
        assert_eq!(h.seq, (70_000u32 & 0xffff) as u16);
        assert_eq!(h.ts, 70_000 * 160);
        assert_eq!(h.ssrc, 0xdead_beef);
        assert_eq!(
            p,
            Probe {
                sent_ns: 1_700_000_000_123_456_789,
                ..probe
            }
        );
        assert_eq!(buf[0], 0x80);
        assert!(buf[HEADER + 24..].iter().all(|b| *b == 0xff));
    }

    #[test]
    fn a_relay_adding_csrc_or_extension_still_parses() {
        let mut buf = [0u8; PACKET];
        let probe = Probe {
            stream: 1,
            epoch: 2,
            index: 3,
            sent_ns: 4,
        };
        write(&mut buf, 0, 9, &probe);
        // one CSRC and a one-word extension inserted after the fixed header
        let mut v = buf[..HEADER].to_vec();
        v[0] |= 0x10 | 0x01;
        v.extend_from_slice(&[0, 0, 0, 1]); // CSRC
        v.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension
        v.extend_from_slice(&buf[HEADER..]);
        assert_eq!(parse(&v).unwrap().1, probe);
    }

    #[test]
    fn foreign_packets_are_ignored_without_panicking() {
        let mut buf = [0u8; PACKET];
        write(
            &mut buf,
            0,
            1,
            &Probe {
                stream: 1,
                epoch: 1,
                index: 1,
                sent_ns: 1,
            },
        );
        for n in 0..PACKET {
            let r = parse(&buf[..n]);
            assert_eq!(r.is_some(), n >= HEADER + 24, "{n}");
        }
        let mut other = buf;
        other[HEADER] = b'X';
        assert_eq!(parse(&other), None);
        let mut rtcp = buf;
        rtcp[1] = 200; // SR with the marker bit: pt 72
        assert_eq!(parse(&rtcp), None);
        let mut v1 = buf;
        v1[0] = 0x40;
        assert_eq!(parse(&v1), None);
        // an extension that claims more than the packet holds
        let mut ext = buf;
        ext[0] |= 0x10;
        ext[HEADER + 2] = 0xff;
        assert_eq!(parse(&ext), None);
    }
}
