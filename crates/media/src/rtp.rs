//! RTP (RFC 3550) and RTCP header validation and in-place rewriting.
//! Everything works on the datagram buffer; nothing allocates except the
//! packet builder.

/// Fixed RTP header length.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not acceptable RTP or RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet shorter than its header")]
    TooShort,
    #[error("RTP version is not 2")]
    BadVersion,
    #[error("CSRC list runs past the packet")]
    CsrcOverrun,
    #[error("header extension runs past the packet")]
    ExtensionOverrun,
    #[error("padding count is zero or runs into the header")]
    BadPadding,
    #[error("payload type in the RTCP range")]
    LooksLikeRtcp,
    #[error("RTCP length field does not match the datagram")]
    BadRtcpLength,
    #[error("RTCP packet type {0} is not SR, RR, SDES, BYE, APP or feedback")]
    BadRtcpType(u8),
}

/// A validated RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
    /// Bytes before the payload: fixed header, CSRCs and extension.
    pub header_len: usize,
    /// Payload bytes, padding excluded.
    pub payload_len: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// RFC 5761 §4: on a multiplexed port, a second byte of 192..=223 is RTCP
/// (packet types 192-223), anything else RTP.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

/// Validates an RTP packet: version 2, the CSRC list, extension and padding
/// all inside the datagram.
pub fn parse_rtp(buf: &[u8]) -> Result<RtpHeader, RtpError> {
    if buf.len() < RTP_HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    if buf[0] >> 6 != 2 {
        return Err(RtpError::BadVersion);
    }
    let payload_type = buf[1] & 0x7f;
    if (72..=76).contains(&payload_type) {
        return Err(RtpError::LooksLikeRtcp);
    }
    let csrc_count = buf[0] & 0x0f;
    let mut header_len = RTP_HEADER_LEN + 4 * usize::from(csrc_count);
    if header_len > buf.len() {
        return Err(RtpError::CsrcOverrun);
    }
    if buf[0] & 0x10 != 0 {
        if header_len + 4 > buf.len() {
            return Err(RtpError::ExtensionOverrun);
        }
        header_len += 4 + 4 * usize::from(be16(buf, header_len + 2));
        if header_len > buf.len() {
            return Err(RtpError::ExtensionOverrun);
        }
    }
    let padding = if buf[0] & 0x20 != 0 {
        let p = usize::from(buf[buf.len() - 1]);
        if p == 0 || header_len + p > buf.len() {
            return Err(RtpError::BadPadding);
        }
        p
    } else {
        0
    };
    Ok(RtpHeader {
        marker: buf[1] & 0x80 != 0,
        payload_type,
        sequence: be16(buf, 2),
        timestamp: be32(buf, 4),
        ssrc: be32(buf, 8),
        csrc_count,
        header_len,
        payload_len: buf.len() - header_len - padding,
    })
}

/// The payload of a packet `parse_rtp` accepted.
pub fn payload<'a>(buf: &'a [u8], h: &RtpHeader) -> &'a [u8] {
    &buf[h.header_len..h.header_len + h.payload_len]
}

/// The payload, mutable (for in-place transcoding).
pub fn payload_mut<'a>(buf: &'a mut [u8], h: &RtpHeader) -> &'a mut [u8] {
    &mut buf[h.header_len..h.header_len + h.payload_len]
}

/// In-place field writers for a buffer `parse_rtp` accepted.
pub fn set_sequence(buf: &mut [u8], seq: u16) {
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
}

pub fn set_timestamp(buf: &mut [u8], ts: u32) {
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
}

pub fn set_ssrc(buf: &mut [u8], ssrc: u32) {
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// Sets the payload type, keeping the marker bit.
pub fn set_payload_type(buf: &mut [u8], pt: u8) {
    buf[1] = (buf[1] & 0x80) | (pt & 0x7f);
}

pub fn set_marker(buf: &mut [u8], marker: bool) {
    buf[1] = (buf[1] & 0x7f) | if marker { 0x80 } else { 0 };
}

/// Builds a plain RTP packet (no CSRC, extension or padding).
pub fn build_rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(RTP_HEADER_LEN + payload.len());
    p.push(0x80);
    p.push((pt & 0x7f) | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// RTCP packet types.
pub const RTCP_SR: u8 = 200;
pub const RTCP_RR: u8 = 201;

/// One packet inside a compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpPart {
    pub offset: usize,
    pub len: usize,
    pub packet_type: u8,
    /// Report count / subtype field.
    pub count: u8,
}

/// Validates a (compound) RTCP datagram: every packet version 2, a known
/// type, its length inside the datagram, the lengths adding up exactly.
/// Returns the packets' positions.
pub fn parse_rtcp(buf: &[u8]) -> Result<Vec<RtcpPart>, RtpError> {
    let mut parts = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        if buf.len() - at < 4 {
            return Err(RtpError::TooShort);
        }
        if buf[at] >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let packet_type = buf[at + 1];
        if !(200..=206).contains(&packet_type) {
            return Err(RtpError::BadRtcpType(packet_type));
        }
        let len = 4 * (usize::from(be16(buf, at + 2)) + 1);
        if at + len > buf.len() {
            return Err(RtpError::BadRtcpLength);
        }
        parts.push(RtcpPart {
            offset: at,
            len,
            packet_type,
            count: buf[at] & 0x1f,
        });
        at += len;
        if parts.len() > 64 {
            return Err(RtpError::BadRtcpLength);
        }
    }
    if parts.is_empty() {
        return Err(RtpError::TooShort);
    }
    Ok(parts)
}

/// Where the report blocks of an SR or RR start, and how many fit.
pub(crate) fn report_blocks(part: &RtcpPart) -> (usize, usize) {
    let first = match part.packet_type {
        RTCP_SR => 28,
        _ => 8,
    };
    let room = part.len.saturating_sub(first) / 24;
    (part.offset + first, usize::from(part.count).min(room))
}

pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    be32(buf, at)
}

pub(crate) fn write_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rewrites_a_plain_packet() {
        let mut p = build_rtp(0, 65535, 160, 0xdead_beef, true, &[0xff; 160]);
        let h = parse_rtp(&p).unwrap();
        assert_eq!((h.payload_type, h.sequence, h.timestamp), (0, 65535, 160));
        assert_eq!(
            (h.ssrc, h.marker, h.header_len, h.payload_len),
            (0xdead_beef, true, 12, 160)
        );
        set_sequence(&mut p, 7);
        set_timestamp(&mut p, 99);
        set_ssrc(&mut p, 1);
        set_payload_type(&mut p, 101);
        let h = parse_rtp(&p).unwrap();
        assert_eq!(
            (h.sequence, h.timestamp, h.ssrc, h.payload_type, h.marker),
            (7, 99, 1, 101, true)
        );
        set_marker(&mut p, false);
        assert!(!parse_rtp(&p).unwrap().marker);
        assert!(!is_rtcp(&p));
    }

    #[test]
    fn csrc_extension_and_padding_are_bounded() {
        // 2 CSRCs, a one-word extension, 3 bytes of padding.
        let mut p = vec![0x80 | 0x20 | 0x10 | 2, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        p.extend_from_slice(&[0; 8]); // CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension
        p.extend_from_slice(&[7; 10]); // payload
        p.extend_from_slice(&[0, 0, 3]); // padding
        let h = parse_rtp(&p).unwrap();
        assert_eq!((h.csrc_count, h.header_len, h.payload_len), (2, 28, 10));
        assert_eq!(payload(&p, &h), &[7; 10]);

        let cases: &[(&[u8], RtpError)] = &[
            (&[0x80, 0, 0], RtpError::TooShort),
            (
                &[0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::BadVersion,
            ),
            (
                &[0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::CsrcOverrun,
            ),
            (
                &[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::ExtensionOverrun,
            ),
            (
                &[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 9],
                RtpError::ExtensionOverrun,
            ),
            (
                &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::BadPadding,
            ),
            (
                &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9],
                RtpError::BadPadding,
            ),
            (
                &[0x80, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                RtpError::LooksLikeRtcp,
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(parse_rtp(bytes), Err(*err), "{bytes:02x?}");
        }
    }

    #[test]
    fn rtcp_compound_is_walked_and_checked() {
        // RR with one report block + SDES with an empty chunk.
        let mut rr = vec![0x81, 201, 0, 7];
        rr.extend_from_slice(&[0; 28]);
        let sdes = [0x81, 202, 0, 1, 0, 0, 0, 5];
        let mut compound = rr.clone();
        compound.extend_from_slice(&sdes);
        assert!(is_rtcp(&compound));
        let parts = parse_rtcp(&compound).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].packet_type, parts[0].len, parts[0].count),
            (201, 32, 1)
        );
        assert_eq!(report_blocks(&parts[0]), (8, 1));
        assert_eq!(parts[1].offset, 32);

        assert_eq!(parse_rtcp(&compound[..30]), Err(RtpError::BadRtcpLength));
        assert_eq!(parse_rtcp(&[0x81, 201, 0]), Err(RtpError::TooShort));
        assert_eq!(parse_rtcp(&[]), Err(RtpError::TooShort));
        assert_eq!(
            parse_rtcp(&[0x81, 199, 0, 0]),
            Err(RtpError::BadRtcpType(199))
        );
        assert_eq!(parse_rtcp(&[0x41, 201, 0, 0]), Err(RtpError::BadVersion));
        // A report count larger than the packet holds is clipped, not trusted.
        let lying = [0x9f, 201, 0, 1, 0, 0, 0, 1];
        let parts = parse_rtcp(&lying).unwrap();
        assert_eq!(report_blocks(&parts[0]), (8, 0));
    }
}
