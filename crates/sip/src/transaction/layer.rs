//! The transaction layer: a table of transactions, request/response matching,
//! the deadline queue and the output queues.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::build::{cancel_for, ensure_branch, response_target};
use super::client::{ClientInvite, ClientNonInvite};
use super::key::{BranchGenerator, Role, TxKey};
use super::machine::Machine;
use super::server::{ServerInvite, ServerNonInvite};
use super::timers::{Config, Out, Timer, TimerQueue, TuEvent, TxId};
use super::{Event, State, Target, Transmit, TxError};
use crate::message::{Message, Method, Request, Response, StatusCode};

#[derive(Debug)]
struct Entry {
    key: TxKey,
    /// Where requests (client) or responses (server) go.
    dest: Target,
    machine: Machine,
    /// Client INVITE only: a CANCEL transaction waiting for a provisional.
    pending_cancel: Option<TxId>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// Every live transaction of one SIP element, plus the queues that connect
/// it to the transport driver and the transaction user. See the
/// [module documentation](super) for the calling pattern.
#[derive(Debug)]
pub struct TransactionLayer {
    config: Config,
    branches: BranchGenerator,
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: HashMap<TxKey, TxId>,
    timers: TimerQueue,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    scratch: Out,
}

impl TransactionLayer {
    /// Branches come from a CSPRNG ([`BranchGenerator`]); `branch_seed` is
    /// not used and is kept for callers of the seeded generator. The
    /// configuration is [`sanitized`](Config::sanitized).
    pub fn new(config: Config, branch_seed: u64) -> Self {
        TransactionLayer {
            config: config.sanitized(),
            branches: BranchGenerator::new(branch_seed),
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            timers: TimerQueue::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            scratch: Out::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The state of a live transaction.
    pub fn state(&self, key: &TxKey) -> Option<State> {
        let id = self.index.get(key)?;
        self.entry(*id).map(|e| e.machine.state())
    }

    /// A fresh RFC 3261 branch from the layer's generator.
    pub fn new_branch(&mut self) -> String {
        self.branches.next()
    }

    /// A message received from the network (already parsed). Requests and
    /// responses that match a transaction feed it; others create a server
    /// transaction or surface as [`Event::Ack`] / [`Event::StrayResponse`].
    /// Errors mean the message could not be matched (no Via, bad CSeq...)
    /// or the table is full; the driver may answer 400/503 statelessly.
    pub fn receive(
        &mut self,
        message: Message,
        source: Target,
        now: Instant,
    ) -> Result<(), TxError> {
        match message {
            Message::Request(r) => self.receive_request(r, source, now),
            Message::Response(r) => self.receive_response(r, source, now),
        }
    }

    fn receive_response(
        &mut self,
        resp: Response,
        source: Target,
        now: Instant,
    ) -> Result<(), TxError> {
        let id = TxKey::for_response(&resp)?.and_then(|k| self.index.get(&k).copied());
        let Some(id) = id else {
            self.events.push_back(Event::StrayResponse {
                response: resp,
                source,
            });
            return Ok(());
        };
        // A response counts only from where the request went: a third party
        // that learnt or guessed the branch cannot answer for the peer.
        if !self.entry(id).is_some_and(|e| same_peer(e.dest, source)) {
            return Err(TxError::ForeignSource);
        }
        self.drive(id, None, now, |e, cfg, out| match &mut e.machine {
            Machine::InviteClient(m) => m.on_response(resp, cfg, now, out),
            Machine::NonInviteClient(m) => m.on_response(resp, cfg, now, out),
            Machine::InviteServer(_) | Machine::NonInviteServer(_) => {}
        });
        Ok(())
    }

    fn receive_request(
        &mut self,
        mut req: Request,
        source: Target,
        now: Instant,
    ) -> Result<(), TxError> {
        let key = TxKey::for_request(&req)?;
        let found = self.index.get(&key).copied();
        if req.method == Method::Ack {
            let id = found.filter(|id| self.ack_matches(*id, &req));
            match id {
                Some(id) => {
                    self.drive(id, Some(source), now, |e, cfg, out| {
                        if let Machine::InviteServer(m) = &mut e.machine {
                            m.on_ack(req, cfg, now, out);
                        }
                    });
                }
                None => self.events.push_back(Event::Ack {
                    request: req,
                    source,
                    invite: None,
                }),
            }
            return Ok(());
        }
        if let Some(id) = found {
            self.drive(id, None, now, |e, _, out| match &mut e.machine {
                Machine::InviteServer(m) => m.on_request(out),
                Machine::NonInviteServer(m) => m.on_request(out),
                _ => {}
            });
            return Ok(());
        }
        self.check_room()?;
        let reliable = source.transport.is_reliable();
        let dest = response_target(&req, source);
        // RFC 3261 §18.2.1 / RFC 3581 §4: every response the TU builds from
        // this request then names where it came from.
        req.stamp_source(source.addr);
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let machine = if req.method == Method::Invite {
            let trying = self.config.trying_delay.map(|_| {
                let mut t = req.response(StatusCode::TRYING);
                if let Some(ts) = req.headers.get("Timestamp") {
                    t.headers.push("Timestamp", ts);
                }
                Arc::<[u8]>::from(t.to_bytes())
            });
            Machine::InviteServer(ServerInvite::start(
                trying,
                reliable,
                &self.config,
                now,
                &mut out,
            ))
        } else {
            Machine::NonInviteServer(ServerNonInvite::start(
                reliable,
                &self.config,
                now,
                &mut out,
            ))
        };
        let cancels = (req.method == Method::Cancel)
            .then(|| key.with_method(Method::Invite))
            .filter(|k| self.index.contains_key(k));
        let id = self.insert(key.clone(), dest, machine);
        self.events.push_back(Event::Request {
            key,
            request: req,
            source,
            cancels,
        });
        self.apply(id, None, now, &mut out);
        self.scratch = out;
        Ok(())
    }

    /// RFC 2543 ACKs must also carry the To tag of the final response.
    fn ack_matches(&self, id: TxId, ack: &Request) -> bool {
        let Some(e) = self.entry(id) else {
            return false;
        };
        let Machine::InviteServer(m) = &e.machine else {
            return false;
        };
        if e.key.is_rfc3261() {
            return true;
        }
        match m.to_tag() {
            None => true,
            Some(tag) => ack.to_addr().ok().flatten().and_then(|t| t.tag()) == Some(tag),
        }
    }

    /// Starts a client transaction and sends the request. The top Via must
    /// be present (the transport knows the sent-by); a branch is added when
    /// it has no RFC 3261 one. ACK is refused: an ACK for a 2xx is sent with
    /// [`send_stateless`](Self::send_stateless) and the ACK for other final
    /// responses is generated by the transaction.
    pub fn send_request(
        &mut self,
        mut request: Request,
        dest: Target,
        now: Instant,
    ) -> Result<TxKey, TxError> {
        if request.method == Method::Ack {
            return Err(TxError::AckNotTransactional);
        }
        let branch = ensure_branch(&mut request, || self.branches.next())?;
        let key = TxKey::client(&branch, request.method.clone());
        if self.index.contains_key(&key) {
            return Err(TxError::DuplicateTransaction);
        }
        self.check_room()?;
        let reliable = dest.transport.is_reliable();
        let bytes: Arc<[u8]> = request.to_bytes().into();
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let machine = if request.method == Method::Invite {
            Machine::InviteClient(ClientInvite::start(
                request,
                bytes,
                reliable,
                &self.config,
                now,
                &mut out,
            ))
        } else {
            Machine::NonInviteClient(ClientNonInvite::start(
                bytes,
                reliable,
                &self.config,
                now,
                &mut out,
            ))
        };
        let id = self.insert(key.clone(), dest, machine);
        self.apply(id, None, now, &mut out);
        self.scratch = out;
        Ok(key)
    }

    /// A response from the TU for a server transaction. Sends it and moves
    /// the state machine; errors when the transaction is gone or already
    /// answered with a final response (except 2xx retransmissions in
    /// Accepted, which pass through).
    pub fn send_response(
        &mut self,
        key: &TxKey,
        response: Response,
        now: Instant,
    ) -> Result<(), TxError> {
        let id = *self.index.get(key).ok_or(TxError::UnknownTransaction)?;
        self.drive(id, None, now, |e, cfg, out| match &mut e.machine {
            Machine::InviteServer(m) => m.send_response(&response, cfg, now, out),
            Machine::NonInviteServer(m) => m.send_response(&response, cfg, now, out),
            _ => Err(TxError::InvalidState),
        })
        .unwrap_or(Err(TxError::UnknownTransaction))
    }

    /// Cancels a pending client INVITE (RFC 3261 §9.1): builds the CANCEL and
    /// runs it as its own non-INVITE client transaction, whose key is
    /// returned. If no provisional response has arrived yet, the CANCEL waits
    /// (state [`State::Pending`]) and is sent with the first one; if a final
    /// response arrives first it is dropped ([`Event::Terminated`]).
    /// Cancelling twice returns the same key.
    pub fn cancel(&mut self, key: &TxKey, now: Instant) -> Result<TxKey, TxError> {
        let id = *self.index.get(key).ok_or(TxError::UnknownTransaction)?;
        let entry = self.entry(id).ok_or(TxError::UnknownTransaction)?;
        let Machine::InviteClient(inv) = &entry.machine else {
            return Err(TxError::InvalidState);
        };
        let cancel_key = key.with_method(Method::Cancel);
        if self.index.contains_key(&cancel_key) {
            return Ok(cancel_key);
        }
        let state = inv.state();
        let request = match (state, inv.request()) {
            (State::Calling | State::Proceeding, Some(r)) => cancel_for(r)?,
            _ => return Err(TxError::InvalidState),
        };
        let dest = entry.dest;
        let reliable = dest.transport.is_reliable();
        let bytes: Arc<[u8]> = request.to_bytes().into();
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let machine = if state == State::Proceeding {
            ClientNonInvite::start(bytes, reliable, &self.config, now, &mut out)
        } else {
            ClientNonInvite::pending(bytes, reliable)
        };
        let cid = self.insert(cancel_key.clone(), dest, Machine::NonInviteClient(machine));
        if state == State::Calling {
            if let Some(e) = self.entry_mut(id) {
                e.pending_cancel = Some(cid);
            }
        }
        self.apply(cid, None, now, &mut out);
        self.scratch = out;
        if state == State::Proceeding {
            self.cancel_sent(id, now);
        }
        Ok(cancel_key)
    }

    fn cancel_sent(&mut self, invite: TxId, now: Instant) {
        self.drive(invite, None, now, |e, cfg, out| {
            if let Machine::InviteClient(m) = &mut e.machine {
                m.cancel_sent(cfg, now, out);
            }
        });
    }

    /// Sends a message outside any transaction: the ACK for a 2xx, or a
    /// stateless proxy's forwarding.
    pub fn send_stateless(&mut self, message: &Message, dest: Target) {
        self.transmits.push_back(Transmit {
            dest,
            bytes: message.to_bytes().into(),
            key: None,
        });
    }

    /// The driver could not send a message of this transaction (§17.1.4,
    /// §17.2.4). Unknown keys are ignored: the transaction may be gone.
    pub fn transport_error(&mut self, key: &TxKey, now: Instant) {
        if let Some(id) = self.index.get(key).copied() {
            self.drive(id, None, now, |e, _, out| e.machine.on_transport_error(out));
        }
    }

    /// A connection to `dest` could not be made (refused, unreachable, timed
    /// out): every client transaction whose requests go there fails at once
    /// with a transport error (RFC 3261 §17.1.4: the TU sees a 503), instead
    /// of waiting out its timers. Server transactions are left alone.
    pub fn connection_failed(&mut self, dest: Target, now: Instant) {
        let failed: Vec<TxKey> = self
            .slots
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .filter(|e| e.dest == dest && e.key.role() == Role::Client)
            .map(|e| e.key.clone())
            .collect();
        for key in failed {
            self.transport_error(&key, now);
        }
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id, timer)) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let armed = self
                .entry_mut(id)
                .is_some_and(|e| e.machine.deadlines().take(timer, at));
            if armed {
                self.drive(id, None, now, |e, cfg, out| {
                    e.machine.on_timer(timer, cfg, now, out)
                });
            }
        }
        self.maybe_compact();
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some((at, id, timer)) = self.timers.peek() {
            if self.is_armed(id, timer, at) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    // ---- internals ----

    #[cfg(test)]
    fn queued_timers(&self) -> usize {
        self.timers.len()
    }

    /// Drops stale queue entries once they clearly outnumber live timers
    /// (at most four per transaction), keeping the queue O(live).
    fn maybe_compact(&mut self) {
        if self.timers.len() <= 8 * self.index.len() + 1024 {
            return;
        }
        let slots = &mut self.slots;
        self.timers.retain(|at, id, timer| {
            slots.get_mut(id.index as usize).is_some_and(|s| {
                s.generation == id.generation
                    && s.entry
                        .as_mut()
                        .is_some_and(|e| e.machine.deadlines().is_armed(timer, at))
            })
        });
    }

    fn check_room(&self) -> Result<(), TxError> {
        if self.index.len() >= self.config.max_transactions {
            Err(TxError::TableFull(self.index.len()))
        } else {
            Ok(())
        }
    }

    fn entry(&self, id: TxId) -> Option<&Entry> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.entry.as_ref())
            .flatten()
    }

    fn entry_mut(&mut self, id: TxId) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    fn is_armed(&mut self, id: TxId, timer: Timer, at: Instant) -> bool {
        self.entry_mut(id)
            .is_some_and(|e| e.machine.deadlines().is_armed(timer, at))
    }

    fn insert(&mut self, key: TxKey, dest: Target, machine: Machine) -> TxId {
        let entry = Entry {
            key: key.clone(),
            dest,
            machine,
            pending_cancel: None,
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(entry);
        let id = TxId {
            index,
            generation: slot.generation,
        };
        self.index.insert(key, id);
        id
    }

    fn remove(&mut self, id: TxId) -> Option<Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.index.remove(&entry.key);
        self.events.push_back(Event::Terminated {
            key: entry.key.clone(),
        });
        Some(entry)
    }

    /// Runs `f` on a transaction and applies what it asked for.
    fn drive<R>(
        &mut self,
        id: TxId,
        source: Option<Target>,
        now: Instant,
        f: impl FnOnce(&mut Entry, &Config, &mut Out) -> R,
    ) -> Option<R> {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let config = self.config;
        let r = f(self.entry_mut(id)?, &config, &mut out);
        self.apply(id, source, now, &mut out);
        self.scratch = out;
        Some(r)
    }

    fn apply(&mut self, id: TxId, source: Option<Target>, now: Instant, out: &mut Out) {
        let Some(entry) = self.entry(id) else {
            return;
        };
        let key = entry.key.clone();
        let dest = entry.dest;
        for bytes in out.sends.drain(..) {
            self.transmits.push_back(Transmit {
                dest,
                bytes,
                key: Some(key.clone()),
            });
        }
        for (timer, at) in out.arms.drain(..) {
            self.timers.push(at, id, timer);
        }
        let mut provisional = false;
        for ev in out.tu.drain(..) {
            let event = match ev {
                TuEvent::Response(response) => {
                    provisional |= response.status.is_provisional();
                    Event::Response {
                        key: key.clone(),
                        response,
                    }
                }
                TuEvent::Ack(request) => Event::Ack {
                    request,
                    source: source.unwrap_or(dest),
                    invite: Some(key.clone()),
                },
                TuEvent::Timeout(timer) => Event::Timeout {
                    key: key.clone(),
                    timer,
                },
                TuEvent::TransportError => Event::TransportError { key: key.clone() },
            };
            self.events.push_back(event);
        }
        let terminated = out.terminated;
        out.clear();
        self.settle_pending_cancel(id, provisional, terminated, now);
        if terminated {
            self.remove(id);
        }
    }

    /// A waiting CANCEL goes out with the INVITE's first provisional and is
    /// dropped when the INVITE ends without one.
    fn settle_pending_cancel(
        &mut self,
        id: TxId,
        provisional: bool,
        terminated: bool,
        now: Instant,
    ) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        let Machine::InviteClient(inv) = &entry.machine else {
            return;
        };
        let waiting = inv.state() == State::Calling && !terminated && !provisional;
        if waiting {
            return;
        }
        let Some(cid) = entry.pending_cancel.take() else {
            return;
        };
        if provisional && !terminated {
            self.drive(cid, None, now, |e, cfg, out| {
                if let Machine::NonInviteClient(c) = &mut e.machine {
                    c.begin(cfg, now, out);
                }
            });
            self.cancel_sent(id, now);
        } else {
            self.drive(cid, None, now, |e, _, out| {
                if let Machine::NonInviteClient(c) = &mut e.machine {
                    c.terminate(out);
                }
            });
        }
    }
}

/// Whether `source` is the peer a client transaction sent to: the same
/// transport and the same IP and port (for connection-oriented transports
/// the connection's remote address names the connection). An IPv4-mapped
/// IPv6 address equals its IPv4 form.
fn same_peer(dest: Target, source: Target) -> bool {
    fn plain(a: std::net::SocketAddr) -> (std::net::IpAddr, u16) {
        let ip = match a.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        (ip, a.port())
    }
    dest.transport == source.transport && plain(dest.addr) == plain(source.addr)
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
