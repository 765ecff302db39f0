//! Ring groups: who rings when, who is skipped, and where an unanswered
//! call goes.
//!
//! A call to a group keeps a [`GroupState`] while it rings. Every member's
//! B-legs are ordinary forks tagged with the member's index
//! ([`super::engine::Fork::member`]), so answering, CANCEL and trunk
//! handling are the engine's usual ones; this module only decides:
//!
//! * **Order** — the members in the directory's order; for round robin
//!   rotated to start after the member who answered last (this engine's
//!   memory first, else the directory's `last_answered_member`). A member
//!   listed twice is rung once.
//! * **Strategy** — *simultaneous*: every member at once, until the group's
//!   ring timeout. *Sequential* and *round robin*: one member at a time for
//!   the member timeout, each member once, the whole hunt capped by the
//!   group's ring timeout.
//! * **Skipping** — a member on DND, already in a call (placing one, or
//!   answered in one) or with no registered contact is not rung and costs no
//!   time; neither is an external member the dial plan refuses (outside-call
//!   limit, no trunk). A member whose every leg fails (busy, decline, error)
//!   ends its turn at once. A member's 6xx is only that member's answer: the
//!   others keep ringing. Members' own forwarding is not followed.
//! * **Answer** — the engine cancels the other legs with
//!   `Reason: SIP;cause=200;text="Call completed elsewhere"`; a round-robin
//!   group reports the member ([`super::RingGroupAnswered`]) for the
//!   directory.
//! * **Nobody answered** (every member done, or the ring timeout) — the
//!   ringing legs are cancelled and the call is diverted to the group's
//!   fallback (Diversion from the group's number, reason `user-busy` when
//!   every member was busy, else `no-answer`), or, without one, answered
//!   486 when every member was busy (or on DND) and 480 otherwise.
//!
//! Members see the caller as "Caller (Group)" in the From display name, and
//! the CDR's callee is the member who answered (the group's number if
//! nobody did).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use store::{Direction, Disposition, ExtensionId, RingGroupId, RingStrategy};

use super::engine::{Call, CallEngine, ForkState};
use super::media::MediaError;
use super::outcome::Divert;
use super::select::best_response;
use super::trunk::is_failover;
use super::{
    CallPhase, Destination, ExtensionProfile, GroupMember, MemberTarget, RingGroupAnswered,
    RingGroupPlan, TrunkRoute,
};

/// Round-robin memories kept at most (one per group; a deleted group's
/// entry is only dropped when the table is full).
const MAX_REMEMBERED: usize = 65_536;

/// Why a member was not rung.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    Dnd,
    /// Already in a call.
    Busy,
    Unregistered,
    /// An external member the dial plan would not or could not route.
    Unreachable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// Not tried (yet).
    Waiting,
    Ringing,
    Skipped(Skip),
    /// Every leg failed: the best of their final statuses.
    Failed(u16),
    /// Its turn ran out (sequential, round robin).
    TimedOut,
}

/// One member during a call.
#[derive(Debug)]
pub(crate) struct MemberRun {
    pub member: GroupMember,
    pub state: MemberState,
    /// Final statuses of its legs so far.
    pub codes: Vec<u16>,
    /// Trunks still to try for an external member.
    pub routes: VecDeque<TrunkRoute>,
}

/// A member's identity across calls (round robin's memory).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MemberKey {
    Extension(ExtensionId),
    External(String),
}

impl MemberTarget {
    fn key(&self) -> MemberKey {
        match self {
            MemberTarget::Extension(p) => MemberKey::Extension(p.id),
            MemberTarget::External(n) => MemberKey::External(n.clone()),
        }
    }

    /// What the CDR and the B-leg's To show for this member.
    fn label(&self) -> String {
        match self {
            MemberTarget::Extension(p) => p.number.to_string(),
            MemberTarget::External(n) => n.clone(),
        }
    }
}

/// A ring group while it rings.
#[derive(Debug)]
pub(crate) struct GroupState {
    pub id: RingGroupId,
    pub number: String,
    pub name: String,
    pub strategy: RingStrategy,
    pub member_timeout: Duration,
    pub fallback: Option<String>,
    pub members: Vec<MemberRun>,
    /// Indices into `members`, in hunt order.
    pub order: Vec<usize>,
    /// The next position in `order` to try (sequential, round robin).
    pub next: usize,
    /// The member whose turn it is (sequential, round robin).
    pub current: Option<usize>,
    /// When the current member's turn ends.
    pub member_deadline: Option<Instant>,
}

/// The order members are tried in: the directory's, rotated for round
/// robin to start after the member who answered last (`remembered`, else
/// the plan's position), each member once.
pub(crate) fn hunt_order(plan: &RingGroupPlan, remembered: Option<&MemberKey>) -> Vec<usize> {
    let n = plan.members.len();
    let mut order: Vec<usize> = (0..n).collect();
    if plan.strategy == RingStrategy::RoundRobin && n > 0 {
        let after_remembered = remembered
            .and_then(|k| plan.members.iter().position(|m| m.target.key() == *k))
            .map(|i| i + 1);
        let after_stored = || {
            plan.last_answered.map(|p| {
                plan.members
                    .iter()
                    .position(|m| m.position > p)
                    .unwrap_or(0)
            })
        };
        let start = after_remembered.or_else(after_stored).unwrap_or(0);
        order.rotate_left(start % n);
    }
    let mut seen = Vec::with_capacity(n);
    order.retain(|&i| {
        let k = plan.members[i].target.key();
        let first = !seen.contains(&k);
        seen.push(k);
        first
    });
    order
}

fn live(state: ForkState, cancelled: bool) -> bool {
    !cancelled && matches!(state, ForkState::Calling | ForkState::Proceeding)
}

impl CallEngine {
    /// Starts ringing a ring group (dialled, a number routed to it, a
    /// forward or another group's fallback).
    pub(crate) fn ring_group(&mut self, call: &mut Call, plan: RingGroupPlan, now: Instant) {
        call.callee = plan.number.to_string();
        call.route.visited.push(plan.number.to_string());
        call.route.profile = None;
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
        let order = hunt_order(&plan, self.last_answered.get(&plan.id));
        tracing::info!(
            call = call.id,
            tenant = %call.tenant,
            group = %plan.number,
            strategy = plan.strategy.as_str(),
            members = order.len(),
            "ringing group"
        );
        let strategy = plan.strategy;
        call.group = Some(GroupState {
            id: plan.id,
            number: plan.number.to_string(),
            name: plan.name,
            strategy,
            member_timeout: plan.member_timeout,
            fallback: plan.fallback,
            members: plan
                .members
                .into_iter()
                .map(|member| MemberRun {
                    member,
                    state: MemberState::Waiting,
                    codes: Vec::new(),
                    routes: VecDeque::new(),
                })
                .collect(),
            order: order.clone(),
            next: 0,
            current: None,
            member_deadline: None,
        });
        call.no_answer_at = Some(now + plan.ring_timeout);
        if strategy == RingStrategy::Simultaneous {
            for m in order {
                self.try_member(call, m, now);
            }
            self.group_check(call, now);
        } else {
            self.hunt_next(call, now);
        }
    }

    /// Rings member `m` if it can be rung; false when it was skipped.
    fn try_member(&mut self, call: &mut Call, m: usize, now: Instant) -> bool {
        let Some(target) = call
            .group
            .as_ref()
            .and_then(|g| g.members.get(m))
            .map(|r| r.member.target.clone())
        else {
            return false;
        };
        let result = match &target {
            MemberTarget::Extension(p) => self.ring_member(call, m, p),
            MemberTarget::External(number) => self.ring_external(call, m, number, now),
        };
        let state = match result {
            Ok(()) => MemberState::Ringing,
            Err(skip) => {
                tracing::debug!(call = call.id, member = %target.label(), ?skip, "group member skipped");
                MemberState::Skipped(skip)
            }
        };
        if let Some(run) = call.group.as_mut().and_then(|g| g.members.get_mut(m)) {
            run.state = state;
        }
        state == MemberState::Ringing
    }

    /// Forks to an extension member's contacts.
    fn ring_member(&mut self, call: &mut Call, m: usize, p: &ExtensionProfile) -> Result<(), Skip> {
        if p.dnd {
            return Err(Skip::Dnd);
        }
        if self.in_call(call, p.number.as_str()) {
            return Err(Skip::Busy);
        }
        let contacts = self.locator.contacts(call.tenant, p);
        if contacts.is_empty() {
            return Err(Skip::Unregistered);
        }
        let group = call.group.as_ref().map_or("", |g| g.name.as_str());
        let display = format!("{} ({group})", call.presented().0);
        for c in contacts {
            let i = self.start_fork_as(call, c, &display, p.number.as_str());
            call.forks[i].extension = p.number.to_string();
            call.forks[i].member = Some(m);
        }
        Ok(())
    }

    /// Rings an external member through the trunks the dial plan gives.
    fn ring_external(
        &mut self,
        call: &mut Call,
        m: usize,
        number: &str,
        now: Instant,
    ) -> Result<(), Skip> {
        let outside = match self
            .dial_plan
            .resolve(call.tenant, call.calling_extension(), number)
        {
            Destination::Outside(o) => o,
            // One of the tenant's own numbers, routed to an extension.
            Destination::Extension(p) => return self.ring_member(call, m, &p),
            other => {
                tracing::debug!(
                    call = call.id,
                    number,
                    ?other,
                    "external member not routable"
                );
                return Err(Skip::Unreachable);
            }
        };
        let mut routes: VecDeque<TrunkRoute> = outside.routes.into();
        let emergency = outside.emergency;
        let Some(first) = routes
            .pop_front()
            .and_then(|f| self.pick_trunk(f, &mut routes, emergency, now))
        else {
            return Err(Skip::Unreachable);
        };
        if !outside.emergency && !call.outside_counted {
            call.outside_counted = true;
            self.outside_started.push_back(call.tenant);
        }
        if let Some(run) = call.group.as_mut().and_then(|g| g.members.get_mut(m)) {
            run.routes = routes;
        }
        self.member_trunk_leg(call, m, first, &outside.number, now);
        Ok(())
    }

    fn member_trunk_leg(
        &mut self,
        call: &mut Call,
        m: usize,
        route: TrunkRoute,
        number: &str,
        now: Instant,
    ) {
        let i = self.launch_trunk_leg(call, route, now);
        call.forks[i].extension = number.to_owned();
        call.forks[i].member = Some(m);
    }

    /// Whether extension `number` of the call's tenant is in a call: placing
    /// one, or answered in one.
    fn in_call(&self, call: &Call, number: &str) -> bool {
        let busy = |c: &Call| {
            c.tenant == call.tenant
                && c.phase != CallPhase::Ended
                && ((c.from_extension && c.caller == number)
                    || (c.winner.is_some() && c.callee == number))
        };
        busy(call) || self.calls.values().any(busy)
    }

    /// A member's leg `i` failed with `code` (a timeout is 408): the next
    /// trunk for an external member, else the group moves on if that was
    /// the member's last leg.
    pub(crate) fn member_failed(&mut self, call: &mut Call, i: usize, code: u16, now: Instant) {
        let Some(m) = call.forks[i].member else {
            return;
        };
        let retry = call.forks[i].trunk.is_some() && !call.forks[i].cancelled && is_failover(code);
        let Some(run) = call.group.as_mut().and_then(|g| g.members.get_mut(m)) else {
            return;
        };
        run.codes.push(code);
        if retry && run.state == MemberState::Ringing {
            if let Some(next) = run.routes.pop_front() {
                let number = run.member.target.label();
                self.member_trunk_leg(call, m, next, &number, now);
                return;
            }
        }
        self.group_check(call, now);
    }

    /// Settles members whose legs have all ended, then rings the next
    /// member (sequential, round robin) or, when nobody is left ringing,
    /// gives up on the group.
    pub(crate) fn group_check(&mut self, call: &mut Call, now: Instant) {
        if !call.hunting() {
            return;
        }
        let round = call.round;
        let Some(g) = call.group.as_mut() else {
            return;
        };
        for (m, run) in g.members.iter_mut().enumerate() {
            let ringing = call
                .forks
                .iter()
                .any(|f| f.member == Some(m) && f.round == round && live(f.state, f.cancelled));
            if run.state == MemberState::Ringing && !ringing {
                run.state = MemberState::Failed(best_response(&run.codes).unwrap_or(480));
            }
        }
        if g.members.iter().any(|r| r.state == MemberState::Ringing) {
            return;
        }
        if g.strategy == RingStrategy::Simultaneous {
            self.group_exhausted(call, now);
        } else {
            self.hunt_next(call, now);
        }
    }

    /// Rings the next member that can be rung, or gives up on the group.
    fn hunt_next(&mut self, call: &mut Call, now: Instant) {
        loop {
            let Some(g) = call.group.as_mut() else {
                return;
            };
            g.current = None;
            g.member_deadline = None;
            let Some(&m) = g.order.get(g.next) else {
                return self.group_exhausted(call, now);
            };
            g.next += 1;
            if self.try_member(call, m, now) {
                if let Some(g) = call.group.as_mut() {
                    g.current = Some(m);
                    g.member_deadline = Some(now + g.member_timeout);
                }
                return;
            }
        }
    }

    /// The current member's turn is over: cancel its legs, ring the next.
    pub(crate) fn group_timers(&mut self, call: &mut Call, now: Instant) {
        let hunting = call.hunting();
        let Some(g) = call.group.as_mut() else {
            return;
        };
        if g.member_deadline.is_none_or(|d| d > now) {
            return;
        }
        g.member_deadline = None;
        if !hunting {
            return;
        }
        if let Some(m) = g.current.take() {
            if let Some(run) = g.members.get_mut(m) {
                run.state = MemberState::TimedOut;
            }
            for j in 0..call.forks.len() {
                if call.forks[j].member == Some(m) && call.forks[j].round == call.round {
                    self.cancel_fork(call, j, None);
                }
            }
        }
        self.hunt_next(call, now);
    }

    /// Nobody answered (every member done, or the group's ring timeout):
    /// the fallback, or a clear busy / unavailable answer.
    pub(crate) fn group_exhausted(&mut self, call: &mut Call, now: Instant) {
        let Some(g) = call.group.take() else {
            return;
        };
        if call.transfer.is_some() {
            // A transfer to the group: the transferor hears why; no fallback.
            let busy = g.order.iter().all(|&m| {
                matches!(
                    g.members[m].state,
                    MemberState::Skipped(Skip::Busy | Skip::Dnd) | MemberState::Failed(486 | 600)
                )
            }) && !g.order.is_empty();
            let frag = if busy {
                "486 Busy Here"
            } else {
                "480 Temporarily Unavailable"
            };
            return self.transfer_failed(call, frag, now);
        }
        self.cancel_all(call, None);
        let all_busy = !g.order.is_empty()
            && g.order.iter().all(|&m| {
                matches!(
                    g.members[m].state,
                    MemberState::Skipped(Skip::Busy | Skip::Dnd) | MemberState::Failed(486 | 600)
                )
            });
        tracing::info!(call = call.id, group = %g.number, all_busy, "nobody in the group answered");
        let why = if all_busy {
            Divert::Busy
        } else {
            Divert::NoAnswer
        };
        if let Some(fallback) = &g.fallback {
            if self.divert_to(call, fallback, true, why, &g.number, now) {
                return;
            }
        }
        if all_busy {
            self.fail(call, 486, Disposition::Busy, "every group member busy", now);
        } else {
            self.fail(
                call,
                480,
                Disposition::NoAnswer,
                "no group member answered",
                now,
            );
        }
    }

    /// Fork `i` won the call: a group member answered.
    pub(crate) fn group_answered(&mut self, call: &mut Call, i: usize) {
        let fork = &call.forks[i];
        let Some(m) = fork.member.filter(|_| fork.round == call.round) else {
            return;
        };
        let through_trunk = fork.trunk.is_some();
        let Some(g) = call.group.as_mut() else {
            return;
        };
        g.current = None;
        g.member_deadline = None;
        let Some(run) = g.members.get(m) else {
            return;
        };
        tracing::info!(call = call.id, group = %g.number, member = %run.member.target.label(), "group member answered");
        if g.strategy == RingStrategy::RoundRobin {
            if self.last_answered.len() >= MAX_REMEMBERED {
                self.last_answered.clear();
            }
            self.last_answered.insert(g.id, run.member.target.key());
            self.group_answers.push_back(RingGroupAnswered {
                tenant: call.tenant,
                group: g.id,
                position: run.member.position,
            });
        }
        if through_trunk {
            call.direction = Direction::Outbound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{ExtensionNumber, Forwarding};

    fn ext(n: &str) -> GroupMember {
        ext_at(n, 0)
    }

    fn ext_at(n: &str, position: u32) -> GroupMember {
        GroupMember {
            position,
            target: MemberTarget::Extension(ExtensionProfile {
                id: ExtensionId::new(),
                number: n.parse::<ExtensionNumber>().unwrap(),
                display_name: String::new(),
                dnd: false,
                forwarding: Forwarding::default(),
                no_answer_timeout: Duration::from_secs(20),
                max_calls: 8,
            }),
        }
    }

    fn plan(strategy: RingStrategy, members: Vec<GroupMember>) -> RingGroupPlan {
        let members = members
            .into_iter()
            .enumerate()
            .map(|(i, mut m)| {
                m.position = u32::try_from(i).unwrap() * 2;
                m
            })
            .collect();
        RingGroupPlan {
            id: RingGroupId::new(),
            number: "20".parse().unwrap(),
            name: "Sales".into(),
            strategy,
            ring_timeout: Duration::from_secs(30),
            member_timeout: Duration::from_secs(10),
            members,
            last_answered: None,
            fallback: None,
        }
    }

    #[test]
    fn order_is_the_directory_order_each_member_once() {
        let mut p = plan(
            RingStrategy::Sequential,
            vec![ext("101"), ext("102"), ext("103")],
        );
        assert_eq!(hunt_order(&p, None), [0, 1, 2]);
        p.members.push(p.members[1].clone());
        assert_eq!(hunt_order(&p, None), [0, 1, 2]);
        p.last_answered = Some(0);
        assert_eq!(hunt_order(&p, None), [0, 1, 2], "only round robin rotates");
    }

    #[test]
    fn round_robin_starts_after_the_last_answerer() {
        let mut p = plan(
            RingStrategy::RoundRobin,
            vec![ext("101"), ext("102"), ext("103")],
        );
        assert_eq!(hunt_order(&p, None), [0, 1, 2]);
        // Positions are 0, 2, 4: the directory says position 2 answered.
        p.last_answered = Some(2);
        assert_eq!(hunt_order(&p, None), [2, 0, 1]);
        p.last_answered = Some(4);
        assert_eq!(hunt_order(&p, None), [0, 1, 2]);
        // A gap (the member at position 3 was deleted): the next one on.
        p.last_answered = Some(3);
        assert_eq!(hunt_order(&p, None), [2, 0, 1]);
        // The engine's own memory wins over the directory's copy.
        let first = p.members[0].target.key();
        assert_eq!(hunt_order(&p, Some(&first)), [1, 2, 0]);
        // A remembered member no longer in the group: the directory's copy.
        let gone = MemberKey::External("+447700900123".into());
        assert_eq!(hunt_order(&p, Some(&gone)), [2, 0, 1]);
        let empty = plan(RingStrategy::RoundRobin, vec![]);
        assert!(hunt_order(&empty, Some(&first)).is_empty());
    }
}
