//! The SDP parser: line oriented, bounded, never panics on peer input.

use super::{AddrType, Attribute, Connection, Line, Media, Origin, RtcpAttr, RtpMap, Sdp};

/// Largest description accepted, in bytes.
pub const MAX_SDP_LEN: usize = 32 * 1024;
/// Most lines accepted.
pub const MAX_LINES: usize = 1024;
/// Longest line accepted, in bytes.
pub const MAX_LINE_LEN: usize = 4096;
/// Most `m=` sections accepted.
pub const MAX_MEDIA: usize = 32;
/// Most `a=` lines accepted in one section (session or media).
pub const MAX_ATTRIBUTES: usize = 256;
/// Most formats accepted on one `m=` line.
pub const MAX_FORMATS: usize = 64;

/// Why a description was refused. Line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is {len} bytes, more than {max}")]
    TooLarge { len: usize, max: usize },
    #[error("SDP is not UTF-8")]
    NotUtf8,
    #[error("SDP has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("line {line} is longer than {MAX_LINE_LEN} bytes")]
    LineTooLong { line: usize },
    #[error("SDP has more than {MAX_MEDIA} m= sections")]
    TooManyMedia,
    #[error("line {line}: more than {MAX_ATTRIBUTES} attributes in one section")]
    TooManyAttributes { line: usize },
    #[error("line {line}: more than {MAX_FORMATS} formats")]
    TooManyFormats { line: usize },
    #[error("SDP does not start with v=0")]
    BadVersion,
    #[error("SDP lacks a{what} line")]
    Missing { what: &'static str },
    #[error("line {line}: {what}")]
    Malformed { line: usize, what: &'static str },
    #[error("line {line}: invalid a={name}")]
    InvalidAttribute { line: usize, name: String },
}

impl std::str::FromStr for Sdp {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, SdpError> {
        Sdp::parse(s.as_bytes())
    }
}

/// The section lines are being added to.
enum Section {
    Session,
    Media,
}

impl Sdp {
    /// Parses a description. Accepts CRLF or bare LF line ends and tolerates
    /// trailing whitespace and blank lines; refuses anything over the
    /// `MAX_*` bounds.
    pub fn parse(bytes: &[u8]) -> Result<Sdp, SdpError> {
        if bytes.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge {
                len: bytes.len(),
                max: MAX_SDP_LEN,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotUtf8)?;
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches([' ', '\t', '\r'])))
            .filter(|(_, l)| !l.is_empty());

        let mut next = |what: &'static str| -> Result<(usize, u8, &str), SdpError> {
            let (n, l) = lines.next().ok_or(SdpError::Missing { what })?;
            split_line(n, l)
        };
        let (_, kind, value) = next(" v=")?;
        if kind != b'v' || value != "0" {
            return Err(SdpError::BadVersion);
        }
        let (n, kind, value) = next("n o=")?;
        if kind != b'o' {
            return Err(SdpError::Missing { what: "n o=" });
        }
        let origin = origin(n, value)?;
        let (_, kind, value) = next("n s=")?;
        if kind != b's' {
            return Err(SdpError::Missing { what: "n s=" });
        }
        let mut sdp = Sdp {
            origin,
            session_name: value.to_owned(),
            connection: None,
            lines: Vec::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        };

        let mut section = Section::Session;
        for (count, (n, raw)) in lines.enumerate() {
            if count + 3 >= MAX_LINES {
                return Err(SdpError::TooManyLines);
            }
            let (n, kind, value) = split_line(n, raw)?;
            match kind {
                b'm' => {
                    if sdp.media.len() == MAX_MEDIA {
                        return Err(SdpError::TooManyMedia);
                    }
                    sdp.media.push(media_line(n, value)?);
                    section = Section::Media;
                }
                b'c' => {
                    let c = Some(connection(n, value)?);
                    let slot = match section {
                        Section::Session => &mut sdp.connection,
                        Section::Media => &mut current(&mut sdp).connection,
                    };
                    if slot.is_some() {
                        return Err(SdpError::Malformed {
                            line: n,
                            what: "more than one c= in a section",
                        });
                    }
                    *slot = c;
                }
                b'a' => {
                    let attrs = match section {
                        Section::Session => &mut sdp.attributes,
                        Section::Media => &mut current(&mut sdp).attributes,
                    };
                    if attrs.len() == MAX_ATTRIBUTES {
                        return Err(SdpError::TooManyAttributes { line: n });
                    }
                    attrs.push(attribute(n, value)?);
                }
                b'v' | b'o' | b's' => {
                    return Err(SdpError::Malformed {
                        line: n,
                        what: "v=, o= or s= repeated",
                    });
                }
                _ => {
                    let line = Line {
                        kind,
                        value: value.to_owned(),
                    };
                    match section {
                        Section::Session => sdp.lines.push(line),
                        Section::Media => current(&mut sdp).lines.push(line),
                    }
                }
            }
        }
        Ok(sdp)
    }
}

/// The media section being filled; only called once one exists.
fn current(sdp: &mut Sdp) -> &mut Media {
    // Section::Media is only entered after a push.
    let last = sdp.media.len() - 1;
    &mut sdp.media[last]
}

fn split_line(n: usize, line: &str) -> Result<(usize, u8, &str), SdpError> {
    if line.len() > MAX_LINE_LEN {
        return Err(SdpError::LineTooLong { line: n });
    }
    let b = line.as_bytes();
    if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
        return Err(SdpError::Malformed {
            line: n,
            what: "not a <letter>=<value> line",
        });
    }
    if line.bytes().any(|c| c == 0 || (c < 0x20 && c != b'\t')) {
        return Err(SdpError::Malformed {
            line: n,
            what: "control character",
        });
    }
    Ok((n, b[0], &line[2..]))
}

fn malformed(line: usize, what: &'static str) -> SdpError {
    SdpError::Malformed { line, what }
}

fn addr_type(s: &str) -> Option<AddrType> {
    match s {
        "IP4" => Some(AddrType::Ip4),
        "IP6" => Some(AddrType::Ip6),
        _ => None,
    }
}

fn origin(n: usize, v: &str) -> Result<Origin, SdpError> {
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    let [user, id, version, net, at, addr] = f[..] else {
        return Err(malformed(n, "o= needs six fields"));
    };
    if net != "IN" {
        return Err(malformed(n, "o= network type is not IN"));
    }
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(n, "o= session id is not numeric"));
    }
    Ok(Origin {
        username: user.to_owned(),
        session_id: id.to_owned(),
        session_version: version
            .parse()
            .map_err(|_| malformed(n, "o= session version is not a number"))?,
        addr_type: addr_type(at).ok_or(malformed(n, "o= address type"))?,
        address: addr.to_owned(),
    })
}

fn connection_fields(n: usize, net: &str, at: &str, addr: &str) -> Result<Connection, SdpError> {
    if net != "IN" {
        return Err(malformed(n, "c= network type is not IN"));
    }
    let addr_type = addr_type(at).ok_or(malformed(n, "c= address type"))?;
    let c = Connection {
        addr_type,
        address: addr.to_owned(),
    };
    // An address that parses must agree with its declared type.
    if let Some(ip) = c.ip() {
        if AddrType::of(ip) != addr_type {
            return Err(malformed(n, "c= address does not match its type"));
        }
    }
    Ok(c)
}

fn connection(n: usize, v: &str) -> Result<Connection, SdpError> {
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    let [net, at, addr] = f[..] else {
        return Err(malformed(n, "c= needs three fields"));
    };
    connection_fields(n, net, at, addr)
}

fn media_line(n: usize, v: &str) -> Result<Media, SdpError> {
    let mut f = v.split_ascii_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (f.next(), f.next(), f.next()) else {
        return Err(malformed(n, "m= needs media, port and proto"));
    };
    let (port, port_count) = match port.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port, None),
    };
    let port = port.parse().map_err(|_| malformed(n, "m= port"))?;
    let port_count = port_count
        .map(|c| c.parse::<u16>())
        .transpose()
        .map_err(|_| malformed(n, "m= port count"))?;
    let mut formats = Vec::new();
    for fmt in f {
        if formats.len() == MAX_FORMATS {
            return Err(SdpError::TooManyFormats { line: n });
        }
        formats.push(fmt.to_owned());
    }
    if formats.is_empty() {
        return Err(malformed(n, "m= without formats"));
    }
    Ok(Media {
        kind: kind.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        lines: Vec::new(),
        connection: None,
        attributes: Vec::new(),
    })
}

fn attribute(n: usize, v: &str) -> Result<Attribute, SdpError> {
    let (name, value) = match v.split_once(':') {
        Some((name, value)) => (name, Some(value)),
        None => (v, None),
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    {
        return Err(malformed(n, "attribute name"));
    }
    let invalid = || SdpError::InvalidAttribute {
        line: n,
        name: name.to_owned(),
    };
    // The attributes Switchboard reads are checked here, so that accessors
    // never meet a malformed one.
    match (name, value) {
        ("rtpmap", Some(v)) => {
            rtpmap(v).map_err(|()| invalid())?;
        }
        ("fmtp", Some(v)) => {
            fmtp(v).map_err(|()| invalid())?;
        }
        ("rtcp", Some(v)) => {
            rtcp(v).map_err(|()| invalid())?;
        }
        ("rtpmap" | "fmtp" | "rtcp", None) => return Err(invalid()),
        _ => {}
    }
    Ok(Attribute {
        name: name.to_owned(),
        value: value.map(str::to_owned),
    })
}

fn payload_type(s: &str) -> Result<u8, ()> {
    match s.parse::<u8>() {
        Ok(pt) if pt < 128 => Ok(pt),
        _ => Err(()),
    }
}

pub(super) fn rtpmap(v: &str) -> Result<RtpMap, ()> {
    let (pt, rest) = v.split_once(' ').ok_or(())?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().filter(|e| !e.is_empty()).ok_or(())?;
    let clock_rate = parts.next().ok_or(())?.parse().map_err(|_| ())?;
    let channels = parts
        .next()
        .map(|c| c.parse::<u16>().map_err(|_| ()))
        .transpose()?;
    if parts.next().is_some() || clock_rate == 0 {
        return Err(());
    }
    Ok(RtpMap {
        pt: payload_type(pt)?,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

pub(super) fn fmtp(v: &str) -> Result<(u8, &str), ()> {
    let (pt, params) = v.split_once(' ').unwrap_or((v, ""));
    Ok((payload_type(pt)?, params.trim()))
}

pub(super) fn rtcp(v: &str) -> Result<RtcpAttr, ()> {
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    let port = f.first().ok_or(())?.parse().map_err(|_| ())?;
    let connection = match f[1..] {
        [] => None,
        [net, at, addr] => Some(connection_fields(0, net, at, addr).map_err(|_| ())?),
        _ => return Err(()),
    };
    Ok(RtcpAttr { port, connection })
}

/// A ptime value in whole milliseconds; some phones write `20.0`.
pub(super) fn millis(v: &str) -> Option<u32> {
    let whole = v.split('.').next()?;
    whole.trim().parse().ok()
}
