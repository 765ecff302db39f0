//! Call flows through the B2BUA engine: the engine behind its transaction
//! layer, scripted phones behind theirs, an in-memory network (lossy for
//! the seeded runs) and a virtual clock. Setup, forking and failures here;
//! forwarding and mid-call requests in call_features.rs.

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use harness::*;
use media::Side;
use pbx::call::CallPhase;
use phone::Behavior;
use sip::Method;
use store::{Disposition, HangupBy};

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
    let from = invite_b.headers.get("From").unwrap();
    assert!(
        from.starts_with("\"Ext 1000\" <sip:1000@"),
        "caller ID from the directory: {from}"
    );
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
