//! The engine behind its transaction layer, scripted phones, an in-memory
//! lossy network and a virtual clock. Nothing sleeps: time jumps to the
//! next deadline.

// Shared by several test binaries; each uses a part.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use media::{PortPool, Side};
use pbx::call::{
    CallEngine, CallRecord, CallerIdentity, ContactTarget, Destination, DialPlan, EngineConfig,
    ExtensionProfile, GroupMember, InboundCall, Locator, MediaCommand, MemberTarget, OutsideCall,
    RingGroupAnswered, RingGroupPlan, SipOutput, StreamPorts, TrunkCredentials, TrunkRoute,
    is_initial_invite,
};
use sip::transaction::{Config, Event, Target, TransactionLayer, Transport};
use sip::{Limits, Message, Uri, parse_datagram};
use store::{
    ExtensionId, ExtensionNumber, Forwarding, RingGroupId, RingStrategy, TenantId, TrunkId,
};

use super::phone::{Behavior, Phone};
use pbx::call::CallPhase;
use sip::{Method, Request};
use store::ForwardTarget;

pub const PBX: &str = "10.0.0.1:5060";

/// xorshift64*, seeded.
pub struct Rng(u64);

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
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The directory: profiles and registrations, shared with the engine.
#[derive(Default)]
pub struct Dir {
    pub profiles: Mutex<HashMap<String, ExtensionProfile>>,
    pub contacts: Mutex<HashMap<String, Vec<ContactTarget>>>,
    /// Trunks in order: (id, address, credentials).
    pub trunks: Mutex<Vec<(TrunkId, SocketAddr, Option<TrunkCredentials>)>>,
    /// Numbers (E.164) routed to extensions.
    pub numbers: Mutex<HashMap<String, String>>,
    /// A refusal for outside numbers (premium rate, limit reached...).
    pub refuse: Mutex<Option<(u16, String)>>,
    /// Ring groups by number.
    pub groups: Mutex<HashMap<String, GroupSpec>>,
    /// Concurrent-call limits of tenants (`max_concurrent_calls`).
    pub call_limits: Mutex<HashMap<TenantId, u32>>,
}

/// A ring group as the directory holds it: members by number (`+...` for
/// an outside number), resolved into profiles on every lookup.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub id: RingGroupId,
    pub name: String,
    pub strategy: RingStrategy,
    pub ring_timeout: Duration,
    pub member_timeout: Duration,
    pub members: Vec<String>,
    pub last_answered: Option<u32>,
    pub fallback: Option<String>,
}

impl Dir {
    pub fn add(&self, ext: &str) {
        let p = ExtensionProfile {
            id: ExtensionId::new(),
            number: ext.parse::<ExtensionNumber>().unwrap(),
            display_name: format!("Ext {ext}"),
            dnd: false,
            forwarding: Forwarding::default(),
            no_answer_timeout: Duration::from_secs(20),
            max_calls: 8,
        };
        self.profiles.lock().unwrap().insert(ext.into(), p);
    }
    pub fn edit(&self, ext: &str, f: impl FnOnce(&mut ExtensionProfile)) {
        f(self.profiles.lock().unwrap().get_mut(ext).unwrap());
    }
    pub fn add_trunk(&self, addr: SocketAddr, credentials: Option<(&str, &str)>) -> TrunkId {
        let id = TrunkId::new();
        let creds = credentials.map(|(u, p)| TrunkCredentials {
            username: u.into(),
            password: p.into(),
        });
        self.trunks.lock().unwrap().push((id, addr, creds));
        id
    }
    /// Adds ring group `number` ("Sales", 60 s ring timeout, 10 s turns).
    pub fn add_group(&self, number: &str, strategy: RingStrategy, members: &[&str]) {
        let spec = GroupSpec {
            id: RingGroupId::new(),
            name: "Sales".into(),
            strategy,
            ring_timeout: Duration::from_secs(60),
            member_timeout: Duration::from_secs(10),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            last_answered: None,
            fallback: None,
        };
        self.groups.lock().unwrap().insert(number.into(), spec);
    }
    pub fn edit_group(&self, number: &str, f: impl FnOnce(&mut GroupSpec)) {
        f(self.groups.lock().unwrap().get_mut(number).unwrap());
    }
    /// What the driver does with the engine's round-robin reports.
    pub fn record_answer(&self, a: &RingGroupAnswered) {
        for g in self.groups.lock().unwrap().values_mut() {
            if g.id == a.group {
                g.last_answered = Some(a.position);
            }
        }
    }
    fn group_plan(&self, number: &str) -> Option<RingGroupPlan> {
        let spec = self.groups.lock().unwrap().get(number).cloned()?;
        let profiles = self.profiles.lock().unwrap();
        let members = spec
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let target = if m.starts_with('+') {
                    MemberTarget::External(m.clone())
                } else {
                    MemberTarget::Extension(profiles.get(m)?.clone())
                };
                Some(GroupMember {
                    position: i as u32,
                    target,
                })
            })
            .collect();
        Some(RingGroupPlan {
            id: spec.id,
            number: number.parse().unwrap(),
            name: spec.name,
            strategy: spec.strategy,
            ring_timeout: spec.ring_timeout,
            member_timeout: spec.member_timeout,
            members,
            last_answered: spec.last_answered,
            fallback: spec.fallback,
        })
    }
    pub fn register(&self, ext: &str, addr: SocketAddr) {
        let c = ContactTarget {
            uri: Uri::parse(&format!("sip:{ext}@{addr}")).unwrap(),
            flow: Target::new(Transport::Udp, addr),
        };
        self.contacts
            .lock()
            .unwrap()
            .entry(ext.into())
            .or_default()
            .push(c);
    }
}

impl DialPlan for Dir {
    fn call_limit(&self, tenant: TenantId) -> Option<u32> {
        self.call_limits.lock().unwrap().get(&tenant).copied()
    }

    fn resolve(&self, _tenant: TenantId, _caller: Option<&str>, dialled: &str) -> Destination {
        let routed = self.numbers.lock().unwrap().get(dialled).cloned();
        if let Some(ext) = routed {
            return self.resolve(_tenant, _caller, &ext);
        }
        if let Some(g) = self.group_plan(dialled) {
            return Destination::RingGroup(g);
        }
        match self.profiles.lock().unwrap().get(dialled) {
            Some(p) => Destination::Extension(p.clone()),
            None if dialled.starts_with(['0', '+']) || matches!(dialled, "999" | "112") => {
                let emergency = matches!(dialled, "999" | "112");
                if let (Some((status, reason)), false) =
                    (self.refuse.lock().unwrap().clone(), emergency)
                {
                    return Destination::Refused { status, reason };
                }
                let number = match dialled.strip_prefix('0') {
                    Some(rest) if !emergency => format!("+44{rest}"),
                    _ => dialled.to_owned(),
                };
                let routes = self
                    .trunks
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(id, addr, creds)| TrunkRoute {
                        trunk: *id,
                        dest: Target::new(Transport::Udp, *addr),
                        request_uri: Uri::parse(&format!("sip:{number}@{}", addr.ip())).unwrap(),
                        from: "<sip:+442079460000@switchboard.test>".into(),
                        credentials: creds.clone(),
                    })
                    .collect();
                Destination::Outside(OutsideCall {
                    number,
                    routes,
                    emergency,
                })
            }
            None => Destination::Unknown,
        }
    }
}

impl Locator for Dir {
    fn contacts(&self, _tenant: TenantId, ext: &ExtensionProfile) -> Vec<ContactTarget> {
        self.contacts
            .lock()
            .unwrap()
            .get(ext.number.as_str())
            .cloned()
            .unwrap_or_default()
    }
}

/// Network conditions.
#[derive(Clone, Copy)]
pub struct NetConfig {
    pub drop_percent: u64,
    pub dup_percent: u64,
    pub max_delay_ms: u64,
}

impl NetConfig {
    pub fn perfect() -> Self {
        NetConfig {
            drop_percent: 0,
            dup_percent: 0,
            max_delay_ms: 1,
        }
    }
    pub fn lossy(seed: u64) -> Self {
        NetConfig {
            drop_percent: 8,
            dup_percent: 5,
            max_delay_ms: [20, 150, 700][(seed % 3) as usize],
        }
    }
}

/// (from, to, bytes) in flight.
type Datagram = (SocketAddr, SocketAddr, Arc<[u8]>);

pub struct Sim {
    pub now: Instant,
    pub start: Instant,
    pub engine: CallEngine,
    pub layer: TransactionLayer,
    pub phones: Vec<Phone>,
    pub dir: Arc<Dir>,
    pub pool: PortPool,
    pub tenant: TenantId,
    /// Phones of other tenants (by address); the rest are `tenant`'s.
    pub tenants: HashMap<SocketAddr, TenantId>,
    pub records: Vec<CallRecord>,
    /// Round-robin answers the engine reported (also written to `dir`).
    pub group_answers: Vec<RingGroupAnswered>,
    pub media: Vec<MediaCommand>,
    pub open_ports: HashMap<u64, Vec<StreamPorts>>,
    pub opened: Vec<u64>,
    /// Hold dialog-creating INVITEs back (a driver still authenticating).
    pub defer_invites: bool,
    /// Sources recognised as trunks (inbound calls).
    pub trunk_sources: HashMap<SocketAddr, TrunkId>,
    pub deferred: Vec<(sip::transaction::TxKey, sip::Request, Target)>,
    /// Every message the wire carried: (from, to, message).
    pub wire: Vec<(SocketAddr, SocketAddr, Message)>,
    net: NetConfig,
    rng: Rng,
    queue: BTreeMap<(Instant, u64), Datagram>,
    seq: u64,
}

impl Sim {
    pub fn new(seed: u64, net: NetConfig) -> Sim {
        Sim::with_ports(seed, net, "30000-30099")
    }

    /// A simulation whose relay has the port range `ports`.
    pub fn with_ports(seed: u64, net: NetConfig, ports: &str) -> Sim {
        Sim::with_pool(seed, net, PortPool::new(ports.parse().unwrap()))
    }

    /// A simulation whose relay takes its ports from `pool`.
    pub fn with_pool(seed: u64, net: NetConfig, pool: PortPool) -> Sim {
        let now = Instant::now();
        let dir = Arc::new(Dir::default());
        let cfg = EngineConfig::new(PBX.parse().unwrap(), "203.0.113.7".parse().unwrap());
        let engine = CallEngine::new(cfg, dir.clone(), dir.clone(), pool.clone());
        Sim {
            now,
            start: now,
            engine,
            layer: TransactionLayer::new(Config::default(), seed ^ 0xabc),
            phones: Vec::new(),
            dir,
            pool,
            tenant: TenantId::new(),
            tenants: HashMap::new(),
            records: Vec::new(),
            group_answers: Vec::new(),
            media: Vec::new(),
            open_ports: HashMap::new(),
            opened: Vec::new(),
            defer_invites: false,
            trunk_sources: HashMap::new(),
            deferred: Vec::new(),
            wire: Vec::new(),
            net,
            rng: Rng::new(seed),
            queue: BTreeMap::new(),
            seq: 0,
        }
    }

    /// A fresh engine over the same directory and relay ports, as after a
    /// restart between calls (what the engine remembered is gone).
    pub fn restart_engine(&mut self) {
        let cfg = EngineConfig::new(PBX.parse().unwrap(), "203.0.113.7".parse().unwrap());
        self.engine = CallEngine::new(cfg, self.dir.clone(), self.dir.clone(), self.pool.clone());
    }

    /// Adds a phone for `ext` (registered unless `registered` is false).
    pub fn phone(&mut self, name: &'static str, ext: &'static str, registered: bool) -> usize {
        let n = self.phones.len() as u16;
        let addr: SocketAddr = format!("192.168.1.{}:{}", 10 + n, 5060 + n)
            .parse()
            .unwrap();
        if !self.dir.profiles.lock().unwrap().contains_key(ext) {
            self.dir.add(ext);
        }
        if registered {
            self.dir.register(ext, addr);
        }
        let seed = self.rng.next();
        self.phones
            .push(Phone::new(name, ext, addr, PBX.parse().unwrap(), seed));
        self.phones.len() - 1
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Arc<[u8]>) {
        if let Ok(m) = parse_datagram(&bytes, &Limits::default()) {
            self.wire.push((from, to, m));
        }
        if self.rng.chance(self.net.drop_percent) {
            return;
        }
        let copies = if self.rng.chance(self.net.dup_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = 1 + self.rng.next() % self.net.max_delay_ms.max(1);
            self.seq += 1;
            self.queue.insert(
                (self.now + Duration::from_millis(delay), self.seq),
                (from, to, bytes.clone()),
            );
        }
    }

    fn identity(&self, source: SocketAddr) -> CallerIdentity {
        let p = self.phones.iter().find(|p| p.addr == source).unwrap();
        CallerIdentity {
            tenant: self.tenants.get(&source).copied().unwrap_or(self.tenant),
            extension: p.ext.parse().unwrap(),
            credential: p.ext.try_into().unwrap(),
        }
    }

    /// Moves everything that is ready without advancing the clock.
    fn pump(&mut self) {
        let pbx: SocketAddr = PBX.parse().unwrap();
        loop {
            let mut progress = false;
            while let Some(ev) = self.layer.poll_event() {
                progress = true;
                match ev {
                    Event::Request {
                        key,
                        request,
                        source,
                        ..
                    } if is_initial_invite(&request) && self.defer_invites => {
                        self.deferred.push((key, request, source));
                    }
                    Event::Request {
                        key,
                        request,
                        source,
                        ..
                    } if is_initial_invite(&request)
                        && self.trunk_sources.contains_key(&source.addr) =>
                    {
                        let inbound = InboundCall {
                            tenant: self.tenant,
                            trunk: self.trunk_sources[&source.addr],
                        };
                        self.engine
                            .on_inbound(key, request, source, inbound, self.now);
                    }
                    Event::Request {
                        key,
                        request,
                        source,
                        ..
                    } if is_initial_invite(&request) => {
                        let id = self.identity(source.addr);
                        self.engine.on_invite(key, request, source, id, self.now);
                    }
                    ev => self.engine.handle_event(ev, self.now),
                }
            }
            while let Some(out) = self.engine.poll_sip() {
                progress = true;
                match out {
                    SipOutput::Request { request, dest } => {
                        if self
                            .layer
                            .send_request(request.clone(), dest, self.now)
                            .is_err()
                        {
                            self.engine.send_failed(&request, self.now);
                        }
                    }
                    SipOutput::Response { key, response } => {
                        let _ = self.layer.send_response(&key, response, self.now);
                    }
                    SipOutput::Ack { request, dest } => {
                        self.layer.send_stateless(&Message::Request(request), dest)
                    }
                }
            }
            while let Some(m) = self.engine.poll_media() {
                if let MediaCommand::Close { call } = &m {
                    self.open_ports.remove(call);
                }
                match m {
                    MediaCommand::Open { call, streams } => {
                        self.open_ports.insert(call, streams);
                        self.opened.push(call);
                    }
                    m => self.media.push(m),
                }
            }
            while let Some(r) = self.engine.poll_record() {
                self.records.push(r);
            }
            while let Some(a) = self.engine.poll_ring_group_answered() {
                self.dir.record_answer(&a);
                self.group_answers.push(a);
            }
            while let Some(t) = self.layer.poll_transmit() {
                progress = true;
                self.send(pbx, t.dest.addr, t.bytes);
            }
            for i in 0..self.phones.len() {
                while let Some(ev) = self.phones[i].layer.poll_event() {
                    progress = true;
                    let now = self.now;
                    self.phones[i].on_event(ev, now);
                }
                while let Some(t) = self.phones[i].layer.poll_transmit() {
                    progress = true;
                    let from = self.phones[i].addr;
                    self.send(from, t.dest.addr, t.bytes);
                }
            }
            if !progress {
                break;
            }
        }
    }

    /// Runs until `until` (relative to the start) on the virtual clock.
    pub fn run_until(&mut self, until: Duration) {
        let end = self.start + until;
        loop {
            self.pump();
            let mut next = [
                self.queue.keys().next().map(|k| k.0),
                self.layer.poll_timeout(),
                self.engine.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .chain(self.phones.iter_mut().filter_map(Phone::next_timeout))
            .min();
            if next.is_none_or(|t| t > end) {
                next = Some(end);
            }
            let t = next.unwrap().max(self.now);
            self.now = t;
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let (from, to, bytes) = entry.remove();
                self.deliver(from, to, &bytes);
            }
            self.layer.handle_timeout(self.now);
            self.engine.handle_timeout(self.now);
            let now = self.now;
            for p in &mut self.phones {
                p.handle_timeout(now);
            }
            if self.now >= end {
                self.pump();
                break;
            }
        }
    }

    /// Hands the held-back INVITEs to the engine.
    pub fn release_invites(&mut self) {
        for (key, request, source) in std::mem::take(&mut self.deferred) {
            let id = self.identity(source.addr);
            self.engine.on_invite(key, request, source, id, self.now);
        }
    }

    /// Runs for `d` more.
    pub fn run_for(&mut self, d: Duration) {
        let at = self.now + d - self.start;
        self.run_until(at);
    }

    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let Ok(msg) = parse_datagram(bytes, &Limits::default()) else {
            return;
        };
        let src = Target::new(Transport::Udp, from);
        if to == PBX.parse::<SocketAddr>().unwrap() {
            let _ = self.layer.receive(msg, src, self.now);
        } else if let Some(p) = self.phones.iter_mut().find(|p| p.addr == to) {
            let _ = p.layer.receive(msg, src, self.now);
        }
    }

    /// Leg configurations the engine issued for `side`.
    pub fn leg_configs(&self, side: Side) -> Vec<&media::LegConfig> {
        self.media
            .iter()
            .filter_map(|m| match m {
                MediaCommand::Leg {
                    side: s, config, ..
                } if *s == side => Some(config),
                _ => None,
            })
            .collect()
    }

    /// Every message on the wire between the PBX and `phone`, either way.
    pub fn wire_with(&self, phone: usize) -> Vec<&Message> {
        let a = self.phones[phone].addr;
        self.wire
            .iter()
            .filter(|(f, t, _)| *f == a || *t == a)
            .map(|(_, _, m)| m)
            .collect()
    }
}

// ---------------------------------------------------------------- helpers

pub const SEEDS: u64 = 100;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ring(answer_after: Option<u64>) -> Behavior {
    Behavior::Ring {
        answer_after: answer_after.map(secs),
        early_media: false,
    }
}

/// Caller 1000 and callee 1001 (one registered phone each).
pub fn two_phones(seed: u64, net: NetConfig) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed, net);
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    (sim, a, b)
}

pub fn sdp_addr(body: &[u8]) -> String {
    let sdp: media::Sdp = std::str::from_utf8(body).unwrap().parse().unwrap();
    sdp.connection.unwrap().address
}

pub fn assert_ports_returned(sim: &Sim) {
    assert!(sim.open_ports.is_empty(), "every opened call was closed");
    assert_eq!(sim.pool.available(), sim.pool.capacity());
}

pub fn cancels(sim: &Sim, phone: usize) -> Vec<&Request> {
    sim.phones[phone].received(Method::Cancel)
}

pub fn forward_to(ext: &str) -> Option<ForwardTarget> {
    Some(ForwardTarget::Extension(ext.parse().unwrap()))
}

pub fn diversion(req: &Request) -> Vec<String> {
    req.headers
        .get_all("Diversion")
        .map(str::to_owned)
        .collect()
}

pub fn connected(seed: u64, net: NetConfig) -> (Sim, usize, usize) {
    let (mut sim, a, b) = two_phones(seed, net);
    sim.phones[b].behavior = ring(Some(1));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    // Heavy loss can hold the INVITE, 2xx or ACK back for a few retransmissions.
    while sim.engine.calls()[0].phase != CallPhase::Connected && sim.now - sim.start < secs(30) {
        sim.run_for(secs(1));
    }
    assert_eq!(
        sim.engine.calls()[0].phase,
        CallPhase::Connected,
        "seed {seed}"
    );
    (sim, a, b)
}

pub fn reinvite_finals(sim: &Sim, phone: usize) -> Vec<u16> {
    let mut v: Vec<u16> = sim.phones[phone]
        .responses
        .iter()
        .filter(|r| {
            r.status.is_final()
                && r.cseq()
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.method == Method::Invite && c.seq > 1)
        })
        .map(|r| r.status.as_u16())
        .collect();
    v.dedup();
    v
}

/// A caller (1000) dials `dialled` after `setup`; runs for `run` seconds.
pub fn outcome(setup: impl FnOnce(&mut Sim), dialled: &str, run: u64) -> Sim {
    let (mut sim, a, _) = two_phones(6, NetConfig::perfect());
    setup(&mut sim);
    sim.phones[a].call(dialled, sim.now);
    sim.run_until(secs(run));
    sim
}
