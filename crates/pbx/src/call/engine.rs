//! The engine: the call table, input dispatch, timers and outputs.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use media::{PortPool, Side};
use sip::transaction::{Event, Target, Transport, TxKey};
use sip::{Method, Request, Response, StatusCode};
use store::{Disposition, HangupBy, TenantId};

use super::cdr::CallRecord;
use super::dialog::{Tokens, tag_of};
use super::group::MemberKey;
use super::media::MediaCommand;
pub(crate) use super::state::*;
use super::{
    CallPhase, CallSummary, DialPlan, EngineConfig, Locator, RingGroupAnswered, SipOutput,
};

/// The B2BUA core. See the [module documentation](super).
pub struct CallEngine {
    pub(crate) config: EngineConfig,
    pub(crate) dial_plan: Arc<dyn DialPlan + Send + Sync>,
    pub(crate) locator: Arc<dyn Locator + Send + Sync>,
    pub(crate) ports: PortPool,
    pub(crate) tokens: Tokens,
    next_call: u64,
    pub(crate) calls: HashMap<u64, Call>,
    /// INVITE server transactions of A-legs (CANCEL matching).
    pub(crate) server_tx: HashMap<TxKey, u64>,
    /// Our client transactions, by (branch, method).
    pub(crate) client_tx: HashMap<(String, Method), u64>,
    /// Dialogs by our local tag (unique: we mint it).
    pub(crate) dialogs: HashMap<String, (u64, LegRef)>,
    pub(crate) sip_out: VecDeque<SipOutput>,
    pub(crate) media_out: VecDeque<MediaCommand>,
    pub(crate) records: VecDeque<CallRecord>,
    /// Call deadlines, earliest first. Entries go stale when a deadline
    /// moves; a stale entry only causes a spurious wake-up.
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Tenants whose calls just became outside calls (see
    /// [`CallEngine::poll_outside_started`]).
    pub(crate) outside_started: VecDeque<TenantId>,
    /// INVITEs cancelled before the driver handed them over.
    pub(crate) early_cancels: VecDeque<TxKey>,
    /// Round-robin answers for the directory (see
    /// [`CallEngine::poll_ring_group_answered`]).
    pub(crate) group_answers: VecDeque<RingGroupAnswered>,
    /// Who answered each round-robin group last, as this engine saw it:
    /// newer than the directory's copy until the driver has written it.
    pub(crate) last_answered: HashMap<store::RingGroupId, MemberKey>,
    /// Each trunk's address blocks (see [`CallEngine::set_trunk_networks`]).
    pub(crate) trunk_nets: HashMap<store::TrunkId, Vec<(std::net::IpAddr, u8)>>,
    /// Trunks' call rates and health (shared with the calls driver and the
    /// keepalive): failover skips trunks known to be down or over their rate.
    pub(crate) trunk_status: Arc<crate::trunks::TrunkStatus>,
}

/// Bound on remembered early cancels (oldest forgotten first).
const EARLY_CANCELS: usize = 4096;

impl CallEngine {
    pub fn new(
        config: EngineConfig,
        dial_plan: Arc<dyn DialPlan + Send + Sync>,
        locator: Arc<dyn Locator + Send + Sync>,
        ports: PortPool,
    ) -> Self {
        let tokens = Tokens;
        CallEngine {
            config,
            dial_plan,
            locator,
            ports,
            tokens,
            next_call: 1,
            calls: HashMap::new(),
            server_tx: HashMap::new(),
            client_tx: HashMap::new(),
            dialogs: HashMap::new(),
            sip_out: VecDeque::new(),
            media_out: VecDeque::new(),
            records: VecDeque::new(),
            timers: BinaryHeap::new(),
            early_cancels: VecDeque::new(),
            outside_started: VecDeque::new(),
            group_answers: VecDeque::new(),
            last_answered: HashMap::new(),
            trunk_nets: HashMap::new(),
            trunk_status: Arc::default(),
        }
    }

    /// The trunks' shared runtime state (rates, health, registration).
    pub fn trunk_status(&self) -> &Arc<crate::trunks::TrunkStatus> {
        &self.trunk_status
    }

    /// Next SIP action for the transaction layer.
    pub fn poll_sip(&mut self) -> Option<SipOutput> {
        self.sip_out.pop_front()
    }

    /// Next media command for the relay driver.
    pub fn poll_media(&mut self) -> Option<MediaCommand> {
        self.media_out.pop_front()
    }

    /// Next finished call's record, for the CDR writer.
    pub fn poll_record(&mut self) -> Option<CallRecord> {
        self.records.pop_front()
    }

    /// A call of this tenant started ringing out through a trunk (dialled,
    /// or forwarded there), emergency calls excepted: count it as a live
    /// outside call until its record (direction `outbound`) comes out of
    /// [`poll_record`](Self::poll_record). Each call is reported once.
    pub fn poll_outside_started(&mut self) -> Option<TenantId> {
        self.outside_started.pop_front()
    }

    /// A round-robin ring group's call was answered: write the member's
    /// position to the directory (`set_ring_group_last_answered`), in the
    /// order given, so the rotation survives a restart.
    pub fn poll_ring_group_answered(&mut self) -> Option<RingGroupAnswered> {
        self.group_answers.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Calls not yet over, for display.
    pub fn calls(&self) -> Vec<CallSummary> {
        let mut v: Vec<CallSummary> = self
            .calls
            .values()
            .filter(|c| c.phase != CallPhase::Ended)
            .map(|c| CallSummary {
                id: c.id,
                tenant: c.tenant,
                caller: c.caller.clone(),
                dialled: c.dialled.clone(),
                callee: c.callee.clone(),
                phase: c.phase,
                started: c.started,
                answered: c.answered,
                ringing_contacts: c
                    .forks
                    .iter()
                    .filter(|f| matches!(f.state, ForkState::Calling | ForkState::Proceeding))
                    .count(),
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Calls in the table, including ended ones still lingering.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub(crate) fn new_call_id(&mut self) -> u64 {
        let id = self.next_call;
        self.next_call += 1;
        id
    }

    /// Runs `f` on a call taken out of the table (so `f` may use `self`).
    pub(crate) fn with_call<R>(
        &mut self,
        id: u64,
        f: impl FnOnce(&mut Self, &mut Call) -> R,
    ) -> Option<R> {
        let mut call = self.calls.remove(&id)?;
        let r = f(self, &mut call);
        self.insert_call(call);
        Some(r)
    }

    /// Puts a call (back) into the table and schedules its next deadline.
    pub(crate) fn insert_call(&mut self, call: Call) {
        if let Some(at) = call.deadline() {
            self.timers.push(Reverse((at, call.id)));
        }
        self.calls.insert(call.id, call);
    }

    /// Every transaction-layer event except dialog-creating INVITEs (those
    /// go through authentication to [`on_invite`](Self::on_invite); handed
    /// here, they are refused with 403).
    pub fn handle_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Request {
                key,
                request,
                source,
                cancels,
            } => self.on_request(key, request, source, cancels, now),
            Event::Response { key, response } => {
                let k = (key.branch().to_owned(), key.method().clone());
                if let Some(&id) = self.client_tx.get(&k) {
                    self.with_call(id, |e, c| e.on_response(c, &k.0, &k.1, Some(response), now));
                }
            }
            Event::Timeout { key, .. } | Event::TransportError { key } => {
                self.client_failed(key.branch(), key.method(), now);
            }
            Event::Ack {
                request, source, ..
            } => self.on_ack(request, source, now),
            Event::StrayResponse { response, .. } => self.on_stray(response, now),
            Event::Terminated { .. } => {}
        }
    }

    /// The layer refused a request the engine asked for (or it could not be
    /// sent): handled like a timeout of that transaction.
    pub fn send_failed(&mut self, request: &Request, now: Instant) {
        let branch = request
            .top_via()
            .ok()
            .flatten()
            .and_then(|v| v.branch().map(str::to_owned));
        if let Some(b) = branch {
            self.client_failed(&b, &request.method, now);
        }
    }

    fn client_failed(&mut self, branch: &str, method: &Method, now: Instant) {
        let k = (branch.to_owned(), method.clone());
        if let Some(&id) = self.client_tx.get(&k) {
            self.with_call(id, |e, c| e.on_response(c, &k.0, &k.1, None, now));
        }
    }

    /// A final response arrived (or, with `None`, the transaction failed).
    fn on_response(
        &mut self,
        call: &mut Call,
        branch: &str,
        method: &Method,
        response: Option<Response>,
        now: Instant,
    ) {
        match method {
            Method::Invite => {
                if let Some(i) = call.forks.iter().position(|f| f.branch == branch) {
                    self.on_fork_response(call, i, response, now);
                    return;
                }
                self.on_relay_response(call, branch, response, now);
            }
            Method::Update | Method::Info => self.on_relay_response(call, branch, response, now),
            _ => {}
        }
    }

    /// A 2xx that matched no transaction: a retransmission from a leg whose
    /// INVITE transaction is gone. Re-ACK it if we know the dialog.
    fn on_stray(&mut self, response: Response, _now: Instant) {
        if !response.status.is_success() {
            return;
        }
        let Some(tag) = tag_of(response.headers.get("From")) else {
            return;
        };
        let Some(&(id, LegRef::Fork(i))) = self.dialogs.get(&tag) else {
            return;
        };
        if let Some(ack) = self
            .calls
            .get(&id)
            .and_then(|c| c.forks.get(i))
            .and_then(|f| f.ack.clone().map(|a| (a, f.dialog.peer)))
        {
            self.sip_out.push_back(SipOutput::Ack {
                request: ack.0,
                dest: ack.1,
            });
        }
    }

    fn on_request(
        &mut self,
        key: TxKey,
        request: Request,
        source: Target,
        cancels: Option<TxKey>,
        now: Instant,
    ) {
        if request.method == Method::Cancel {
            return self.on_cancel(key, request, cancels, now);
        }
        if super::is_initial_invite(&request) {
            self.respond(&key, request.response_tagged(StatusCode::FORBIDDEN));
            return;
        }
        if tag_of(request.headers.get("To")).is_none() {
            // Outside any dialog: OPTIONS pings are answered, the rest refused.
            let code = if request.method == Method::Options {
                StatusCode::OK
            } else {
                StatusCode::METHOD_NOT_ALLOWED
            };
            let r = request
                .response_tagged(code)
                .with_header("Allow", super::ALLOW)
                .with_header("Accept", "application/sdp");
            self.respond(&key, r);
            return;
        }
        self.on_dialog_request(key, request, source, now);
    }

    /// CANCEL (RFC 3261 §9.2): 200 when the INVITE transaction exists, and
    /// the INVITE ends with 487. An INVITE the driver has not handed over
    /// yet (still authenticating) is answered 487 here and ignored when it
    /// arrives.
    fn on_cancel(&mut self, key: TxKey, request: Request, cancels: Option<TxKey>, now: Instant) {
        let Some(invite) = cancels else {
            self.respond(&key, request.response_tagged(status(481)));
            return;
        };
        self.respond(&key, request.response_tagged(StatusCode::OK));
        if let Some(&id) = self.server_tx.get(&invite) {
            self.with_call(id, |e, c| e.caller_cancelled(c, now));
            return;
        }
        let mut r = request.response_tagged(status(487));
        let seq = request.cseq().ok().flatten().map_or(1, |c| c.seq);
        r.headers.set("CSeq", &format!("{seq} INVITE"));
        self.respond(&invite, r);
        if self.early_cancels.len() >= EARLY_CANCELS {
            self.early_cancels.pop_front();
        }
        self.early_cancels.push_back(invite);
    }

    /// Runs due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if !due.contains(&id) {
                due.push(id);
            }
        }
        for id in due {
            let is_due = self
                .calls
                .get(&id)
                .and_then(Call::deadline)
                .is_some_and(|d| d <= now);
            if !is_due {
                continue;
            }
            let reap = self
                .with_call(id, |e, c| {
                    if c.no_answer_at.is_some_and(|t| t <= now) {
                        c.no_answer_at = None;
                        e.no_answer(c, now);
                    }
                    e.group_timers(c, now);
                    e.trunk_timeouts(c, now);
                    e.transfer_timeouts(c, now);
                    e.run_retransmits(c, now);
                    e.enforce_caps(c, now);
                    c.linger_until.is_some_and(|t| t <= now)
                })
                .unwrap_or(false);
            if reap {
                self.reap(id);
            }
        }
    }

    fn reap(&mut self, id: u64) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.server_tx.remove(&call.a.key);
        for k in &call.client_keys {
            self.client_tx.remove(k);
        }
        for t in &call.tags {
            self.dialogs.remove(t);
        }
    }

    // ------------------------------------------------------------ helpers

    pub(crate) fn respond(&mut self, key: &TxKey, response: Response) {
        self.sip_out.push_back(SipOutput::Response {
            key: key.clone(),
            response,
        });
    }

    /// Sends a request as a client transaction of `call`.
    pub(crate) fn send_request(&mut self, call: &mut Call, request: Request, dest: Target) {
        if let Some(b) = request
            .top_via()
            .ok()
            .flatten()
            .and_then(|v| v.branch().map(str::to_owned))
        {
            let k = (b, request.method.clone());
            self.client_tx.insert(k.clone(), call.id);
            call.client_keys.push(k);
        }
        self.sip_out.push_back(SipOutput::Request { request, dest });
    }

    /// Our Contact header value for a leg over `transport`.
    pub(crate) fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:{}>", self.config.sip_addr),
            t => format!(
                "<sip:{};transport={}>",
                self.config.sip_addr,
                t.as_str().to_ascii_lowercase()
            ),
        }
    }

    /// Registers a dialog's local tag.
    pub(crate) fn add_dialog(&mut self, call: &mut Call, tag: String, leg: LegRef) {
        self.dialogs.insert(tag.clone(), (call.id, leg));
        call.tags.push(tag);
    }

    /// A response to the caller's INVITE, with our To tag (and Contact for
    /// 1xx/2xx).
    pub(crate) fn a_response(&self, call: &Call, status: StatusCode) -> Response {
        let mut r = call.a.invite.response(status);
        if status.as_u16() > 100 {
            r.set_to_tag(&call.a.dialog.local_tag);
        }
        if status.as_u16() > 100 && status.as_u16() < 300 {
            r.headers.push("Contact", &call.a.dialog.local_contact);
        }
        r
    }

    /// Sends BYE on `side` of an answered call.
    pub(crate) fn bye(&mut self, call: &mut Call, side: Side, reason: Option<&str>) {
        let branch = self.tokens.branch();
        let sent_by = self.config.sip_addr;
        let Some(d) = call.dialog_mut(side) else {
            return;
        };
        let mut req = d.request(Method::Bye, sent_by, &branch);
        let dest = d.peer;
        if let Some(r) = reason {
            req.headers.push("Reason", r);
        }
        self.send_request(call, req, dest);
    }

    /// Sends BYE on fork `i`'s dialog (a 2xx that lost the race).
    pub(crate) fn bye_fork(&mut self, call: &mut Call, i: usize, reason: Option<&str>) {
        let branch = self.tokens.branch();
        let d = &mut call.forks[i].dialog;
        let mut req = d.request(Method::Bye, self.config.sip_addr, &branch);
        let dest = d.peer;
        if let Some(r) = reason {
            req.headers.push("Reason", r);
        }
        self.send_request(call, req, dest);
    }

    /// Ends a call: media closed, record queued, lingering for stragglers.
    pub(crate) fn end(
        &mut self,
        call: &mut Call,
        now: Instant,
        disposition: Disposition,
        cause: &str,
        by: HangupBy,
    ) {
        if call.phase == CallPhase::Ended {
            return;
        }
        call.phase = CallPhase::Ended;
        call.no_answer_at = None;
        call.group = None;
        call.retransmits.clear();
        call.linger_until = Some(now + self.config.linger);
        call.media.close(&mut self.media_out);
        tracing::info!(
            call = call.id,
            tenant = %call.tenant,
            extension = %call.caller,
            disposition = disposition.as_str(),
            cause,
            "call ended"
        );
        self.records.push_back(CallRecord {
            call: call.id,
            tenant: call.tenant,
            call_id: call
                .cdr_call_id
                .clone()
                .unwrap_or_else(|| call.a.dialog.call_id.clone()),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            dialled: call.dialled.clone(),
            direction: call.direction,
            trunk: call.trunk,
            started: call.started,
            answered: call.answered,
            ended: now,
            disposition,
            hangup_cause: cause.to_owned(),
            hangup_by: by,
            counted_outside: call.outside_counted,
            transferred: call.transferred.clone(),
        });
    }
}
