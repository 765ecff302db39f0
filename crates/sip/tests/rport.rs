//! RFC 3581 §4 on every response a transaction user builds: a request that
//! arrives through the transaction layer with a valueless `rport` is answered
//! with the source port filled in and `received` added, whatever the response
//! (200 to BYE, 481, 487, 100 Trying, a 200 to INVITE), and the response goes
//! back to the source address.

use std::time::{Duration, Instant};

use sip::transaction::{Config, Event, Target, TransactionLayer, Transport};
use sip::{Limits, Message, Request, StatusCode, parse_datagram};

fn request(method: &str, branch: &str) -> Message {
    let text = format!(
        "{method} sip:+442079460018@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.7:5070;branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@carrier>;tag=f1\r\nTo: <sip:b@pbx>;tag=t1\r\n\
         Call-ID: rport-1\r\nCSeq: 2 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    parse_datagram(text.as_bytes(), &Limits::default()).unwrap()
}

fn received_request(layer: &mut TransactionLayer) -> (sip::transaction::TxKey, Request) {
    loop {
        match layer.poll_event() {
            Some(Event::Request { key, request, .. }) => return (key, request),
            Some(_) => continue,
            None => panic!("no request event"),
        }
    }
}

fn top_via_of_sent(layer: &mut TransactionLayer, source: Target) -> String {
    let t = layer.poll_transmit().expect("a response was sent");
    assert_eq!(t.dest, source, "the response goes back to the source");
    let Message::Response(r) = parse_datagram(&t.bytes, &Limits::default()).unwrap() else {
        panic!("not a response")
    };
    r.headers.values("Via").next().unwrap().trim().to_owned()
}

#[test]
fn every_response_fills_rport_and_received() {
    let source = Target::new(Transport::Udp, "203.0.113.9:40000".parse().unwrap());
    let want = "SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bK{}x;rport=40000;received=203.0.113.9";
    let now = Instant::now();
    for (i, (method, status)) in [
        ("BYE", 200),
        ("BYE", 481),
        ("OPTIONS", 200),
        ("UPDATE", 481),
        ("INVITE", 487),
        ("INVITE", 200),
    ]
    .into_iter()
    .enumerate()
    {
        let mut layer = TransactionLayer::new(Config::default(), 7);
        let branch = format!("z9hG4bK{i}x");
        layer
            .receive(request(method, &branch), source, now)
            .unwrap();
        let (key, req) = received_request(&mut layer);
        let resp = req.response_tagged(StatusCode::new(status).unwrap());
        layer.send_response(&key, resp, now).unwrap();
        assert_eq!(
            top_via_of_sent(&mut layer, source),
            want.replace("{}", &i.to_string()),
            "{method} {status}"
        );
    }
}

#[test]
fn the_layer_s_own_100_trying_fills_rport_too() {
    let source = Target::new(Transport::Udp, "203.0.113.9:40000".parse().unwrap());
    let config = Config {
        trying_delay: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let mut layer = TransactionLayer::new(config, 7);
    let now = Instant::now();
    layer
        .receive(request("INVITE", "z9hG4bKtry"), source, now)
        .unwrap();
    let _ = received_request(&mut layer);
    layer.handle_timeout(now + Duration::from_millis(250));
    assert_eq!(
        top_via_of_sent(&mut layer, source),
        "SIP/2.0/UDP 10.0.0.7:5070;branch=z9hG4bKtry;rport=40000;received=203.0.113.9"
    );
}
