//! Two transaction layers — a client side and a server side — talking through
//! an in-memory network on a virtual clock. A seeded xorshift PRNG makes the
//! network drop, duplicate, delay and (through random delays) reorder
//! datagrams; each scenario runs across hundreds of seeds. Nothing sleeps:
//! the clock jumps from one deadline to the next.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sip::transaction::{
    Config, Event, Role, State, Target, Timer, TransactionLayer, Transport, TxKey,
};
use sip::{Limits, Message, Method, Request, Response, StatusCode, Uri, parse_datagram};

const SEEDS: u64 = 250;

// ---------------------------------------------------------------- PRNG

/// xorshift64* — tiny, seedable, good enough to shake a network.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

// ---------------------------------------------------------------- network

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

struct Packet {
    at: Instant,
    seq: u64,
    to: Side,
    from: Target,
    bytes: Arc<[u8]>,
}

/// Decides to lose a datagram: (destination side, message, time since start).
type Filter = dyn FnMut(Side, &Message, Duration) -> bool;

/// Loss model. `filter` sees every datagram (side it goes to, parsed
/// message, virtual time since start) and may drop it deterministically
/// before the random model applies.
struct Net {
    loss: u64,
    dup: u64,
    max_delay_ms: u64,
    filter: Box<Filter>,
}

impl Net {
    fn lossy(loss: u64, dup: u64, max_delay_ms: u64) -> Self {
        Net {
            loss,
            dup,
            max_delay_ms,
            filter: Box::new(|_, _, _| false),
        }
    }
    fn with_filter(mut self, f: impl FnMut(Side, &Message, Duration) -> bool + 'static) -> Self {
        self.filter = Box::new(f);
        self
    }
}

/// Everything a TU sees and can do.
struct Ctx<'a> {
    layer: &'a mut TransactionLayer,
    now: Instant,
    t0: Instant,
    peer: Target,
}

trait Tu {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event);
    fn wakeup(&self) -> Option<Instant> {
        None
    }
    fn on_wakeup(&mut self, _cx: &mut Ctx<'_>) {}
}

struct Sim {
    t0: Instant,
    now: Instant,
    rng: Rng,
    net: Net,
    seq: u64,
    in_flight: Vec<Packet>,
    client: TransactionLayer,
    server: TransactionLayer,
    client_addr: Target,
    server_addr: Target,
    /// Every event each side's TU saw, with its virtual time.
    client_events: Vec<(Duration, Event)>,
    server_events: Vec<(Duration, Event)>,
    /// Every datagram put on the wire (before loss), by sender.
    client_sent: Vec<(Duration, Message)>,
    server_sent: Vec<(Duration, Message)>,
    /// Extra datagrams to inject: (time offset, destination side, bytes).
    injections: Vec<(Duration, Side, Arc<[u8]>)>,
}

impl Sim {
    fn new(seed: u64, net: Net, transport: Transport) -> Self {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            rng: Rng::new(seed),
            net,
            seq: 0,
            in_flight: Vec::new(),
            client: TransactionLayer::new(Config::default(), seed),
            server: TransactionLayer::new(Config::default(), seed ^ 0xffff),
            client_addr: Target::new(transport, "127.0.0.1:5070".parse().unwrap()),
            server_addr: Target::new(transport, "127.0.0.1:5060".parse().unwrap()),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_sent: Vec::new(),
            server_sent: Vec::new(),
            injections: Vec::new(),
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn send(&mut self, from: Side, to: Side, bytes: Arc<[u8]>) {
        let msg = parse_datagram(&bytes, &Limits::default()).expect("layer sent unparsable bytes");
        let elapsed = self.elapsed();
        match from {
            Side::Client => self.client_sent.push((elapsed, msg.clone())),
            Side::Server => self.server_sent.push((elapsed, msg.clone())),
        }
        if (self.net.filter)(to, &msg, elapsed) || self.rng.chance(self.net.loss) {
            return;
        }
        let source = match from {
            Side::Client => self.client_addr,
            Side::Server => self.server_addr,
        };
        let copies = if self.rng.chance(self.net.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = Duration::from_millis(self.rng.below(self.net.max_delay_ms + 1));
            self.seq += 1;
            self.in_flight.push(Packet {
                at: self.now + delay,
                seq: self.seq,
                to,
                from: source,
                bytes: bytes.clone(),
            });
        }
    }

    /// Moves transmits onto the network and events to the TUs until quiet.
    fn pump(&mut self, ctu: &mut dyn Tu, stu: &mut dyn Tu) {
        loop {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit() {
                assert_eq!(t.dest, self.server_addr, "client sends to the server");
                self.send(Side::Client, Side::Server, t.bytes);
                moved = true;
            }
            while let Some(t) = self.server.poll_transmit() {
                assert_eq!(t.dest, self.client_addr, "responses follow Via/rport");
                self.send(Side::Server, Side::Client, t.bytes);
                moved = true;
            }
            while let Some(ev) = self.client.poll_event() {
                self.client_events.push((self.elapsed(), ev.clone()));
                let mut cx = Ctx {
                    layer: &mut self.client,
                    now: self.now,
                    t0: self.t0,
                    peer: self.server_addr,
                };
                ctu.on_event(&mut cx, &ev);
                moved = true;
            }
            while let Some(ev) = self.server.poll_event() {
                self.server_events.push((self.elapsed(), ev.clone()));
                let mut cx = Ctx {
                    layer: &mut self.server,
                    now: self.now,
                    t0: self.t0,
                    peer: self.client_addr,
                };
                stu.on_event(&mut cx, &ev);
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// Runs until nothing is left to happen (or `limit` of virtual time).
    fn run(&mut self, ctu: &mut dyn Tu, stu: &mut dyn Tu, limit: Duration) {
        let limit = self.t0 + limit;
        loop {
            self.pump(ctu, stu);
            let next = [
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                self.in_flight.iter().map(|p| p.at).min(),
                self.injections.iter().map(|i| self.t0 + i.0).min(),
                ctu.wakeup(),
                stu.wakeup(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return };
            assert!(next <= limit, "still busy at the time limit");
            self.now = self.now.max(next);
            let now = self.now;
            // Deliver due datagrams in (time, send order).
            self.in_flight.sort_by_key(|p| (p.at, p.seq));
            let due = self.in_flight.iter().take_while(|p| p.at <= now).count();
            let packets: Vec<Packet> = self.in_flight.drain(..due).collect();
            for p in packets {
                let msg = parse_datagram(&p.bytes, &Limits::default()).unwrap();
                let layer = match p.to {
                    Side::Client => &mut self.client,
                    Side::Server => &mut self.server,
                };
                layer.receive(msg, p.from, now).expect("receive");
            }
            let due: Vec<_> = self
                .injections
                .iter()
                .filter(|i| self.t0 + i.0 <= now)
                .cloned()
                .collect();
            self.injections.retain(|i| self.t0 + i.0 > now);
            for (_, side, bytes) in due {
                let msg = parse_datagram(&bytes, &Limits::default()).unwrap();
                match side {
                    Side::Client => self.client.receive(msg, self.server_addr, now).unwrap(),
                    Side::Server => self.server.receive(msg, self.client_addr, now).unwrap(),
                }
            }
            self.client.handle_timeout(now);
            self.server.handle_timeout(now);
            if ctu.wakeup().is_some_and(|w| w <= now) {
                let mut cx = Ctx {
                    layer: &mut self.client,
                    now,
                    t0: self.t0,
                    peer: self.server_addr,
                };
                ctu.on_wakeup(&mut cx);
            }
            if stu.wakeup().is_some_and(|w| w <= now) {
                let mut cx = Ctx {
                    layer: &mut self.server,
                    now,
                    t0: self.t0,
                    peer: self.client_addr,
                };
                stu.on_wakeup(&mut cx);
            }
        }
    }
}

// ---------------------------------------------------------------- helpers

fn request(method: Method, transport: Transport, call_id: &str, cseq: u32) -> Request {
    let mut r = Request::new(
        method.clone(),
        Uri::parse("sip:bob@127.0.0.1:5060").unwrap(),
    );
    r.headers
        .push("Via", &format!("SIP/2.0/{transport} 127.0.0.1:5070;rport"));
    r.headers.push("Max-Forwards", "70");
    r.headers.push("From", "<sip:alice@127.0.0.1>;tag=a1");
    r.headers.push("To", "<sip:bob@127.0.0.1>");
    r.headers.push("Call-ID", call_id);
    r.headers.push("CSeq", &format!("{cseq} {method}"));
    r.headers.push("Contact", "<sip:alice@127.0.0.1:5070>");
    r
}

fn code(r: &Response) -> u16 {
    r.status.as_u16()
}

/// Responses the TU got for one client transaction.
fn responses<'a>(events: &'a [(Duration, Event)], key: &TxKey) -> Vec<&'a Response> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Response { key: k, response } if k == key => Some(response),
            _ => None,
        })
        .collect()
}

fn requests(events: &[(Duration, Event)], method: Method) -> Vec<&Request> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Request { request, .. } if request.method == method => Some(request),
            _ => None,
        })
        .collect()
}

fn count(events: &[(Duration, Event)], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|(_, e)| pred(e)).count()
}

fn no_timeouts(events: &[(Duration, Event)]) -> bool {
    count(events, |e| matches!(e, Event::Timeout { .. })) == 0
}

/// A TU that does nothing.
struct Idle;
impl Tu for Idle {
    fn on_event(&mut self, _: &mut Ctx<'_>, _: &Event) {}
}

/// Server TU answering every non-INVITE request at once with `code`.
struct Answer(u16);
impl Tu for Answer {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        if let Event::Request { key, request, .. } = ev {
            if request.method != Method::Invite {
                let r = request.response_tagged(StatusCode::new(self.0).unwrap());
                cx.layer.send_response(key, r, cx.now).unwrap();
            }
        }
    }
}

// ---------------------------------------------------------------- scenarios

/// Non-INVITE request whose first N copies are lost, over a lossy network:
/// the server TU sees it once, the client TU gets the final response once.
#[test]
fn non_invite_survives_loss_and_completes_once() {
    for seed in 0..SEEDS {
        let lost_first = (seed % 4) as usize;
        let mut seen = 0usize;
        let net = Net::lossy(10, 10, 150).with_filter(move |to, msg, _| {
            if to == Side::Server && msg.as_request().is_some() {
                seen += 1;
                return seen <= lost_first;
            }
            false
        });
        let mut sim = Sim::new(seed, net, Transport::Udp);
        let req = request(Method::Message, Transport::Udp, "nonInvite", 1);
        let key = sim
            .client
            .send_request(req, sim.server_addr, sim.now)
            .unwrap();
        sim.run(&mut Idle, &mut Answer(200), Duration::from_secs(120));

        let got = responses(&sim.client_events, &key);
        assert_eq!(
            got.iter().filter(|r| r.status.is_final()).count(),
            1,
            "seed {seed}"
        );
        assert_eq!(code(got[got.len() - 1]), 200, "seed {seed}");
        assert_eq!(
            requests(&sim.server_events, Method::Message).len(),
            1,
            "seed {seed}"
        );
        assert!(no_timeouts(&sim.client_events) && no_timeouts(&sim.server_events));
        let copies = sim
            .client_sent
            .iter()
            .filter(|(_, m)| m.as_request().is_some())
            .count();
        assert!(
            copies > lost_first,
            "seed {seed}: retransmitted past the losses"
        );
        // Terminated transactions are removed: nothing is left behind.
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
        assert_eq!(
            count(&sim.client_events, |e| matches!(
                e,
                Event::Terminated { .. }
            )),
            1
        );
        assert_eq!(
            count(&sim.server_events, |e| matches!(
                e,
                Event::Terminated { .. }
            )),
            1
        );
    }
}

/// Server TU for INVITEs: optional 180 at once, then a final response after
/// `delay`. With `retransmit_2xx` it also does the UAS core's job for 2xx
/// (RFC 3261 §13.3.1.4): resend it, T1 doubling to T2, until the ACK.
struct InviteAnswer {
    ring: bool,
    final_code: u16,
    delay: Duration,
    pending: Option<(Instant, TxKey, Request)>,
    retransmit_2xx: Option<(Instant, Duration, TxKey, Response)>,
    acks_for_2xx: usize,
}

impl InviteAnswer {
    fn new(ring: bool, final_code: u16, delay: Duration) -> Self {
        InviteAnswer {
            ring,
            final_code,
            delay,
            pending: None,
            retransmit_2xx: None,
            acks_for_2xx: 0,
        }
    }
}

impl Tu for InviteAnswer {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        match ev {
            Event::Request { key, request, .. } if request.method == Method::Invite => {
                if self.ring {
                    let r = request.response_tagged(StatusCode::RINGING);
                    cx.layer.send_response(key, r, cx.now).unwrap();
                }
                self.pending = Some((cx.now + self.delay, key.clone(), request.clone()));
            }
            Event::Ack { invite: None, .. } => {
                self.acks_for_2xx += 1;
                self.retransmit_2xx = None;
            }
            _ => {}
        }
    }
    fn wakeup(&self) -> Option<Instant> {
        [
            self.pending.as_ref().map(|p| p.0),
            self.retransmit_2xx.as_ref().map(|r| r.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }
    fn on_wakeup(&mut self, cx: &mut Ctx<'_>) {
        if let Some((at, key, req)) = self.pending.take() {
            if at > cx.now {
                self.pending = Some((at, key, req));
            } else {
                let r = req.response_tagged(StatusCode::new(self.final_code).unwrap());
                cx.layer.send_response(&key, r.clone(), cx.now).unwrap();
                if r.status.is_success() {
                    let t1 = cx.layer.config().t1;
                    self.retransmit_2xx = Some((cx.now + t1, t1, key, r));
                }
            }
        }
        if let Some((at, interval, key, r)) = self.retransmit_2xx.take() {
            if at > cx.now {
                self.retransmit_2xx = Some((at, interval, key, r));
            } else if cx.now - cx.t0 < Duration::from_secs(32) {
                cx.layer.send_response(&key, r.clone(), cx.now).unwrap();
                let next = (interval * 2).min(cx.layer.config().t2);
                self.retransmit_2xx = Some((cx.now + next, next, key, r));
            }
        }
    }
}

/// Client TU that ACKs every 2xx itself (new branch, outside the INVITE
/// transaction), as a UAC core does.
struct AckOn2xx;
impl Tu for AckOn2xx {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        if let Event::Response { key, response } = ev {
            if key.method() == &Method::Invite && response.status.is_success() {
                let mut ack = request(Method::Ack, cx.peer.transport, "call", 1);
                ack.headers.set("To", response.headers.get("To").unwrap());
                let branch = cx.layer.new_branch();
                ack.headers.set(
                    "Via",
                    &format!(
                        "SIP/2.0/{} 127.0.0.1:5070;rport;branch={branch}",
                        cx.peer.transport
                    ),
                );
                cx.layer.send_stateless(&Message::Request(ack), cx.peer);
            }
        }
    }
}

/// A network filter losing every ACK sent within 2 s of the first `status`
/// response the server sends.
fn ack_blackout(status: u16) -> impl FnMut(Side, &Message, Duration) -> bool {
    let mut first: Option<Duration> = None;
    move |_, m, t| {
        if m.as_response().is_some_and(|r| code(r) == status) && first.is_none() {
            first = Some(t);
        }
        is_ack(m) && first.is_none_or(|f| t < f + Duration::from_secs(2))
    }
}

fn is_ack(m: &Message) -> bool {
    m.as_request().is_some_and(|r| r.method == Method::Ack)
}

/// INVITE answered 180 then 486: the client transaction ACKs the 486 with the
/// INVITE's branch, the server retransmits the 486 until that ACK arrives and
/// absorbs it, and each TU sees one INVITE / one final response.
#[test]
fn invite_rejected_486_is_acked_by_the_transactions() {
    for seed in 0..SEEDS {
        // ACKs sent within 2 s of the first 486 are lost, so the server
        // must retransmit it (at +0.5 s, +1.5 s, +3.5 s) until one gets through.
        let net = Net::lossy(10, 10, 150).with_filter(ack_blackout(486));
        let mut sim = Sim::new(seed, net, Transport::Udp);
        let inv = request(Method::Invite, Transport::Udp, "call", 1);
        let key = sim
            .client
            .send_request(inv, sim.server_addr, sim.now)
            .unwrap();
        let mut stu = InviteAnswer::new(true, 486, Duration::from_millis(800));
        sim.run(&mut Idle, &mut stu, Duration::from_secs(120));

        let got = responses(&sim.client_events, &key);
        let finals: Vec<_> = got.iter().filter(|r| r.status.is_final()).collect();
        assert_eq!(finals.len(), 1, "seed {seed}: final delivered once");
        assert_eq!(code(finals[0]), 486);
        assert!(got.iter().all(|r| matches!(code(r), 100 | 180 | 486)));
        assert_eq!(
            requests(&sim.server_events, Method::Invite).len(),
            1,
            "seed {seed}"
        );
        assert_eq!(
            count(&sim.server_events, |e| matches!(e, Event::Ack { .. })),
            0,
            "ACK absorbed"
        );
        assert!(no_timeouts(&sim.client_events), "seed {seed}");
        assert!(
            no_timeouts(&sim.server_events),
            "seed {seed}: ACK reached the server before H"
        );

        let busy_sent = sim
            .server_sent
            .iter()
            .filter(|(_, m)| m.as_response().is_some_and(|r| code(r) == 486))
            .count();
        assert!(
            busy_sent >= 4,
            "seed {seed}: 486 retransmitted ({busy_sent})"
        );
        let acks: Vec<&Request> = sim
            .client_sent
            .iter()
            .filter_map(|(_, m)| m.as_request().filter(|r| r.method == Method::Ack))
            .collect();
        assert!(!acks.is_empty());
        for ack in acks {
            assert_eq!(ack.top_via().unwrap().unwrap().branch(), Some(key.branch()));
            assert!(ack.to_addr().unwrap().unwrap().tag().is_some());
        }
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
    }
}

/// INVITE answered 200 (RFC 6026): 2xx retransmissions by the server TU
/// reach the client TU through the Accepted client transaction, a late copy
/// of the INVITE is absorbed by the Accepted server transaction, and the
/// ACK for the 2xx surfaces at the server TU as a stray ACK.
#[test]
fn invite_accepted_rfc6026() {
    for seed in 0..SEEDS {
        let net = Net::lossy(10, 10, 150).with_filter(ack_blackout(200));
        let mut sim = Sim::new(seed, net, Transport::Udp);
        let inv = request(Method::Invite, Transport::Udp, "call", 1);
        let key = sim
            .client
            .send_request(inv, sim.server_addr, sim.now)
            .unwrap();
        let first_invite = sim.client.poll_transmit().unwrap().bytes;
        sim.send(Side::Client, Side::Server, first_invite.clone());
        // A stale copy of the INVITE shows up while the server is Accepted.
        sim.injections
            .push((Duration::from_millis(3000), Side::Server, first_invite));
        let mut stu = InviteAnswer::new(false, 200, Duration::from_millis(1000));
        sim.run(&mut AckOn2xx, &mut stu, Duration::from_secs(120));

        let oks = responses(&sim.client_events, &key)
            .into_iter()
            .filter(|r| code(r) == 200)
            .count();
        assert!(
            oks >= 2,
            "seed {seed}: retransmitted 2xx reached the client TU ({oks})"
        );
        assert_eq!(
            requests(&sim.server_events, Method::Invite).len(),
            1,
            "seed {seed}"
        );
        assert!(
            stu.acks_for_2xx >= 1,
            "seed {seed}: ACK for 2xx reached the server TU"
        );
        let after_200: Vec<_> = sim
            .server_sent
            .iter()
            .filter(|(t, _)| *t >= Duration::from_millis(3000))
            .filter(|(_, m)| m.as_response().is_some_and(|r| code(r) == 100))
            .collect();
        assert!(
            after_200.is_empty(),
            "seed {seed}: no 100 for the absorbed INVITE"
        );
        assert!(no_timeouts(&sim.client_events) && no_timeouts(&sim.server_events));
        // Timers L and M end both transactions 64*T1 after the 2xx.
        let end_of = |events: &[(Duration, Event)]| {
            events
                .iter()
                .find(|(_, e)| matches!(e, Event::Terminated { key: k } if k.method() == &Method::Invite))
                .map(|(t, _)| *t)
                .unwrap()
        };
        assert!(end_of(&sim.server_events) >= Duration::from_secs(33));
        assert!(end_of(&sim.client_events) >= Duration::from_secs(33));
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
    }
}

/// Nobody answers: Timer B and Timer F fire at 64*T1 after 7 INVITE and 11
/// non-INVITE transmissions.
#[test]
fn unreachable_server_times_out_at_64_t1() {
    for seed in 0..SEEDS {
        let net = Net::lossy(100, 0, 0);
        let mut sim = Sim::new(seed, net, Transport::Udp);
        let offset = Duration::from_millis(seed % 7);
        sim.now += offset;
        let inv = sim
            .client
            .send_request(
                request(Method::Invite, Transport::Udp, "b", 1),
                sim.server_addr,
                sim.now,
            )
            .unwrap();
        let reg = sim
            .client
            .send_request(
                request(Method::Register, Transport::Udp, "f", 1),
                sim.server_addr,
                sim.now,
            )
            .unwrap();
        sim.run(&mut Idle, &mut Idle, Duration::from_secs(120));
        let at = |key: &TxKey, timer: Timer| {
            sim.client_events
                .iter()
                .find(|(_, e)| matches!(e, Event::Timeout { key: k, timer: t } if k == key && *t == timer))
                .map(|(t, _)| *t)
        };
        assert_eq!(at(&inv, Timer::B), Some(offset + Duration::from_secs(32)));
        assert_eq!(at(&reg, Timer::F), Some(offset + Duration::from_secs(32)));
        let sent = |m: Method| {
            sim.client_sent
                .iter()
                .filter(|(_, x)| x.as_request().is_some_and(|r| r.method == m))
                .count()
        };
        assert_eq!(sent(Method::Invite), 7);
        assert_eq!(sent(Method::Register), 11);
        assert!(sim.client.is_empty());
        assert!(sim.server_events.is_empty());
    }
}

/// Over TCP nothing is retransmitted and the wait timers are zero: both
/// sides finish as soon as the exchange is done.
#[test]
fn reliable_transport_skips_retransmissions() {
    for seed in 0..SEEDS {
        let mut sim = Sim::new(seed, Net::lossy(0, 0, 20), Transport::Tcp);
        let inv = request(Method::Invite, Transport::Tcp, "call", 1);
        let key = sim
            .client
            .send_request(inv, sim.server_addr, sim.now)
            .unwrap();
        let opt = request(Method::Options, Transport::Tcp, "opt", 1);
        let okey = sim
            .client
            .send_request(opt, sim.server_addr, sim.now)
            .unwrap();
        let mut stu = Both(
            InviteAnswer::new(true, 603, Duration::from_secs(2)),
            Answer(200),
        );
        sim.run(&mut Idle, &mut stu, Duration::from_secs(120));
        assert_eq!(
            code(responses(&sim.client_events, &key).last().unwrap()),
            603
        );
        assert_eq!(
            code(responses(&sim.client_events, &okey).last().unwrap()),
            200
        );
        let invites = sim
            .client_sent
            .iter()
            .filter(|(_, m)| m.as_request().is_some_and(|r| r.method == Method::Invite))
            .count();
        assert_eq!(invites, 1);
        assert_eq!(
            sim.server_sent
                .iter()
                .filter(|(_, m)| m.as_response().is_some_and(|r| code(r) == 603))
                .count(),
            1
        );
        // Everything is over within the network delay of the final exchange.
        let last = sim
            .client_events
            .iter()
            .chain(&sim.server_events)
            .map(|(t, _)| *t)
            .max()
            .unwrap();
        assert!(
            last <= Duration::from_millis(2100),
            "seed {seed}: lingered until {last:?}"
        );
        assert!(sim.client.is_empty() && sim.server.is_empty());
    }
}

/// Two TUs in one: INVITEs to the first, everything else to the second.
struct Both<A, B>(A, B);
impl<A: Tu, B: Tu> Tu for Both<A, B> {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        self.0.on_event(cx, ev);
        self.1.on_event(cx, ev);
    }
    fn wakeup(&self) -> Option<Instant> {
        [self.0.wakeup(), self.1.wakeup()]
            .into_iter()
            .flatten()
            .min()
    }
    fn on_wakeup(&mut self, cx: &mut Ctx<'_>) {
        if self.0.wakeup().is_some_and(|w| w <= cx.now) {
            self.0.on_wakeup(cx);
        }
        if self.1.wakeup().is_some_and(|w| w <= cx.now) {
            self.1.on_wakeup(cx);
        }
    }
}

/// Client TU that cancels its INVITE — at once (the CANCEL then waits for a
/// provisional, §9.1) or on the first provisional response.
struct Canceller {
    immediately: bool,
    invite: Option<TxKey>,
    cancel: Option<TxKey>,
}
impl Tu for Canceller {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        if let Event::Response { key, response } = ev {
            if Some(key) == self.invite.as_ref()
                && response.status.is_provisional()
                && self.cancel.is_none()
            {
                self.cancel = Some(cx.layer.cancel(key, cx.now).unwrap());
            }
        }
    }
}

/// Server TU that rings and never answers; on CANCEL it answers 200 to the
/// CANCEL and 487 to the INVITE (RFC 3261 §9.2).
struct RingForever;
impl Tu for RingForever {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event) {
        let Event::Request {
            key,
            request,
            cancels,
            ..
        } = ev
        else {
            return;
        };
        match request.method {
            Method::Invite => {
                let r = request.response_tagged(StatusCode::RINGING);
                cx.layer.send_response(key, r, cx.now).unwrap();
            }
            Method::Cancel => {
                let Some(invite) = cancels else {
                    let r = request.response_tagged(StatusCode::new(481).unwrap());
                    cx.layer.send_response(key, r, cx.now).unwrap();
                    return;
                };
                assert_eq!(invite, &key.with_method(Method::Invite));
                let ok = request.response_tagged(StatusCode::OK);
                cx.layer.send_response(key, ok, cx.now).unwrap();
                // The 487 carries the INVITE's To tag: same request headers.
                let mut term = request.response_tagged(StatusCode::new(487).unwrap());
                term.headers.set("CSeq", "1 INVITE");
                let _ = cx.layer.send_response(invite, term, cx.now);
            }
            _ => {}
        }
    }
}

#[test]
fn cancel_pending_invite_gets_200_and_487() {
    for seed in 0..SEEDS {
        let mut sim = Sim::new(seed, Net::lossy(10, 10, 150), Transport::Udp);
        let inv = request(Method::Invite, Transport::Udp, "call", 1);
        let key = sim
            .client
            .send_request(inv, sim.server_addr, sim.now)
            .unwrap();
        let immediately = seed % 2 == 0;
        let mut ctu = Canceller {
            immediately,
            invite: Some(key.clone()),
            cancel: None,
        };
        if ctu.immediately {
            let ck = sim.client.cancel(&key, sim.now).unwrap();
            assert_eq!(sim.client.state(&ck), Some(State::Pending));
            ctu.cancel = Some(ck);
        }
        sim.run(&mut ctu, &mut RingForever, Duration::from_secs(120));

        let ck = ctu.cancel.clone().expect("cancelled");
        assert_eq!(ck.role(), Role::Client);
        let cancel_finals: Vec<u16> = responses(&sim.client_events, &ck)
            .into_iter()
            .filter(|r| r.status.is_final())
            .map(code)
            .collect();
        assert_eq!(cancel_finals, [200], "seed {seed}");
        let invite_finals: Vec<u16> = responses(&sim.client_events, &key)
            .into_iter()
            .filter(|r| r.status.is_final())
            .map(code)
            .collect();
        assert_eq!(invite_finals, [487], "seed {seed}");
        assert_eq!(
            requests(&sim.server_events, Method::Invite).len(),
            1,
            "seed {seed}"
        );
        assert_eq!(
            requests(&sim.server_events, Method::Cancel).len(),
            1,
            "seed {seed}"
        );
        assert!(
            no_timeouts(&sim.client_events) && no_timeouts(&sim.server_events),
            "seed {seed}"
        );
        assert!(
            sim.client.is_empty() && sim.server.is_empty(),
            "seed {seed}"
        );
        // §9.1: no CANCEL before a provisional response arrived.
        let first_provisional = sim
            .client_events
            .iter()
            .find(|(_, e)| matches!(e, Event::Response { response, .. } if response.status.is_provisional()))
            .map(|(t, _)| *t)
            .unwrap();
        let first_cancel = sim
            .client_sent
            .iter()
            .find(|(_, m)| m.as_request().is_some_and(|r| r.method == Method::Cancel))
            .map(|(t, _)| *t)
            .unwrap();
        assert!(first_cancel >= first_provisional, "seed {seed}");
    }
}
