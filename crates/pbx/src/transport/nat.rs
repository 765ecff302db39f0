//! RFC 3581 (`rport`) and RFC 3261 §18.2.2 response routing, for phones behind NAT.

use std::net::SocketAddr;

use sip::Response;

use super::{Flow, TransportKind};

/// Where a response goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseTarget {
    /// Back on the flow the request came on (the connection for streams; for UDP the source
    /// address, or the source IP at the sent-by port when the client did not ask for rport).
    Flow(Flow),
    /// The top Via cannot be read: nowhere sensible to answer.
    Nowhere,
}

/// Rewrites the top Via of `resp` (a response to a request that arrived on `flow`): adds
/// `received=<source IP>` when the sent-by host differs from it (or when rport was asked for,
/// as RFC 3581 requires), fills a valueless `rport` with the source port, and says where to
/// send the response.
///
/// For UDP without rport the response goes to the source IP (never to another host named in
/// the Via: no reflection) at the sent-by port (default 5060).
pub fn apply_rport_received(resp: &mut Response, flow: &Flow) -> ResponseTarget {
    let Ok(Some(via)) = resp.headers.top_via() else {
        return ResponseTarget::Nowhere;
    };
    let src = flow.remote;
    let target_port = match via.rport() {
        Some(_) => src.port(),
        None if flow.kind == TransportKind::Udp => via.port.unwrap_or(5060),
        None => src.port(),
    };
    // The rule the transaction layer applies to every request it receives: it
    // leaves a Via alone when its sent-by is the source and no rport was asked for.
    resp.stamp_source(src);
    let mut target = *flow;
    target.remote = SocketAddr::new(src.ip(), target_port);
    ResponseTarget::Flow(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::StatusCode;

    fn resp(via: &str) -> Response {
        let mut r = Response::new(StatusCode::OK);
        r.headers.push("Via", via);
        r.headers
            .push("Via", "SIP/2.0/UDP proxy.example;branch=z9hG4bKp");
        r.headers.push("Call-ID", "x");
        r
    }

    fn flow(remote: &str) -> Flow {
        Flow::udp("127.0.0.1:5060".parse().unwrap(), remote.parse().unwrap())
    }

    #[test]
    fn fills_rport_and_received() {
        let mut r = resp("SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKa;rport");
        let t = apply_rport_received(&mut r, &flow("203.0.113.9:40000"));
        assert_eq!(
            r.headers.get("Via"),
            Some(
                "SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKa;rport=40000;received=203.0.113.9, SIP/2.0/UDP proxy.example;branch=z9hG4bKp"
            )
        );
        assert_eq!(r.headers.values("Via").count(), 2);
        let names: Vec<_> = r.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Via", "Call-ID"]);
        let ResponseTarget::Flow(f) = t else { panic!() };
        assert_eq!(f.remote, "203.0.113.9:40000".parse().unwrap());
    }

    #[test]
    fn no_rport_goes_to_sent_by_port_of_source_ip() {
        let mut r =
            resp("SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKa, SIP/2.0/UDP b;branch=z9hG4bKb");
        let t = apply_rport_received(&mut r, &flow("198.51.100.1:1234"));
        assert_eq!(
            r.headers.get("Via"),
            Some(
                "SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKa;received=198.51.100.1, SIP/2.0/UDP b;branch=z9hG4bKb, SIP/2.0/UDP proxy.example;branch=z9hG4bKp"
            )
        );
        let ResponseTarget::Flow(f) = t else { panic!() };
        assert_eq!(f.remote, "198.51.100.1:5070".parse().unwrap());
    }

    #[test]
    fn same_ip_without_rport_is_untouched() {
        let v = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa";
        let mut r = resp(v);
        let t = apply_rport_received(&mut r, &flow("127.0.0.1:5070"));
        assert_eq!(r.headers.get("Via"), Some(v));
        assert!(matches!(t, ResponseTarget::Flow(_)));
        let mut bad = resp("garbage");
        assert_eq!(
            apply_rport_received(&mut bad, &flow("127.0.0.1:1")),
            ResponseTarget::Nowhere
        );
    }
}
