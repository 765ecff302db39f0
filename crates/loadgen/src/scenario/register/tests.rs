//! The register state machine driven by hand on a virtual clock, against
//! the fake registrar's sans-IO core.

use std::cell::RefCell;
use std::io;

use super::*;
use crate::fake_registrar::FakeRegistrar;

/// Records every send; can refuse them.
#[derive(Default)]
struct Recorder {
    sent: RefCell<Vec<(usize, Vec<u8>)>>,
    refuse: bool,
}

impl Wire for Recorder {
    fn send(&self, source: usize, bytes: &[u8]) -> io::Result<()> {
        if self.refuse {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "refused"));
        }
        self.sent.borrow_mut().push((source, bytes.to_vec()));
        Ok(())
    }
}

impl Recorder {
    fn take(&self) -> Vec<(usize, Vec<u8>)> {
        std::mem::take(&mut *self.sent.borrow_mut())
    }
}

fn users(n: usize, password: &str) -> Vec<User> {
    (0..n)
        .map(|i| User {
            username: format!("{}", 200_000 + i),
            password: password.to_owned(),
            domain: "bench.example".to_owned(),
        })
        .collect()
}

fn engine(transport: Transport, n_users: usize, max_in_flight: usize) -> Register {
    let cfg = RegisterConfig {
        transport,
        expires: 600,
        max_in_flight,
        timers: Timers::default(),
    };
    let local = vec![
        "127.0.0.2:40000".parse().unwrap(),
        "127.0.0.3:40001".parse().unwrap(),
    ];
    Register::new(cfg, users(n_users, "secret-pw-1"), local, Rng::new(7))
}

fn parse(bytes: &[u8]) -> sip::Message {
    sip::parse_datagram(bytes, &sip::Limits::default()).unwrap()
}

/// Hands every recorded request to the registrar and its answers back to
/// the engine, until nothing more is sent.
fn pump(reg: &mut Register, fake: &FakeRegistrar, wire: &Recorder, now: Instant) {
    loop {
        let sent = wire.take();
        if sent.is_empty() {
            return;
        }
        for (src, bytes) in sent {
            if let Some(resp) = fake.handle(&bytes, false) {
                reg.on_message(src, &resp, now, wire);
            }
        }
    }
}

#[test]
fn request_is_well_formed_sip() {
    let mut reg = engine(Transport::Udp, 3, 10);
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(1, t0, &wire);
    let sent = wire.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 1, "user 1 sends from source 1");
    let msg = parse(&sent[0].1);
    let req = msg.as_request().unwrap();
    sip::check_mandatory(req).unwrap();
    assert_eq!(req.method, sip::Method::Register);
    assert_eq!(req.uri.as_str(), "sip:bench.example");
    let via = req.top_via().unwrap().unwrap();
    assert!(via.is_rfc3261_branch());
    assert_eq!(via.rport(), Some(None));
    assert_eq!(
        req.headers("Via").next().unwrap().split(';').next(),
        Some("SIP/2.0/UDP 127.0.0.3:40001")
    );
    assert_eq!(
        req.headers("Contact").next(),
        Some("<sip:200001@127.0.0.3:40001;transport=udp>")
    );
    assert_eq!(req.headers("To").next(), Some("<sip:200001@bench.example>"));
    assert!(req.from_addr().unwrap().unwrap().tag().is_some());
    assert_eq!(req.cseq().unwrap().unwrap().seq, 1);
    assert_eq!(req.expires().unwrap(), Some(600));
    assert!(req.headers("Authorization").next().is_none());
}

#[test]
fn full_exchange_against_the_fake_registrar() {
    let mut reg = engine(Transport::Udp, 2, 10);
    let fake = FakeRegistrar::new(&users(2, "secret-pw-1"));
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    let first = wire.sent.borrow()[0].1.clone();
    // the challenge comes back and the engine answers it
    let (src, bytes) = wire.take().remove(0);
    let challenge = fake.handle(&bytes, false).unwrap();
    reg.on_message(src, &challenge, t0 + Duration::from_millis(1), &wire);
    let second = wire.sent.borrow()[0].1.clone();
    let (m1, m2) = (parse(&first), parse(&second));
    assert_eq!(m2.cseq().unwrap().unwrap().seq, 2, "CSeq + 1");
    assert_eq!(m1.call_id().unwrap(), m2.call_id().unwrap(), "same Call-ID");
    let (b1, b2) = (
        m1.top_via().unwrap().unwrap().branch().unwrap().to_owned(),
        m2.top_via().unwrap().unwrap().branch().unwrap().to_owned(),
    );
    assert_ne!(b1, b2, "fresh branch per transaction");
    let auth = m2.get("Authorization").unwrap();
    assert!(
        auth.contains("algorithm=SHA-256"),
        "SHA-256 preferred: {auth}"
    );
    assert!(auth.contains("nc=00000001"), "{auth}");
    assert!(auth.contains("uri=\"sip:bench.example\""), "{auth}");
    // what the registrar sends takes the fast path
    assert!(scan(&challenge).is_some());
    pump(&mut reg, &fake, &wire, t0 + Duration::from_millis(3));
    assert_eq!(reg.metrics().completed, 1);
    assert_eq!(reg.in_flight(), 0);
    assert_eq!(reg.metrics().latency.max(), 3000);
    // a refresh keeps Call-ID and continues CSeq
    reg.start(2, t0 + Duration::from_secs(1), &wire);
    let refresh = parse(&wire.sent.borrow()[0].1);
    assert_eq!(refresh.call_id().unwrap(), m1.call_id().unwrap());
    assert_eq!(refresh.cseq().unwrap().unwrap().seq, 3);
    pump(&mut reg, &fake, &wire, t0 + Duration::from_secs(1));
    let m = reg.metrics();
    assert_eq!((m.attempted, m.completed, m.failed()), (2, 2, 0));
    assert_eq!(
        fake.stats
            .registered
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn md5_is_used_when_it_is_the_only_offer() {
    let mut reg = engine(Transport::Udp, 1, 10);
    let fake = FakeRegistrar::new(&users(1, "secret-pw-1")).md5_only();
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    let (src, bytes) = wire.take().remove(0);
    reg.on_message(src, &fake.handle(&bytes, false).unwrap(), t0, &wire);
    let auth = parse(&wire.sent.borrow()[0].1)
        .get("Authorization")
        .unwrap()
        .to_owned();
    assert!(auth.contains("algorithm=MD5"), "{auth}");
    pump(&mut reg, &fake, &wire, t0);
    assert_eq!(reg.metrics().completed, 1);
}

#[test]
fn wrong_password_fails_with_the_status_code() {
    let mut reg = engine(Transport::Udp, 1, 10);
    let fake = FakeRegistrar::new(&users(1, "another-password"));
    let wire = Recorder::default();
    reg.start(0, Instant::now(), &wire);
    pump(&mut reg, &fake, &wire, Instant::now());
    let m = reg.metrics();
    assert_eq!(m.completed, 0);
    assert_eq!(m.failures.get(&Failure::Status(403)), Some(&1));
    assert_eq!(reg.in_flight(), 0);
}

#[test]
fn timer_e_retransmits_then_timer_f_gives_up() {
    let mut reg = engine(Transport::Udp, 1, 10);
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    let original = wire.take().remove(0).1;
    let mut at = Vec::new();
    let mut t = t0;
    while reg.in_flight() > 0 {
        t = reg.next_deadline().unwrap();
        reg.on_timers(t, &wire);
        for (_, b) in wire.take() {
            assert_eq!(b, original, "a retransmission is the same request");
            at.push(t.duration_since(t0).as_millis());
        }
    }
    assert_eq!(
        at,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(t.duration_since(t0), Duration::from_secs(32));
    let m = reg.metrics();
    assert_eq!(m.retransmissions, 10);
    assert_eq!(m.failures.get(&Failure::Timeout), Some(&1));
}

#[test]
fn a_dropped_response_is_recovered_by_retransmission() {
    let mut reg = engine(Transport::Udp, 1, 10);
    let fake = FakeRegistrar::new(&users(1, "secret-pw-1")).drop_first(1);
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    pump(&mut reg, &fake, &wire, t0); // dropped
    assert_eq!(reg.in_flight(), 1);
    let t = reg.next_deadline().unwrap();
    reg.on_timers(t, &wire);
    pump(&mut reg, &fake, &wire, t + Duration::from_millis(2));
    let m = reg.metrics();
    assert_eq!((m.completed, m.retransmissions, m.failed()), (1, 1, 0));
    assert_eq!(m.latency.max(), 502_000 / 1000 * 1000);
    // the stale timer of the finished transaction does nothing
    reg.on_timers(t + Duration::from_secs(60), &wire);
    assert!(wire.take().is_empty());
    assert_eq!(reg.metrics().failed(), 0);
}

#[test]
fn reliable_transport_never_retransmits() {
    let mut reg = engine(Transport::Tcp, 1, 10);
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    assert!(
        String::from_utf8(wire.take().remove(0).1)
            .unwrap()
            .contains("SIP/2.0/TCP")
    );
    assert_eq!(reg.next_deadline(), Some(t0 + Duration::from_secs(32)));
    reg.on_timers(t0 + Duration::from_secs(32), &wire);
    assert!(wire.take().is_empty());
    assert_eq!(reg.metrics().retransmissions, 0);
    assert_eq!(reg.metrics().failures.get(&Failure::Timeout), Some(&1));
    // a refused send on a reliable transport fails at once
    let refusing = Recorder {
        refuse: true,
        ..Recorder::default()
    };
    reg.start(1, t0, &refusing);
    assert_eq!(reg.metrics().failures.get(&Failure::Transport), Some(&1));
    assert_eq!(reg.in_flight(), 0);
}

#[test]
fn bounds_busy_users_and_in_flight() {
    let mut reg = engine(Transport::Udp, 3, 2);
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    reg.start(3, t0, &wire); // user 0 again, still in flight
    reg.start(1, t0, &wire);
    reg.start(2, t0, &wire); // third in flight: over the bound
    let m = reg.metrics();
    assert_eq!(m.attempted, 4);
    assert_eq!(m.failures.get(&Failure::UserBusy), Some(&1));
    assert_eq!(m.failures.get(&Failure::Concurrency), Some(&1));
    assert_eq!(reg.in_flight(), 2);
    reg.on_broken(1); // source 1 carries user 1
    assert_eq!(reg.metrics().failures.get(&Failure::Transport), Some(&1));
    reg.finish();
    let m = reg.metrics();
    assert_eq!(m.failures.get(&Failure::Unfinished), Some(&1));
    assert_eq!(m.failed() + m.completed, m.attempted);
    assert_eq!(reg.in_flight(), 0);
}

#[test]
fn foreign_late_and_duplicate_responses_are_stray() {
    let mut reg = engine(Transport::Udp, 1, 10);
    let fake = FakeRegistrar::new(&users(1, "secret-pw-1"));
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    let (src, bytes) = wire.take().remove(0);
    let challenge = fake.handle(&bytes, false).unwrap();
    reg.on_message(src, &challenge, t0, &wire);
    // the same 401 again (a retransmitted request's answer): ignored
    reg.on_message(src, &challenge, t0, &wire);
    assert_eq!(reg.metrics().stray, 1);
    pump(&mut reg, &fake, &wire, t0);
    let other = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.2:40000;branch=z9hG4bKother\r\n\
                  From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\
                  Content-Length: 0\r\n\r\n";
    reg.on_message(0, other, t0, &wire);
    let m = reg.metrics();
    assert_eq!((m.completed, m.stray, m.failed()), (1, 2, 0));
}

#[test]
fn a_provisional_response_slows_retransmission_to_t2() {
    let mut reg = engine(Transport::Udp, 1, 10);
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    let req = parse(&wire.take().remove(0).1);
    let trying = req
        .as_request()
        .unwrap()
        .response(sip::StatusCode::TRYING)
        .to_bytes();
    reg.on_message(0, &trying, t0, &wire);
    reg.on_timers(t0 + Duration::from_millis(500), &wire);
    assert_eq!(wire.take().len(), 1);
    assert_eq!(reg.next_deadline(), Some(t0 + Duration::from_millis(4500)));
}

#[test]
fn unusual_responses_take_the_full_parser_and_garbage_is_counted() {
    let mut reg = engine(Transport::Udp, 1, 10);
    let fake = FakeRegistrar::new(&users(1, "secret-pw-1"));
    let wire = Recorder::default();
    let t0 = Instant::now();
    reg.start(0, t0, &wire);
    let (src, bytes) = wire.take().remove(0);
    let challenge = String::from_utf8(fake.handle(&bytes, false).unwrap()).unwrap();
    // fold the Call-ID line: legal SIP the fast scan leaves to the parser
    let folded = challenge.replacen("Call-ID: ", "Call-ID:\r\n  ", 1);
    assert!(scan(folded.as_bytes()).is_none());
    reg.on_message(src, folded.as_bytes(), t0, &wire);
    pump(&mut reg, &fake, &wire, t0);
    reg.on_message(src, b"\x00\x01 not sip", t0, &wire);
    let m = reg.metrics();
    assert_eq!((m.completed, m.malformed, m.stray), (1, 1, 0));
}
