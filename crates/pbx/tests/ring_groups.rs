//! Ring groups through the B2BUA engine (see calls.rs for the harness):
//! every strategy, skipping, fallback, the Reason on CANCEL, and the
//! round-robin rotation the driver persists.

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use harness::*;
use pbx::call::CallPhase;
use phone::Behavior;
use sip::{Method, Request};
use store::{Direction, Disposition, HangupBy, RingStrategy};

const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

/// Alice (1000) and the members 1001, 1002, 1003 (one phone each, all
/// registered, ringing until told otherwise) of group 20.
fn group(seed: u64, strategy: RingStrategy) -> (Sim, usize, [usize; 3]) {
    let mut sim = Sim::new(seed, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let m = [
        sim.phone("m1", "1001", true),
        sim.phone("m2", "1002", true),
        sim.phone("m3", "1003", true),
    ];
    for &p in &m {
        sim.phones[p].behavior = ring(None);
    }
    sim.dir.add_group("20", strategy, &["1001", "1002", "1003"]);
    (sim, a, m)
}

fn invites(sim: &Sim, phone: usize) -> usize {
    sim.phones[phone].received(Method::Invite).len()
}

fn reason(r: &Request) -> Option<&str> {
    r.headers.get("Reason")
}

/// Hangs the caller's answered call up and lets it settle.
fn hang_up(sim: &mut Sim, caller: usize) {
    let now = sim.now;
    sim.phones[caller]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(5));
}

// ---------------------------------------------------------------- strategies

#[test]
fn simultaneous_rings_everyone_and_cancels_the_rest_as_completed_elsewhere() {
    let (mut sim, a, [m1, m2, m3]) = group(60, RingStrategy::Simultaneous);
    sim.phones[m2].behavior = ring(Some(3));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(1));
    for m in [m1, m2, m3] {
        assert_eq!(invites(&sim, m), 1, "every member rings at once");
    }
    sim.run_until(secs(6));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    for m in [m1, m3] {
        let c = cancels(&sim, m);
        assert_eq!(c.len(), 1);
        assert_eq!(
            reason(c[0]),
            Some(COMPLETED_ELSEWHERE),
            "no missed call shown"
        );
    }
    assert!(cancels(&sim, m2).is_empty());
    let call = &sim.engine.calls()[0];
    assert_eq!(
        (call.callee.as_str(), call.dialled.as_str()),
        ("1002", "20")
    );
    assert_eq!(call.phase, CallPhase::Connected);
    hang_up(&mut sim, a);
    assert!(sim.phones[m2].ended);
    let r = &sim.records[0];
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!((r.callee.as_str(), r.dialled.as_str()), ("1002", "20"));
    assert!(
        sim.group_answers.is_empty(),
        "only round robin is persisted"
    );
    assert_ports_returned(&sim);
}

#[test]
fn members_see_who_calls_through_which_group() {
    let (mut sim, a, [m1, ..]) = group(61, RingStrategy::Simultaneous);
    sim.dir.edit("1000", |p| p.display_name = "Alice".into());
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(1));
    let inv = sim.phones[m1].received(Method::Invite)[0];
    let from = sip::NameAddr::parse(inv.headers.get("From").unwrap(), "From").unwrap();
    assert_eq!(from.display_name().as_deref(), Some("Alice (Sales)"));
    assert_eq!(from.uri.user(), Some("1000"), "the caller's number");
    assert!(inv.headers.get("To").unwrap().contains("<sip:1001@"));
    assert_eq!(sdp_addr(&inv.body), "203.0.113.7", "media anchored");
}

#[test]
fn sequential_hunts_in_order_each_member_for_its_turn() {
    let (mut sim, a, [m1, m2, m3]) = group(62, RingStrategy::Sequential);
    sim.phones[m2].behavior = ring(Some(2));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(9));
    assert_eq!(
        [invites(&sim, m1), invites(&sim, m2), invites(&sim, m3)],
        [1, 0, 0]
    );
    assert_eq!(sim.phones[a].responses.last().unwrap().status.as_u16(), 180);
    // The first member's 10 s turn is over: it is cancelled (a plain CANCEL:
    // it did ring and nobody took it), the second rings and answers.
    sim.run_until(secs(11));
    let c = cancels(&sim, m1);
    assert_eq!(c.len(), 1);
    assert_eq!(reason(c[0]), None);
    assert_eq!(invites(&sim, m2), 1);
    sim.run_until(secs(15));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(invites(&sim, m3), 0, "the hunt stops at the answer");
    let call = &sim.engine.calls()[0];
    assert_eq!(call.callee, "1002");
    let waited = call.answered.unwrap() - call.started;
    assert!(waited >= secs(12) && waited < secs(13), "{waited:?}");
}

#[test]
fn sequential_moves_on_at_once_when_a_member_refuses() {
    let (mut sim, a, [m1, m2, m3]) = group(63, RingStrategy::Sequential);
    sim.phones[m1].behavior = Behavior::Reject(486);
    sim.phones[m2].behavior = Behavior::Reject(603);
    sim.phones[m3].behavior = ring(Some(1));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(3));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(sim.engine.calls()[0].callee, "1003");
}

#[test]
fn one_members_decline_does_not_stop_the_others() {
    let (mut sim, a, [m1, m2, m3]) = group(64, RingStrategy::Simultaneous);
    sim.phones[m1].behavior = Behavior::Reject(603);
    sim.phones[m2].behavior = Behavior::Reject(600);
    sim.phones[m3].behavior = ring(Some(4));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(6));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(sim.engine.calls()[0].callee, "1003");
}

/// Places a call to group 20, lets whoever rings first answer, and hangs up;
/// returns the member that answered.
fn answered_by(sim: &mut Sim, a: usize) -> String {
    let t = sim.now - sim.start;
    sim.phones[a].call("20", sim.now);
    sim.run_until(t + secs(5));
    assert_eq!(sim.phones[a].invite_finals().last(), Some(&200));
    let callee = sim.engine.calls()[0].callee.clone();
    hang_up(sim, a);
    callee
}

#[test]
fn round_robin_starts_after_the_member_who_answered_last() {
    let (mut sim, a, m) = group(65, RingStrategy::RoundRobin);
    for p in m {
        sim.phones[p].behavior = ring(Some(1));
    }
    let order: Vec<String> = (0..4).map(|_| answered_by(&mut sim, a)).collect();
    assert_eq!(order, ["1001", "1002", "1003", "1001"]);
    // Each turn rang only the member whose turn it was.
    assert_eq!(
        m.map(|p| invites(&sim, p)),
        [2, 1, 1],
        "nobody else was disturbed"
    );
    let positions: Vec<u32> = sim.group_answers.iter().map(|g| g.position).collect();
    assert_eq!(positions, [0, 1, 2, 0]);
    assert!(sim.group_answers.iter().all(|g| g.tenant == sim.tenant));
}

#[test]
fn round_robin_rotation_is_persisted_across_a_restart() {
    let (mut sim, a, m) = group(66, RingStrategy::RoundRobin);
    for p in m {
        sim.phones[p].behavior = ring(Some(1));
    }
    assert_eq!(answered_by(&mut sim, a), "1001");
    assert_eq!(answered_by(&mut sim, a), "1002");
    // The driver wrote position 1 to the directory; a new engine (after a
    // restart) knows only that.
    sim.restart_engine();
    assert_eq!(sim.dir.groups.lock().unwrap()["20"].last_answered, Some(1));
    assert_eq!(answered_by(&mut sim, a), "1003");
    // A busy member's turn is skipped, and the rotation continues from
    // whoever answered.
    sim.phones[m[0]].behavior = Behavior::Reject(486);
    assert_eq!(answered_by(&mut sim, a), "1002");
    assert_eq!(sim.dir.groups.lock().unwrap()["20"].last_answered, Some(1));
}

// ---------------------------------------------------------------- skipping

#[test]
fn unregistered_busy_and_dnd_members_are_skipped_without_delay() {
    let mut sim = Sim::new(67, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let gone = sim.phone("gone", "1001", false);
    let dnd = sim.phone("dnd", "1002", true);
    let busy = sim.phone("busy", "1003", true);
    let other = sim.phone("other", "1004", true);
    let free = sim.phone("free", "1005", true);
    sim.dir.edit("1002", |p| p.dnd = true);
    sim.phones[other].behavior = ring(Some(1));
    sim.phones[free].behavior = ring(Some(1));
    // 1003 is talking to 1004.
    sim.phones[busy].call("1004", sim.now);
    sim.run_until(secs(3));
    assert_eq!(sim.phones[busy].invite_finals(), [200]);
    sim.dir.add_group(
        "20",
        RingStrategy::Sequential,
        &["1001", "1002", "1003", "1005"],
    );
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(6));
    assert_eq!(
        sim.phones[a].invite_finals(),
        [200],
        "the free member answered at once"
    );
    for p in [gone, dnd, busy] {
        assert_eq!(invites(&sim, p), 0, "{}", sim.phones[p].name);
    }
    let calls = sim.engine.calls();
    let ours = calls.iter().find(|c| c.dialled == "20").unwrap();
    assert_eq!(ours.callee, "1005");
    assert!(ours.answered.unwrap() - ours.started < secs(2));
}

#[test]
fn a_member_ringing_elsewhere_is_not_busy_but_a_caller_is() {
    // 1001 is itself calling 1003 (ringing): busy. 1002 is being rung by
    // another call: free to ring here too.
    let mut sim = Sim::new(68, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let m1 = sim.phone("m1", "1001", true);
    let m2 = sim.phone("m2", "1002", true);
    let c = sim.phone("carol", "1003", true);
    let d = sim.phone("dave", "1004", true);
    sim.phones[c].behavior = ring(None);
    sim.phones[m2].behavior = ring(None);
    sim.phones[m1].call("1003", sim.now);
    sim.phones[d].call("1002", sim.now);
    sim.run_until(secs(1));
    sim.dir
        .add_group("20", RingStrategy::Simultaneous, &["1001", "1002"]);
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(2));
    assert_eq!(invites(&sim, m1), 0);
    assert_eq!(invites(&sim, m2), 2);
}

#[test]
fn a_member_with_two_phones_rings_on_both() {
    let (mut sim, a, [m1, ..]) = group(69, RingStrategy::Sequential);
    let soft = sim.phone("soft", "1001", true);
    sim.phones[soft].behavior = ring(Some(2));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(4));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let c = cancels(&sim, m1);
    assert_eq!(reason(c[0]), Some(COMPLETED_ELSEWHERE));
    assert_eq!(sim.engine.calls()[0].callee, "1001");
}

// ---------------------------------------------------------------- nobody answers

#[test]
fn fallback_to_an_extension_after_the_ring_timeout() {
    let (mut sim, a, m) = group(70, RingStrategy::Simultaneous);
    let desk = sim.phone("desk", "1009", true);
    sim.phones[desk].behavior = ring(Some(1));
    sim.dir.edit_group("20", |g| {
        g.ring_timeout = secs(15);
        g.fallback = Some("1009".into());
    });
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(14));
    assert_eq!(invites(&sim, desk), 0);
    sim.run_until(secs(20));
    for p in m {
        let c = cancels(&sim, p);
        assert_eq!(c.len(), 1);
        assert_eq!(reason(c[0]), None, "they did miss the call");
    }
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let inv = sim.phones[desk].received(Method::Invite)[0];
    let div = diversion(inv);
    assert_eq!(div.len(), 1);
    assert!(div[0].starts_with("<sip:20@"), "{div:?}");
    assert!(div[0].contains("reason=no-answer"));
    let call = &sim.engine.calls()[0];
    assert_eq!(call.callee, "1009");
    assert!(call.answered.unwrap() - call.started >= secs(16));
}

#[test]
fn sequential_falls_back_when_the_list_is_exhausted() {
    let (mut sim, a, m) = group(71, RingStrategy::Sequential);
    let desk = sim.phone("desk", "1009", true);
    sim.phones[desk].behavior = ring(Some(1));
    sim.dir
        .edit_group("20", |g| g.fallback = Some("1009".into()));
    sim.phones[a].call("20", sim.now);
    // Three 10 s turns (well within the 60 s ring timeout), then the fallback.
    sim.run_until(secs(29));
    assert_eq!(invites(&sim, desk), 0);
    assert_eq!(m.map(|p| invites(&sim, p)), [1, 1, 1]);
    sim.run_until(secs(35));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(sim.engine.calls()[0].callee, "1009");
}

#[test]
fn the_ring_timeout_caps_a_sequential_hunt() {
    let (mut sim, a, [m1, m2, m3]) = group(72, RingStrategy::Sequential);
    sim.dir.edit_group("20", |g| g.ring_timeout = secs(15));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(30));
    assert_eq!(sim.phones[a].invite_finals(), [480]);
    assert_eq!(
        [invites(&sim, m1), invites(&sim, m2), invites(&sim, m3)],
        [1, 1, 0]
    );
    let r = &sim.records[0];
    assert_eq!(r.disposition, Disposition::NoAnswer);
    assert_eq!(r.callee, "20");
    assert_eq!(r.ended - r.started, secs(15));
    assert_ports_returned(&sim);
}

#[test]
fn fallback_to_another_ring_group() {
    let (mut sim, a, _) = group(73, RingStrategy::Simultaneous);
    let n1 = sim.phone("night1", "1011", true);
    let n2 = sim.phone("night2", "1012", true);
    sim.phones[n2].behavior = ring(Some(1));
    sim.dir
        .add_group("21", RingStrategy::Sequential, &["1011", "1012"]);
    sim.dir.edit_group("20", |g| {
        g.ring_timeout = secs(10);
        g.fallback = Some("21".into());
    });
    sim.dir.edit_group("21", |g| g.name = "Night".into());
    sim.phones[n1].behavior = Behavior::Reject(486);
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(15));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let inv = sim.phones[n2].received(Method::Invite)[0];
    assert!(inv.headers.get("From").unwrap().contains("(Night)"));
    assert!(diversion(inv)[0].starts_with("<sip:20@"));
    assert_eq!(sim.engine.calls()[0].callee, "1012");
}

#[test]
fn without_a_fallback_the_caller_hears_busy_or_unavailable() {
    // Every member busy (refusing, on DND): 486 at once.
    let (mut sim, a, [m1, m2, m3]) = group(74, RingStrategy::Simultaneous);
    sim.phones[m1].behavior = Behavior::Reject(486);
    sim.phones[m2].behavior = Behavior::Reject(486);
    sim.dir.edit("1003", |p| p.dnd = true);
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(2));
    assert_eq!(sim.phones[a].invite_finals(), [486]);
    assert_eq!(invites(&sim, m3), 0);
    assert_eq!(sim.records[0].disposition, Disposition::Busy);

    // Nobody registered: 480 at once.
    let mut sim = Sim::new(75, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    sim.dir.add("1001");
    sim.dir.add("1002");
    sim.dir
        .add_group("20", RingStrategy::RoundRobin, &["1001", "1002"]);
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(1));
    assert_eq!(sim.phones[a].invite_finals(), [480]);
    let r = &sim.records[0];
    assert_eq!(r.disposition, Disposition::NoAnswer);
    assert_eq!(r.hangup_by, HangupBy::System);

    // An empty group: 480.
    let mut sim = Sim::new(76, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    sim.dir.add_group("20", RingStrategy::Sequential, &[]);
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(1));
    assert_eq!(sim.phones[a].invite_finals(), [480]);
}

#[test]
fn a_fallback_loop_between_groups_is_cut() {
    let (mut sim, a, [m1, ..]) = group(77, RingStrategy::Simultaneous);
    sim.dir
        .add_group("21", RingStrategy::Simultaneous, &["1001"]);
    sim.dir.edit_group("20", |g| {
        g.ring_timeout = secs(10);
        g.fallback = Some("21".into());
    });
    sim.dir.edit_group("21", |g| {
        g.ring_timeout = secs(10);
        g.fallback = Some("20".into());
    });
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(40));
    assert_eq!(sim.phones[a].invite_finals(), [480]);
    assert_eq!(invites(&sim, m1), 2, "rung by 20, then by 21; never again");
    assert_eq!(sim.records.len(), 1);
}

// ---------------------------------------------------------------- the rest

#[test]
fn an_external_member_rings_through_a_trunk() {
    let (mut sim, a, [m1, ..]) = group(78, RingStrategy::Simultaneous);
    let mobile = sim.phone("mobile", "9901", false);
    let trunk = sim.dir.add_trunk(sim.phones[mobile].addr, None);
    sim.phones[mobile].behavior = ring(Some(2));
    sim.dir
        .edit_group("20", |g| g.members.push("+447700900123".into()));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let inv = sim.phones[mobile].received(Method::Invite);
    assert_eq!(inv[0].uri.user(), Some("+447700900123"));
    assert_eq!(reason(cancels(&sim, m1)[0]), Some(COMPLETED_ELSEWHERE));
    assert_eq!(sim.engine.calls()[0].callee, "+447700900123");
    hang_up(&mut sim, a);
    let r = &sim.records[0];
    assert_eq!((r.direction, r.trunk), (Direction::Outbound, Some(trunk)));
    assert!(r.counted_outside);
}

#[test]
fn an_external_member_fails_over_between_trunks() {
    let (mut sim, a, _) = group(79, RingStrategy::Sequential);
    let c1 = sim.phone("carrier1", "9901", false);
    let c2 = sim.phone("carrier2", "9902", false);
    sim.dir.add_trunk(sim.phones[c1].addr, None);
    let t2 = sim.dir.add_trunk(sim.phones[c2].addr, None);
    sim.phones[c1].behavior = Behavior::Reject(503);
    sim.phones[c2].behavior = ring(Some(1));
    sim.dir
        .edit_group("20", |g| g.members.insert(0, "+447700900123".into()));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(4));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(sim.engine.calls()[0].callee, "+447700900123");
    hang_up(&mut sim, a);
    assert_eq!(sim.records[0].trunk, Some(t2));
}

#[test]
fn an_external_member_refused_by_the_dial_plan_is_skipped() {
    let (mut sim, a, [m1, ..]) = group(80, RingStrategy::Sequential);
    *sim.dir.refuse.lock().unwrap() = Some((503, "outside call limit reached".into()));
    sim.phones[m1].behavior = ring(Some(1));
    sim.dir
        .edit_group("20", |g| g.members.insert(0, "+447700900123".into()));
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(3));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(sim.engine.calls()[0].callee, "1001");
    assert!(!sim.records.iter().any(|r| r.counted_outside));
}

#[test]
fn the_callers_cancel_stops_every_member() {
    let (mut sim, a, m) = group(81, RingStrategy::Simultaneous);
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(3));
    let now = sim.now;
    sim.phones[a].cancel(now);
    sim.run_until(secs(6));
    assert_eq!(sim.phones[a].invite_finals(), [487]);
    for p in m {
        let c = cancels(&sim, p);
        assert_eq!(c.len(), 1);
        assert_eq!(reason(c[0]), None, "a missed call");
    }
    assert_eq!(sim.records[0].disposition, Disposition::Cancelled);
    assert_ports_returned(&sim);
}

#[test]
fn forwarding_and_numbers_reach_a_group() {
    let (mut sim, a, [m1, ..]) = group(82, RingStrategy::Simultaneous);
    sim.phones[m1].behavior = ring(Some(1));
    let b = sim.phone("bob", "1005", true);
    sim.dir
        .edit("1005", |p| p.forwarding.always = forward_to("20"));
    sim.phones[a].call("1005", sim.now);
    sim.run_until(secs(3));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(invites(&sim, b), 0);
    assert!(diversion(sim.phones[m1].received(Method::Invite)[0])[0].starts_with("<sip:1005@"));
    hang_up(&mut sim, a);

    // An inbound call to a number routed to the group.
    let c = sim.phone("carrier", "9901", false);
    let trunk = sim.dir.add_trunk(sim.phones[c].addr, None);
    sim.trunk_sources.insert(sim.phones[c].addr, trunk);
    sim.dir
        .numbers
        .lock()
        .unwrap()
        .insert("+442079460018".into(), "20".into());
    sim.phones[c].call("+442079460018", sim.now);
    sim.run_for(secs(3));
    assert_eq!(sim.phones[c].invite_finals(), [200]);
    let inv = sim.phones[m1].received(Method::Invite);
    let from = inv.last().unwrap().headers.get("From").unwrap();
    assert!(from.starts_with("\"9901 (Sales)\" <sip:9901@"), "{from}");
}

fn lossy_simultaneous(seed: u64) {
    let mut sim = Sim::new(seed, NetConfig::lossy(seed));
    let a = sim.phone("alice", "1000", true);
    let m: Vec<usize> = ["1001", "1002", "1003"]
        .iter()
        .zip(["m1", "m2", "m3"])
        .map(|(e, n)| sim.phone(n, e, true))
        .collect();
    for (i, &p) in m.iter().enumerate() {
        sim.phones[p].behavior = ring(Some(3 + i as u64));
    }
    sim.dir
        .add_group("20", RingStrategy::Simultaneous, &["1001", "1002", "1003"]);
    sim.phones[a].call("20", sim.now);
    sim.run_until(secs(40));
    assert_eq!(sim.phones[a].invite_finals(), [200], "seed {seed}");
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1, "seed {seed}");
    assert_eq!(calls[0].phase, CallPhase::Connected, "seed {seed}");
    // Whoever did not win was cancelled as completed elsewhere, or (if its
    // 2xx crossed the CANCEL) released with a BYE saying the same.
    for &p in &m {
        let ph = &sim.phones[p];
        if calls[0].callee == ph.ext {
            continue;
        }
        let told = ph
            .received(Method::Cancel)
            .into_iter()
            .chain(ph.received(Method::Bye))
            .any(|r| reason(r) == Some(COMPLETED_ELSEWHERE));
        assert!(told, "seed {seed}: {} was told", ph.name);
    }
    let id = calls[0].id;
    let now = sim.now;
    sim.engine.hang_up(id, "test over", now);
    sim.run_for(secs(40));
    assert_ports_returned(&sim);
}

#[test]
fn simultaneous_group_over_a_lossy_network() {
    for seed in 0..SEEDS {
        lossy_simultaneous(seed);
    }
}
