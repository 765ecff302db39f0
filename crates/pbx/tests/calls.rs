//! Call flows through the B2BUA engine: the engine behind its transaction
//! layer, scripted phones behind theirs, an in-memory network (lossy for
//! the seeded runs) and a virtual clock.

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use std::time::Duration;

use harness::{NetConfig, Sim};
use media::Side;
use pbx::call::CallPhase;
use phone::Behavior;
use sip::{Method, Request};
use store::{Disposition, ForwardTarget, HangupBy};

const SEEDS: u64 = 40;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ring(answer_after: Option<u64>) -> Behavior {
    Behavior::Ring {
        answer_after: answer_after.map(secs),
        early_media: false,
    }
}

/// Caller 1000 and callee 1001 (one registered phone each).
fn two_phones(seed: u64, net: NetConfig) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed, net);
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    (sim, a, b)
}

fn sdp_addr(body: &[u8]) -> String {
    let sdp: media::Sdp = std::str::from_utf8(body).unwrap().parse().unwrap();
    sdp.connection.unwrap().address
}

fn assert_ports_returned(sim: &Sim) {
    assert!(sim.open_ports.is_empty(), "every opened call was closed");
    assert_eq!(sim.pool.available(), sim.pool.capacity());
}

fn cancels(sim: &Sim, phone: usize) -> Vec<&Request> {
    sim.phones[phone].received(Method::Cancel)
}

// ---------------------------------------------------------------- basic calls

fn basic_call(seed: u64, net: NetConfig, caller_hangs_up: bool) {
    let (mut sim, a, b) = two_phones(seed, net);
    sim.phones[b].behavior = ring(Some(2));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(10));
    assert_eq!(sim.phones[a].invite_finals(), [200], "seed {seed}");
    // (180 travels once over UDP: only a perfect network guarantees it.)
    assert!(
        net.drop_percent > 0
            || sim.phones[a]
                .responses
                .iter()
                .any(|r| r.status.as_u16() == 180),
        "seed {seed}: ringing passed back"
    );
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1, "seed {seed}");
    assert_eq!(calls[0].phase, CallPhase::Connected, "seed {seed}");
    assert_eq!(
        (calls[0].caller.as_str(), calls[0].callee.as_str()),
        ("1000", "1001")
    );
    let hanger = if caller_hangs_up { a } else { b };
    let other = if caller_hangs_up { b } else { a };
    let now = sim.now;
    sim.phones[hanger]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(40));
    assert!(
        sim.phones[other].ended,
        "seed {seed}: BYE reached the other side"
    );
    assert!(sim.engine.calls().is_empty());
    assert_eq!(sim.records.len(), 1, "seed {seed}: one CDR");
    let r = &sim.records[0];
    assert_eq!(r.disposition, Disposition::Answered);
    assert_eq!(
        r.hangup_by,
        if caller_hangs_up {
            HangupBy::Caller
        } else {
            HangupBy::Callee
        }
    );
    assert_eq!(
        (r.caller.as_str(), r.callee.as_str(), r.dialled.as_str()),
        ("1000", "1001", "1001")
    );
    let d = r.duration_secs();
    // Answered at about 2 s, hung up at 10 s; loss delays either by a
    // retransmission interval or two.
    assert!(
        (5..=9).contains(&d) || (net.drop_percent > 0 && d <= 11),
        "seed {seed}: duration {d}"
    );
    sim.run_for(secs(40));
    assert!(
        sim.engine.is_empty(),
        "seed {seed}: call reaped after lingering"
    );
    assert_ports_returned(&sim);
}

#[test]
fn basic_call_caller_hangs_up() {
    basic_call(1, NetConfig::perfect(), true);
}

#[test]
fn basic_call_callee_hangs_up() {
    basic_call(2, NetConfig::perfect(), false);
}

#[test]
fn basic_call_over_a_lossy_network() {
    for seed in 0..SEEDS {
        basic_call(seed, NetConfig::lossy(seed), seed % 2 == 0);
    }
}

// ---------------------------------------------------------------- anchoring & topology hiding

#[test]
fn media_is_anchored_and_topology_hidden() {
    let (mut sim, a, b) = two_phones(3, NetConfig::perfect());
    sim.phones[b].behavior = ring(Some(1));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    let a_ip = sim.phones[a].ip();
    let b_ip = sim.phones[b].ip();
    let a_call_id = sim.phones[a].dialog.as_ref().unwrap().call_id.clone();
    let a_tag = "alice-t1";
    // Everything the PBX sent to bob: no trace of alice.
    for m in sim.wire_with(b) {
        let text = String::from_utf8_lossy(&m.to_bytes()).into_owned();
        for secret in [a_ip.as_str(), a_call_id.as_str(), a_tag] {
            assert!(!text.contains(secret), "bob saw {secret:?} in\n{text}");
        }
    }
    for m in sim.wire_with(a) {
        let text = String::from_utf8_lossy(&m.to_bytes()).into_owned();
        assert!(!text.contains(&b_ip), "alice saw bob's address in\n{text}");
        assert!(!text.contains("bob-r0"), "alice saw bob's tag");
    }
    // The SDP each phone got names the relay, on the ports of its own leg.
    let invite_b = &sim.phones[b].received(Method::Invite)[0];
    assert_eq!(sdp_addr(&invite_b.body), "203.0.113.7");
    let ok_a = sim.phones[a]
        .responses
        .iter()
        .find(|r| r.status.as_u16() == 200)
        .unwrap();
    assert_eq!(sdp_addr(&ok_a.body), "203.0.113.7");
    let call = *sim.opened.first().unwrap();
    let ports = &sim.open_ports[&call][0];
    let sdp_b: media::Sdp = std::str::from_utf8(&invite_b.body)
        .unwrap()
        .parse()
        .unwrap();
    let sdp_a: media::Sdp = std::str::from_utf8(&ok_a.body).unwrap().parse().unwrap();
    assert_eq!(sdp_b.media[0].port, ports.b.rtp());
    assert_eq!(sdp_a.media[0].port, ports.a.rtp());
    // The relay legs point at the phones' own SDP addresses.
    let leg_a = sim.leg_configs(Side::A);
    let leg_b = sim.leg_configs(Side::B);
    assert_eq!(leg_a[0].remote_rtp.unwrap().ip().to_string(), a_ip);
    assert_eq!(
        leg_b.last().unwrap().remote_rtp.unwrap().ip().to_string(),
        b_ip
    );
    assert!(
        sim.media
            .iter()
            .any(|m| matches!(m, pbx::call::MediaCommand::Connected { .. }))
    );
}

// ---------------------------------------------------------------- forking

fn forked(seed: u64, net: NetConfig) {
    let mut sim = Sim::new(seed, net);
    let a = sim.phone("alice", "1000", true);
    let b1 = sim.phone("desk", "1001", true);
    let b2 = sim.phone("soft", "1001", true);
    sim.phones[b1].behavior = ring(Some(3));
    sim.phones[b2].behavior = ring(None);
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(20));
    assert_eq!(sim.phones[a].invite_finals(), [200], "seed {seed}");
    assert_eq!(
        sim.phones[b1].received(Method::Invite).len(),
        1,
        "seed {seed}"
    );
    assert_eq!(
        sim.phones[b2].received(Method::Invite).len(),
        1,
        "seed {seed}"
    );
    let c = cancels(&sim, b2);
    assert!(
        !c.is_empty(),
        "seed {seed}: the other contact was cancelled"
    );
    assert_eq!(
        c[0].headers.get("Reason"),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
    assert!(cancels(&sim, b1).is_empty(), "seed {seed}");
    // The two B-legs are separate dialogs with their own Call-IDs.
    let id1 = sim.phones[b1].received(Method::Invite)[0]
        .headers
        .get("Call-ID")
        .unwrap()
        .to_owned();
    let id2 = sim.phones[b2].received(Method::Invite)[0]
        .headers
        .get("Call-ID")
        .unwrap()
        .to_owned();
    assert_ne!(id1, id2);
    let now = sim.now;
    sim.phones[a]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(40));
    assert!(sim.phones[b1].ended, "seed {seed}");
    assert!(
        !sim.phones[b2].ended,
        "seed {seed}: the cancelled leg gets no BYE"
    );
    assert_eq!(sim.records.len(), 1);
    assert_eq!(sim.records[0].disposition, Disposition::Answered);
}

#[test]
fn forking_first_answer_wins_and_others_are_cancelled() {
    forked(4, NetConfig::perfect());
}

#[test]
fn forking_over_a_lossy_network() {
    for seed in 0..SEEDS {
        forked(seed, NetConfig::lossy(seed));
    }
}

// ---------------------------------------------------------------- failures

fn cancel_before_answer(seed: u64, net: NetConfig) {
    let (mut sim, a, b) = two_phones(seed, net);
    sim.phones[b].behavior = ring(None);
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(3));
    let now = sim.now;
    sim.phones[a].cancel(now);
    sim.run_for(secs(40));
    assert_eq!(sim.phones[a].invite_finals(), [487], "seed {seed}");
    assert!(!cancels(&sim, b).is_empty(), "seed {seed}: B-leg cancelled");
    assert_eq!(sim.records.len(), 1);
    assert_eq!(sim.records[0].disposition, Disposition::Cancelled);
    assert_eq!(sim.records[0].hangup_by, HangupBy::Caller);
    sim.run_for(secs(40));
    assert!(sim.engine.is_empty());
    assert_ports_returned(&sim);
}

#[test]
fn cancel_before_answer_gives_487() {
    cancel_before_answer(5, NetConfig::perfect());
}

#[test]
fn cancel_before_answer_over_a_lossy_network() {
    for seed in 0..SEEDS {
        cancel_before_answer(seed, NetConfig::lossy(seed));
    }
}

fn outcome(setup: impl FnOnce(&mut Sim), dialled: &str, run: u64) -> Sim {
    let (mut sim, a, _) = two_phones(6, NetConfig::perfect());
    setup(&mut sim);
    sim.phones[a].call(dialled, sim.now);
    sim.run_until(secs(run));
    sim
}

#[test]
fn busy_callee_gives_486() {
    let sim = outcome(|s| s.phones[1].behavior = Behavior::Reject(486), "1001", 10);
    assert_eq!(sim.phones[0].invite_finals(), [486]);
    assert_eq!(sim.records[0].disposition, Disposition::Busy);
}

#[test]
fn declined_call_passes_603() {
    let sim = outcome(|s| s.phones[1].behavior = Behavior::Reject(603), "1001", 10);
    assert_eq!(sim.phones[0].invite_finals(), [603]);
    assert_eq!(sim.records[0].disposition, Disposition::Rejected);
}

#[test]
fn unknown_extension_gives_404() {
    let sim = outcome(|_| {}, "1999", 10);
    assert_eq!(sim.phones[0].invite_finals(), [404]);
    assert_eq!(sim.records[0].disposition, Disposition::Failed);
    assert_ports_returned(&sim);
}

#[test]
fn unregistered_extension_gives_480() {
    let sim = outcome(|s| s.dir.add("1002"), "1002", 10);
    assert_eq!(sim.phones[0].invite_finals(), [480]);
    assert_eq!(sim.records[0].disposition, Disposition::NoAnswer);
}

#[test]
fn dnd_answers_busy() {
    let sim = outcome(|s| s.dir.edit("1001", |p| p.dnd = true), "1001", 10);
    assert_eq!(sim.phones[0].invite_finals(), [486]);
    assert!(sim.phones[1].received(Method::Invite).is_empty());
}

#[test]
fn max_forwards_zero_gives_483() {
    let sim = outcome(|s| s.phones[0].max_forwards = 0, "1001", 5);
    assert_eq!(sim.phones[0].invite_finals(), [483]);
    assert!(sim.phones[1].received(Method::Invite).is_empty());
}

#[test]
fn no_answer_timeout_gives_480_and_cancels() {
    let sim = outcome(
        |s| {
            s.phones[1].behavior = ring(None);
            s.dir.edit("1001", |p| p.no_answer_timeout = secs(15));
        },
        "1001",
        60,
    );
    assert_eq!(sim.phones[0].invite_finals(), [480]);
    assert!(!cancels(&sim, 1).is_empty());
    let r = &sim.records[0];
    assert_eq!(r.disposition, Disposition::NoAnswer);
    let rang = r.ended.duration_since(r.started);
    assert!(rang >= secs(15) && rang < secs(16), "{rang:?}");
}

// ---------------------------------------------------------------- forwarding

fn forward_to(ext: &str) -> Option<ForwardTarget> {
    Some(ForwardTarget::Extension(ext.parse().unwrap()))
}

fn diversion(req: &Request) -> Vec<String> {
    req.headers
        .get_all("Diversion")
        .map(str::to_owned)
        .collect()
}

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

fn connected(seed: u64, net: NetConfig) -> (Sim, usize, usize) {
    let (mut sim, a, b) = two_phones(seed, net);
    sim.phones[b].behavior = ring(Some(1));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    assert_eq!(
        sim.engine.calls()[0].phase,
        CallPhase::Connected,
        "seed {seed}"
    );
    (sim, a, b)
}

fn reinvite_finals(sim: &Sim, phone: usize) -> Vec<u16> {
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
