//! Record-Route in responses (RFC 3261 §12.1.1): a UAS copies the request's
//! Record-Route values, in order, into every response that establishes or
//! refreshes a dialog, and into no other.

use crate::{Limits, Message, Method, Request, StatusCode, Uri, parse_datagram};

fn request(method: Method, to_tag: bool) -> Request {
    let mut r = Request::new(method.clone(), Uri::parse("sip:+442079460018@pbx").unwrap());
    r.headers
        .push("Via", "SIP/2.0/UDP carrier.example;branch=z9hG4bKc");
    r.headers
        .push("Record-Route", "<sip:edge.carrier.example;lr>");
    r.headers.push("From", "<sip:+447700900123@carrier>;tag=f");
    r.headers.push(
        "To",
        if to_tag {
            "<sip:+442079460018@pbx>;tag=t"
        } else {
            "<sip:+442079460018@pbx>"
        },
    );
    r.headers.push("Call-ID", "rr-1");
    r.headers.push(
        "Record-Route",
        "<sip:core.carrier.example;lr;ftag=f>, <sip:sbc.carrier.example:5080;lr>",
    );
    r.headers.push("CSeq", &format!("1 {method}"));
    r
}

fn rr(msg: &crate::Response) -> Vec<String> {
    msg.headers
        .values("Record-Route")
        .map(|v| v.trim().to_owned())
        .collect()
}

const EXPECTED: [&str; 3] = [
    "<sip:edge.carrier.example;lr>",
    "<sip:core.carrier.example;lr;ftag=f>",
    "<sip:sbc.carrier.example:5080;lr>",
];

#[test]
fn ringing_and_ok_to_invite_copy_record_route_in_order() {
    let invite = request(Method::Invite, false);
    for status in [180, 183, 200] {
        let s = StatusCode::new(status).unwrap();
        assert_eq!(rr(&invite.response(s)), EXPECTED, "{status}");
        assert_eq!(rr(&invite.response_tagged(s)), EXPECTED, "{status} tagged");
    }
}

#[test]
fn reinvite_update_and_subscribe_answers_copy_record_route() {
    for (method, to_tag) in [
        (Method::Invite, true),
        (Method::Update, true),
        (Method::Subscribe, false),
        (Method::Notify, true),
        (Method::Refer, false),
    ] {
        let req = request(method.clone(), to_tag);
        assert_eq!(
            rr(&req.response_tagged(StatusCode::OK)),
            EXPECTED,
            "{method}"
        );
    }
}

#[test]
fn other_responses_carry_no_record_route() {
    let invite = request(Method::Invite, false);
    for status in [100, 407, 486, 487, 500, 603] {
        let s = StatusCode::new(status).unwrap();
        assert!(rr(&invite.response(s)).is_empty(), "{status}");
        assert!(rr(&invite.response_tagged(s)).is_empty(), "{status} tagged");
    }
    for method in [Method::Bye, Method::Options, Method::Info, Method::Cancel] {
        let req = request(method.clone(), true);
        assert!(rr(&req.response(StatusCode::OK)).is_empty(), "{method}");
    }
}

#[test]
fn the_copied_record_route_survives_serialization() {
    let ok = request(Method::Invite, false).response_tagged(StatusCode::OK);
    let Message::Response(back) = parse_datagram(&ok.to_bytes(), &Limits::default()).unwrap()
    else {
        panic!("not a response")
    };
    let parsed: Vec<String> = back
        .record_routes()
        .unwrap()
        .iter()
        .map(|na| na.uri.as_str().to_owned())
        .collect();
    assert_eq!(
        parsed,
        [
            "sip:edge.carrier.example;lr",
            "sip:core.carrier.example;lr;ftag=f",
            "sip:sbc.carrier.example:5080;lr"
        ]
    );
}
