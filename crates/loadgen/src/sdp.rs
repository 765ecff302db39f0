//! The little SDP a G.711 load generator needs (RFC 4566 / RFC 3264): an
//! offer of PCMU and PCMA, an answer picking one of them, and a reader for
//! the one thing a peer's SDP tells us: where to send RTP and with which
//! payload type.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Static payload types (RFC 3551) the generator speaks.
pub const PCMU: u8 = 0;
pub const PCMA: u8 = 8;

fn encoding_name(pt: u8) -> Option<&'static str> {
    match pt {
        PCMU => Some("PCMU"),
        PCMA => Some("PCMA"),
        _ => None,
    }
}

fn addr_type(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IP4" } else { "IP6" }
}

/// Writes a session with one audio stream at `rtp` offering `pts` in order.
/// `session` is the o= session id (and version).
pub fn write_sdp(out: &mut Vec<u8>, rtp: SocketAddr, pts: &[u8], session: u64) {
    let ip = rtp.ip();
    let at = addr_type(ip);
    let mut s = String::with_capacity(256);
    // writes to a String cannot fail
    let _ = write!(
        s,
        "v=0\r\no=sb-loadgen {session} {session} IN {at} {ip}\r\ns=sb-loadgen\r\n\
         c=IN {at} {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP",
        rtp.port()
    );
    for pt in pts {
        let _ = write!(s, " {pt}");
    }
    s.push_str("\r\n");
    for pt in pts {
        if let Some(name) = encoding_name(*pt) {
            let _ = write!(s, "a=rtpmap:{pt} {name}/8000\r\n");
        }
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    out.extend_from_slice(s.as_bytes());
}

/// An offer of PCMU and PCMA.
pub fn offer(rtp: SocketAddr, session: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(256);
    write_sdp(&mut v, rtp, &[PCMU, PCMA], session);
    v
}

/// The answer to `offer`: the first of its G.711 formats, or `None` when it
/// offers neither (the caller then refuses with 488).
pub fn answer(offer: &Media, rtp: SocketAddr, session: u64) -> Option<Vec<u8>> {
    let pt = offer.first_g711()?;
    let mut v = Vec::with_capacity(256);
    write_sdp(&mut v, rtp, &[pt], session);
    Some(v)
}

/// The first G.711 payload type of an SDP body, PCMU when it has none.
pub fn first_pt(body: &[u8]) -> u8 {
    parse(body)
        .ok()
        .and_then(|m| m.first_g711())
        .unwrap_or(PCMU)
}

/// What a peer's SDP says about its audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Where to send RTP: the audio connection address and port.
    pub addr: SocketAddr,
    /// Payload types of the `m=audio` line, in preference order.
    pub pts: Vec<u8>,
}

impl Media {
    /// The first PCMU or PCMA format offered.
    pub fn first_g711(&self) -> Option<u8> {
        self.pts.iter().copied().find(|p| *p == PCMU || *p == PCMA)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdpError {
    NotUtf8,
    NoAudio,
    /// Port 0: the stream was refused.
    Rejected,
    NoConnection,
    Bad(&'static str),
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SdpError::NotUtf8 => f.write_str("SDP is not UTF-8"),
            SdpError::NoAudio => f.write_str("no m=audio line"),
            SdpError::Rejected => f.write_str("audio stream rejected (port 0)"),
            SdpError::NoConnection => f.write_str("no c= line for the audio stream"),
            SdpError::Bad(what) => write!(f, "bad {what}"),
        }
    }
}

fn parse_c(value: &str) -> Result<IpAddr, SdpError> {
    let mut f = value.split_ascii_whitespace();
    if f.next() != Some("IN") {
        return Err(SdpError::Bad("c= network type"));
    }
    let at = f.next().ok_or(SdpError::Bad("c= address type"))?;
    let addr = f.next().ok_or(SdpError::Bad("c= address"))?;
    // multicast TTL / count suffixes are not for us
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr.parse().map_err(|_| SdpError::Bad("c= address"))?;
    match (at, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(SdpError::Bad("c= address type")),
    }
}

/// Reads the first audio stream of `body`: its connection address (media
/// level `c=` over session level) and port, and its payload types.
pub fn parse(body: &[u8]) -> Result<Media, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
    let mut session_c = None;
    // (port, pts, media-level c=) of the first audio stream
    let mut audio: Option<(u16, Vec<u8>, Option<IpAddr>)> = None;
    let mut in_audio = false;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                if audio.is_some() {
                    // only the first audio stream matters; stop at the next m=
                    break;
                }
                let mut f = value.split_ascii_whitespace();
                if f.next() != Some("audio") {
                    in_audio = false;
                    continue;
                }
                let port = f.next().ok_or(SdpError::Bad("m= port"))?;
                let port = port.split('/').next().unwrap_or(port);
                let port: u16 = port.parse().map_err(|_| SdpError::Bad("m= port"))?;
                let _proto = f.next().ok_or(SdpError::Bad("m= protocol"))?;
                let pts = f.filter_map(|p| p.parse::<u8>().ok()).collect();
                audio = Some((port, pts, None));
                in_audio = true;
            }
            "c" if audio.is_none() => session_c = Some(parse_c(value)?),
            "c" if in_audio => {
                if let Some(a) = audio.as_mut() {
                    a.2 = Some(parse_c(value)?);
                }
            }
            _ => {}
        }
    }
    let (port, pts, media_c) = audio.ok_or(SdpError::NoAudio)?;
    if port == 0 {
        return Err(SdpError::Rejected);
    }
    let ip = media_c.or(session_c).ok_or(SdpError::NoConnection)?;
    Ok(Media {
        addr: SocketAddr::new(ip, port),
        pts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn offer_round_trips_and_answer_picks_the_first_g711() {
        let o = offer(sa("127.0.0.2:40000"), 7);
        let text = String::from_utf8(o.clone()).unwrap();
        assert!(text.contains("m=audio 40000 RTP/AVP 0 8\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:8 PCMA/8000\r\n"));
        assert!(text.ends_with("a=sendrecv\r\n"));
        let m = parse(&o).unwrap();
        assert_eq!(m.addr, sa("127.0.0.2:40000"));
        assert_eq!(m.pts, [0, 8]);
        let a = answer(&m, sa("127.0.0.3:41000"), 9).unwrap();
        let am = parse(&a).unwrap();
        assert_eq!((am.addr, am.pts), (sa("127.0.0.3:41000"), vec![0]));
        // PCMA preferred by the offerer stays preferred
        let m = Media {
            addr: m.addr,
            pts: vec![18, 8, 0],
        };
        assert_eq!(parse(&answer(&m, m.addr, 1).unwrap()).unwrap().pts, [8]);
        let g729 = Media {
            addr: m.addr,
            pts: vec![18],
        };
        assert_eq!(answer(&g729, m.addr, 1), None);
    }

    #[test]
    fn media_level_connection_wins_and_ipv6_parses() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\n\
                   m=audio 20000 RTP/AVP 8 101\r\nc=IN IP4 192.0.2.5\r\n\
                   a=rtpmap:101 telephone-event/8000\r\nm=audio 30000 RTP/AVP 0\r\n";
        let m = parse(sdp.as_bytes()).unwrap();
        assert_eq!(m.addr, sa("192.0.2.5:20000"));
        assert_eq!(m.pts, [8, 101]);
        assert_eq!(m.first_g711(), Some(8));
        let v6 = "v=0\nc=IN IP6 ::1\nm=audio 4000 RTP/AVP 0\n";
        assert_eq!(parse(v6.as_bytes()).unwrap().addr, sa("[::1]:4000"));
        let o = offer(sa("[::1]:4002"), 1);
        assert!(String::from_utf8_lossy(&o).contains("c=IN IP6 ::1"));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let no_c = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(parse(no_c.as_bytes()), Err(SdpError::NoConnection));
        let rejected = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n";
        assert_eq!(parse(rejected.as_bytes()), Err(SdpError::Rejected));
        assert_eq!(parse(b"v=0\r\n"), Err(SdpError::NoAudio));
        assert_eq!(parse(&[0xff]), Err(SdpError::NotUtf8));
        let bad = "c=IN IP4 nope\r\nm=audio 1 RTP/AVP 0\r\n";
        assert!(matches!(parse(bad.as_bytes()), Err(SdpError::Bad(_))));
        let mismatch = "c=IN IP6 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n";
        assert!(matches!(parse(mismatch.as_bytes()), Err(SdpError::Bad(_))));
        // never panics on truncations
        let o = offer(sa("127.0.0.2:40000"), 7);
        for n in 0..o.len() {
            let _ = parse(&o[..n]);
        }
    }
}
