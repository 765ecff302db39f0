//! Media anchoring: rewrite a description so the peer sends its media to
//! Switchboard's relay, with an origin line owned by the leg.

use std::net::IpAddr;

use crate::sdp::{AddrType, Attribute, Connection, Origin, Sdp, direction_of};

/// Why a description could not be anchored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("{ports} relay ports given for {media} m-lines")]
    PortCountMismatch { media: usize, ports: usize },
    #[error("relay port {0} has no RTCP port above it")]
    PortOutOfRange(u16),
}

/// ICE attributes name the far end's own addresses; a phone that followed
/// them would bypass the relay, so anchoring removes them.
const ICE_ATTRIBUTES: &[&str] = &[
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
];

/// The `o=` line Switchboard presents on one leg. Keeps its session id for
/// the leg's lifetime and increments the version only when the description
/// it stamps differs from the last one (RFC 3264 §8), so a re-INVITE that
/// changes nothing carries the same version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegOrigin {
    username: String,
    session_id: u64,
    version: u64,
    last: Option<String>,
}

impl LegOrigin {
    /// A new origin; pick `session_id` unique per leg (a random number or
    /// an NTP-style timestamp).
    pub fn new(session_id: u64) -> Self {
        LegOrigin {
            username: "switchboard".into(),
            session_id,
            version: session_id,
            last: None,
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Writes this leg's origin into `sdp`, bumping the version if the rest
    /// of the description changed since the last stamp.
    pub fn stamp(&mut self, sdp: &mut Sdp, addr: IpAddr) {
        let mut origin = Origin {
            username: self.username.clone(),
            session_id: self.session_id.to_string(),
            session_version: 0,
            addr_type: AddrType::of(addr),
            address: addr.to_string(),
        };
        sdp.origin = origin.clone();
        let content = sdp.to_string();
        match &self.last {
            None => {}
            Some(last) if *last == content => {}
            Some(_) => self.version = self.version.wrapping_add(1),
        }
        self.last = Some(content);
        origin.session_version = self.version;
        sdp.origin = origin;
    }
}

/// Rewrites `sdp` (an offer or an answer received on one leg) for sending on
/// the other: every connection address becomes `relay` (the advertised
/// address: `SWITCHBOARD_PUBLIC_ADDR` when set), m-line `i` gets port
/// `ports[i]` and `a=rtcp` gets `ports[i] + 1`. Refused streams keep port
/// 0. Codecs, fmtp, ptime, direction and unknown attributes are kept; a hold
/// signalled with `c=0.0.0.0` becomes an explicit direction attribute; ICE
/// attributes are removed. `origin` stamps the `o=` line.
pub fn anchor(
    sdp: &Sdp,
    relay: IpAddr,
    ports: &[u16],
    origin: &mut LegOrigin,
) -> Result<Sdp, AnchorError> {
    if ports.len() != sdp.media.len() {
        return Err(AnchorError::PortCountMismatch {
            media: sdp.media.len(),
            ports: ports.len(),
        });
    }
    let mut out = sdp.clone();
    let conn = Connection::new(relay);
    out.connection = Some(conn.clone());
    out.attributes
        .retain(|a| !ICE_ATTRIBUTES.contains(&a.name.as_str()));
    for ((m, orig), &port) in out.media.iter_mut().zip(&sdp.media).zip(ports) {
        let held = sdp
            .connection_of(orig)
            .is_some_and(Connection::is_legacy_hold);
        if held {
            m.set_direction(direction_of(sdp, orig));
        }
        m.connection = None;
        m.port_count = None;
        m.attributes
            .retain(|a| !ICE_ATTRIBUTES.contains(&a.name.as_str()));
        if m.port == 0 {
            continue;
        }
        m.port = port;
        if let Some(rtcp) = m.rtcp() {
            let rtcp_port = port
                .checked_add(1)
                .ok_or(AnchorError::PortOutOfRange(port))?;
            let value = match rtcp.connection {
                Some(_) => format!("{rtcp_port} IN {} {relay}", AddrType::of(relay).as_str()),
                None => rtcp_port.to_string(),
            };
            if let Some(a) = m.attributes.iter_mut().find(|a| a.name == "rtcp") {
                *a = Attribute::new("rtcp", value);
            }
        }
    }
    origin.stamp(&mut out, relay);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::Direction;
    use crate::sdp::tests::samples::*;

    fn sdp(s: &str) -> Sdp {
        s.parse().unwrap()
    }

    const RELAY: &str = "203.0.113.7";

    #[test]
    fn rewrites_addresses_ports_and_rtcp() {
        let relay: IpAddr = RELAY.parse().unwrap();
        let mut o = LegOrigin::new(42);
        let a = anchor(&sdp(BARESIP), relay, &[30000, 30002], &mut o).unwrap();
        assert_eq!(a.connection, Some(Connection::new(relay)));
        assert_eq!(
            a.rtp_addr(0),
            Some(format!("{RELAY}:30000").parse().unwrap())
        );
        assert_eq!(
            a.rtp_addr(1),
            Some(format!("{RELAY}:30002").parse().unwrap())
        );
        assert_eq!(a.media[0].attr("rtcp"), Some("30001 IN IP4 203.0.113.7"));
        assert_eq!(
            a.rtcp_addr(0),
            Some(format!("{RELAY}:30001").parse().unwrap())
        );
        // Everything else is kept.
        let before = sdp(BARESIP);
        assert_eq!(a.media[0].formats, before.media[0].formats);
        assert_eq!(a.media[1].attributes, before.media[1].attributes);
        assert!(a.media[0].rtcp_mux());
        assert_eq!(a.media[0].attr("ssrc"), before.media[0].attr("ssrc"));
        assert_eq!(a.origin.username, "switchboard");
        assert_eq!(a.origin.session_id, "42");
        assert_eq!(a.origin.address, RELAY);
        // No trace of the phone's address survives.
        assert!(!a.to_string().contains("127.0.0.1"), "{a}");
    }

    #[test]
    fn media_level_connections_ipv6_and_refused_streams() {
        let relay: IpAddr = "2001:db8::53".parse().unwrap();
        let mut o = LegOrigin::new(7);
        let a = anchor(&sdp(CISCO), relay, &[40000], &mut o).unwrap();
        assert_eq!(a.media[0].connection, None);
        assert_eq!(a.rtp_addr(0), Some("[2001:db8::53]:40000".parse().unwrap()));
        assert_eq!(a.media[0].attr("rtcp"), Some("40001"));
        assert_eq!(a.origin.addr_type, AddrType::Ip6);

        let relay: IpAddr = RELAY.parse().unwrap();
        let a = anchor(&sdp(LINPHONE_V6), relay, &[40000, 40002], &mut o).unwrap();
        assert_eq!(a.media[1].port, 0, "refused stays refused");
        assert_eq!(a.connection.as_ref().unwrap().addr_type, AddrType::Ip4);
        assert_eq!(a.attr("ice-ufrag"), None);
        assert!(!a.media[0].has_attr("candidate"));
        assert_eq!(
            a.attr("rtcp-xr").map(|v| v.starts_with("rcvr-rtt")),
            Some(true)
        );
        assert_eq!(
            anchor(&sdp(LINPHONE_V6), relay, &[40000], &mut o),
            Err(AnchorError::PortCountMismatch { media: 2, ports: 1 })
        );
        assert_eq!(
            anchor(&sdp(CISCO), relay, &[u16::MAX], &mut o),
            Err(AnchorError::PortOutOfRange(u16::MAX))
        );
    }

    #[test]
    fn legacy_hold_survives_anchoring() {
        let relay: IpAddr = RELAY.parse().unwrap();
        let held = sdp(&YEALINK.replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0"));
        let a = anchor(&held, relay, &[30000], &mut LegOrigin::new(1)).unwrap();
        assert!(!a.connection.as_ref().unwrap().is_legacy_hold());
        assert_eq!(a.direction(0), Some(Direction::SendOnly));
    }

    #[test]
    fn origin_version_moves_only_on_change() {
        let relay: IpAddr = RELAY.parse().unwrap();
        let mut o = LegOrigin::new(1000);
        let offer = sdp(YEALINK);
        let first = anchor(&offer, relay, &[30000], &mut o).unwrap();
        assert_eq!(first.origin.session_version, 1000);
        // The same offer again (a refresh re-INVITE): same version.
        let again = anchor(&offer, relay, &[30000], &mut o).unwrap();
        assert_eq!(again.origin.session_version, 1000);
        assert_eq!(again, first);
        // The phone's own version bump alone changes nothing we present.
        let mut bumped = offer.clone();
        bumped.origin.session_version += 1;
        let same = anchor(&bumped, relay, &[30000], &mut o).unwrap();
        assert_eq!(same.origin.session_version, 1000);
        // Hold: content changes, version goes up by one.
        let mut hold = offer.clone();
        hold.media[0].set_direction(Direction::SendOnly);
        let held = anchor(&hold, relay, &[30000], &mut o).unwrap();
        assert_eq!(held.origin.session_version, 1001);
        assert_eq!(held.origin.session_id, "1000");
        // A new relay port is a change too.
        let moved = anchor(&hold, relay, &[30002], &mut o).unwrap();
        assert_eq!(moved.origin.session_version, 1002);
        assert_eq!(o.version(), 1002);
    }
}
