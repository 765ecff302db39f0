//! Blind transfer (REFER) through the B2BUA engine, on the in-memory
//! network (see calls.rs for the harness).

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use harness::*;
use pbx::call::{CallPhase, MediaCommand};
use phone::Behavior;
use sip::Method;

/// The sipfrag status lines a phone received in NOTIFYs, in order.
fn notified(sim: &Sim, phone: usize) -> Vec<String> {
    sim.phones[phone]
        .received(Method::Notify)
        .iter()
        .map(|n| {
            assert_eq!(n.headers.get("Event"), Some("refer"));
            String::from_utf8_lossy(&n.body).trim().to_owned()
        })
        .collect()
}

/// Alice (1000) talks to Bob (1001); Carol (1002) answers after a second.
fn three(seed: u64) -> (Sim, usize, usize, usize) {
    let (mut sim, a, b) = connected(seed, NetConfig::perfect());
    let c = sim.phone("carol", "1002", true);
    sim.phones[c].behavior = ring(Some(1));
    (sim, a, b, c)
}

fn pai_of_last_reinvite(sim: &Sim, phone: usize) -> String {
    let re = sim.phones[phone].received(Method::Invite);
    let last = re.last().expect("a re-INVITE");
    last.headers
        .get("P-Asserted-Identity")
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn callee_transfers_the_caller_blind() {
    for seed in 0..20 {
        let (mut sim, a, b, c) = three(seed);
        let now = sim.now;
        sim.phones[b].refer("<sip:1002@pbx.example>", now);
        sim.run_for(secs(5));
        assert_eq!(
            notified(&sim, b),
            ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"],
            "seed {seed}"
        );
        assert!(sim.phones[b].ended, "the transferor's leg got BYE");
        let inv = sim.phones[c].received(Method::Invite);
        assert_eq!(inv.len(), 1);
        assert!(
            inv[0].headers.get("From").unwrap().contains("sip:1000@"),
            "the target sees the transferee: {:?}",
            inv[0].headers.get("From")
        );
        // Alice is told who she talks to now (and Carol's description).
        assert!(pai_of_last_reinvite(&sim, a).contains("sip:1002@"));
        let calls = sim.engine.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].phase, CallPhase::Connected);
        assert_eq!(calls[0].callee, "1002");
        // Alice hangs up: one record, showing the transfer.
        let now = sim.now;
        sim.phones[a].send_in_dialog(Method::Bye, false, now);
        sim.run_for(secs(5));
        assert!(sim.phones[c].ended);
        let rec = sim.records.last().expect("a record");
        assert_eq!(rec.caller, "1000");
        assert_eq!(rec.callee, "1002");
        assert_eq!(
            rec.transferred,
            Some(("1001".to_owned(), "1002".to_owned()))
        );
        sim.run_for(secs(40));
        assert_ports_returned(&sim);
    }
}

#[test]
fn caller_transfers_the_callee_blind() {
    let (mut sim, a, b, c) = three(41);
    let now = sim.now;
    sim.phones[a].refer("<sip:1002@pbx.example>", now);
    sim.run_for(secs(5));
    assert_eq!(notified(&sim, a), ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]);
    assert!(sim.phones[a].ended);
    assert!(!sim.phones[b].ended);
    let inv = sim.phones[c].received(Method::Invite);
    assert!(inv[0].headers.get("From").unwrap().contains("sip:1001@"));
    assert!(pai_of_last_reinvite(&sim, b).contains("sip:1002@"));
    assert!(
        sim.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Swap { .. })),
        "the relay's sides were exchanged"
    );
    // Bob and Carol talk; Carol hangs up.
    let now = sim.now;
    sim.phones[c].send_in_dialog(Method::Bye, false, now);
    sim.run_for(secs(5));
    assert!(sim.phones[b].ended);
    let rec = sim.records.last().unwrap();
    assert_eq!(
        rec.transferred,
        Some(("1000".to_owned(), "1002".to_owned()))
    );
    sim.run_for(secs(40));
    assert_ports_returned(&sim);
}

#[test]
fn a_busy_or_unknown_target_leaves_the_call_with_the_transferor() {
    let (mut sim, a, b, c) = three(42);
    sim.phones[c].behavior = Behavior::Reject(486);
    let now = sim.now;
    sim.phones[b].refer("<sip:1002@pbx.example>", now);
    sim.run_for(secs(5));
    assert_eq!(
        notified(&sim, b),
        ["SIP/2.0 100 Trying", "SIP/2.0 486 Busy Here"]
    );
    assert!(!sim.phones[a].ended && !sim.phones[b].ended);
    assert_eq!(sim.engine.calls()[0].callee, "1001");
    // Unknown number: refused in the NOTIFY; a second try is possible.
    let now = sim.now;
    sim.phones[b].refer("<sip:4444@pbx.example>", now);
    sim.run_for(secs(5));
    assert_eq!(
        notified(&sim, b)[2..],
        ["SIP/2.0 100 Trying", "SIP/2.0 404 Not Found"]
    );
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Connected);
}

#[test]
fn an_unanswered_target_times_out_back_to_the_transferor() {
    let (mut sim, _a, b, c) = three(43);
    sim.phones[c].behavior = ring(None);
    sim.dir.edit("1002", |p| p.no_answer_timeout = secs(5));
    let now = sim.now;
    sim.phones[b].refer("<sip:1002@pbx.example>", now);
    sim.run_for(secs(10));
    assert_eq!(
        notified(&sim, b),
        ["SIP/2.0 100 Trying", "SIP/2.0 480 Temporarily Unavailable"]
    );
    assert_eq!(cancels(&sim, c).len(), 1, "the target stops ringing");
    assert!(!sim.phones[b].ended);
}

fn tag(header: &str) -> String {
    header
        .split(";tag=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Bob holds Alice, calls Carol, then REFERs Alice's leg with Replaces
/// naming his call with Carol: Alice and Carol talk, Bob leaves both calls.
#[test]
fn attended_transfer_joins_the_two_other_parties() {
    let (mut sim, a, b, c) = three(44);
    let now = sim.now;
    let hold = String::from_utf8(phone::sdp(&sim.phones[b].ip(), 40000))
        .unwrap()
        .replace("a=sendrecv", "a=sendonly");
    sim.phones[b].send_in_dialog_with(Method::Invite, hold.into_bytes(), now);
    sim.run_for(secs(2));
    let now = sim.now;
    sim.phones[b].call("1002", now);
    sim.run_for(secs(5));
    assert_eq!(sim.engine.calls().len(), 2);
    let consult = sim.phones[b].dialog.clone().expect("Bob's call to Carol");
    let replaces = format!(
        "{};to-tag={};from-tag={}",
        consult.call_id,
        tag(&consult.remote),
        tag(&consult.local)
    );
    let escaped = replaces
        .replace('@', "%40")
        .replace(';', "%3B")
        .replace('=', "%3D");
    let now = sim.now;
    sim.phones[b].refer(&format!("<sip:1002@pbx.example?Replaces={escaped}>"), now);
    sim.run_for(secs(5));
    assert_eq!(notified(&sim, b), ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]);
    assert_eq!(
        sim.phones[b].received(Method::Bye).len(),
        2,
        "Bob leaves both calls"
    );
    assert!(pai_of_last_reinvite(&sim, a).contains("sip:1002@"));
    assert!(pai_of_last_reinvite(&sim, c).contains("sip:1000@"));
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].caller.as_str(), calls[0].callee.as_str()),
        ("1000", "1002")
    );
    assert!(
        sim.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Music { on: false, .. })),
        "Alice's music stops"
    );
    let consult_rec = sim
        .records
        .iter()
        .find(|r| r.hangup_cause == "attended transfer")
        .expect("the consultation call's record");
    assert_eq!(consult_rec.caller, "1001");
    // Carol hangs up: Alice's call ends, recorded as transferred by Bob.
    let now = sim.now;
    sim.phones[c].send_in_dialog(Method::Bye, false, now);
    sim.run_for(secs(5));
    assert!(sim.phones[a].ended);
    let rec = sim.records.last().unwrap();
    assert_eq!(
        rec.transferred,
        Some(("1001".to_owned(), "1002".to_owned()))
    );
    sim.run_for(secs(40));
    assert_ports_returned(&sim);
}

/// Bob's early or confirmed dialog with the PBX, as a Replaces value.
fn replaces_for(sim: &Sim, phone: usize) -> String {
    let inv = sim.phones[phone].received(Method::Invite)[0];
    let ours = tag(inv.headers.get("From").unwrap());
    let theirs = sim.phones[phone].incoming[0].tag.clone();
    format!(
        "{};to-tag={ours};from-tag={theirs}",
        inv.headers.get("Call-ID").unwrap()
    )
}

#[test]
fn directed_pickup_answers_a_ringing_call_from_another_phone() {
    let (mut sim, a, b) = two_phones(45, NetConfig::perfect());
    let d = sim.phone("dave", "1003", true);
    sim.phones[b].behavior = ring(None);
    let now = sim.now;
    sim.phones[a].call("1001", now);
    sim.run_for(secs(2));
    let replaces = replaces_for(&sim, b);
    sim.phones[d].extra_headers = vec![("Replaces", replaces), ("Require", "replaces".to_owned())];
    let now = sim.now;
    sim.phones[d].call("1001", now);
    sim.phones[d].extra_headers.clear();
    sim.run_for(secs(5));
    assert_eq!(
        sim.phones[a].invite_finals(),
        [200],
        "the caller is answered"
    );
    assert_eq!(sim.phones[d].invite_finals(), [200], "by the picker");
    let cancel = cancels(&sim, b);
    assert_eq!(cancel.len(), 1, "the ringing phone stops");
    assert!(
        cancel[0]
            .headers
            .get("Reason")
            .unwrap()
            .contains("cause=200")
    );
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].phase, CallPhase::Connected);
    assert_eq!(calls[0].callee, "1003");
    let now = sim.now;
    sim.phones[d].send_in_dialog(Method::Bye, false, now);
    sim.run_for(secs(5));
    assert!(sim.phones[a].ended);
    sim.run_for(secs(40));
    assert_ports_returned(&sim);
}

#[test]
fn invite_with_replaces_takes_over_a_connected_leg() {
    let (mut sim, a, b) = connected(46, NetConfig::perfect());
    let d = sim.phone("dave", "1003", true);
    let replaces = replaces_for(&sim, b);
    sim.phones[d].extra_headers = vec![("Replaces", replaces)];
    let now = sim.now;
    sim.phones[d].call("1001", now);
    sim.phones[d].extra_headers.clear();
    sim.run_for(secs(5));
    assert_eq!(sim.phones[d].invite_finals(), [200]);
    assert!(sim.phones[b].ended, "the replaced phone gets BYE");
    assert!(pai_of_last_reinvite(&sim, a).contains("sip:1003@"));
    assert_eq!(sim.engine.calls()[0].callee, "1003");
    // A dialog that does not exist: 481.
    let e = sim.phone("eve", "1004", true);
    sim.phones[e].extra_headers = vec![("Replaces", "nope@nowhere;to-tag=x;from-tag=y".to_owned())];
    let now = sim.now;
    sim.phones[e].call("1001", now);
    sim.run_for(secs(5));
    assert_eq!(sim.phones[e].invite_finals(), [481]);
}

/// A blind transfer to a mobile number leaves through the trunks, failing
/// over from a trunk that answers 503 to one that answers.
#[test]
fn blind_transfer_to_an_outside_number_fails_over_between_trunks() {
    let (mut sim, a, b) = connected(47, NetConfig::perfect());
    let c1 = sim.phone("carrier1", "9901", false);
    let c2 = sim.phone("carrier2", "9902", false);
    sim.phones[c1].behavior = Behavior::Reject(503);
    sim.phones[c2].behavior = ring(Some(1));
    sim.dir.add_trunk(sim.phones[c1].addr, None);
    sim.dir.add_trunk(sim.phones[c2].addr, None);
    let now = sim.now;
    sim.phones[b].refer("<sip:07400123456@pbx.example>", now);
    sim.run_for(secs(6));
    assert_eq!(notified(&sim, b), ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]);
    assert_eq!(sim.phones[c1].received(Method::Invite).len(), 1);
    let inv = sim.phones[c2].received(Method::Invite);
    assert_eq!(inv[0].uri.user(), Some("+447400123456"));
    assert!(pai_of_last_reinvite(&sim, a).contains("+447400123456"));
    let calls = sim.engine.calls();
    assert_eq!(calls[0].callee, "+447400123456");
    let now = sim.now;
    sim.phones[a].send_in_dialog(Method::Bye, false, now);
    sim.run_for(secs(5));
    assert!(sim.phones[c2].ended);
    let rec = sim.records.last().unwrap();
    assert_eq!(rec.direction, store::Direction::Outbound);
    assert!(rec.trunk.is_some());
    assert_eq!(
        rec.transferred,
        Some(("1001".to_owned(), "+447400123456".to_owned()))
    );
}

/// A blind transfer to a ring group rings its members with the
/// transferee's identity and the group's name; the first to answer gets the
/// call and the others are told it was answered elsewhere.
#[test]
fn blind_transfer_to_a_ring_group() {
    let (mut sim, a, b, c) = three(48);
    let d = sim.phone("dave", "1003", true);
    sim.phones[c].behavior = ring(None);
    sim.phones[d].behavior = ring(Some(1));
    sim.dir
        .add_group("600", store::RingStrategy::Simultaneous, &["1002", "1003"]);
    let now = sim.now;
    sim.phones[b].refer("<sip:600@pbx.example>", now);
    sim.run_for(secs(5));
    assert_eq!(notified(&sim, b), ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]);
    let inv = sim.phones[c].received(Method::Invite);
    let from = inv[0].headers.get("From").unwrap();
    assert!(
        from.contains("(Sales)") && from.contains("sip:1000@"),
        "{from}"
    );
    let cancel = cancels(&sim, c);
    assert_eq!(cancel.len(), 1);
    assert!(
        cancel[0]
            .headers
            .get("Reason")
            .unwrap()
            .contains("cause=200")
    );
    assert!(pai_of_last_reinvite(&sim, a).contains("sip:1003@"));
    assert_eq!(sim.engine.calls()[0].callee, "1003");
    let now = sim.now;
    sim.phones[a].send_in_dialog(Method::Bye, false, now);
    sim.run_for(secs(5));
    let rec = sim.records.last().unwrap();
    assert_eq!(
        rec.transferred,
        Some(("1001".to_owned(), "1003".to_owned()))
    );
}

#[test]
fn a_ring_group_nobody_can_answer_fails_the_transfer() {
    let (mut sim, a, b, _c) = three(49);
    sim.dir
        .add_group("601", store::RingStrategy::Sequential, &["1005", "1006"]);
    let now = sim.now;
    sim.phones[b].refer("<sip:601@pbx.example>", now);
    sim.run_for(secs(5));
    assert_eq!(
        notified(&sim, b),
        ["SIP/2.0 100 Trying", "SIP/2.0 480 Temporarily Unavailable"]
    );
    assert!(!sim.phones[a].ended && !sim.phones[b].ended);
    assert_eq!(sim.engine.calls()[0].callee, "1001");
}

/// Phones that hang up right after the 202: the transferee waits for the
/// target and gets it; if the target never answers, the transferee's call
/// ends cleanly with a recorded cause instead of lingering.
#[test]
fn the_transferor_may_hang_up_before_the_target_answers() {
    let (mut sim, a, b, c) = three(50);
    sim.phones[c].behavior = ring(Some(2));
    let now = sim.now;
    sim.phones[b].refer("<sip:1002@pbx.example>", now);
    sim.run_for(secs(1));
    let now = sim.now;
    sim.phones[b].send_in_dialog(Method::Bye, false, now);
    sim.run_for(secs(5));
    assert!(!sim.phones[a].ended, "the transferee stays");
    assert_eq!(sim.engine.calls()[0].callee, "1002");
    assert!(pai_of_last_reinvite(&sim, a).contains("sip:1002@"));

    // Again, with a target that never answers.
    let (mut sim, a, b, c) = three(51);
    sim.phones[c].behavior = ring(None);
    sim.dir.edit("1002", |p| p.no_answer_timeout = secs(5));
    let now = sim.now;
    sim.phones[b].refer("<sip:1002@pbx.example>", now);
    sim.run_for(secs(1));
    let now = sim.now;
    sim.phones[b].send_in_dialog(Method::Bye, false, now);
    sim.run_for(secs(10));
    assert!(sim.phones[a].ended, "the transferee is hung up");
    assert_eq!(cancels(&sim, c).len(), 1);
    let rec = sim.records.last().unwrap();
    assert!(
        rec.hangup_cause.starts_with("transfer failed"),
        "{}",
        rec.hangup_cause
    );
    sim.run_for(secs(40));
    assert_ports_returned(&sim);
}

/// `**1001` from another phone picks up the call ringing at 1001; with
/// nothing ringing there it is a clear 404.
#[test]
fn star_star_extension_picks_up_the_call_ringing_there() {
    let (mut sim, a, b) = two_phones(52, NetConfig::perfect());
    let d = sim.phone("dave", "1003", true);
    sim.phones[b].behavior = ring(None);
    let now = sim.now;
    sim.phones[d].call("**1001", now);
    sim.run_for(secs(2));
    assert_eq!(sim.phones[d].invite_finals(), [404], "nothing ringing yet");
    let now = sim.now;
    sim.phones[a].call("1001", now);
    sim.run_for(secs(2));
    let now = sim.now;
    sim.phones[d].call("**1001", now);
    sim.run_for(secs(5));
    assert_eq!(sim.phones[a].invite_finals(), [200]);
    assert_eq!(cancels(&sim, b).len(), 1);
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].callee, "1003");
    assert_eq!(calls[0].phase, CallPhase::Connected);
}

/// Bob's early dialog with the PBX for his (ringing) call to Carol, as a
/// Replaces value escaped for a Refer-To URI.
fn early_replaces(sim: &Sim, phone: usize) -> String {
    let d = sim.phones[phone].dialog.clone().expect("an outgoing call");
    let ringing = sim.phones[phone]
        .responses
        .iter()
        .find(|r| r.status.as_u16() == 180 && r.headers.get("Call-ID") == Some(d.call_id.as_str()))
        .expect("a 180 for the consultation");
    let ours = tag(ringing.headers.get("To").unwrap());
    format!("{};to-tag={ours};from-tag={}", d.call_id, tag(&d.local))
        .replace('@', "%40")
        .replace(';', "%3B")
        .replace('=', "%3D")
}

/// Semi-attended: Bob REFERs while his consultation call to Carol still
/// rings. When Carol answers, she is joined with Alice; Bob's consultation
/// INVITE ends with 487 and he leaves Alice's call.
#[test]
fn semi_attended_transfer_joins_when_the_target_answers() {
    let (mut sim, a, b, c) = three(53);
    sim.phones[c].behavior = ring(Some(3));
    let now = sim.now;
    sim.phones[b].call("1002", now);
    sim.run_for(secs(1));
    let replaces = early_replaces(&sim, b);
    let now = sim.now;
    sim.phones[b].refer(&format!("<sip:1002@pbx.example?Replaces={replaces}>"), now);
    sim.run_for(secs(1));
    assert_eq!(
        notified(&sim, b),
        ["SIP/2.0 100 Trying"],
        "waiting for Carol"
    );
    sim.run_for(secs(5));
    assert_eq!(notified(&sim, b), ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]);
    assert!(sim.phones[b].invite_finals().contains(&487));
    assert!(sim.phones[b].ended, "Bob leaves Alice's call");
    assert!(pai_of_last_reinvite(&sim, a).contains("sip:1002@"));
    assert!(pai_of_last_reinvite(&sim, c).contains("sip:1000@"));
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].caller.as_str(), calls[0].callee.as_str()),
        ("1000", "1002")
    );
    let now = sim.now;
    sim.phones[c].send_in_dialog(Method::Bye, false, now);
    sim.run_for(secs(5));
    assert!(sim.phones[a].ended);
    sim.run_for(secs(40));
    assert_ports_returned(&sim);
}

#[test]
fn semi_attended_transfer_to_a_busy_target_stays_with_the_transferor() {
    let (mut sim, a, b, c) = three(54);
    sim.phones[c].behavior = ring(None);
    sim.dir.edit("1002", |p| p.no_answer_timeout = secs(4));
    let now = sim.now;
    sim.phones[b].call("1002", now);
    sim.run_for(secs(1));
    let replaces = early_replaces(&sim, b);
    let now = sim.now;
    sim.phones[b].refer(&format!("<sip:1002@pbx.example?Replaces={replaces}>"), now);
    sim.run_for(secs(6));
    assert_eq!(
        notified(&sim, b),
        ["SIP/2.0 100 Trying", "SIP/2.0 480 Temporarily Unavailable"]
    );
    assert!(!sim.phones[a].ended);
    assert_eq!(sim.engine.calls().len(), 1, "Alice and Bob still talk");
}
