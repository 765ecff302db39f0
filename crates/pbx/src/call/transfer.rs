//! Blind transfer (REFER, RFC 3515) in the B2BUA.
//!
//! Either party of a connected call may send REFER with `Refer-To` an
//! extension. Switchboard answers 202, reports progress to the transferor
//! with NOTIFY `message/sipfrag` (100 Trying, then the final status), and
//! rings the target's contacts with the transferee's identity and media
//! description. When the target answers, the transferor's leg gets BYE, the
//! transferee a re-INVITE with the target's identity (P-Asserted-Identity)
//! and description, and the relay's transferor side now carries the
//! target. If the target is busy, unknown or does not answer, the NOTIFY
//! says so and the call between the transferor and transferee stays as it
//! was (the transferor takes it off hold).
//!
//! Internally the transferor is always on side B: a transfer by the caller
//! first swaps the call's sides ([`CallEngine::swap_sides`]), dialogs,
//! media description and relay sockets included.

use std::time::Instant;

use media::Side;
use sip::transaction::TxKey;
use sip::{Method, Request, Response, StatusCode};

use super::dialog::Dialog;
use super::engine::{Call, CallEngine, LegRef, idx, status};
use super::media::{MediaCommand, parse_sdp};
use super::setup::COMPLETED_ELSEWHERE;
use super::state::ForkState;
use super::{CallPhase, Destination, SipOutput};

/// A transfer in progress.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The transferor's fork (its dialog gets the NOTIFYs, then BYE).
    pub transferor: usize,
    /// Forks from this index on ring the target.
    pub first_fork: usize,
    /// The target's number, and who transferred (for the record).
    pub target: String,
    pub by: String,
    /// The callee before the transfer (restored if it fails).
    pub previous_callee: String,
    /// The target's no-answer deadline.
    pub deadline: Option<Instant>,
    /// The transferor hung up meanwhile: nobody to tell, nobody to recall.
    pub transferor_gone: bool,
}

/// The user part of a `Refer-To` header value, and whether it asks for an
/// attended transfer (`?Replaces=`).
fn refer_target(value: &str) -> Option<(String, bool)> {
    let na = sip::NameAddr::parse(value, "Refer-To").ok()?;
    let attended = replaces_of(value).is_some();
    let user = na.uri.user_unescaped()?;
    Some((String::from_utf8_lossy(&user).into_owned(), attended))
}

/// Dialled before an extension number, picks up the call ringing there
/// (directed pickup, as on FreePBX and Asterisk).
pub(crate) const PICKUP_PREFIX: &str = "**";

/// A dialog named by a Replaces value (RFC 3891): Call-ID and two tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
}

impl Replaces {
    /// Parses `call-id;to-tag=X;from-tag=Y` (parameters in any order).
    pub fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.split(';');
        let call_id = parts.next()?.trim().to_owned();
        let (mut to_tag, mut from_tag) = (None, None);
        for p in parts {
            match p.trim().split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("to-tag") => {
                    to_tag = Some(v.trim().to_owned());
                }
                Some((k, v)) if k.trim().eq_ignore_ascii_case("from-tag") => {
                    from_tag = Some(v.trim().to_owned());
                }
                _ => {}
            }
        }
        (!call_id.is_empty()).then_some(Replaces {
            call_id,
            to_tag: to_tag?,
            from_tag: from_tag?,
        })
    }
}

/// The Replaces of a `Refer-To` value (`<sip:x@y?Replaces=...>`, escaped).
fn replaces_of(refer_to: &str) -> Option<Replaces> {
    let na = sip::NameAddr::parse(refer_to, "Refer-To").ok()?;
    let headers = na.uri.headers()?;
    headers.split('&').find_map(|h| {
        let (k, v) = h.split_once('=')?;
        if !k.eq_ignore_ascii_case("replaces") {
            return None;
        }
        let v = String::from_utf8_lossy(&sip::unescape(v)).into_owned();
        Replaces::parse(&v)
    })
}

impl CallEngine {
    /// What the driver must prepare before handing an in-dialog REFER over:
    /// the call's tenant, the transferor's extension (it chooses the caller
    /// ID of an outside target) and the dialled target. `None` when there
    /// is nothing to prepare: no such dialog, a REFER from outside the
    /// leg's flow, or one on a trunk's leg (all refused by the engine).
    pub fn refer_context(
        &self,
        request: &Request,
        source: sip::transaction::Target,
    ) -> Option<(store::TenantId, Option<String>, String)> {
        let (id, leg) = self.locate(request)?;
        if !self.request_from_leg(id, leg, source) {
            return None;
        }
        let call = self.calls.get(&id)?;
        let dialog = match leg {
            LegRef::A => &call.a.dialog,
            LegRef::Fork(i) => &call.forks.get(i)?.dialog,
        };
        if dialog.trunk.is_some() {
            return None;
        }
        let (target, _) = refer_target(request.headers.get("Refer-To")?)?;
        let by = match leg {
            LegRef::A => call.calling_extension().map(str::to_owned),
            LegRef::Fork(_) => Some(call.callee.clone()),
        };
        Some((call.tenant, by, target))
    }

    pub(crate) fn on_refer(
        &mut self,
        call: &mut Call,
        side: Side,
        key: TxKey,
        req: Request,
        now: Instant,
    ) {
        if call.dialog(side).is_some_and(|d| d.trunk.is_some()) {
            // Only the business's own phones transfer: a PSTN party (or a
            // carrier) must not move an employee's call elsewhere.
            tracing::warn!(call = call.id, "REFER from a trunk leg refused");
            let mut r = req.response(StatusCode::FORBIDDEN);
            r.reason = "Forbidden (only the business's extensions may transfer)".to_owned();
            self.respond(&key, r);
            return;
        }
        if call.phase != CallPhase::Connected || call.transfer.is_some() {
            self.respond(&key, req.response(status(491)));
            return;
        }
        let Some((target, attended)) = req.headers.get("Refer-To").and_then(refer_target) else {
            let mut r = req.response(StatusCode::BAD_REQUEST);
            r.reason = "Bad Request (Refer-To names no number)".to_owned();
            self.respond(&key, r);
            return;
        };
        if attended {
            let replaces = req.headers.get("Refer-To").and_then(replaces_of);
            return self.attended_transfer(call, side, key, &req, replaces, now);
        }
        self.respond(&key, req.response(status(202)));
        // Who is transferred, as the target will see them.
        let (transferee_name, transferee_number) = match side {
            Side::B => (call.caller_name.clone(), call.caller.clone()),
            Side::A => (call.callee.clone(), call.callee.clone()),
        };
        let by = match side {
            Side::A => call.caller.clone(),
            Side::B => call.callee.clone(),
        };
        if side == Side::A {
            self.swap_sides(call);
        }
        let Some(transferor) = call.winner else {
            return;
        };
        self.notify(call, transferor, "100 Trying", false);
        let caller = Some(by.as_str()).filter(|_| side == Side::B || call.from_extension);
        let profile = match self.dial_plan.resolve(call.tenant, caller, &target) {
            Destination::Extension(p) => p,
            Destination::Refused { status: s, .. } => {
                return self.notify(call, transferor, &sipfrag_status(s), true);
            }
            Destination::Outside(o) => {
                return self.transfer_outside(call, transferor, by, o, now);
            }
            Destination::RingGroup(plan) => {
                let presented = (transferee_name, transferee_number);
                return self.transfer_to_group(call, transferor, by, plan, presented, now);
            }
            Destination::Unknown => {
                return self.notify(call, transferor, "404 Not Found", true);
            }
        };
        if profile.dnd {
            return self.notify(call, transferor, "486 Busy Here", true);
        }
        let contacts = self.locator.contacts(call.tenant, &profile);
        if contacts.is_empty() {
            return self.notify(call, transferor, "480 Temporarily Unavailable", true);
        }
        // The target gets what the transferee accepts, on the relay's B side.
        let Some(offer) = self.transfer_offer(call) else {
            return self.notify(call, transferor, "488 Not Acceptable Here", true);
        };
        tracing::info!(call = call.id, by = %by, to = %profile.number, "blind transfer");
        call.offer_b = offer;
        call.route.diversions.clear();
        call.round += 1;
        call.transfer = Some(Transfer {
            transferor,
            first_fork: call.forks.len(),
            target: profile.number.to_string(),
            by,
            previous_callee: std::mem::replace(&mut call.callee, profile.number.to_string()),
            deadline: Some(now + profile.no_answer_timeout),
            transferor_gone: false,
        });
        // The target sees the transferee calling.
        call.presented = Some((transferee_name.clone(), transferee_number));
        for contact in contacts {
            self.start_fork_as(call, contact, &transferee_name, profile.number.as_str());
        }
    }

    /// The call (and the leg in it) a Replaces names, from our side: its
    /// to-tag is ours, its from-tag the phone's (either order accepted).
    pub(crate) fn find_replaced(&self, r: &Replaces) -> Option<(u64, LegRef)> {
        for (ours, theirs) in [(&r.to_tag, &r.from_tag), (&r.from_tag, &r.to_tag)] {
            let Some(&(id, leg)) = self.dialogs.get(ours.as_str()) else {
                continue;
            };
            let call = self.calls.get(&id)?;
            let d = match leg {
                LegRef::A => &call.a.dialog,
                LegRef::Fork(i) => &call.forks.get(i)?.dialog,
            };
            if d.call_id == r.call_id && d.remote_tag.as_deref() == Some(theirs.as_str()) {
                return Some((id, leg));
            }
        }
        None
    }

    /// REFER with Replaces: the transferor (on this call, `side`) joins the
    /// other party of this call with the other party of its consultation
    /// call (the dialog Replaces names) and leaves both.
    fn attended_transfer(
        &mut self,
        call: &mut Call,
        side: Side,
        key: TxKey,
        req: &Request,
        replaces: Option<Replaces>,
        now: Instant,
    ) {
        let found = replaces.as_ref().and_then(|r| self.find_replaced(r));
        let Some((id2, leg2)) = found.filter(|(id2, _)| *id2 != call.id) else {
            let mut r = req.response(StatusCode::NOT_FOUND);
            r.reason = "Not Found (no such consultation call)".to_owned();
            return self.respond(&key, r);
        };
        let Some(mut consult) = self.calls.remove(&id2) else {
            return self.respond(&key, req.response(status(481)));
        };
        // Semi-attended: the transferor's consultation call still rings.
        let ringing = consult.phase == CallPhase::Ringing
            && leg2 == LegRef::A
            && !consult.a.finalized
            && call.transfer.is_none();
        let usable = consult.tenant == call.tenant
            && (ringing
                || consult.phase == CallPhase::Connected
                    && (leg2 == LegRef::A || consult.winner == leg_fork(leg2)));
        if !usable {
            self.insert_call(consult);
            let mut r = req.response(status(403));
            r.reason = "Forbidden (no consultation call to join)".to_owned();
            return self.respond(&key, r);
        }
        self.respond(&key, req.response(status(202)));
        let by = match side {
            Side::A => call.caller.clone(),
            Side::B => call.callee.clone(),
        };
        if side == Side::A {
            self.swap_sides(call);
        }
        if ringing {
            // Joined when the target answers (or the transferor hears why not).
            let Some(transferor) = call.winner else {
                self.insert_call(consult);
                return;
            };
            self.notify(call, transferor, "100 Trying", false);
            consult.join_into = Some((call.id, transferor, by.clone()));
            tracing::info!(call = call.id, by = %by, to = %consult.callee, "semi-attended transfer");
            self.insert_call(consult);
            return;
        }
        // In the consultation call, the transferor on side A, the target on B.
        let target_number = if leg2 == LegRef::A {
            consult.callee.clone()
        } else {
            let n = consult.caller.clone();
            self.swap_sides(&mut consult);
            n
        };
        let (Some(transferor), Some(w2)) = (call.winner, consult.winner) else {
            self.insert_call(consult);
            return;
        };
        self.notify(call, transferor, "100 Trying", false);
        let target_sdp = consult.media.declared(Side::B).cloned();
        self.join_target(
            call,
            transferor,
            &by,
            &mut consult,
            w2,
            &target_number,
            target_sdp,
            now,
        );
        self.bye(&mut consult, Side::A, None);
        consult.transferred = Some((by.clone(), call.caller.clone()));
        self.end(
            &mut consult,
            now,
            store::Disposition::Answered,
            "attended transfer",
            store::HangupBy::Caller,
        );
        self.insert_call(consult);
    }

    /// The consultation call's answering leg `w2` moves into `call` as its
    /// B side; the transferor leaves `call`; both remaining parties are
    /// re-INVITEd with each other's identity and description.
    #[allow(clippy::too_many_arguments)]
    fn join_target(
        &mut self,
        call: &mut Call,
        transferor: usize,
        by: &str,
        consult: &mut Call,
        w2: usize,
        target_number: &str,
        target_sdp: Option<media::Sdp>,
        now: Instant,
    ) {
        let _ = now;
        // The target's leg moves into this call as its B side.
        let mut fork = consult.forks[w2].clone();
        fork.round = call.round;
        consult.forks[w2].state = ForkState::Done;
        consult.winner = None;
        let tag = fork.dialog.local_tag.clone();
        consult.tags.retain(|t| *t != tag);
        let i = call.forks.len();
        call.media.set_signal(Side::B, fork.dialog.peer.addr.ip());
        call.forks.push(fork);
        self.add_dialog(call, tag, LegRef::Fork(i));
        // The transferor leaves both calls.
        self.notify(call, transferor, "200 OK", true);
        self.bye_fork(call, transferor, None);
        call.forks[transferor].state = ForkState::Done;
        call.winner = Some(i);
        call.transferred = Some((by.to_owned(), target_number.to_owned()));
        call.callee = target_number.to_owned();
        if call.held[idx(Side::B)] {
            call.held[idx(Side::B)] = false;
            self.media_out.push_back(MediaCommand::Music {
                call: call.id,
                to: Side::A,
                on: false,
            });
        }
        tracing::info!(call = call.id, by = %by, to = %target_number, "attended transfer");
        // Both remaining parties learn who they talk to, and the media path:
        // the target now sends to this call's relay.
        let host = self.config.sip_addr.ip();
        let a_identity = format!(
            "\"{}\" <sip:{}@{host}>",
            super::setup::quote_display(&call.caller_name),
            call.caller
        );
        let a_sdp = call.media.declared(Side::A).cloned();
        if let Some(body) = a_sdp.and_then(|s| call.media.sdp_for(Side::B, &s).ok()) {
            self.reinvite(call, Side::B, body, Some(&a_identity));
        }
        if let Some(body) = target_sdp.and_then(|s| call.media.sdp_for(Side::A, &s).ok()) {
            let identity = format!("<sip:{target_number}@{host}>");
            self.reinvite(call, Side::A, body, Some(&identity));
        }
    }

    /// The ringing consultation call `consult` was answered on fork `i`
    /// (already ACKed) and is to be joined into the call waiting for it:
    /// the transferor's INVITE ends with 487, the target moves over.
    /// Returns false when that call is gone (answer normally then).
    pub(crate) fn join_on_answer(
        &mut self,
        consult: &mut Call,
        i: usize,
        answer: &media::Sdp,
        now: Instant,
    ) -> bool {
        let Some((id1, transferor, by)) = consult.join_into.take() else {
            return false;
        };
        let Some(mut call) = self.calls.remove(&id1) else {
            return false;
        };
        if call.phase != CallPhase::Connected || call.winner != Some(transferor) {
            self.insert_call(call);
            return false;
        }
        if !consult.a.finalized {
            let r = self.a_response(consult, status(487));
            let key = consult.a.key.clone();
            self.respond(&key, r);
            consult.a.finalized = true;
        }
        for j in 0..consult.forks.len() {
            if j != i {
                self.cancel_fork(consult, j, Some(COMPLETED_ELSEWHERE));
            }
        }
        let target = consult.forks[i].extension.clone();
        consult.winner = Some(i);
        self.join_target(
            &mut call,
            transferor,
            &by,
            consult,
            i,
            &target,
            Some(answer.clone()),
            now,
        );
        consult.transferred = Some((by, call.caller.clone()));
        self.insert_call(call);
        self.end(
            consult,
            now,
            store::Disposition::Answered,
            "attended transfer",
            store::HangupBy::Caller,
        );
        true
    }

    /// The ringing consultation call failed: the call waiting to be joined
    /// hears why (NOTIFY) and stays with the transferor.
    pub(crate) fn join_failed(&mut self, consult: &mut Call, code: u16) {
        let Some((id1, transferor, _)) = consult.join_into.take() else {
            return;
        };
        let Some(mut call) = self.calls.remove(&id1) else {
            return;
        };
        self.notify(&mut call, transferor, &sipfrag_status(code), true);
        self.insert_call(call);
    }

    /// The target's offer: what the transferee accepts, on side B.
    fn transfer_offer(&mut self, call: &mut Call) -> Option<Vec<u8>> {
        call.media
            .declared(Side::A)
            .cloned()
            .and_then(|sdp| call.media.sdp_for(Side::B, &sdp).ok())
    }

    /// A blind transfer to a ring group: its members ring by its strategy
    /// with the transferee's identity; nobody answering fails the transfer
    /// (the group's fallback is for calls, not transfers).
    fn transfer_to_group(
        &mut self,
        call: &mut Call,
        transferor: usize,
        by: String,
        plan: super::RingGroupPlan,
        presented: (String, String),
        now: Instant,
    ) {
        let Some(offer) = self.transfer_offer(call) else {
            return self.notify(call, transferor, "488 Not Acceptable Here", true);
        };
        tracing::info!(call = call.id, by = %by, to = %plan.number, "blind transfer to a group");
        call.offer_b = offer;
        call.route.diversions.clear();
        call.presented = Some(presented);
        call.transfer = Some(Transfer {
            transferor,
            first_fork: call.forks.len(),
            target: plan.number.to_string(),
            by,
            previous_callee: call.callee.clone(),
            deadline: None,
            transferor_gone: false,
        });
        let before = call.no_answer_at;
        self.ring_group(call, plan, now);
        // The group's ring time bounds the transfer, not the call.
        let ring_time = std::mem::replace(&mut call.no_answer_at, before);
        if let Some(t) = call.transfer.as_mut() {
            t.deadline = ring_time;
        }
    }

    /// A blind transfer to an outside number: through the trunks in order,
    /// failing over like any outside call; the call counts as an outside
    /// call from then on.
    fn transfer_outside(
        &mut self,
        call: &mut Call,
        transferor: usize,
        by: String,
        outside: super::OutsideCall,
        now: Instant,
    ) {
        let mut routes: std::collections::VecDeque<_> = outside.routes.into();
        let emergency = outside.emergency;
        let Some(first) = routes
            .pop_front()
            .and_then(|f| self.pick_trunk(f, &mut routes, emergency, now))
        else {
            return self.notify(call, transferor, "503 Service Unavailable", true);
        };
        let Some(offer) = self.transfer_offer(call) else {
            return self.notify(call, transferor, "488 Not Acceptable Here", true);
        };
        tracing::info!(call = call.id, by = %by, to = %outside.number, "blind transfer out");
        call.offer_b = offer;
        call.route.diversions.clear();
        call.round += 1;
        call.routes = routes;
        call.direction = if outside.emergency {
            store::Direction::Emergency
        } else {
            store::Direction::Outbound
        };
        if !outside.emergency && !call.outside_counted {
            call.outside_counted = true;
            self.outside_started.push_back(call.tenant);
        }
        call.transfer = Some(Transfer {
            transferor,
            first_fork: call.forks.len(),
            target: outside.number.clone(),
            by,
            previous_callee: std::mem::replace(&mut call.callee, outside.number),
            deadline: (!outside.emergency).then(|| now + self.config.outside_ring_timeout),
            transferor_gone: false,
        });
        call.trunk = Some(first.trunk);
        self.launch_trunk_leg(call, first, now);
    }

    /// A transfer target's leg failed with `code`: the next trunk if the
    /// trunk is at fault, else (nothing left ringing) the transfer fails.
    pub(crate) fn transfer_leg_failed(
        &mut self,
        call: &mut Call,
        i: usize,
        frag: &str,
        now: Instant,
    ) {
        let code: u16 = frag.get(..3).and_then(|c| c.parse().ok()).unwrap_or(500);
        if call.forks[i].member.is_some() && call.group.is_some() {
            // A ring group's member: the group decides what follows.
            return self.member_failed(call, i, code, now);
        }
        if call.forks[i].trunk.is_some() && super::trunk::is_failover(code) {
            if let Some(next) = call.routes.pop_front() {
                call.trunk = Some(next.trunk);
                self.launch_trunk_leg(call, next, now);
                return;
            }
        }
        let Some(first) = call.transfer.as_ref().map(|t| t.first_fork) else {
            return;
        };
        let live = call.forks[first..]
            .iter()
            .any(|f| matches!(f.state, ForkState::Calling | ForkState::Proceeding));
        if !live {
            self.transfer_failed(call, frag, now);
        }
    }

    /// A response on a fork ringing a transfer target. Returns false when
    /// fork `i` is not one of those.
    pub(crate) fn transfer_fork_response(
        &mut self,
        call: &mut Call,
        i: usize,
        response: Option<&Response>,
        now: Instant,
    ) -> bool {
        let Some(t) = &call.transfer else {
            return false;
        };
        if i < t.first_fork {
            return false;
        }
        let code = response.map_or(408, |r| r.status.as_u16());
        if (200..300).contains(&code) {
            let Some(resp) = response else { return true };
            self.transfer_answered(call, i, resp, now);
        } else if code >= 300 {
            if matches!(code, 401 | 407) {
                if let Some(resp) = response {
                    if self.answer_trunk_challenge(call, i, resp) {
                        return true;
                    }
                }
            }
            let fork = &mut call.forks[i];
            if fork.state == ForkState::Done {
                return true;
            }
            fork.state = ForkState::Done;
            let reason = response.map_or("Request Timeout", |r| r.reason.as_str());
            self.transfer_leg_failed(call, i, &format!("{code} {reason}"), now);
        }
        true
    }

    fn transfer_answered(&mut self, call: &mut Call, i: usize, resp: &Response, now: Instant) {
        if call.group.is_some() {
            self.group_answered(call, i);
            call.group = None;
        }
        call.presented = None;
        let Some(t) = call.transfer.take() else {
            return;
        };
        let sent_by = self.config.sip_addr;
        let fork = &mut call.forks[i];
        fork.dialog.learn_from_response(resp);
        fork.state = ForkState::Answered;
        let seq = fork.invite.cseq().ok().flatten().map_or(1, |c| c.seq);
        let branch = self.tokens.branch();
        let ack = fork.dialog.ack(seq, sent_by, &branch);
        fork.ack = Some(ack.clone());
        let dest = fork.dialog.peer;
        self.sip_out
            .push_back(SipOutput::Ack { request: ack, dest });
        let Some(answer) = parse_sdp(&resp.body, resp.content_type().ok().flatten()) else {
            self.bye_fork(call, i, None);
            call.forks[i].state = ForkState::Done;
            call.callee = t.previous_callee.clone();
            call.transfer = Some(t);
            self.transfer_failed(call, "488 Not Acceptable Here", now);
            return;
        };
        for j in t.first_fork..call.forks.len() {
            if j != i {
                self.cancel_fork(call, j, Some(COMPLETED_ELSEWHERE));
            }
        }
        // The transferor is done: told, then released.
        if !t.transferor_gone {
            self.notify(call, t.transferor, "200 OK", true);
            self.bye_fork(call, t.transferor, None);
        }
        call.forks[t.transferor].state = ForkState::Done;
        call.winner = Some(i);
        // Who answered: the target, or the ring group member who picked up.
        let answered_by = match call.forks[i].extension.as_str() {
            "" => t.target.clone(),
            e => e.to_owned(),
        };
        call.callee = answered_by.clone();
        call.transferred = Some((t.by.clone(), answered_by.clone()));
        tracing::info!(call = call.id, to = %answered_by, "transfer completed");
        // Music for the transferee stops; the target's media takes side B.
        if call.held[idx(Side::B)] {
            call.held[idx(Side::B)] = false;
            self.media_out.push_back(MediaCommand::Music {
                call: call.id,
                to: Side::A,
                on: false,
            });
        }
        let ip = call.forks[i].dialog.peer.addr.ip();
        call.media.set_signal(Side::B, ip);
        call.media.configure(Side::B, &answer, &mut self.media_out);
        // The transferee learns who it talks to now, and the target's codecs.
        let Ok(body) = call.media.sdp_for(Side::A, &answer) else {
            return;
        };
        let identity = format!("<sip:{answered_by}@{}>", self.config.sip_addr.ip());
        self.reinvite(call, Side::A, body, Some(&identity));
        let _ = now;
    }

    /// The target could not be reached: the transferor hears why; its call
    /// with the transferee goes on.
    pub(crate) fn transfer_failed(&mut self, call: &mut Call, frag: &str, now: Instant) {
        let Some(t) = call.transfer.take() else {
            return;
        };
        call.presented = None;
        call.group = None;
        for j in t.first_fork..call.forks.len() {
            self.cancel_fork(call, j, None);
        }
        call.callee = t.previous_callee;
        tracing::info!(call = call.id, to = %t.target, outcome = frag, "transfer failed");
        if !t.transferor_gone {
            self.notify(call, t.transferor, frag, true);
            return;
        }
        // Nobody to go back to: the transferee's call ends, recorded why.
        self.bye(call, Side::A, None);
        call.transferred = Some((t.by, t.target));
        self.end(
            call,
            now,
            store::Disposition::Answered,
            &format!("transfer failed: {frag}"),
            store::HangupBy::System,
        );
    }

    /// The call ends while its transfer rings: the target's legs are
    /// cancelled. Returns whether the transferor had already hung up.
    pub(crate) fn abandon_transfer(&mut self, call: &mut Call) -> bool {
        let Some(t) = call.transfer.take() else {
            return false;
        };
        for j in t.first_fork..call.forks.len() {
            self.cancel_fork(call, j, None);
        }
        call.group = None;
        call.presented = None;
        t.transferor_gone
    }

    /// The target's no-answer timer.
    pub(crate) fn transfer_timeouts(&mut self, call: &mut Call, now: Instant) {
        if call
            .transfer
            .as_ref()
            .and_then(|t| t.deadline)
            .is_some_and(|d| d <= now)
        {
            self.transfer_failed(call, "480 Temporarily Unavailable", now);
        }
    }

    /// NOTIFY with a sipfrag status line on fork `fork`'s dialog.
    fn notify(&mut self, call: &mut Call, fork: usize, frag: &str, last: bool) {
        let branch = self.tokens.branch();
        let sent_by = self.config.sip_addr;
        let Some(d) = call.forks.get_mut(fork).map(|f| &mut f.dialog) else {
            return;
        };
        let mut req = d.request(Method::Notify, sent_by, &branch);
        let dest = d.peer;
        req.headers.push("Event", "refer");
        req.headers.push(
            "Subscription-State",
            if last {
                "terminated;reason=noresource"
            } else {
                "active;expires=60"
            },
        );
        req.headers
            .push("Content-Type", "message/sipfrag;version=2.0");
        req.body = format!("SIP/2.0 {frag}\r\n").into_bytes();
        self.send_request(call, req, dest);
    }

    /// A re-INVITE of our own on `side` (new description, new identity).
    pub(crate) fn reinvite(
        &mut self,
        call: &mut Call,
        side: Side,
        body: Vec<u8>,
        identity: Option<&str>,
    ) {
        if call.uac_invite[idx(side)].is_some() {
            return;
        }
        let branch = self.tokens.branch();
        let sent_by = self.config.sip_addr;
        let Some(d) = call.dialog_mut(side) else {
            return;
        };
        let mut req = d.request(Method::Invite, sent_by, &branch);
        let dest = d.peer;
        if let Some(id) = identity {
            req.headers.push("P-Asserted-Identity", id);
        }
        req.headers.push("Content-Type", "application/sdp");
        req.body = body;
        call.uac_invite[idx(side)] = Some(branch.clone());
        call.own_reinvites.insert(branch, side);
        self.send_request(call, req, dest);
    }

    /// The answer to a re-INVITE of our own: ACK it and take the new
    /// description. Returns false when `branch` is not one of ours.
    pub(crate) fn own_reinvite_response(
        &mut self,
        call: &mut Call,
        branch: &str,
        response: Option<&Response>,
    ) -> bool {
        let Some(side) = call.own_reinvites.remove(branch) else {
            return false;
        };
        call.uac_invite[idx(side)] = None;
        if let Some(resp) = response.filter(|r| r.status.is_success()) {
            self.ack_relayed(call, side, resp);
            if let Some(sdp) = parse_sdp(&resp.body, resp.content_type().ok().flatten()) {
                call.media.configure(side, &sdp, &mut self.media_out);
            }
        }
        true
    }

    /// Exchanges the call's sides: the caller's dialog becomes side B and
    /// the answering leg's side A, media description and relay included.
    pub(crate) fn swap_sides(&mut self, call: &mut Call) {
        let Some(w) = call.winner else {
            return;
        };
        if call.cdr_call_id.is_none() {
            call.cdr_call_id = Some(call.a.dialog.call_id.clone());
        }
        std::mem::swap(&mut call.a.dialog, &mut call.forks[w].dialog);
        self.dialogs
            .insert(call.a.dialog.local_tag.clone(), (call.id, LegRef::A));
        self.dialogs.insert(
            call.forks[w].dialog.local_tag.clone(),
            (call.id, LegRef::Fork(w)),
        );
        call.held.swap(0, 1);
        call.held_at.swap(0, 1);
        call.uas_invite.swap(0, 1);
        call.uac_invite.swap(0, 1);
        call.last_ack.swap(0, 1);
        for r in &mut call.retransmits {
            r.side = r.side.other();
        }
        for r in call.relays.values_mut() {
            r.from = r.from.other();
        }
        for s in call.own_reinvites.values_mut() {
            *s = s.other();
        }
        call.media.swap_sides(&mut self.media_out);
    }
}

fn leg_fork(leg: LegRef) -> Option<usize> {
    match leg {
        LegRef::Fork(i) => Some(i),
        LegRef::A => None,
    }
}

impl CallEngine {
    /// A dialog-creating INVITE with Replaces (RFC 3891) from a phone of
    /// the same tenant: directed pickup of a ringing leg (the caller is
    /// answered by the new phone, the ringing ones are cancelled), or the
    /// new phone taking over a connected leg (the old one gets BYE, the
    /// other party a re-INVITE with the new identity). Anything else: 481.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_replaces(
        &mut self,
        key: TxKey,
        request: Request,
        source: sip::transaction::Target,
        origin: super::setup::Origin,
        replaces: Replaces,
        offer: media::Sdp,
        now: Instant,
    ) {
        if origin.direction != store::Direction::Internal {
            // Only a phone of the business may take a call over (RFC 3891
            // leaves authorisation to us): never a trunk or its callers.
            tracing::warn!(tenant = %origin.tenant, "INVITE with Replaces from a trunk refused");
            let mut r = request.response_tagged(StatusCode::FORBIDDEN);
            r.reason =
                "Forbidden (Replaces is only accepted from the business's extensions)".to_owned();
            return self.respond(&key, r);
        }
        let found = self.find_replaced(&replaces);
        let Some((id, leg)) = found else {
            return self.respond(&key, request.response_tagged(status(481)));
        };
        let Some(mut call) = self.calls.remove(&id) else {
            return self.respond(&key, request.response_tagged(status(481)));
        };
        if call.tenant != origin.tenant {
            // Another business's dialog: as if it did not exist.
            self.insert_call(call);
            return self.respond(&key, request.response_tagged(status(481)));
        }
        match (call.phase, leg) {
            (CallPhase::Ringing, LegRef::Fork(_)) if !call.a.finalized => {
                self.pickup(&mut call, key, &request, source, &origin, &offer, now);
            }
            (CallPhase::Connected, leg) => {
                let side = if leg == LegRef::A { Side::A } else { Side::B };
                if side == Side::B && call.winner != leg_fork(leg) {
                    self.respond(&key, request.response_tagged(status(481)));
                } else {
                    self.take_over(&mut call, side, key, &request, source, &origin, &offer, now);
                }
            }
            _ => self.respond(&key, request.response_tagged(status(481))),
        }
        self.insert_call(call);
    }

    /// `**<extension>`: picks up the call ringing at that extension of the
    /// caller's business (the oldest, if several), as a Replaces naming its
    /// leg would. Nothing ringing there: 404.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pickup_by_code(
        &mut self,
        key: TxKey,
        request: Request,
        source: sip::transaction::Target,
        origin: super::setup::Origin,
        extension: &str,
        offer: media::Sdp,
        now: Instant,
    ) {
        let ringing = |c: &Call| {
            c.tenant == origin.tenant
                && c.phase == CallPhase::Ringing
                && !c.a.finalized
                && c.winner.is_none()
                && c.forks.iter().any(|f| {
                    f.extension == extension
                        && !f.cancelled
                        && matches!(f.state, ForkState::Calling | ForkState::Proceeding)
                })
        };
        let id = self
            .calls
            .values()
            .filter(|c| ringing(c))
            .min_by_key(|c| c.started)
            .map(|c| c.id);
        let Some(mut call) = id.and_then(|id| self.calls.remove(&id)) else {
            let mut r = request.response_tagged(StatusCode::NOT_FOUND);
            r.reason = format!("Not Found (no call ringing at {extension})");
            return self.respond(&key, r);
        };
        self.pickup(&mut call, key, &request, source, &origin, &offer, now);
        self.insert_call(call);
    }

    /// The new phone's INVITE as the call's B side (a UAS dialog kept in
    /// a fork slot), answered with `body`.
    #[allow(clippy::too_many_arguments)]
    fn adopt_as_b(
        &mut self,
        call: &mut Call,
        key: &TxKey,
        request: &Request,
        source: sip::transaction::Target,
        extension: &str,
        body: Vec<u8>,
        now: Instant,
    ) -> usize {
        let tag = self.tokens.next();
        let contact = self.contact(source.transport);
        let dialog = Dialog::uas(request, source, tag.clone(), contact);
        call.media.set_signal(Side::B, source.addr.ip());
        let i = call.forks.len();
        call.forks.push(super::state::Fork {
            dialog,
            invite: request.clone(),
            branch: String::new(),
            state: ForkState::Answered,
            cancel_pending: None,
            cancelled: false,
            extension: extension.to_owned(),
            round: call.round,
            ack: None,
            trunk: None,
            member: None,
        });
        self.add_dialog(call, tag.clone(), LegRef::Fork(i));
        let mut ok = request
            .response(StatusCode::OK)
            .with_header("Allow", super::ALLOW)
            .with_body("application/sdp", body);
        ok.set_to_tag(&tag);
        ok.headers
            .push("Contact", &call.forks[i].dialog.local_contact);
        self.respond(key, ok.clone());
        let cseq = request.cseq().ok().flatten().map_or(1, |c| c.seq);
        call.retransmit_2xx(Side::B, key.clone(), ok, cseq, now, false, &self.config);
        i
    }

    /// Directed pickup: `origin`'s phone answers the ringing call.
    #[allow(clippy::too_many_arguments)]
    fn pickup(
        &mut self,
        call: &mut Call,
        key: TxKey,
        request: &Request,
        source: sip::transaction::Target,
        origin: &super::setup::Origin,
        offer: &media::Sdp,
        now: Instant,
    ) {
        // Each side's offer answered with what the other offered.
        let offer_a = call.offer_a.clone();
        let bodies = (
            call.media.answer_with(Side::A, &offer_a, offer),
            call.media.answer_with(Side::B, offer, &offer_a),
        );
        let (Some(body_a), Some(body_b)) = bodies else {
            return self.respond(&key, request.response_tagged(status(488)));
        };
        tracing::info!(call = call.id, by = %origin.caller, "picked up");
        self.cancel_all(call, Some(COMPLETED_ELSEWHERE));
        call.group = None;
        let i = self.adopt_as_b(call, &key, request, source, &origin.caller, body_b, now);
        call.winner = Some(i);
        call.callee = origin.caller.clone();
        call.no_answer_at = None;
        call.media.configure(Side::A, &offer_a, &mut self.media_out);
        call.media.configure(Side::B, offer, &mut self.media_out);
        self.media_out
            .push_back(MediaCommand::Connected { call: call.id });
        let ok = self
            .a_response(call, StatusCode::OK)
            .with_header("Allow", super::ALLOW)
            .with_body("application/sdp", body_a);
        let a_key = call.a.key.clone();
        self.respond(&a_key, ok.clone());
        call.a.finalized = true;
        call.phase = CallPhase::Answering;
        call.answered = Some(now);
        let cseq = call.a.invite.cseq().ok().flatten().map_or(1, |c| c.seq);
        call.retransmit_2xx(Side::A, a_key, ok, cseq, now, true, &self.config);
    }

    /// The new phone takes over `side` of a connected call.
    #[allow(clippy::too_many_arguments)]
    fn take_over(
        &mut self,
        call: &mut Call,
        side: Side,
        key: TxKey,
        request: &Request,
        source: sip::transaction::Target,
        origin: &super::setup::Origin,
        offer: &media::Sdp,
        now: Instant,
    ) {
        if side == Side::A {
            self.swap_sides(call);
        }
        let Some(old) = call.winner else {
            return self.respond(&key, request.response_tagged(status(481)));
        };
        let Some(peer) = call.media.declared(Side::A).cloned() else {
            return self.respond(&key, request.response_tagged(status(488)));
        };
        let Some(body) = call.media.answer_with(Side::B, offer, &peer) else {
            return self.respond(&key, request.response_tagged(status(488)));
        };
        tracing::info!(call = call.id, by = %origin.caller, "leg replaced");
        self.bye_fork(call, old, None);
        call.forks[old].state = ForkState::Done;
        let i = self.adopt_as_b(call, &key, request, source, &origin.caller, body, now);
        call.winner = Some(i);
        call.transferred = Some((call.callee.clone(), origin.caller.clone()));
        call.callee = origin.caller.clone();
        if call.held[idx(Side::B)] {
            call.held[idx(Side::B)] = false;
            self.media_out.push_back(MediaCommand::Music {
                call: call.id,
                to: Side::A,
                on: false,
            });
        }
        call.media.configure(Side::B, offer, &mut self.media_out);
        // The remaining party learns who it talks to, and the new media.
        if let Ok(body) = call.media.sdp_for(Side::A, offer) {
            let identity = format!(
                "\"{}\" <sip:{}@{}>",
                super::setup::quote_display(&origin.name),
                origin.caller,
                self.config.sip_addr.ip()
            );
            self.reinvite(call, Side::A, body, Some(&identity));
        }
    }
}

/// A status line for a sipfrag body.
fn sipfrag_status(code: u16) -> String {
    let reason = match code {
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        487 => "Request Terminated",
        603 => "Decline",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        503 => "Service Unavailable",
        _ => "Failed",
    };
    format!("{code} {reason}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_targets() {
        assert_eq!(
            refer_target("<sip:1003@acme.example>"),
            Some(("1003".to_owned(), false))
        );
        assert_eq!(
            refer_target("\"Carol\" <sip:1003@acme.example;transport=udp>"),
            Some(("1003".to_owned(), false))
        );
        let (user, attended) =
            refer_target("<sip:1003@acme.example?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>")
                .unwrap();
        assert_eq!(user, "1003");
        assert!(attended);
        assert_eq!(refer_target("garbage <"), None);
        assert_eq!(
            replaces_of("<sip:1003@h?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>"),
            Some(Replaces {
                call_id: "abc@host".into(),
                to_tag: "1".into(),
                from_tag: "2".into()
            })
        );
        assert_eq!(Replaces::parse("abc;to-tag=1"), None);
    }
}
