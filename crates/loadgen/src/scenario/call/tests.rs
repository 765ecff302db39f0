//! The call scenario against the sans-IO fake B2BUA on a virtual clock,
//! through an in-memory network that can drop chosen messages.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::fake_pbx::{FakePbx, PaperRelay};
use crate::scenario::register::Timers;
use crate::transport::Transport;
use crate::users::generate;

#[derive(Default)]
struct TestWire {
    sent: RefCell<Vec<(usize, Vec<u8>)>>,
}

impl Wire for TestWire {
    fn send(&self, source: usize, bytes: &[u8]) -> std::io::Result<()> {
        self.sent.borrow_mut().push((source, bytes.to_vec()));
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Recorder(Rc<RefCell<Vec<MediaCmd>>>);

impl MediaOut for Recorder {
    fn command(&mut self, cmd: MediaCmd) {
        self.0.borrow_mut().push(cmd);
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct World {
    calls: Calls,
    pbx: FakePbx<PaperRelay>,
    wire: TestWire,
    local: Vec<SocketAddr>,
    media: Recorder,
    t0: Instant,
    /// Drops a message when it returns true (sees every message both ways).
    drop: Box<dyn FnMut(&str) -> bool>,
    delivered: Vec<String>,
}

fn config() -> CallConfig {
    CallConfig {
        transport: Transport::Udp,
        timers: Timers::default(),
        expires: 3600,
        hold: Duration::from_secs(1),
        answer_delay: Duration::ZERO,
        hangup: Hangup::Caller,
        rtp: true,
        media_drain: Duration::from_millis(40),
        max_concurrent: 1000,
    }
}

impl World {
    fn new(users: u32, cfg: CallConfig) -> World {
        let list = generate(users, 200_000, "t.example", 12).unwrap();
        let local = vec![sa("127.0.0.2:5002"), sa("127.0.0.3:5003")];
        let rtp = vec![sa("127.0.0.9:40000"), sa("127.0.0.9:40002")];
        let media = Recorder::default();
        let calls = Calls::new(
            cfg,
            list.clone(),
            local.clone(),
            rtp,
            Some(Box::new(media.clone())),
            Rng::new(7),
        )
        .unwrap();
        World {
            calls,
            pbx: FakePbx::new(sa("127.0.0.1:5060"), &list, PaperRelay::default()),
            wire: TestWire::default(),
            local,
            media,
            t0: Instant::now(),
            drop: Box::new(|_| false),
            delivered: Vec::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    /// Delivers everything in flight (both ways) until the network is quiet.
    fn pump(&mut self, ms: u64) {
        let now = self.at(ms);
        loop {
            let sent = std::mem::take(&mut *self.wire.sent.borrow_mut());
            if sent.is_empty() {
                return;
            }
            for (src, bytes) in sent {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if (self.drop)(&text) {
                    continue;
                }
                self.delivered.push(text);
                for (dest, b) in self.pbx.handle(self.local[src], &bytes) {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    if (self.drop)(&text) {
                        continue;
                    }
                    self.delivered.push(text);
                    let to = self.local.iter().position(|l| *l == dest).unwrap();
                    self.calls.on_message(to, &b, now, &self.wire);
                }
            }
        }
    }

    /// Runs timers and the network until `ms`, one millisecond at a time
    /// from `from`.
    fn run(&mut self, from: u64, to: u64) {
        for ms in from..=to {
            self.calls.on_timers(self.at(ms), &self.wire);
            self.pump(ms);
        }
    }

    fn register_all(&mut self) -> usize {
        for k in 0..self.calls.callees() as u64 {
            self.calls.start(k, self.at(0), &self.wire);
        }
        self.pump(0);
        assert_eq!(self.calls.in_flight(), 0);
        self.calls.begin_calls()
    }

    fn first_line_count(&self, prefix: &str) -> usize {
        self.delivered
            .iter()
            .filter(|m| m.starts_with(prefix))
            .count()
    }
}

#[test]
fn a_call_with_rtp_sets_up_holds_and_tears_down() {
    let mut w = World::new(4, config());
    assert_eq!(w.register_all(), 2);
    assert_eq!(w.calls.stats.callees_registered, 2);
    w.calls.start(0, w.at(0), &w.wire);
    w.pump(0);
    // INVITE, 407, ACK, INVITE + credentials, 100, INVITE to the callee,
    // 180 and 200 both ways, ACK both ways
    assert_eq!(w.first_line_count("INVITE "), 3);
    assert_eq!(w.first_line_count("SIP/2.0 407"), 1);
    assert_eq!(w.first_line_count("ACK "), 3);
    assert_eq!(w.first_line_count("SIP/2.0 180"), 2);
    assert_eq!(
        w.first_line_count("SIP/2.0 200"),
        2 + 2,
        "2 REGISTER + 2 INVITE"
    );
    assert_eq!(w.calls.stats.answered, 1);
    assert_eq!(w.calls.stats.setup.count(), 1);
    assert_eq!(w.calls.stats.caller_id_mismatch, 0);
    assert_eq!(w.calls.in_flight(), 1);
    assert_eq!(w.pbx.live_calls(), 1);
    // both sides stream to the relay address their SDP named, as partners
    let cmds = w.media.0.borrow().clone();
    let (relay_a, relay_b) = w.pbx.relay.open[&0];
    let starts: Vec<StreamSpec> = cmds
        .iter()
        .filter_map(|c| match c {
            MediaCmd::Start(s) => Some(*s),
            MediaCmd::Stop { .. } => None,
        })
        .collect();
    assert_eq!(starts.len(), 2, "{cmds:?}");
    assert_eq!((starts[0].dest, starts[1].dest), (relay_a, relay_b));
    assert_eq!(crate::rtp::partner(starts[0].id), starts[1].id);
    assert_eq!(starts[0].pt, sdp::PCMU);
    // the relay learned both sides' RTP sockets from the SDP
    let (ca, cb) = w.pbx.relay.connected[&0];
    assert_eq!(ca, w.calls.rtp_local[starts[0].socket]);
    assert_eq!(cb, w.calls.rtp_local[starts[1].socket]);

    // hold for 1 s: nothing happens until then
    w.run(1, 999);
    assert_eq!(w.first_line_count("BYE "), 0);
    // at 1 s the media stops, 40 ms later the caller sends BYE
    w.run(1000, 1039);
    let stops = w
        .media
        .0
        .borrow()
        .iter()
        .filter(|c| matches!(c, MediaCmd::Stop { .. }))
        .count();
    assert_eq!(stops, 2);
    assert_eq!(w.first_line_count("BYE "), 0);
    w.run(1040, 1040);
    assert_eq!(
        w.first_line_count("BYE "),
        2,
        "caller's BYE and the server's"
    );
    let m = w.calls.metrics();
    assert_eq!((m.attempted, m.completed, m.failed()), (1, 1, 0), "{m:?}");
    assert_eq!(m.retransmissions, 0);
    assert_eq!(w.calls.stats.teardown.count(), 1);
    assert_eq!(w.calls.stats.bye_relay.count(), 1);
    assert_eq!(w.calls.in_flight(), 0);
    assert_eq!(w.pbx.live_calls(), 0);
    // the server's BYE again (it missed our 200): 200 again, not 481
    let bye = w
        .delivered
        .iter()
        .find(|m| m.starts_with("BYE sip:b"))
        .unwrap()
        .clone();
    w.calls.on_message(1, bye.as_bytes(), w.at(1041), &w.wire);
    let sent = std::mem::take(&mut *w.wire.sent.borrow_mut());
    assert!(String::from_utf8_lossy(&sent[0].1).starts_with("SIP/2.0 200"));
    assert_eq!(
        (w.calls.stats.bye_repeats, w.calls.stats.unmatched_requests),
        (1, 0)
    );
    // responses mirror the request: the callee's 200 carries its To tag
    let ok = w
        .delivered
        .iter()
        .find(|m| {
            m.starts_with("SIP/2.0 200")
                && m.contains("CSeq: 1 INVITE")
                && m.contains("fb0@fake-pbx")
        })
        .unwrap();
    assert!(ok.contains(";tag=b"), "{ok}");
    assert!(
        ok.contains("Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfb0.INVITE.1"),
        "{ok}"
    );
}

#[test]
fn callee_hangup_and_immediate_bye_without_rtp() {
    let cfg = CallConfig {
        hold: Duration::ZERO,
        hangup: Hangup::Callee,
        rtp: false,
        ..config()
    };
    let mut w = World::new(6, cfg);
    assert_eq!(w.register_all(), 3);
    for k in 0..3 {
        w.calls.start(k, w.at(0), &w.wire);
    }
    w.pump(0);
    let m = w.calls.metrics();
    assert_eq!((m.attempted, m.completed, m.failed()), (3, 3, 0), "{m:?}");
    assert_eq!(w.calls.stats.peak_in_flight, 3);
    assert!(w.media.0.borrow().is_empty());
    // the BYEs came from the callees (From carries the callee's tag)
    let byes: Vec<&String> = w
        .delivered
        .iter()
        .filter(|m| m.starts_with("BYE sip:fake-b"))
        .collect();
    assert_eq!(byes.len(), 3);
    assert!(byes.iter().all(|b| b.contains("CSeq: 1 BYE")));
    assert_eq!(w.pbx.stats.ended, 3);
    // users come back: three more calls on the same users
    for k in 3..6 {
        w.calls.start(k, w.at(1), &w.wire);
    }
    w.pump(1);
    assert_eq!(w.calls.metrics().completed, 6);
}

#[test]
fn lost_messages_are_retransmitted_and_the_call_completes() {
    let mut w = World::new(
        2,
        CallConfig {
            rtp: false,
            hold: Duration::from_millis(100),
            ..config()
        },
    );
    w.register_all();
    // drop the first authenticated INVITE, the callee's first 200, the
    // first ACK to the callee and the caller's first BYE
    let mut dropped = [false; 4];
    w.drop = Box::new(move |m: &str| {
        let which = if m.starts_with("INVITE sip:2") && m.contains("Proxy-Authorization") {
            0
        } else if m.starts_with("SIP/2.0 200") && m.contains("fake-pbx") && m.contains("INVITE") {
            1
        } else if m.starts_with("ACK sip:b") {
            2
        } else if m.starts_with("BYE sip:fake-a") {
            3
        } else {
            return false;
        };
        !std::mem::replace(&mut dropped[which], true)
    });
    w.calls.start(0, w.at(0), &w.wire);
    w.run(0, 5000);
    let m = w.calls.metrics();
    assert_eq!((m.completed, m.failed()), (1, 0), "{m:?}");
    // the INVITE at 500 ms, the 200 at 1 s, the BYE at 1.6 s (whose
    // relayed BYE reaches the callee before its 200's next retransmission,
    // and stands in for the lost ACK)
    assert_eq!(m.retransmissions, 3, "{m:?}");
    let setup = w.calls.stats.setup.max();
    assert!((1_000_000..1_100_000).contains(&setup), "setup {setup} µs");
    assert_eq!(w.pbx.live_calls(), 0);
}

#[test]
fn failures_are_named() {
    // a server that never answers: Timer B
    let mut w = World::new(
        2,
        CallConfig {
            rtp: false,
            ..config()
        },
    );
    w.register_all();
    w.drop = Box::new(|m: &str| m.starts_with("INVITE"));
    w.calls.start(0, w.at(0), &w.wire);
    w.run(0, 33_000);
    assert_eq!(
        w.calls
            .metrics()
            .failures
            .get(&Failure::Call("invite_timeout")),
        Some(&1)
    );
    assert!(w.calls.metrics().retransmissions >= 5);
    assert_eq!(w.calls.in_flight(), 0);

    // a wrong password: 403, ACKed
    let mut w = World::new(
        2,
        CallConfig {
            rtp: false,
            ..config()
        },
    );
    w.register_all();
    w.calls.callers[0].password = "wrong-password".into();
    w.calls.start(0, w.at(0), &w.wire);
    w.pump(0);
    assert_eq!(
        w.calls.metrics().failures.get(&Failure::Status(403)),
        Some(&1)
    );
    assert_eq!(w.first_line_count("ACK "), 2, "the 407's and the 403's");

    // more calls than users, and above --max-concurrent
    let mut w = World::new(
        4,
        CallConfig {
            max_concurrent: 1,
            ..config()
        },
    );
    w.register_all();
    w.calls.start(0, w.at(0), &w.wire);
    w.calls.start(1, w.at(0), &w.wire);
    assert_eq!(
        w.calls.metrics().failures.get(&Failure::Concurrency),
        Some(&1)
    );
    let mut w = World::new(2, config());
    w.register_all();
    w.calls.start(0, w.at(0), &w.wire);
    w.calls.start(1, w.at(0), &w.wire);
    assert_eq!(
        w.calls
            .metrics()
            .failures
            .get(&Failure::Call("users_exhausted")),
        Some(&1)
    );
    // whatever is left at the end is unfinished
    w.calls.finish();
    assert_eq!(
        w.calls.metrics().failures.get(&Failure::Unfinished),
        Some(&1)
    );
    assert_eq!(w.calls.in_flight(), 0);
}

#[test]
fn a_callee_that_did_not_register_gets_no_calls() {
    let mut w = World::new(4, config());
    // the second callee's REGISTER is lost for good
    w.drop = Box::new(|m: &str| m.starts_with("REGISTER") && m.contains("200003@"));
    for k in 0..2 {
        w.calls.start(k, w.at(0), &w.wire);
    }
    w.run(0, 33_000);
    assert_eq!(w.calls.begin_calls(), 1);
    assert_eq!(w.calls.register_metrics().failed(), 1);
}

#[test]
fn concurrent_mode_hangs_everyone_up_at_one_moment() {
    let mut w = World::new(
        8,
        CallConfig {
            rtp: false,
            ..config()
        },
    );
    w.register_all();
    w.calls.set_hangup_at(w.at(3000));
    for k in 0..4 {
        w.calls.start(k, w.at(k * 100), &w.wire);
        w.pump(k * 100);
    }
    assert_eq!(w.calls.stats.peak_active, 4);
    w.run(301, 2999);
    assert_eq!(w.calls.metrics().completed, 0);
    w.run(3000, 3000);
    assert_eq!(w.calls.metrics().completed, 4);
}

#[test]
fn stray_and_unknown_requests_get_answers_not_panics() {
    let mut w = World::new(2, config());
    w.register_all();
    let req = |s: &str| s.replace('\n', "\r\n").into_bytes();
    // a BYE for a dialog that does not exist, an INVITE for nobody
    for (m, want) in [
        (
            "BYE sip:a5.9@127.0.0.2:5002 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\nFrom: <sip:x@y>;tag=1\nTo: <sip:z@y>;tag=2\nCall-ID: q\nCSeq: 1 BYE\nContent-Length: 0\n\n",
            "SIP/2.0 481",
        ),
        (
            "INVITE sip:999999@127.0.0.2:5002 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKy\nFrom: <sip:x@y>;tag=1\nTo: <sip:z@y>\nCall-ID: r\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
            "SIP/2.0 404",
        ),
        (
            "INVITE sip:200001@127.0.0.2:5002 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKz\nFrom: <sip:x@y>;tag=1\nTo: <sip:z@y>\nCall-ID: s\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
            "SIP/2.0 480",
        ),
        (
            "OPTIONS sip:200001@127.0.0.2:5002 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKo\nFrom: <sip:x@y>;tag=1\nTo: <sip:z@y>\nCall-ID: o\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n",
            "SIP/2.0 200",
        ),
    ] {
        w.calls.on_message(1, &req(m), w.at(0), &w.wire);
        let sent = std::mem::take(&mut *w.wire.sent.borrow_mut());
        assert_eq!(sent.len(), 1);
        let text = String::from_utf8(sent[0].1.clone()).unwrap();
        assert!(text.starts_with(want), "{text}");
        assert!(text.contains("Call-ID: "), "{text}");
    }
    assert_eq!(w.calls.stats.unmatched_requests, 3);
    // responses to nobody, and garbage
    w.calls.on_message(0, b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKlc00000000.0.0.1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", w.at(0), &w.wire);
    w.calls.on_message(0, b"\x00\x01garbage", w.at(0), &w.wire);
    let m = w.calls.metrics();
    assert_eq!((m.stray, m.malformed), (1, 1));
}
