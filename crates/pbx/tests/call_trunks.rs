//! Outside calls through trunks (see calls.rs for the harness): the dial
//! plan hands the engine an ordered trunk list; the engine tries them one
//! at a time, answers digest challenges, and fails over on 5xx, 408 or
//! silence.

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use std::net::SocketAddr;

use harness::*;
use phone::Behavior;
use sip::Method;
use sip::auth::{Verifier, VerifierConfig, ha1_sha256};
use store::{Direction, Disposition, ForwardTarget, HangupBy};

/// A caller (1000) and `n` carriers, each behind its own trunk.
fn carriers(seed: u64, n: usize) -> (Sim, usize, Vec<(usize, store::TrunkId)>) {
    let mut sim = Sim::new(seed, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let names = ["carrier1", "carrier2", "carrier3"];
    let exts = ["9901", "9902", "9903"];
    let list = (0..n)
        .map(|i| {
            let p = sim.phone(names[i], exts[i], false);
            sim.phones[p].behavior = ring(Some(1));
            let id = sim.dir.add_trunk(sim.phones[p].addr, None);
            (p, id)
        })
        .collect();
    (sim, a, list)
}

#[test]
fn outside_call_leaves_through_the_first_trunk_in_e164() {
    let (mut sim, a, trunks) = carriers(40, 2);
    let (c1, t1) = trunks[0];
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let inv = sim.phones[c1].received(Method::Invite);
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].uri.user(), Some("+442079460018"));
    assert!(
        inv[0]
            .headers
            .get("From")
            .unwrap()
            .contains("+442079460000")
    );
    assert_eq!(sdp_addr(&inv[0].body), "203.0.113.7");
    assert!(sim.phones[trunks[1].0].received(Method::Invite).is_empty());
    let now = sim.now;
    sim.phones[a]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(5));
    assert!(sim.phones[c1].ended);
    let r = &sim.records[0];
    assert_eq!((r.direction, r.trunk), (Direction::Outbound, Some(t1)));
    assert_eq!(
        (r.callee.as_str(), r.dialled.as_str()),
        ("+442079460018", "02079460018")
    );
    assert_eq!(r.hangup_by, HangupBy::Caller);
}

#[test]
fn fails_over_on_5xx() {
    let (mut sim, a, trunks) = carriers(41, 2);
    sim.phones[trunks[0].0].behavior = Behavior::Reject(503);
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(sim.phones[trunks[1].0].received(Method::Invite).len(), 1);
    let calls = sim.engine.calls();
    assert_eq!(calls[0].callee, "+442079460018");
    sim.engine.hang_up(calls[0].id, "test over", sim.now);
    sim.run_for(secs(5));
    assert_eq!(
        sim.records[0].trunk,
        Some(trunks[1].1),
        "CDR names the trunk that answered"
    );
}

#[test]
fn fails_over_from_a_dead_trunk() {
    let (mut sim, a, trunks) = carriers(42, 1);
    // A trunk whose address nobody answers on, first in the order.
    let dead: SocketAddr = "198.51.100.99:5060".parse().unwrap();
    let dead_id = sim.dir.add_trunk(dead, None);
    sim.dir.trunks.lock().unwrap().rotate_right(1);
    assert_eq!(sim.dir.trunks.lock().unwrap()[0].0, dead_id);
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(15));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let inv = sim.phones[trunks[0].0].received(Method::Invite);
    assert_eq!(inv.len(), 1);
    let answered = sim.engine.calls()[0].answered.unwrap() - sim.start;
    assert!(
        answered >= secs(4) && answered < secs(7),
        "failed over after the set-up timeout ({answered:?})"
    );
}

#[test]
fn far_end_answers_are_not_failed_over() {
    for code in [404, 486, 603] {
        let (mut sim, a, trunks) = carriers(43, 2);
        sim.phones[trunks[0].0].behavior = Behavior::Reject(code);
        sim.phones[a].call("02079460018", sim.now);
        sim.run_until(secs(5));
        assert_eq!(sim.phones[a].invite_finals(), [code]);
        assert!(
            sim.phones[trunks[1].0].received(Method::Invite).is_empty(),
            "{code}"
        );
    }
}

#[test]
fn every_trunk_failing_gives_the_best_response() {
    let (mut sim, a, trunks) = carriers(44, 2);
    sim.phones[trunks[0].0].behavior = Behavior::Reject(503);
    sim.phones[trunks[1].0].behavior = Behavior::Reject(500);
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [503]);
    assert_eq!(sim.records[0].disposition, Disposition::Failed);
    assert_eq!(sim.records[0].hangup_cause, "503 all trunks failed");
}

#[test]
fn answers_the_providers_digest_challenge() {
    let (mut sim, a, _) = carriers(45, 0);
    let c = sim.phone("carrier1", "9901", false);
    sim.phones[c].behavior = ring(Some(1));
    let realm = "carrier.test";
    let v = Verifier::new(
        b"carrier secret carrier secret!!!",
        VerifierConfig::default(),
    );
    sim.phones[c].challenge = Some((v, realm, ha1_sha256("acct42", realm, "s3cret")));
    sim.dir
        .add_trunk(sim.phones[c].addr, Some(("acct42", "s3cret")));
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let inv = sim.phones[c].received(Method::Invite);
    assert_eq!(inv.len(), 2, "challenged, then authorised");
    assert!(
        inv[1]
            .headers
            .get("Proxy-Authorization")
            .unwrap()
            .contains("username=\"acct42\"")
    );
    let cseqs: Vec<u32> = inv.iter().map(|r| r.cseq().unwrap().unwrap().seq).collect();
    assert_eq!(cseqs, [1, 2]);
    assert_eq!(inv[0].headers.get("Call-ID"), inv[1].headers.get("Call-ID"));
}

/// A provider that keeps refusing our credentials: one retry, then the
/// next trunk; the challenge itself never reaches the caller.
#[test]
fn wrong_trunk_password_fails_over() {
    let (mut sim, a, _) = carriers(46, 0);
    let c = sim.phone("carrier1", "9901", false);
    let realm = "carrier.test";
    let v = Verifier::new(
        b"carrier secret carrier secret!!!",
        VerifierConfig::default(),
    );
    sim.phones[c].challenge = Some((v, realm, ha1_sha256("acct42", realm, "s3cret")));
    sim.dir
        .add_trunk(sim.phones[c].addr, Some(("acct42", "wrong")));
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[c].received(Method::Invite).len(), 2);
    assert_eq!(sim.phones[a].invite_finals(), [503]);

    let (mut sim, a, _) = carriers(46, 0);
    let c = sim.phone("carrier1", "9901", false);
    let c2 = sim.phone("carrier2", "9902", false);
    sim.phones[c2].behavior = ring(Some(1));
    let v = Verifier::new(
        b"carrier secret carrier secret!!!",
        VerifierConfig::default(),
    );
    sim.phones[c].challenge = Some((v, realm, ha1_sha256("acct42", realm, "s3cret")));
    sim.dir
        .add_trunk(sim.phones[c].addr, Some(("acct42", "wrong")));
    sim.dir.add_trunk(sim.phones[c2].addr, None);
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert!(
        sim.phones[a]
            .responses
            .iter()
            .all(|r| r.status.as_u16() != 407)
    );
}

#[test]
fn refused_and_unroutable_outside_calls() {
    let (mut sim, a, _) = carriers(47, 0);
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(2));
    assert_eq!(sim.phones[a].invite_finals(), [503], "no trunk");

    let (mut sim, a, trunks) = carriers(48, 1);
    *sim.dir.refuse.lock().unwrap() = Some((403, "premium rate not allowed".into()));
    sim.phones[a].call("09098790000", sim.now);
    sim.run_until(secs(2));
    assert_eq!(sim.phones[a].invite_finals(), [403]);
    assert_eq!(sim.records[0].hangup_cause, "403 premium rate not allowed");
    assert!(sim.phones[trunks[0].0].received(Method::Invite).is_empty());
    // 999 always routes, refusals notwithstanding.
    let now = sim.now;
    sim.phones[a].call("999", now);
    sim.run_for(secs(3));
    assert_eq!(sim.phones[trunks[0].0].received(Method::Invite).len(), 1);
    let calls = sim.engine.calls();
    assert_eq!(calls[0].callee, "999");
    sim.engine.hang_up(calls[0].id, "test over", sim.now);
    sim.run_for(secs(3));
    assert_eq!(sim.records[1].direction, Direction::Emergency);
}

#[test]
fn forward_to_an_outside_number_goes_through_the_trunk() {
    let (mut sim, a, trunks) = carriers(49, 1);
    let b = sim.phone("bob", "1001", true);
    sim.dir.edit("1001", |p| {
        p.forwarding.always = Some(ForwardTarget::External("+442079460123".parse().unwrap()))
    });
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert!(sim.phones[b].received(Method::Invite).is_empty());
    let inv = sim.phones[trunks[0].0].received(Method::Invite);
    assert_eq!(inv[0].uri.user(), Some("+442079460123"));
    let div: Vec<_> = inv[0].headers.get_all("Diversion").collect();
    assert!(div[0].starts_with("<sip:1001@") && div[0].contains("reason=unconditional"));
}

#[test]
fn trunk_calls_over_a_lossy_network() {
    for seed in 0..SEEDS {
        let mut sim = Sim::new(seed, NetConfig::lossy(seed));
        let a = sim.phone("alice", "1000", true);
        let c1 = sim.phone("carrier1", "9901", false);
        let c2 = sim.phone("carrier2", "9902", false);
        sim.phones[c1].behavior = Behavior::Reject(503);
        sim.phones[c2].behavior = ring(Some(1));
        sim.dir.add_trunk(sim.phones[c1].addr, None);
        let t2 = sim.dir.add_trunk(sim.phones[c2].addr, None);
        sim.phones[a].call("02079460018", sim.now);
        sim.run_until(secs(20));
        assert_eq!(sim.phones[a].invite_finals(), [200], "seed {seed}");
        let now = sim.now;
        sim.phones[a]
            .send_in_dialog(Method::Bye, false, now)
            .unwrap();
        sim.run_for(secs(100));
        assert_eq!(sim.records.len(), 1, "seed {seed}");
        assert_eq!(sim.records[0].trunk, Some(t2), "seed {seed}");
        assert!(sim.engine.is_empty(), "seed {seed}");
        assert_ports_returned(&sim);
    }
}

// ---------------------------------------------------------------- inbound

/// A carrier behind a trunk the driver recognises, and extension 1001.
fn inbound(seed: u64) -> (Sim, usize, usize, store::TrunkId) {
    let mut sim = Sim::new(seed, NetConfig::perfect());
    let c = sim.phone("carrier1", "9901", false);
    let b = sim.phone("bob", "1001", true);
    let trunk = sim.dir.add_trunk(sim.phones[c].addr, None);
    sim.trunk_sources.insert(sim.phones[c].addr, trunk);
    sim.dir
        .numbers
        .lock()
        .unwrap()
        .insert("+442079460018".into(), "1001".into());
    sim.phones[b].behavior = ring(Some(1));
    (sim, c, b, trunk)
}

#[test]
fn inbound_call_to_a_number_rings_its_extension() {
    let (mut sim, c, b, trunk) = inbound(50);
    sim.phones[c].call("+442079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[c].invite_finals(), [200]);
    let inv = sim.phones[b].received(Method::Invite);
    assert_eq!(inv.len(), 1);
    assert!(
        inv[0].headers.get("From").unwrap().contains("<sip:9901@"),
        "caller's number shown"
    );
    let now = sim.now;
    sim.phones[b]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(5));
    let r = &sim.records[0];
    assert_eq!((r.direction, r.trunk), (Direction::Inbound, Some(trunk)));
    assert_eq!((r.caller.as_str(), r.callee.as_str()), ("9901", "1001"));
    assert_eq!(r.dialled, "+442079460018");
}

#[test]
fn inbound_call_to_an_unassigned_number_gets_404() {
    let (mut sim, c, b, _) = inbound(51);
    sim.phones[c].call("+442079460099", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[c].invite_finals(), [404]);
    assert!(sim.phones[b].received(Method::Invite).is_empty());
}

#[test]
fn inbound_calls_cannot_be_routed_back_out() {
    let (mut sim, c, _, _) = inbound(52);
    sim.phones[c].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[c].invite_finals(), [404]);
    assert_eq!(
        sim.phones[c].received(Method::Invite).len(),
        0,
        "no trombone"
    );
}

#[test]
fn a_trunk_known_to_be_down_is_tried_last() {
    let (mut sim, a, trunks) = carriers(42, 2);
    let status = std::sync::Arc::clone(sim.engine.trunk_status());
    status.set_trunks(trunks.iter().map(|&(_, t)| (t, 10)), sim.now);
    status.record_probe(trunks[0].1, None, std::time::SystemTime::now());
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    // answered at once by the second trunk: no wait on the first
    let answered = sim.engine.calls()[0].answered.unwrap() - sim.start;
    assert!(answered < secs(2), "{answered:?}");
    assert!(sim.phones[trunks[0].0].received(Method::Invite).is_empty());
    assert_eq!(sim.phones[trunks[1].0].received(Method::Invite).len(), 1);
}

#[test]
fn every_trunk_down_still_tries_them_in_order() {
    let (mut sim, a, trunks) = carriers(43, 2);
    let status = std::sync::Arc::clone(sim.engine.trunk_status());
    status.set_trunks(trunks.iter().map(|&(_, t)| (t, 10)), sim.now);
    for &(_, t) in &trunks {
        status.record_probe(t, None, std::time::SystemTime::now());
    }
    sim.phones[a].call("02079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(sim.phones[trunks[0].0].received(Method::Invite).len(), 1);
}

#[test]
fn a_trunk_over_its_call_rate_is_passed_over() {
    let (mut sim, a, trunks) = carriers(44, 2);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carol", "1002", true);
    let status = std::sync::Arc::clone(sim.engine.trunk_status());
    status.set_trunks([(trunks[0].1, 1), (trunks[1].1, 1)], sim.now);
    let now = sim.now;
    sim.phones[a].call("02079460018", now);
    sim.phones[b].call("02079460019", now);
    sim.phones[c].call("02079460020", now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(sim.phones[b].invite_finals(), [200]);
    assert_eq!(sim.phones[trunks[0].0].received(Method::Invite).len(), 1);
    assert_eq!(sim.phones[trunks[1].0].received(Method::Invite).len(), 1);
    // both trunks at their rate: the third caller is refused, not queued
    assert_eq!(sim.phones[c].invite_finals(), [503]);
}
