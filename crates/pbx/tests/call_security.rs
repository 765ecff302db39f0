//! Attacks on the call engine, each named after the attack, on the
//! in-memory network (see calls/harness.rs).

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use harness::*;
use pbx::call::CallPhase;
use sip::Method;

/// The final statuses a phone received for requests of `method`.
fn finals(sim: &Sim, phone: usize, method: Method) -> Vec<u16> {
    sim.phones[phone]
        .responses
        .iter()
        .filter(|r| {
            r.status.is_final() && r.cseq().ok().flatten().is_some_and(|c| c.method == method)
        })
        .map(|r| r.status.as_u16())
        .collect()
}

/// Mallory (another customer's phone, unregistered here) learnt Alice's
/// dialog identifiers and sends a BYE (then a re-INVITE) in it from her own
/// address: refused with 403, and the call goes on.
#[test]
fn forged_bye_from_third_party_is_refused() {
    let (mut sim, a, b) = connected(70, NetConfig::perfect());
    let m = sim.phone("mallory", "1666", false);
    sim.phones[m].dialog = sim.phones[a].dialog.clone();
    sim.phones[m].dialog.as_mut().unwrap().cseq += 10;
    let now = sim.now;
    sim.phones[m]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(2));
    assert_eq!(finals(&sim, m, Method::Bye), [403]);
    let now = sim.now;
    sim.phones[m]
        .send_in_dialog(Method::Invite, true, now)
        .unwrap();
    sim.run_for(secs(2));
    assert_eq!(finals(&sim, m, Method::Invite), [403]);
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].phase, CallPhase::Connected, "the call goes on");
    assert!(sim.phones[b].received(Method::Bye).is_empty());
    assert!(
        sim.phones[b].received(Method::Invite).len() == 1,
        "no re-INVITE reached Bob"
    );
    // Alice herself still hangs up normally.
    let now = sim.now;
    sim.phones[a]
        .send_in_dialog(Method::Bye, false, now)
        .unwrap();
    sim.run_for(secs(2));
    assert_eq!(finals(&sim, a, Method::Bye), [200]);
    assert_eq!(sim.phones[b].received(Method::Bye).len(), 1);
}

/// A carrier behind a trunk, Bob (1001) answering its call to a number.
fn inbound_connected(seed: u64) -> (Sim, usize, usize) {
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
    sim.phones[c].call("+442079460018", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Connected);
    (sim, c, b)
}

/// The PSTN party of an inbound call REFERs Bob's call to an extension of
/// the business (or anywhere): refused, nothing rings, the call goes on.
#[test]
fn trunk_side_refer_is_refused() {
    let (mut sim, c, b) = inbound_connected(71);
    let d = sim.phone("dave", "1003", true);
    let now = sim.now;
    sim.phones[c].refer("<sip:1003@pbx.test>", now).unwrap();
    sim.run_for(secs(5));
    assert_eq!(finals(&sim, c, Method::Refer), [403]);
    assert!(sim.phones[d].received(Method::Invite).is_empty());
    assert!(sim.phones[b].received(Method::Bye).is_empty());
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Connected);
}

/// A call from the trunk whose INVITE carries Replaces naming Bob's leg
/// of a connected call (a takeover attempt by an outsider): 403, Bob stays.
#[test]
fn replaces_from_a_trunk_is_refused() {
    let (mut sim, a, b) = connected(72, NetConfig::perfect());
    let c = sim.phone("carrier1", "9901", false);
    let trunk = sim.dir.add_trunk(sim.phones[c].addr, None);
    sim.trunk_sources.insert(sim.phones[c].addr, trunk);
    sim.dir
        .numbers
        .lock()
        .unwrap()
        .insert("+442079460018".into(), "1001".into());
    let inv = sim.phones[b].received(Method::Invite)[0];
    let ours = sip::NameAddr::parse(inv.headers.get("From").unwrap(), "From")
        .unwrap()
        .tag()
        .unwrap()
        .to_owned();
    let replaces = format!(
        "{};to-tag={ours};from-tag={}",
        inv.headers.get("Call-ID").unwrap(),
        sim.phones[b].incoming[0].tag
    );
    sim.phones[c].extra_headers = vec![("Replaces", replaces)];
    let now = sim.now;
    sim.phones[c].call("+442079460018", now);
    sim.run_for(secs(5));
    assert_eq!(sim.phones[c].invite_finals(), [403]);
    assert!(sim.phones[b].received(Method::Bye).is_empty(), "Bob stays");
    assert!(!sim.phones[a].ended);
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].callee, "1001");
}
