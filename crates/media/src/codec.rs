//! Codecs as SDP names them, the static payload type table (RFC 3551), and
//! payload type maps between legs.

use crate::sdp::Media;

/// One RTP format offered or accepted on an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub pt: u8,
    /// Encoding name as written (`PCMU`, `telephone-event`, `opus`).
    pub name: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// `a=fmtp` parameters, if any.
    pub fmtp: Option<String>,
}

/// The encoding name of RFC 4733 DTMF events.
pub const TELEPHONE_EVENT: &str = "telephone-event";

impl Codec {
    /// Whether two codecs are the same format (payload type aside):
    /// case-insensitive name, clock rate and channel count.
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }

    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case(TELEPHONE_EVENT)
    }

    /// A codec from the static table, if `pt` is in it.
    pub fn from_static(pt: u8) -> Option<Codec> {
        let (name, clock_rate, channels) = static_payload(pt)?;
        Some(Codec {
            pt,
            name: name.to_owned(),
            clock_rate,
            channels,
            fmtp: None,
        })
    }

    /// A codec with no fmtp, for capability lists.
    pub fn new(pt: u8, name: &str, clock_rate: u32) -> Codec {
        Codec {
            pt,
            name: name.to_owned(),
            clock_rate,
            channels: 1,
            fmtp: None,
        }
    }

    pub fn pcmu() -> Codec {
        Codec::new(0, "PCMU", 8000)
    }

    pub fn pcma() -> Codec {
        Codec::new(8, "PCMA", 8000)
    }
}

/// The static audio and video payload types of RFC 3551 §6 still in use.
/// G.722's RTP clock is 8000 although it samples at 16 kHz.
pub fn static_payload(pt: u8) -> Option<(&'static str, u32, u16)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        13 => ("CN", 8000, 1),
        15 => ("G728", 8000, 1),
        18 => ("G729", 8000, 1),
        26 => ("JPEG", 90000, 1),
        31 => ("H261", 90000, 1),
        34 => ("H263", 90000, 1),
        _ => return None,
    })
}

/// The RTP codecs of an m-line in preference order. A format with an
/// `a=rtpmap` uses it; a static one without falls back to the table; a
/// dynamic one without is skipped (it cannot be identified).
pub fn codecs_of(media: &Media) -> Vec<Codec> {
    if !media.is_rtp() {
        return Vec::new();
    }
    let maps: Vec<_> = media.rtpmaps().collect();
    let mut out: Vec<Codec> = Vec::new();
    for pt in media.payload_types() {
        if out.iter().any(|c| c.pt == pt) {
            continue;
        }
        let codec = match maps.iter().find(|m| m.pt == pt) {
            Some(m) => Codec {
                pt,
                name: m.encoding.clone(),
                clock_rate: m.clock_rate,
                channels: m.channels.unwrap_or(1),
                fmtp: None,
            },
            None => match Codec::from_static(pt) {
                Some(c) => c,
                None => continue,
            },
        };
        out.push(Codec {
            fmtp: media.fmtp(pt).map(str::to_owned),
            ..codec
        });
    }
    out
}

/// Payload type rewriting for packets travelling toward one leg: maps the
/// number the sender uses to the number the receiver declared for the same
/// format. Only differing numbers are stored; anything unmapped passes
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PtMap {
    pairs: Vec<(u8, u8)>,
}

impl PtMap {
    /// The map for media whose sender was told `sender_side` (the codecs in
    /// the SDP the sender received, whose numbers it sends with) toward a
    /// receiver that declared `receiver_side` (the SDP it sent).
    pub fn between(sender_side: &[Codec], receiver_side: &[Codec]) -> PtMap {
        let mut pairs = Vec::new();
        for s in sender_side {
            if let Some(r) = receiver_side.iter().find(|r| r.same_format(s)) {
                if r.pt != s.pt && !pairs.iter().any(|(from, _)| *from == s.pt) {
                    pairs.push((s.pt, r.pt));
                }
            }
        }
        PtMap { pairs }
    }

    pub fn insert(&mut self, from: u8, to: u8) {
        self.pairs.retain(|(f, _)| *f != from);
        if from != to {
            self.pairs.push((from, to));
        }
    }

    pub fn map(&self, pt: u8) -> u8 {
        self.pairs
            .iter()
            .find(|(from, _)| *from == pt)
            .map_or(pt, |(_, to)| *to)
    }

    pub fn is_identity(&self) -> bool {
        self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::Sdp;
    use crate::sdp::tests::samples;

    #[test]
    fn codecs_fill_static_types_and_fmtp() {
        let sdp: Sdp = samples::CISCO.parse().unwrap();
        let c = codecs_of(&sdp.media[0]);
        let names: Vec<_> = c.iter().map(|c| (c.pt, c.name.as_str())).collect();
        assert_eq!(
            names,
            [
                (0, "PCMU"),
                (8, "PCMA"),
                (18, "G729"),
                (101, "telephone-event")
            ]
        );
        assert_eq!(c[3].fmtp.as_deref(), Some("0-15"));
        let sdp: Sdp = samples::BARESIP.parse().unwrap();
        let opus = &codecs_of(&sdp.media[0])[0];
        assert_eq!((opus.clock_rate, opus.channels), (48000, 2));
    }

    #[test]
    fn pt_map_pairs_telephone_event_across_legs() {
        let a = vec![Codec::pcmu(), Codec::new(101, TELEPHONE_EVENT, 8000)];
        let b = vec![
            Codec::pcmu(),
            Codec::new(96, TELEPHONE_EVENT, 48000),
            Codec::new(97, "Telephone-Event", 8000),
        ];
        let to_b = PtMap::between(&a, &b);
        assert_eq!(to_b.map(101), 97);
        assert_eq!(to_b.map(0), 0);
        assert_eq!(to_b.map(55), 55);
        let to_a = PtMap::between(&b, &a);
        assert_eq!(to_a.map(97), 101);
        assert_eq!(to_a.map(96), 96, "no 48 kHz events on A");
        assert!(PtMap::between(&a, &a).is_identity());
    }
}
