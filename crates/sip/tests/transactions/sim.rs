//! The in-memory network, the virtual clock and the harness driving a
//! client-side and a server-side [`TransactionLayer`] through it.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip::transaction::{Config, Event, Target, TransactionLayer, Transport, TxKey};
use sip::{Limits, Message, Method, Request, Response, StatusCode, Uri, parse_datagram};

// ---------------------------------------------------------------- PRNG

/// xorshift64* — tiny, seedable, good enough to shake a network.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

// ---------------------------------------------------------------- network

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

pub struct Packet {
    pub at: Instant,
    pub seq: u64,
    pub to: Side,
    pub from: Target,
    /// Parsed once from the bytes on the wire.
    pub msg: Message,
}

impl PartialEq for Packet {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl Eq for Packet {}
impl PartialOrd for Packet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
/// Delivery order: time, then send order.
impl Ord for Packet {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Decides to lose a datagram: (destination side, message, time since start).
pub type Filter = dyn FnMut(Side, &Message, Duration) -> bool;

/// Loss model. `filter` sees every datagram (side it goes to, parsed
/// message, virtual time since start) and may drop it deterministically
/// before the random model applies.
pub struct Net {
    pub loss: u64,
    pub dup: u64,
    pub max_delay_ms: u64,
    pub filter: Box<Filter>,
}

impl Net {
    pub fn lossy(loss: u64, dup: u64, max_delay_ms: u64) -> Self {
        Net {
            loss,
            dup,
            max_delay_ms,
            filter: Box::new(|_, _, _| false),
        }
    }
    pub fn with_filter(
        mut self,
        f: impl FnMut(Side, &Message, Duration) -> bool + 'static,
    ) -> Self {
        self.filter = Box::new(f);
        self
    }
}

/// Everything a TU sees and can do.
pub struct Ctx<'a> {
    pub layer: &'a mut TransactionLayer,
    pub now: Instant,
    pub t0: Instant,
    pub peer: Target,
}

pub trait Tu {
    fn on_event(&mut self, cx: &mut Ctx<'_>, ev: &Event);
    fn wakeup(&self) -> Option<Instant> {
        None
    }
    fn on_wakeup(&mut self, _cx: &mut Ctx<'_>) {}
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub rng: Rng,
    pub net: Net,
    pub seq: u64,
    pub in_flight: BinaryHeap<Reverse<Packet>>,
    pub client: TransactionLayer,
    pub server: TransactionLayer,
    pub client_addr: Target,
    pub server_addr: Target,
    /// Every event each side's TU saw, with its virtual time.
    pub client_events: Vec<(Duration, Event)>,
    pub server_events: Vec<(Duration, Event)>,
    /// Every datagram put on the wire (before loss), by sender.
    pub client_sent: Vec<(Duration, Message)>,
    pub server_sent: Vec<(Duration, Message)>,
    /// Every datagram the network delivered to the client side.
    pub client_received: Vec<(Duration, Message)>,
    /// Extra datagrams to inject: (time offset, destination side, bytes).
    pub injections: Vec<(Duration, Side, Arc<[u8]>)>,
}

impl Sim {
    pub fn new(seed: u64, net: Net, transport: Transport) -> Self {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            rng: Rng::new(seed),
            net,
            seq: 0,
            in_flight: BinaryHeap::new(),
            client: TransactionLayer::new(Config::default(), seed),
            server: TransactionLayer::new(Config::default(), seed ^ 0xffff),
            client_addr: Target::new(transport, "127.0.0.1:5070".parse().unwrap()),
            server_addr: Target::new(transport, "127.0.0.1:5060".parse().unwrap()),
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_sent: Vec::new(),
            server_sent: Vec::new(),
            client_received: Vec::new(),
            injections: Vec::new(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn send(&mut self, from: Side, to: Side, bytes: Arc<[u8]>) {
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
            self.in_flight.push(Reverse(Packet {
                at: self.now + delay,
                seq: self.seq,
                to,
                from: source,
                msg: msg.clone(),
            }));
        }
    }

    /// Moves transmits onto the network and events to the TUs until quiet.
    pub fn pump(&mut self, ctu: &mut dyn Tu, stu: &mut dyn Tu) {
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
    pub fn run(&mut self, ctu: &mut dyn Tu, stu: &mut dyn Tu, limit: Duration) {
        let limit = self.t0 + limit;
        loop {
            self.pump(ctu, stu);
            let next = [
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                self.in_flight.peek().map(|p| p.0.at),
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
            while self.in_flight.peek().is_some_and(|p| p.0.at <= now) {
                let Some(Reverse(p)) = self.in_flight.pop() else {
                    break;
                };
                let msg = p.msg;
                if p.to == Side::Client {
                    self.client_received.push((now - self.t0, msg.clone()));
                }
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

pub fn request(method: Method, transport: Transport, call_id: &str, cseq: u32) -> Request {
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

pub fn code(r: &Response) -> u16 {
    r.status.as_u16()
}

/// Responses the TU got for one client transaction.
pub fn responses<'a>(events: &'a [(Duration, Event)], key: &TxKey) -> Vec<&'a Response> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Response { key: k, response } if k == key => Some(response),
            _ => None,
        })
        .collect()
}

pub fn requests(events: &[(Duration, Event)], method: Method) -> Vec<&Request> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Request { request, .. } if request.method == method => Some(request),
            _ => None,
        })
        .collect()
}

pub fn count(events: &[(Duration, Event)], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|(_, e)| pred(e)).count()
}

pub fn no_timeouts(events: &[(Duration, Event)]) -> bool {
    count(events, |e| matches!(e, Event::Timeout { .. })) == 0
}

/// A TU that does nothing.
pub struct Idle;
impl Tu for Idle {
    fn on_event(&mut self, _: &mut Ctx<'_>, _: &Event) {}
}

/// Server TU answering every non-INVITE request at once with `code`.
pub struct Answer(pub u16);
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
