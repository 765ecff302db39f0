//! Matching, CANCEL handling, errors and bookkeeping of the layer.

use std::time::Duration;

use super::*;
use crate::transaction::timers::ms;
use crate::transaction::{Role, Transport};
use crate::{Limits, parse_datagram};

fn udp(port: u16) -> Target {
    Target::new(Transport::Udp, format!("127.0.0.1:{port}").parse().unwrap())
}

fn parse(text: &str) -> Message {
    parse_datagram(text.replace('\n', "\r\n").as_bytes(), &Limits::default()).unwrap()
}

fn request_text(method: &str, branch: &str) -> String {
    format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\nMax-Forwards: 70\n\
From: <sip:a@127.0.0.1>;tag=f1\nTo: <sip:bob@127.0.0.1>\nCall-ID: call1\n\
CSeq: 1 {method}\n\n"
    )
}

fn req(method: &str, branch: &str) -> Request {
    match parse(&request_text(method, branch)) {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn events(layer: &mut TransactionLayer) -> Vec<Event> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

fn transmits(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

fn first_line(t: &Transmit) -> String {
    let s = String::from_utf8_lossy(&t.bytes);
    s.lines().next().unwrap_or("").to_owned()
}

/// Receives a request at a fresh server layer; returns the layer and key.
fn server_with(r: Request, now: Instant) -> (TransactionLayer, TxKey) {
    let mut s = TransactionLayer::new(Config::default(), 1);
    s.receive(Message::Request(r), udp(5070), now).unwrap();
    let key = match events(&mut s).pop() {
        Some(Event::Request { key, .. }) => key,
        other => panic!("{other:?}"),
    };
    (s, key)
}

#[test]
fn retransmitted_request_is_absorbed_then_answered_with_last_response() {
    let t0 = Instant::now();
    let r = req("OPTIONS", "z9hG4bKo1");
    let (mut s, key) = server_with(r.clone(), t0);
    assert_eq!(key.role(), Role::Server);
    assert_eq!(s.state(&key), Some(State::Trying));
    s.receive(Message::Request(r.clone()), udp(5070), t0)
        .unwrap();
    assert!(events(&mut s).is_empty() && transmits(&mut s).is_empty());
    s.send_response(&key, r.response_tagged(StatusCode::OK), t0)
        .unwrap();
    let sent = transmits(&mut s);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].dest, udp(5070), "Via sent-by port");
    assert_eq!(sent[0].key.as_ref(), Some(&key));
    s.receive(Message::Request(r.clone()), udp(5070), t0 + ms(100))
        .unwrap();
    assert_eq!(first_line(&transmits(&mut s)[0]), "SIP/2.0 200 OK");
    assert!(events(&mut s).is_empty());
    assert_eq!(
        s.send_response(&key, r.response(StatusCode::OK), t0),
        Err(TxError::InvalidState)
    );
    // Timer J, then gone.
    assert_eq!(s.poll_timeout(), Some(t0 + ms(32_000)));
    s.handle_timeout(t0 + ms(32_000));
    assert!(matches!(&events(&mut s)[..], [Event::Terminated { key: k }] if *k == key));
    assert!(s.is_empty());
    assert_eq!(
        s.send_response(&key, r.response(StatusCode::OK), t0),
        Err(TxError::UnknownTransaction)
    );
}

#[test]
fn different_branch_or_sent_by_is_a_different_transaction() {
    let t0 = Instant::now();
    let (mut s, _) = server_with(req("OPTIONS", "z9hG4bKo1"), t0);
    s.receive(Message::Request(req("OPTIONS", "z9hG4bKo2")), udp(5070), t0)
        .unwrap();
    let text = request_text("OPTIONS", "z9hG4bKo1").replace(":5070;", ":5080;");
    s.receive(parse(&text), udp(5080), t0).unwrap();
    let new = events(&mut s)
        .iter()
        .filter(|e| matches!(e, Event::Request { .. }))
        .count();
    assert_eq!(new, 2);
    assert_eq!(s.len(), 3);
}

#[test]
fn automatic_100_trying_goes_to_the_response_target() {
    let t0 = Instant::now();
    let (mut s, key) = server_with(req("INVITE", "z9hG4bKi1"), t0);
    assert_eq!(s.poll_timeout(), Some(t0 + ms(200)));
    s.handle_timeout(t0 + ms(199));
    assert!(transmits(&mut s).is_empty());
    s.handle_timeout(t0 + ms(200));
    let sent = transmits(&mut s);
    assert_eq!(first_line(&sent[0]), "SIP/2.0 100 Trying");
    assert_eq!(sent[0].dest, udp(5070));
    assert_eq!(s.state(&key), Some(State::Proceeding));
    assert_eq!(s.poll_timeout(), None, "Proceeding has no timer of its own");
}

#[test]
fn ack_for_non_2xx_is_absorbed_ack_for_2xx_surfaces() {
    let t0 = Instant::now();
    let inv = req("INVITE", "z9hG4bKi1");
    let (mut s, key) = server_with(inv.clone(), t0);
    s.send_response(&key, inv.response_tagged(StatusCode::new(486).unwrap()), t0)
        .unwrap();
    s.receive(
        Message::Request(req("ACK", "z9hG4bKi1")),
        udp(5070),
        t0 + ms(10),
    )
    .unwrap();
    assert_eq!(s.state(&key), Some(State::Confirmed));
    assert!(events(&mut s).is_empty());

    // 2xx: the ACK has its own branch and is a stray for the TU.
    let inv2 = req("INVITE", "z9hG4bKi2");
    s.receive(Message::Request(inv2.clone()), udp(5070), t0)
        .unwrap();
    let key2 = match events(&mut s).pop() {
        Some(Event::Request { key, .. }) => key,
        e => panic!("{e:?}"),
    };
    s.send_response(&key2, inv2.response_tagged(StatusCode::OK), t0)
        .unwrap();
    assert_eq!(s.state(&key2), Some(State::Accepted));
    s.receive(Message::Request(req("ACK", "z9hG4bKa2")), udp(5070), t0)
        .unwrap();
    assert!(matches!(
        &events(&mut s)[..],
        [Event::Ack { invite: None, .. }]
    ));
    // An ACK reusing the INVITE's branch matches the Accepted transaction.
    s.receive(Message::Request(req("ACK", "z9hG4bKi2")), udp(5070), t0)
        .unwrap();
    assert!(
        matches!(&events(&mut s)[..], [Event::Ack { invite: Some(k), source, .. }] if *k == key2 && *source == udp(5070))
    );
    // So does a retransmitted INVITE: absorbed, no event, no response.
    transmits(&mut s);
    s.receive(Message::Request(inv2), udp(5070), t0).unwrap();
    assert!(events(&mut s).is_empty() && transmits(&mut s).is_empty());
}

#[test]
fn rfc2543_requests_match_without_a_cookie() {
    let t0 = Instant::now();
    let inv = req("INVITE", "old1");
    let (mut s, key) = server_with(inv.clone(), t0);
    assert!(!key.is_rfc3261());
    s.receive(Message::Request(inv.clone()), udp(5070), t0)
        .unwrap();
    assert!(events(&mut s).is_empty(), "retransmission matched");
    let mut busy = inv.response(StatusCode::new(486).unwrap());
    busy.set_to_tag("srv");
    s.send_response(&key, busy, t0).unwrap();
    let ack_text = request_text("ACK", "old1");
    let wrong = ack_text.replace(
        "To: <sip:bob@127.0.0.1>",
        "To: <sip:bob@127.0.0.1>;tag=other",
    );
    s.receive(parse(&wrong), udp(5070), t0).unwrap();
    assert!(matches!(
        &events(&mut s)[..],
        [Event::Ack { invite: None, .. }]
    ));
    assert_eq!(s.state(&key), Some(State::Completed));
    let right = ack_text.replace("To: <sip:bob@127.0.0.1>", "To: <sip:bob@127.0.0.1>;tag=srv");
    s.receive(parse(&right), udp(5070), t0).unwrap();
    assert_eq!(s.state(&key), Some(State::Confirmed));
    // A CANCEL without a cookie finds the INVITE too.
    let inv3 = req("INVITE", "old3");
    s.receive(Message::Request(inv3), udp(5070), t0).unwrap();
    events(&mut s);
    s.receive(Message::Request(req("CANCEL", "old3")), udp(5070), t0)
        .unwrap();
    match events(&mut s).pop() {
        Some(Event::Request {
            key,
            cancels: Some(inv_key),
            ..
        }) => {
            assert_eq!(key.with_method(Method::Invite), inv_key);
            assert_eq!(s.state(&inv_key), Some(State::Proceeding));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn cancel_request_names_the_invite_it_cancels() {
    let t0 = Instant::now();
    let (mut s, inv_key) = server_with(req("INVITE", "z9hG4bKi1"), t0);
    s.receive(Message::Request(req("CANCEL", "z9hG4bKi1")), udp(5070), t0)
        .unwrap();
    match events(&mut s).pop() {
        Some(Event::Request { key, cancels, .. }) => {
            assert_eq!(cancels, Some(inv_key.clone()));
            assert_eq!(key.method(), &Method::Cancel);
            assert_ne!(key, inv_key);
        }
        e => panic!("{e:?}"),
    }
    s.receive(
        Message::Request(req("CANCEL", "z9hG4bKnone")),
        udp(5070),
        t0,
    )
    .unwrap();
    assert!(matches!(
        events(&mut s).pop(),
        Some(Event::Request { cancels: None, .. })
    ));
}

fn client() -> TransactionLayer {
    TransactionLayer::new(Config::default(), 9)
}

fn response_to(sent: &Transmit, code: u16) -> Message {
    let Message::Request(r) = parse_datagram(&sent.bytes, &Limits::default()).unwrap() else {
        panic!()
    };
    Message::Response(r.response_tagged(StatusCode::new(code).unwrap()))
}

#[test]
fn stray_responses_surface() {
    let t0 = Instant::now();
    let mut c = client();
    let r = req("OPTIONS", "z9hG4bKnobody").response(StatusCode::OK);
    c.receive(Message::Response(r), udp(5060), t0).unwrap();
    assert!(
        matches!(&events(&mut c)[..], [Event::StrayResponse { source, .. }] if *source == udp(5060))
    );
}

#[test]
fn generated_branch_and_response_matching() {
    let t0 = Instant::now();
    let mut c = client();
    let mut r = req("OPTIONS", "x");
    r.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5070;rport");
    let key = c.send_request(r, udp(5060), t0).unwrap();
    assert!(key.is_rfc3261());
    assert_eq!(key.role(), Role::Client);
    let sent = transmits(&mut c);
    assert_eq!(sent[0].dest, udp(5060));
    let text = String::from_utf8_lossy(&sent[0].bytes).into_owned();
    assert!(
        text.contains(&format!(";rport;branch={}", key.branch())),
        "{text}"
    );
    // A response whose CSeq method differs does not match (§17.1.3).
    let Message::Response(mut other) = response_to(&sent[0], 200) else {
        panic!()
    };
    other.headers.set("CSeq", "1 INVITE");
    c.receive(Message::Response(other), udp(5060), t0).unwrap();
    assert!(matches!(
        events(&mut c).pop(),
        Some(Event::StrayResponse { .. })
    ));
    c.receive(response_to(&sent[0], 200), udp(5060), t0)
        .unwrap();
    assert!(matches!(&events(&mut c)[..], [Event::Response { key: k, .. }] if *k == key));
    assert_eq!(c.state(&key), Some(State::Completed));
    // The stale Timer E entry is skipped: the next deadline is Timer K.
    assert_eq!(c.poll_timeout(), Some(t0 + ms(5_000)));
}

#[test]
fn send_request_refuses_bad_input() {
    let t0 = Instant::now();
    let mut c = client();
    assert_eq!(
        c.send_request(req("ACK", "z9hG4bKa"), udp(5060), t0),
        Err(TxError::AckNotTransactional)
    );
    let mut no_via = req("OPTIONS", "z9hG4bKa");
    no_via.headers.remove("Via");
    assert_eq!(
        c.send_request(no_via, udp(5060), t0),
        Err(TxError::MissingVia)
    );
    c.send_request(req("OPTIONS", "z9hG4bKa"), udp(5060), t0)
        .unwrap();
    assert_eq!(
        c.send_request(req("OPTIONS", "z9hG4bKa"), udp(5060), t0),
        Err(TxError::DuplicateTransaction)
    );
    let mut small = TransactionLayer::new(
        Config {
            max_transactions: 1,
            ..Config::default()
        },
        1,
    );
    small
        .send_request(req("OPTIONS", "z9hG4bKa"), udp(5060), t0)
        .unwrap();
    assert_eq!(
        small.send_request(req("OPTIONS", "z9hG4bKb"), udp(5060), t0),
        Err(TxError::TableFull(1))
    );
    assert_eq!(
        small.receive(Message::Request(req("OPTIONS", "z9hG4bKc")), udp(5070), t0),
        Err(TxError::TableFull(1))
    );
}

#[test]
fn cancel_waits_for_a_provisional() {
    let t0 = Instant::now();
    let mut c = client();
    let key = c
        .send_request(req("INVITE", "z9hG4bKc1"), udp(5060), t0)
        .unwrap();
    let sent = transmits(&mut c);
    let ck = c.cancel(&key, t0).unwrap();
    assert_eq!(ck, key.with_method(Method::Cancel));
    assert_eq!(c.cancel(&key, t0).unwrap(), ck, "idempotent");
    assert_eq!(c.state(&ck), Some(State::Pending));
    assert!(transmits(&mut c).is_empty());
    c.receive(response_to(&sent[0], 100), udp(5060), t0 + ms(50))
        .unwrap();
    let out = transmits(&mut c);
    assert_eq!(out.len(), 1);
    assert!(first_line(&out[0]).starts_with("CANCEL sip:bob@127.0.0.1"));
    assert_eq!(out[0].key.as_ref(), Some(&ck));
    assert_eq!(c.state(&ck), Some(State::Trying));
    // Timer F of the CANCEL counts from when it was sent.
    c.handle_timeout(t0 + ms(549));
    assert!(transmits(&mut c).is_empty());
    c.handle_timeout(t0 + ms(550));
    let retrans: Vec<_> = transmits(&mut c).iter().map(first_line).collect();
    assert_eq!(retrans, ["CANCEL sip:bob@127.0.0.1 SIP/2.0"]);
}

#[test]
fn cancel_is_dropped_when_the_invite_ends_first() {
    let t0 = Instant::now();
    let mut c = client();
    let key = c
        .send_request(req("INVITE", "z9hG4bKc1"), udp(5060), t0)
        .unwrap();
    let sent = transmits(&mut c);
    let ck = c.cancel(&key, t0).unwrap();
    c.receive(response_to(&sent[0], 486), udp(5060), t0 + ms(50))
        .unwrap();
    let out: Vec<_> = transmits(&mut c).iter().map(first_line).collect();
    assert_eq!(out, ["ACK sip:bob@127.0.0.1 SIP/2.0"], "no CANCEL");
    let ev = events(&mut c);
    assert!(ev.contains(&Event::Terminated { key: ck.clone() }));
    assert_eq!(c.state(&ck), None);
    assert_eq!(c.cancel(&key, t0), Err(TxError::InvalidState));
    let opt = c
        .send_request(req("OPTIONS", "z9hG4bKo"), udp(5060), t0)
        .unwrap();
    assert_eq!(c.cancel(&opt, t0), Err(TxError::InvalidState));
    let unknown = TxKey::client("z9hG4bKzz", Method::Invite);
    assert_eq!(c.cancel(&unknown, t0), Err(TxError::UnknownTransaction));
}

#[test]
fn transport_error_reports_and_removes() {
    let t0 = Instant::now();
    let mut c = client();
    let key = c
        .send_request(req("INVITE", "z9hG4bKc1"), udp(5060), t0)
        .unwrap();
    c.transport_error(&key, t0);
    assert_eq!(
        events(&mut c),
        [
            Event::TransportError { key: key.clone() },
            Event::Terminated { key: key.clone() }
        ]
    );
    assert!(c.is_empty());
    assert_eq!(c.poll_timeout(), None, "stale timers are skipped");
    c.transport_error(&key, t0); // unknown now: ignored
}

#[test]
fn a_failed_connection_fails_every_client_transaction_sent_over_it_at_once() {
    let t0 = Instant::now();
    let mut c = client();
    let dead = Target::new(Transport::Tcp, "127.0.0.1:5090".parse().unwrap());
    let invite = c
        .send_request(req("INVITE", "z9hG4bKd1"), dead, t0)
        .unwrap();
    let options = c
        .send_request(req("OPTIONS", "z9hG4bKd2"), dead, t0)
        .unwrap();
    // The same address over UDP, and another TCP peer, are other flows.
    let over_udp = c
        .send_request(req("OPTIONS", "z9hG4bKd3"), udp(5090), t0)
        .unwrap();
    let elsewhere = c
        .send_request(req("OPTIONS", "z9hG4bKd4"), tcp(5091), t0)
        .unwrap();
    transmits(&mut c);
    c.connection_failed(dead, t0);
    let evs = events(&mut c);
    for key in [&invite, &options] {
        assert!(
            evs.contains(&Event::TransportError { key: key.clone() }),
            "{key:?} fails: {evs:?}"
        );
        assert_eq!(c.state(key), None);
    }
    for key in [&over_udp, &elsewhere] {
        assert!(
            !evs.iter()
                .any(|e| matches!(e, Event::TransportError { key: k } if k == key))
        );
        assert!(c.state(key).is_some());
    }
}

#[test]
fn timer_queue_stays_proportional_to_live_transactions() {
    let t0 = Instant::now();
    let mut c = client();
    let tcp = Target::new(Transport::Tcp, "127.0.0.1:5060".parse().unwrap());
    // Each transaction completes at once over TCP, leaving a stale Timer F.
    for i in 0..5_000u32 {
        let now = t0 + ms(u64::from(i));
        let key = c
            .send_request(req("OPTIONS", &format!("z9hG4bKq{i}")), tcp, now)
            .unwrap();
        let sent = c.poll_transmit().unwrap();
        c.receive(response_to(&sent, 200), tcp, now).unwrap();
        assert_eq!(c.state(&key), None);
        c.handle_timeout(now);
    }
    assert!(c.is_empty());
    assert!(c.queued_timers() <= 1024 + 1, "{}", c.queued_timers());
    assert_eq!(c.poll_timeout(), None);
    while c.poll_event().is_some() {}
}

#[test]
fn per_transaction_memory_is_small() {
    // The table entry itself, without the shared message bytes.
    let entry = std::mem::size_of::<Entry>();
    println!(
        "Entry: {entry} bytes, TxKey: {}",
        std::mem::size_of::<TxKey>()
    );
    assert!(entry <= 320, "Entry is {entry} bytes");
}

#[test]
fn virtual_clock_can_jump() {
    // handle_timeout called late fires everything due, in order.
    let t0 = Instant::now();
    let mut c = client();
    let key = c
        .send_request(req("OPTIONS", "z9hG4bKo"), udp(5060), t0)
        .unwrap();
    c.handle_timeout(t0 + Duration::from_secs(40));
    let ev = events(&mut c);
    assert_eq!(
        ev,
        [
            Event::Timeout {
                key: key.clone(),
                timer: Timer::F
            },
            Event::Terminated { key }
        ]
    );
}

#[test]
fn proxy_timer_c_then_cancel_then_give_up() {
    let t0 = Instant::now();
    let mut c = TransactionLayer::new(
        Config {
            timer_c: Some(Duration::from_secs(180)),
            ..Config::default()
        },
        3,
    );
    let key = c
        .send_request(req("INVITE", "z9hG4bKp1"), udp(5060), t0)
        .unwrap();
    let sent = transmits(&mut c);
    c.receive(response_to(&sent[0], 180), udp(5060), t0 + ms(1_000))
        .unwrap();
    events(&mut c);
    // Timer C was reset by the 180.
    assert_eq!(c.poll_timeout(), Some(t0 + ms(181_000)));
    c.handle_timeout(t0 + ms(181_000));
    assert_eq!(
        events(&mut c),
        [Event::Timeout {
            key: key.clone(),
            timer: Timer::C
        }]
    );
    assert_eq!(c.state(&key), Some(State::Proceeding));
    // The proxy core cancels; nobody answers anything any more.
    let ck = c.cancel(&key, t0 + ms(181_000)).unwrap();
    let mut ends = Vec::new();
    while let Some(at) = c.poll_timeout() {
        c.handle_timeout(at);
        for e in events(&mut c) {
            ends.push((at - t0, e));
        }
    }
    assert!(ends.contains(&(
        ms(213_000),
        Event::Timeout {
            key: ck.clone(),
            timer: Timer::F
        }
    )));
    assert!(ends.contains(&(
        ms(213_000),
        Event::Timeout {
            key: key.clone(),
            timer: Timer::Unanswered
        }
    )));
    assert!(c.is_empty());
}

fn tcp(port: u16) -> Target {
    Target::new(Transport::Tcp, format!("127.0.0.1:{port}").parse().unwrap())
}

/// An INVITE sent to `dest`; returns its key and what went out.
fn invite_to(c: &mut TransactionLayer, dest: Target, t0: Instant) -> (TxKey, Transmit) {
    let mut r = req("INVITE", "x");
    r.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5070;rport");
    let key = c.send_request(r, dest, t0).unwrap();
    let sent = transmits(c).remove(0);
    (key, sent)
}

#[test]
fn forged_200_from_another_address_is_ignored() {
    let t0 = Instant::now();
    let mut c = client();
    let (key, sent) = invite_to(&mut c, udp(5060), t0);
    // A third party who knows the branch answers 200 from its own address:
    // another port on the same host, another host, the right address over
    // another transport.
    for forger in [
        udp(5061),
        Target::new(Transport::Udp, "127.0.0.2:5060".parse().unwrap()),
        tcp(5060),
    ] {
        assert_eq!(
            c.receive(response_to(&sent, 200), forger, t0),
            Err(TxError::ForeignSource)
        );
        assert!(events(&mut c).is_empty(), "forged 200 from {forger:?}");
        assert_eq!(c.state(&key), Some(State::Calling));
    }
    // The real peer's answer still counts.
    c.receive(response_to(&sent, 200), udp(5060), t0).unwrap();
    assert!(matches!(
        &events(&mut c)[..],
        [Event::Response { response, .. }, ..] if response.status == StatusCode::OK
    ));
}

#[test]
fn forged_603_from_another_address_is_ignored() {
    let t0 = Instant::now();
    let mut c = client();
    let (key, sent) = invite_to(&mut c, udp(5060), t0);
    c.receive(response_to(&sent, 180), udp(5060), t0).unwrap();
    assert_eq!(c.state(&key), Some(State::Proceeding));
    events(&mut c);
    assert_eq!(
        c.receive(response_to(&sent, 603), udp(6000), t0),
        Err(TxError::ForeignSource)
    );
    assert!(events(&mut c).is_empty());
    assert!(transmits(&mut c).is_empty(), "no ACK for a forged 603");
    assert_eq!(c.state(&key), Some(State::Proceeding));
    // The IPv4-mapped form of the peer's address is the peer.
    let mapped = Target::new(Transport::Udp, "[::ffff:127.0.0.1]:5060".parse().unwrap());
    c.receive(response_to(&sent, 603), mapped, t0).unwrap();
    assert_eq!(c.state(&key), Some(State::Completed));
}

#[test]
fn forged_response_over_another_connection_is_ignored() {
    let t0 = Instant::now();
    let mut c = client();
    let (key, sent) = invite_to(&mut c, tcp(5060), t0);
    assert_eq!(
        c.receive(response_to(&sent, 200), tcp(40_000), t0),
        Err(TxError::ForeignSource)
    );
    assert_eq!(c.state(&key), Some(State::Calling));
    assert!(events(&mut c).is_empty());
    c.receive(response_to(&sent, 200), tcp(5060), t0).unwrap();
    assert!(matches!(&events(&mut c)[..], [Event::Response { .. }, ..]));
}
