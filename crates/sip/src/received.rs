//! Where a request came from, written into its top Via (RFC 3261 §18.2.1 and
//! RFC 3581 §4): `received` when the sent-by host is not the source address
//! (or when `rport` is asked for), and a valueless `rport` filled in with the
//! source port. A server stamps the request once on arrival; every response
//! built from it with [`crate::Request::response`] then carries the stamped
//! Via, whichever path builds it.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::headers::Headers;
use crate::via::Via;

/// Stamps the top Via of `headers` (a request's, or a response's built from an
/// unstamped request) with `source`. Returns false, changing nothing, when
/// there is no Via or it cannot be read. A Via already stamped for `source`
/// comes out unchanged, so stamping twice is harmless.
pub(crate) fn stamp_top_via(headers: &mut Headers, source: SocketAddr) -> bool {
    let Some(first_line) = headers.get("Via") else {
        return false;
    };
    let (top, rest) = split_first_item(first_line);
    let Ok(via) = Via::parse(top) else {
        return false;
    };
    let rport = via.rport();
    let sent_by_ip = via
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let needs_received = rport.is_some() || sent_by_ip != Some(source.ip());
    if !needs_received {
        return true;
    }
    let params = via.params.as_str();
    let head = top.trim_end();
    let prefix = head.strip_suffix(params).unwrap_or(head);
    let mut out = String::with_capacity(first_line.len() + 40);
    out.push_str(prefix.trim_end());
    for (name, value) in via.params.iter() {
        if name.eq_ignore_ascii_case("rport") || name.eq_ignore_ascii_case("received") {
            continue;
        }
        out.push(';');
        out.push_str(name);
        if let Some(v) = value {
            out.push('=');
            out.push_str(v);
        }
    }
    if rport.is_some() {
        let _ = write!(out, ";rport={}", source.port());
    }
    let _ = write!(out, ";received={}", source.ip());
    if let Some(rest) = rest {
        out.push(',');
        out.push_str(rest);
    }
    // One Via line carrying every value is equivalent (RFC 3261 §7.3.1).
    for more in headers.get_all("Via").skip(1) {
        out.push_str(", ");
        out.push_str(more);
    }
    headers.set("Via", &out);
    true
}

/// Splits a header value at the first comma outside a quoted string.
fn split_first_item(v: &str) -> (&str, Option<&str>) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in v.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => return (&v[..i], Some(&v[i + 1..])),
            _ => {}
        }
    }
    (v, None)
}

#[cfg(test)]
mod tests {
    use crate::{Limits, Message, Method, Request, StatusCode, Uri, parse_datagram};

    fn request(via: &str) -> Request {
        let mut r = Request::new(Method::Bye, Uri::parse("sip:pbx.example").unwrap());
        r.headers.push("Via", via);
        r.headers
            .push("Via", "SIP/2.0/UDP proxy.example;branch=z9hG4bKp");
        r.headers.push("From", "<sip:a@x>;tag=1");
        r.headers.push("To", "<sip:b@y>;tag=2");
        r.headers.push("Call-ID", "c");
        r.headers.push("CSeq", "2 BYE");
        r
    }

    fn top(r: &crate::Response) -> String {
        r.headers.values("Via").next().unwrap().trim().to_owned()
    }

    #[test]
    fn valueless_rport_gets_the_source_port_and_received() {
        let mut req = request("SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKa;rport");
        assert!(req.stamp_source("203.0.113.9:40000".parse().unwrap()));
        for status in [200, 481, 487, 500] {
            let r = req.response(StatusCode::new(status).unwrap());
            assert_eq!(
                top(&r),
                "SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bKa;rport=40000;received=203.0.113.9",
                "{status}"
            );
            assert_eq!(r.headers.values("Via").count(), 2);
            let tagged = req.response_tagged(StatusCode::new(status).unwrap());
            assert_eq!(top(&tagged), top(&r));
        }
    }

    #[test]
    fn rport_on_the_same_address_still_gets_port_and_received() {
        // RFC 3581 §4: received is added whenever rport is present.
        let mut req = request("SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKa");
        req.stamp_source("127.0.0.1:5070".parse().unwrap());
        assert_eq!(
            top(&req.response(StatusCode::OK)),
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa;rport=5070;received=127.0.0.1"
        );
    }

    #[test]
    fn without_rport_only_a_different_host_gets_received() {
        let mut same = request("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa");
        same.stamp_source("127.0.0.1:6000".parse().unwrap());
        assert_eq!(
            top(&same.response(StatusCode::OK)),
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa"
        );
        let mut named = request("SIP/2.0/TCP phone.example;branch=z9hG4bKa");
        named.stamp_source("[2001:db8::7]:5060".parse().unwrap());
        assert_eq!(
            top(&named.response(StatusCode::OK)),
            "SIP/2.0/TCP phone.example;branch=z9hG4bKa;received=2001:db8::7"
        );
    }

    #[test]
    fn stamping_is_idempotent_and_survives_a_round_trip() {
        let mut req = request("SIP/2.0/UDP 10.0.0.7:5070;rport;branch=z9hG4bKa");
        let src = "198.51.100.1:1234".parse().unwrap();
        req.stamp_source(src);
        let once = req.to_bytes();
        req.stamp_source(src);
        assert_eq!(req.to_bytes(), once);
        let back =
            parse_datagram(&req.response(StatusCode::OK).to_bytes(), &Limits::default()).unwrap();
        let Message::Response(back) = back else {
            panic!("not a response")
        };
        let via = back.top_via().unwrap().unwrap();
        assert_eq!(via.rport(), Some(Some(1234)));
        assert_eq!(via.received(), Some("198.51.100.1"));
        assert_eq!(back.vias().unwrap().len(), 2);
    }

    #[test]
    fn an_unreadable_via_is_left_alone() {
        let mut req = request("garbage");
        assert!(!req.stamp_source("127.0.0.1:1".parse().unwrap()));
        let mut none = Request::new(Method::Options, Uri::parse("sip:x").unwrap());
        assert!(!none.stamp_source("127.0.0.1:1".parse().unwrap()));
    }
}
