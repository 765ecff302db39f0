//! What happens to a call that is not (yet) answered: forwarding (RFC 5806
//! Diversion), busy and no-answer handling, cancellation by the caller,
//! and the final response the caller hears.

use std::time::Instant;

use media::Side;
use store::{Disposition, ForwardTarget, HangupBy};

use super::engine::{Call, CallEngine, ForkState, status};
use super::media::MediaError;
use super::select::best_response;
use super::{CallPhase, Destination, ExtensionProfile};

/// Why a call is being diverted (RFC 5806 `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Divert {
    Unconditional,
    Busy,
    NoAnswer,
}

impl Divert {
    fn reason(self) -> &'static str {
        match self {
            Divert::Unconditional => "unconditional",
            Divert::Busy => "user-busy",
            Divert::NoAnswer => "no-answer",
        }
    }
}

impl CallEngine {
    /// Rings `profile`'s contacts (after following its forward-always).
    pub(crate) fn ring(&mut self, call: &mut Call, profile: ExtensionProfile, now: Instant) {
        call.callee = profile.number.to_string();
        call.route.visited.push(profile.number.to_string());
        let always = profile.forwarding.always.clone();
        call.route.profile = Some(profile.clone());
        if let Some(target) = always {
            if self.divert(call, &target, Divert::Unconditional, now) {
                return;
            }
        }
        if profile.dnd {
            return self.busy(call, now);
        }
        if !self.extension_has_room(call.tenant, profile.number.as_str(), profile.max_calls) {
            tracing::info!(
                call = call.id,
                extension = %profile.number,
                limit = profile.max_calls,
                "callee at its concurrent call limit: busy"
            );
            return self.busy(call, now);
        }
        let contacts = self.locator.contacts(call.tenant, &profile);
        if contacts.is_empty() {
            if let Some(t) = profile.forwarding.no_answer.clone() {
                if self.divert(call, &t, Divert::NoAnswer, now) {
                    return;
                }
            }
            return self.fail(call, 480, Disposition::NoAnswer, "not registered", now);
        }
        if let Err(e) = self.open_media(call) {
            let code = if matches!(e, MediaError::Exhausted) {
                503
            } else {
                488
            };
            return self.fail(call, code, Disposition::Failed, &e.to_string(), now);
        }
        call.round += 1;
        call.failures.clear();
        for c in contacts {
            self.start_fork(call, c);
        }
        call.no_answer_at = Some(now + profile.no_answer_timeout);
    }

    /// Takes relay ports and anchors the caller's offer for the B-legs.
    pub(crate) fn open_media(&mut self, call: &mut Call) -> Result<(), MediaError> {
        if !call.offer_b.is_empty() {
            return Ok(());
        }
        let emergency = call.direction == store::Direction::Emergency;
        call.media
            .open(&self.ports, &call.offer_a, emergency, &mut self.media_out)?;
        call.offer_b = call.media.sdp_for(Side::B, &call.offer_a)?;
        Ok(())
    }

    /// Follows a forward to `target`; false when the chain is cut (loop,
    /// hop limit, Max-Forwards, outside number, unknown extension).
    fn divert(
        &mut self,
        call: &mut Call,
        target: &ForwardTarget,
        why: Divert,
        now: Instant,
    ) -> bool {
        let (number, internal) = match target {
            ForwardTarget::Extension(ext) => (ext.as_str(), true),
            ForwardTarget::External(e164) => (e164.as_str(), false),
        };
        let from = call
            .route
            .profile
            .as_ref()
            .map_or_else(|| call.dialled.clone(), |p| p.number.to_string());
        self.divert_to(call, number, internal, why, &from, now)
    }

    /// Diverts the call from `from` to `number` (an extension or ring group
    /// of the tenant when `internal`, else an outside number); false when
    /// the chain is cut or the number leads nowhere ringable.
    pub(crate) fn divert_to(
        &mut self,
        call: &mut Call,
        number: &str,
        internal: bool,
        why: Divert,
        from: &str,
        now: Instant,
    ) -> bool {
        let visited = internal && call.route.visited.iter().any(|v| v == number);
        if visited
            || call.route.hops >= self.config.max_forward_hops
            || call.route.max_forwards <= 1
        {
            tracing::debug!(call = call.id, to = number, "forwarding chain cut");
            return false;
        }
        let destination =
            match self
                .dial_plan
                .resolve(call.tenant, call.calling_extension(), number)
            {
                d @ (Destination::Extension(_)
                | Destination::RingGroup(_)
                | Destination::Outside(_)) => d,
                _ => return false,
            };
        call.route.hops += 1;
        call.route.max_forwards -= 1;
        let value = format!(
            "<sip:{}@{}>;reason={};counter=1",
            from,
            self.config.sip_addr.ip(),
            why.reason()
        );
        call.route.diversions.insert(0, value);
        match destination {
            Destination::Extension(profile) => self.ring(call, profile, now),
            Destination::RingGroup(group) => self.ring_group(call, group, now),
            Destination::Outside(outside) => self.route_outside(call, outside, now),
            _ => {}
        }
        true
    }

    /// CANCEL (or BYE on the early dialog) from the caller.
    pub(crate) fn caller_cancelled(&mut self, call: &mut Call, now: Instant) {
        if call.a.finalized || call.phase != CallPhase::Ringing {
            return;
        }
        let r = self.a_response(call, status(487));
        self.respond(&call.a.key.clone(), r);
        call.a.finalized = true;
        self.cancel_all(call, None);
        self.join_failed(call, 487);
        self.end(
            call,
            now,
            Disposition::Cancelled,
            "caller cancelled",
            HangupBy::Caller,
        );
    }

    /// The extension's no-answer timer fired.
    pub(crate) fn no_answer(&mut self, call: &mut Call, now: Instant) {
        if call.phase != CallPhase::Ringing || call.a.finalized {
            return;
        }
        if call.group.is_some() {
            // The group's own ring timeout.
            return self.group_exhausted(call, now);
        }
        self.cancel_all(call, None);
        if let Some(t) = call
            .route
            .profile
            .as_ref()
            .and_then(|p| p.forwarding.no_answer.clone())
        {
            if self.divert(call, &t, Divert::NoAnswer, now) {
                return;
            }
        }
        self.fail(call, 480, Disposition::NoAnswer, "no answer", now);
    }

    pub(crate) fn busy(&mut self, call: &mut Call, now: Instant) {
        if let Some(t) = call
            .route
            .profile
            .as_ref()
            .and_then(|p| p.forwarding.busy.clone())
        {
            if self.divert(call, &t, Divert::Busy, now) {
                return;
            }
        }
        self.fail(call, 486, Disposition::Busy, "busy", now);
    }

    pub(crate) fn check_all_failed(&mut self, call: &mut Call, now: Instant) {
        if call.winner.is_some() || call.a.finalized || call.phase != CallPhase::Ringing {
            return;
        }
        if call.group.is_some() {
            return self.group_check(call, now);
        }
        let live = call.forks.iter().any(|f| {
            f.round == call.round && matches!(f.state, ForkState::Calling | ForkState::Proceeding)
        });
        if !live && !self.fail_over(call, now) {
            self.decide_failure(call, now);
        }
    }

    /// Every B-leg of the round failed (or one said 6xx): busy handling,
    /// forwarding or the best final response.
    pub(crate) fn decide_failure(&mut self, call: &mut Call, now: Instant) {
        let outside = call.direction != store::Direction::Internal;
        if outside && call.failures.iter().all(|&c| super::trunk::is_failover(c)) {
            // The network failed, not the callee.
            return self.fail(call, 503, Disposition::Failed, "all trunks failed", now);
        }
        match best_response(&call.failures).unwrap_or(480) {
            486 | 600 => self.busy(call, now),
            c @ (603 | 604 | 606) => self.fail(call, c, Disposition::Rejected, "declined", now),
            c @ (408 | 480) => self.fail(call, c, Disposition::NoAnswer, "not available", now),
            c => self.fail(call, c, Disposition::Failed, "callee failed", now),
        }
    }

    /// Final failure to the caller, ringing legs cancelled, call ended.
    pub(crate) fn fail(
        &mut self,
        call: &mut Call,
        code: u16,
        disposition: Disposition,
        cause: &str,
        now: Instant,
    ) {
        self.join_failed(call, code);
        if !call.a.finalized {
            let r = self.a_response(call, status(code));
            self.respond(&call.a.key.clone(), r);
            call.a.finalized = true;
        }
        self.cancel_all(call, None);
        let by = match disposition {
            Disposition::Busy | Disposition::Rejected => HangupBy::Callee,
            _ => HangupBy::System,
        };
        self.end(call, now, disposition, &format!("{code} {cause}"), by);
    }
}
