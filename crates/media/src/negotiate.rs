//! RFC 3264 offer/answer as a B2BUA needs it: answer an offer against what
//! the other side supports, or read what an offer/answer pair agreed.

use crate::codec::{Codec, codecs_of};
use crate::sdp::{AddrType, Attribute, Direction, Line, Media, Origin, Sdp, direction_of};

/// Why no usable answer exists. `NoCommonCodec` is the engine's 488.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no stream of the offer can be accepted (no common codec)")]
    NoCommonCodec,
    #[error("answer has {answer} m-lines, offer has {offer}")]
    MediaCountMismatch { offer: usize, answer: usize },
    #[error("answer m-line {index} is not the offer's media type")]
    MediaKindMismatch { index: usize },
}

/// What an answerer can take, per media type. G.711 (PCMU and PCMA) is
/// always in the audio set: the relay can convert between the two laws.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    rtp: Vec<(String, Codec)>,
    /// Non-RTP formats (T.38 `t38`, BFCP, ...) by media type and proto.
    other: Vec<(String, String, String)>,
}

impl Capabilities {
    /// G.711 only (always implied) plus 8 kHz telephone-event: what the
    /// engine itself can send and receive.
    pub fn g711() -> Self {
        Capabilities::default().with(
            "audio",
            Codec::new(101, crate::codec::TELEPHONE_EVENT, 8000),
        )
    }

    /// Everything a leg's description accepts (its offer or answer), for
    /// answering the other leg: shared codecs then pass straight through.
    pub fn from_sdp(sdp: &Sdp) -> Self {
        let mut caps = Capabilities::default();
        for m in sdp.media.iter().filter(|m| !m.is_rejected()) {
            if m.is_rtp() {
                for c in codecs_of(m) {
                    caps = caps.with(&m.kind, c);
                }
            } else {
                for f in &m.formats {
                    caps.other
                        .push((m.kind.clone(), m.proto.clone(), f.clone()));
                }
            }
        }
        caps
    }

    /// Adds an RTP codec for a media type (its payload type is ignored).
    pub fn with(mut self, kind: &str, codec: Codec) -> Self {
        if !self.supports(kind, &codec) {
            self.rtp.push((kind.to_owned(), codec));
        }
        self
    }

    pub fn supports(&self, kind: &str, codec: &Codec) -> bool {
        (kind == "audio"
            && (codec.same_format(&Codec::pcmu()) || codec.same_format(&Codec::pcma())))
            || self
                .rtp
                .iter()
                .any(|(k, c)| k == kind && c.same_format(codec))
    }

    fn supports_format(&self, m: &Media, format: &str) -> bool {
        self.other
            .iter()
            .any(|(k, p, f)| *k == m.kind && p.eq_ignore_ascii_case(&m.proto) && f == format)
    }
}

/// One stream as negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub index: usize,
    pub kind: String,
    /// False for a stream refused (port 0) by either side.
    pub accepted: bool,
    /// The agreed RTP codecs with the answerer's payload type numbers.
    pub codecs: Vec<Codec>,
    /// The answerer's direction.
    pub direction: Direction,
    /// Both sides agreed to RTCP multiplexing (RFC 5761).
    pub rtcp_mux: bool,
}

/// An answer and what it agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer. Connection address, ports and origin are still the
    /// offer's: pass it through [`crate::anchor`] before sending it.
    pub sdp: Sdp,
    pub streams: Vec<Stream>,
}

/// RFC 3264 §6.1: the answerer sends only if the offerer receives, and
/// receives only if the offerer sends; `local` narrows further (e.g. the
/// answerer is itself on hold).
pub fn answer_direction(offered: Direction, local: Direction) -> Direction {
    Direction::from_flags(
        offered.receives() && local.sends(),
        offered.sends() && local.receives(),
    )
}

fn rejected(m: &Media) -> Media {
    Media {
        kind: m.kind.clone(),
        port: 0,
        port_count: None,
        proto: m.proto.clone(),
        formats: m.formats.iter().take(1).cloned().collect(),
        lines: Vec::new(),
        connection: None,
        attributes: Vec::new(),
    }
}

/// Whether a codec list carries a voice/video codec, not only DTMF or
/// comfort noise.
fn has_media_codec(codecs: &[Codec]) -> bool {
    codecs
        .iter()
        .any(|c| !c.is_telephone_event() && !c.name.eq_ignore_ascii_case("CN"))
}

fn answer_rtp(
    offer: &Sdp,
    m: &Media,
    caps: &Capabilities,
    local: Direction,
) -> Option<(Media, Stream)> {
    let codecs: Vec<Codec> = codecs_of(m)
        .into_iter()
        .filter(|c| caps.supports(&m.kind, c))
        .collect();
    if !has_media_codec(&codecs) {
        return None;
    }
    let mut attributes = Vec::new();
    for c in &codecs {
        let mut map = format!("{} {}/{}", c.pt, c.name, c.clock_rate);
        if c.channels != 1 {
            map.push_str(&format!("/{}", c.channels));
        }
        attributes.push(Attribute::new("rtpmap", map));
        if let Some(f) = &c.fmtp {
            attributes.push(Attribute::new("fmtp", format!("{} {f}", c.pt)));
        }
    }
    for name in ["ptime", "maxptime"] {
        if let Some(v) = m.attr(name) {
            attributes.push(Attribute::new(name, v));
        }
    }
    let rtcp_mux = m.rtcp_mux();
    if rtcp_mux {
        attributes.push(Attribute::flag("rtcp-mux"));
    }
    let direction = answer_direction(direction_of(offer, m), local);
    attributes.push(Attribute::flag(direction.as_str()));
    let media = Media {
        kind: m.kind.clone(),
        port: m.port,
        port_count: None,
        proto: m.proto.clone(),
        formats: codecs.iter().map(|c| c.pt.to_string()).collect(),
        lines: Vec::new(),
        connection: None,
        attributes,
    };
    let stream = Stream {
        index: 0,
        kind: m.kind.clone(),
        accepted: true,
        codecs,
        direction,
        rtcp_mux,
    };
    Some((media, stream))
}

fn answer_other(m: &Media, caps: &Capabilities) -> Option<(Media, Stream)> {
    let formats: Vec<String> = m
        .formats
        .iter()
        .filter(|f| caps.supports_format(m, f))
        .cloned()
        .collect();
    if formats.is_empty() {
        return None;
    }
    // Non-RTP parameters (T.38 and the like) are the far end's business:
    // pass them through.
    let media = Media {
        formats,
        port_count: None,
        connection: None,
        ..m.clone()
    };
    let stream = Stream {
        index: 0,
        kind: m.kind.clone(),
        accepted: true,
        codecs: Vec::new(),
        direction: Direction::SendRecv,
        rtcp_mux: false,
    };
    Some((media, stream))
}

/// Answers `offer` with what `caps` supports: per m-line, the offered codecs
/// the answerer shares (offer order and payload numbers kept,
/// telephone-event included when shared), the answered direction, and port
/// 0 for streams refused or already refused in the offer. Fails with
/// [`NegotiationError::NoCommonCodec`] when nothing can be accepted.
pub fn answer(
    offer: &Sdp,
    caps: &Capabilities,
    local: Direction,
) -> Result<Answer, NegotiationError> {
    let mut media = Vec::with_capacity(offer.media.len());
    let mut streams = Vec::with_capacity(offer.media.len());
    for (index, m) in offer.media.iter().enumerate() {
        let accepted = match m.is_rejected() {
            true => None,
            false if m.is_rtp() => answer_rtp(offer, m, caps, local),
            false => answer_other(m, caps),
        };
        let (am, stream) = accepted.unwrap_or_else(|| {
            let stream = Stream {
                index,
                kind: m.kind.clone(),
                accepted: false,
                codecs: Vec::new(),
                direction: Direction::Inactive,
                rtcp_mux: false,
            };
            (rejected(m), stream)
        });
        media.push(am);
        streams.push(Stream { index, ..stream });
    }
    if !streams.iter().any(|s| s.accepted) {
        return Err(NegotiationError::NoCommonCodec);
    }
    let sdp = Sdp {
        origin: Origin {
            username: "-".into(),
            session_id: "0".into(),
            session_version: 0,
            addr_type: AddrType::Ip4,
            address: "0.0.0.0".into(),
        },
        session_name: "-".into(),
        connection: offer.connection.clone(),
        lines: vec![Line {
            kind: b't',
            value: "0 0".into(),
        }],
        attributes: Vec::new(),
        media,
    };
    Ok(Answer { sdp, streams })
}

/// What an offer and the answer to it agreed, stream by stream: for the
/// B2BUA passing one leg's answer through, to learn codecs and directions.
pub fn negotiated(offer: &Sdp, answer: &Sdp) -> Result<Vec<Stream>, NegotiationError> {
    if offer.media.len() != answer.media.len() {
        return Err(NegotiationError::MediaCountMismatch {
            offer: offer.media.len(),
            answer: answer.media.len(),
        });
    }
    let mut streams = Vec::with_capacity(answer.media.len());
    for (index, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
        if o.kind != a.kind {
            return Err(NegotiationError::MediaKindMismatch { index });
        }
        let accepted = !o.is_rejected() && !a.is_rejected();
        let offered = codecs_of(o);
        let codecs = match accepted {
            true => codecs_of(a)
                .into_iter()
                .filter(|c| offered.iter().any(|x| x.same_format(c)))
                .collect(),
            false => Vec::new(),
        };
        streams.push(Stream {
            index,
            kind: a.kind.clone(),
            accepted,
            codecs,
            direction: match accepted {
                true => direction_of(answer, a),
                false => Direction::Inactive,
            },
            rtcp_mux: accepted && o.rtcp_mux() && a.rtcp_mux(),
        });
    }
    Ok(streams)
}

#[cfg(test)]
#[path = "negotiate_tests.rs"]
mod tests;
