//! SDP session descriptions (RFC 8866, formerly RFC 4566): a typed model,
//! a bounded hand-written parser and a serializer.
//!
//! The model keeps what Switchboard rewrites or reads as typed fields
//! (origin, connection, m-line fields) and everything else as ordered lines
//! and attributes, verbatim, so a description survives a parse/serialize
//! round trip with only line endings normalised to CRLF.

mod parse;
#[cfg(test)]
pub(crate) mod tests;
mod write;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub use parse::{
    MAX_ATTRIBUTES, MAX_FORMATS, MAX_LINE_LEN, MAX_LINES, MAX_MEDIA, MAX_SDP_LEN, SdpError,
};

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `o=`.
    pub origin: Origin,
    /// `s=`.
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Other session-level lines (`i= u= e= p= b= t= r= z= k=` and unknown
    /// letters) in the order received; written back in RFC order.
    pub lines: Vec<Line>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// The `m=` sections, in order.
    pub media: Vec<Media>,
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    /// Kept as text: phones send ids wider than 64 bits.
    pub session_id: String,
    pub session_version: u64,
    pub addr_type: AddrType,
    pub address: String,
}

/// `IP4` or `IP6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrType {
    Ip4,
    Ip6,
}

impl AddrType {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }
}

/// `c=IN <addrtype> <address>`; the address may carry a multicast
/// `/ttl[/count]` suffix or, rarely, be a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub addr_type: AddrType,
    pub address: String,
}

impl Connection {
    pub fn new(ip: IpAddr) -> Self {
        Connection {
            addr_type: AddrType::of(ip),
            address: ip.to_string(),
        }
    }

    /// The IP address, without any multicast suffix; `None` for host names.
    pub fn ip(&self) -> Option<IpAddr> {
        let bare = self.address.split('/').next().unwrap_or("");
        bare.parse().ok()
    }

    /// RFC 2543 hold: `c=IN IP4 0.0.0.0`.
    pub fn is_legacy_hold(&self) -> bool {
        self.ip() == Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

/// A line kept verbatim: its type letter and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: u8,
    pub value: String,
}

/// `a=<name>` or `a=<name>:<value>`, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn flag(name: &str) -> Self {
        Attribute {
            name: name.to_owned(),
            value: None,
        }
    }

    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Attribute {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `image`, `application`, ...
    pub kind: String,
    /// 0 marks a rejected or disabled stream.
    pub port: u16,
    /// The `/<number of ports>` suffix, if any.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `udptl`, ...
    pub proto: String,
    /// Format tokens: payload type numbers for RTP.
    pub formats: Vec<String>,
    /// Other media-level lines (`i= b= k=`), verbatim.
    pub lines: Vec<Line>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    pub attributes: Vec<Attribute>,
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpAttr {
    pub port: u16,
    pub connection: Option<Connection>,
}

/// The media direction attributes of RFC 3264.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether the side that wrote this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote this direction wants to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end (sendonly ↔ recvonly).
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// A hold as a phone signals it: it no longer wants to receive.
    pub fn is_hold(self) -> bool {
        !self.receives()
    }
}

fn is_direction(a: &Attribute) -> bool {
    a.value.is_none() && Direction::parse(&a.name).is_some()
}

fn direction_in(attrs: &[Attribute]) -> Option<Direction> {
    attrs
        .iter()
        .filter(|a| a.value.is_none())
        .find_map(|a| Direction::parse(&a.name))
}

/// Attribute lookups shared by the session and media levels.
fn find<'a>(attrs: &'a [Attribute], name: &str) -> impl Iterator<Item = &'a Attribute> {
    attrs.iter().filter(move |a| a.name == name)
}

impl Media {
    /// The value of the first `a=<name>:...`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        find(&self.attributes, name).find_map(|a| a.value.as_deref())
    }

    /// Whether `a=<name>` (with or without value) is present.
    pub fn has_attr(&self, name: &str) -> bool {
        find(&self.attributes, name).next().is_some()
    }

    /// Removes every attribute with this name.
    pub fn remove_attr(&mut self, name: &str) {
        self.attributes.retain(|a| a.name != name);
    }

    pub fn is_rtp(&self) -> bool {
        self.proto.split('/').any(|p| p == "RTP")
    }

    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// The formats that are valid RTP payload type numbers, in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt < 128)
    }

    pub fn rtpmaps(&self) -> impl Iterator<Item = RtpMap> + '_ {
        find(&self.attributes, "rtpmap").filter_map(|a| parse::rtpmap(a.value.as_deref()?).ok())
    }

    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        self.rtpmaps().find(|m| m.pt == pt)
    }

    /// The parameters of `a=fmtp:<pt> <params>`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        find(&self.attributes, "fmtp").find_map(|a| {
            let (p, params) = parse::fmtp(a.value.as_deref()?).ok()?;
            (p == pt).then_some(params)
        })
    }

    pub fn ptime(&self) -> Option<u32> {
        parse::millis(self.attr("ptime")?)
    }

    pub fn maxptime(&self) -> Option<u32> {
        parse::millis(self.attr("maxptime")?)
    }

    pub fn rtcp(&self) -> Option<RtcpAttr> {
        parse::rtcp(self.attr("rtcp")?).ok()
    }

    pub fn rtcp_mux(&self) -> bool {
        self.has_attr("rtcp-mux")
    }

    /// The direction attribute written at media level, if any.
    pub fn direction_attr(&self) -> Option<Direction> {
        direction_in(&self.attributes)
    }

    /// Replaces any media-level direction attribute with `dir`.
    pub fn set_direction(&mut self, dir: Direction) {
        let at = self.attributes.iter().position(is_direction);
        self.attributes.retain(|a| !is_direction(a));
        let attr = Attribute::flag(dir.as_str());
        match at {
            Some(i) => self.attributes.insert(i.min(self.attributes.len()), attr),
            None => self.attributes.push(attr),
        }
    }
}

impl Sdp {
    /// The value of the first session-level `a=<name>:...`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        find(&self.attributes, name).find_map(|a| a.value.as_deref())
    }

    /// The connection that applies to a media section: its own or the
    /// session's.
    pub fn connection_of<'a>(&'a self, media: &'a Media) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// Where the author of this description wants RTP for stream `index`:
    /// `None` for a rejected stream, a legacy hold address or a host name.
    pub fn rtp_addr(&self, index: usize) -> Option<SocketAddr> {
        let m = self.media.get(index)?;
        let c = self.connection_of(m)?;
        if m.port == 0 || c.is_legacy_hold() {
            return None;
        }
        Some(SocketAddr::new(c.ip()?, m.port))
    }

    /// Where the author wants RTCP for stream `index`: `a=rtcp` if present,
    /// the RTP address with `rtcp-mux`, otherwise RTP port + 1.
    pub fn rtcp_addr(&self, index: usize) -> Option<SocketAddr> {
        let rtp = self.rtp_addr(index)?;
        let m = &self.media[index];
        if let Some(r) = m.rtcp() {
            let ip = r.connection.and_then(|c| c.ip()).unwrap_or(rtp.ip());
            return Some(SocketAddr::new(ip, r.port));
        }
        if m.rtcp_mux() {
            return Some(rtp);
        }
        Some(SocketAddr::new(rtp.ip(), rtp.port().checked_add(1)?))
    }

    /// See [`direction_of`].
    pub fn direction(&self, index: usize) -> Option<Direction> {
        self.media.get(index).map(|m| direction_of(self, m))
    }
}

/// The direction a description's author declares for `media`: the media-level
/// attribute, else the session-level one, else sendrecv; a legacy hold
/// address (`c=IN IP4 0.0.0.0`) takes away the receive half, as RFC 2543
/// phones mean "do not send to me".
pub fn direction_of(sdp: &Sdp, media: &Media) -> Direction {
    let dir = media
        .direction_attr()
        .or_else(|| direction_in(&sdp.attributes))
        .unwrap_or_default();
    match sdp.connection_of(media) {
        Some(c) if c.is_legacy_hold() => Direction::from_flags(dir.sends(), false),
        _ => dir,
    }
}
