//! Forwarding and mid-call requests through the B2BUA engine (see
//! calls.rs for the harness).

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use harness::*;
use media::Side;
use pbx::call::CallPhase;
use phone::Behavior;
use sip::Method;

// ---------------------------------------------------------------- forwarding

#[test]
fn forward_always_rings_the_target_with_diversion() {
    let mut sim = Sim::new(7, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carol", "1002", true);
    sim.dir
        .edit("1001", |p| p.forwarding.always = forward_to("1002"));
    sim.phones[c].behavior = ring(Some(1));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert!(sim.phones[b].received(Method::Invite).is_empty());
    let inv = sim.phones[c].received(Method::Invite)[0];
    let div = diversion(inv);
    assert_eq!(div.len(), 1);
    assert!(div[0].starts_with("<sip:1001@"), "{div:?}");
    assert!(div[0].contains("reason=unconditional") && div[0].contains("counter=1"));
    assert_eq!(inv.headers.get("Max-Forwards"), Some("68"));
    assert_eq!(sim.engine.calls()[0].callee, "1002");
}

#[test]
fn forward_on_busy_and_no_answer() {
    // Busy.
    let mut sim = Sim::new(8, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carol", "1002", true);
    sim.dir
        .edit("1001", |p| p.forwarding.busy = forward_to("1002"));
    sim.phones[b].behavior = Behavior::Reject(486);
    sim.phones[c].behavior = ring(Some(1));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert!(diversion(sim.phones[c].received(Method::Invite)[0])[0].contains("reason=user-busy"));

    // No answer: the first extension is cancelled, then the target rings.
    let mut sim = Sim::new(9, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carol", "1002", true);
    sim.dir.edit("1001", |p| {
        p.forwarding.no_answer = forward_to("1002");
        p.no_answer_timeout = secs(10);
    });
    sim.phones[b].behavior = ring(None);
    sim.phones[c].behavior = ring(Some(2));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(20));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert!(!cancels(&sim, b).is_empty());
    assert!(diversion(sim.phones[c].received(Method::Invite)[0])[0].contains("reason=no-answer"));
    let calls = sim.engine.calls();
    assert_eq!(calls[0].callee, "1002");
    assert!(calls[0].answered.unwrap() - calls[0].started >= secs(12));
}

#[test]
fn forwarding_loop_is_cut() {
    let mut sim = Sim::new(10, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carol", "1002", true);
    sim.dir
        .edit("1001", |p| p.forwarding.always = forward_to("1002"));
    sim.dir
        .edit("1002", |p| p.forwarding.always = forward_to("1001"));
    sim.phones[c].behavior = ring(Some(1));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert!(sim.phones[b].received(Method::Invite).is_empty());
    assert_eq!(sim.phones[c].received(Method::Invite).len(), 1);
}

#[test]
fn busy_forward_loop_ends_busy() {
    let mut sim = Sim::new(11, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carol", "1002", true);
    sim.dir
        .edit("1001", |p| p.forwarding.busy = forward_to("1002"));
    sim.dir
        .edit("1002", |p| p.forwarding.busy = forward_to("1001"));
    sim.phones[b].behavior = Behavior::Reject(486);
    sim.phones[c].behavior = Behavior::Reject(486);
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [486]);
    assert_eq!(sim.phones[b].received(Method::Invite).len(), 1);
    assert_eq!(sim.phones[c].received(Method::Invite).len(), 1);
}

// ---------------------------------------------------------------- mid-call

fn reinvite(seed: u64, net: NetConfig) {
    let (mut sim, a, b) = connected(seed, net);
    let legs_before = sim.leg_configs(Side::B).len();
    let now = sim.now;
    sim.phones[a]
        .send_in_dialog(Method::Invite, true, now)
        .unwrap();
    sim.run_for(secs(10));
    assert_eq!(reinvite_finals(&sim, a), [200], "seed {seed}");
    let re = sim.phones[b].received(Method::Invite);
    assert_eq!(re.len(), 2, "seed {seed}: the re-INVITE crossed");
    assert_eq!(sdp_addr(&re[1].body), "203.0.113.7");
    assert!(!re[1].headers.get("Call-ID").unwrap().contains("alice"));
    let ok = sim.phones[a]
        .responses
        .iter()
        .find(|r| r.status.as_u16() == 200 && r.cseq().unwrap().unwrap().seq == 2)
        .unwrap();
    assert_eq!(sdp_addr(&ok.body), "203.0.113.7");
    assert!(
        sim.leg_configs(Side::B).len() > legs_before,
        "media legs updated"
    );
    // bob ACKed by the engine, alice's ACK absorbed; the call goes on.
    let acks_to_bob = sim
        .wire_with(b)
        .iter()
        .filter(|m| m.as_request().is_some_and(|r| r.method == Method::Ack))
        .count();
    assert!(acks_to_bob >= 2, "seed {seed}: the engine ACKed both 2xx");
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Connected);
}

#[test]
fn reinvite_is_passed_across_and_answered() {
    reinvite(12, NetConfig::perfect());
}

#[test]
fn reinvite_over_a_lossy_network() {
    for seed in 0..SEEDS {
        reinvite(seed, NetConfig::lossy(seed));
    }
}

#[test]
fn update_and_info_are_passed_across() {
    let (mut sim, a, b) = connected(13, NetConfig::perfect());
    let now = sim.now;
    sim.phones[b]
        .send_in_dialog(Method::Update, true, now)
        .unwrap();
    sim.phones[b]
        .send_in_dialog(Method::Info, false, now)
        .unwrap();
    sim.run_for(secs(5));
    assert_eq!(sim.phones[a].received(Method::Update).len(), 1);
    assert_eq!(sim.phones[a].received(Method::Info).len(), 1);
    let got: Vec<u16> = sim.phones[b]
        .responses
        .iter()
        .filter(|r| {
            r.cseq()
                .ok()
                .flatten()
                .is_some_and(|c| c.method != Method::Invite)
        })
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(got, [200, 200]);
}

#[test]
fn reinvite_glare_gives_491() {
    let (mut sim, a, b) = connected(14, NetConfig::perfect());
    let now = sim.now;
    sim.phones[a]
        .send_in_dialog(Method::Invite, true, now)
        .unwrap();
    sim.phones[b]
        .send_in_dialog(Method::Invite, true, now)
        .unwrap();
    sim.run_for(secs(10));
    let mut finals = reinvite_finals(&sim, a);
    finals.extend(reinvite_finals(&sim, b));
    finals.sort();
    assert_eq!(finals, [200, 491], "one re-INVITE wins, the other gets 491");
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Connected);
    // RFC 3261 §14.1: the loser retries after a pause, and gets through.
    let loser = if reinvite_finals(&sim, a).contains(&491) {
        a
    } else {
        b
    };
    let now = sim.now;
    sim.phones[loser]
        .send_in_dialog(Method::Invite, true, now)
        .unwrap();
    sim.run_for(secs(10));
    assert_eq!(reinvite_finals(&sim, loser), [491, 200]);
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Connected);
}

#[test]
fn bye_for_unknown_dialog_gets_481() {
    let (mut sim, a, _) = connected(15, NetConfig::perfect());
    if let Some(d) = sim.phones[a].dialog.as_mut() {
        d.remote = "<sip:1001@pbx.test>;tag=nope".into();
    }
    let now = sim.now;
    sim.phones[a]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(5));
    assert!(
        sim.phones[a]
            .responses
            .iter()
            .any(|r| r.status.as_u16() == 481)
    );
    assert_eq!(sim.engine.calls().len(), 1);
}

/// A 2xx from the second contact that arrives after the first answered is
/// ACKed and hung up (RFC 3261 §13.2.2.4), and the caller sees one 200.
#[test]
fn late_second_answer_is_acked_and_released() {
    let mut sim = Sim::new(16, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let b1 = sim.phone("desk", "1001", true);
    let b2 = sim.phone("soft", "1001", true);
    sim.phones[b1].behavior = ring(Some(2));
    sim.phones[b2].behavior = ring(Some(2));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(10));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let byes =
        sim.phones[b1].received(Method::Bye).len() + sim.phones[b2].received(Method::Bye).len();
    let acks =
        sim.phones[b1].received(Method::Ack).len() + sim.phones[b2].received(Method::Ack).len();
    assert_eq!(byes, 1, "the loser is released");
    assert!(acks >= 2, "both 2xx were ACKed");
    let oks = sim.phones[a]
        .responses
        .iter()
        .filter(|r| r.status.as_u16() == 200)
        .count();
    assert!(oks >= 1);
}

#[test]
fn offerless_reinvite_is_answered_on_its_own_leg() {
    let (mut sim, a, b) = connected(19, NetConfig::perfect());
    let last_to_a = sim.phones[a]
        .responses
        .iter()
        .rfind(|r| r.status.as_u16() == 200)
        .unwrap()
        .body
        .clone();
    let now = sim.now;
    sim.phones[a]
        .send_in_dialog(Method::Invite, false, now)
        .unwrap();
    sim.run_for(secs(5));
    assert_eq!(reinvite_finals(&sim, a), [200]);
    assert_eq!(
        sim.phones[b].received(Method::Invite).len(),
        1,
        "not passed across"
    );
    let ok = sim.phones[a]
        .responses
        .iter()
        .find(|r| r.status.as_u16() == 200 && r.cseq().unwrap().unwrap().seq == 2)
        .unwrap();
    assert_eq!(ok.body, last_to_a, "the same description, same o= version");
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Connected);
}

#[test]
fn reinvite_refreshes_the_remote_target() {
    let (mut sim, a, b) = connected(20, NetConfig::perfect());
    let now = sim.now;
    // The phone's re-INVITE carries Contact <sip:x@its address>.
    sim.phones[a]
        .send_in_dialog(Method::Invite, true, now)
        .unwrap();
    sim.run_for(secs(5));
    let now = sim.now;
    sim.phones[b]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(5));
    let bye = sim.phones[a].received(Method::Bye);
    assert_eq!(bye.len(), 1);
    assert_eq!(
        bye[0].uri.user(),
        Some("x"),
        "BYE goes to the refreshed target"
    );
}

#[test]
fn forwarding_chain_stops_at_the_hop_limit() {
    let mut sim = Sim::new(21, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let exts = [
        "1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008",
    ];
    let names = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"];
    for (e, n) in exts.iter().zip(names) {
        let i = sim.phone(n, e, true);
        sim.phones[i].behavior = ring(Some(1));
    }
    for w in exts.windows(2) {
        sim.dir
            .edit(w[0], |p| p.forwarding.always = forward_to(w[1]));
    }
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    let rung: Vec<&str> = sim
        .phones
        .iter()
        .filter(|p| !p.received(Method::Invite).is_empty())
        .map(|p| p.ext)
        .collect();
    assert_eq!(rung, ["1006"], "five hops, then the chain is cut");
    let inv = sim.phones[6].received(Method::Invite)[0];
    assert_eq!(diversion(inv).len(), 5);
    assert!(diversion(inv)[0].starts_with("<sip:1005@"), "newest first");
    assert_eq!(inv.headers.get("Max-Forwards"), Some("64"));
}

/// Requests for dialogs the engine does not have, and a CANCEL for no
/// INVITE: each is answered (481), nothing panics, no call appears.
#[test]
fn stray_requests_get_481() {
    let (mut sim, a, _) = connected(24, NetConfig::perfect());
    let methods = [
        Method::Bye,
        Method::Invite,
        Method::Update,
        Method::Info,
        Method::Options,
        Method::Refer,
    ];
    for (i, m) in methods.iter().enumerate() {
        let d = sim.phones[a].dialog.as_mut().unwrap();
        let saved = d.clone();
        match i % 3 {
            0 => d.remote = format!("<sip:1001@pbx.test>;tag=bogus{i}"),
            1 => d.call_id = format!("other-{i}"),
            _ => d.local = format!("<sip:1000@pbx.test>;tag=mine{i}"),
        }
        let now = sim.now;
        sim.phones[a]
            .send_in_dialog(m.clone(), *m == Method::Invite, now)
            .unwrap();
        sim.run_for(secs(2));
        *sim.phones[a].dialog.as_mut().unwrap() = saved;
    }
    let codes: Vec<u16> = sim.phones[a]
        .responses
        .iter()
        .filter(|r| r.cseq().unwrap().unwrap().seq > 1)
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(codes, [481; 6]);
    assert_eq!(sim.engine.calls().len(), 1);
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Connected);
}
