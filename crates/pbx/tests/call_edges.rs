//! Edge cases of call setup and teardown through the B2BUA engine (see
//! calls.rs for the harness): early media, refused offers and extensions,
//! relay exhaustion, snapshots, unacknowledged answers, races, scale.

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use harness::*;
use std::time::Duration;

use media::Side;
use pbx::call::{CallPhase, MediaCommand};
use phone::Behavior;
use sip::Method;
use store::{Disposition, HangupBy};

// ---------------------------------------------------------------- edges

#[test]
fn early_media_183_is_anchored_for_the_caller() {
    let sim = outcome(
        |s| {
            s.phones[1].behavior = Behavior::Ring {
                answer_after: Some(secs(3)),
                early_media: true,
            }
        },
        "1001",
        2,
    );
    let early = sim.phones[0]
        .responses
        .iter()
        .find(|r| r.status.as_u16() == 183)
        .expect("183 passed back");
    assert_eq!(sdp_addr(&early.body), "203.0.113.7");
    let leg_b = sim.leg_configs(Side::B);
    assert_eq!(
        leg_b[0].remote_rtp.unwrap().ip().to_string(),
        sim.phones[1].ip(),
        "the relay already sends early media towards the callee's SDP"
    );
    assert_eq!(sim.engine.calls()[0].phase, CallPhase::Ringing);
}

#[test]
fn invite_without_offer_gets_488() {
    let sim = outcome(|s| s.phones[0].send_sdp = false, "1001", 5);
    assert_eq!(sim.phones[0].invite_finals(), [488]);
    assert!(sim.phones[1].received(Method::Invite).is_empty());
}

#[test]
fn required_extension_gets_420() {
    let sim = outcome(|s| s.phones[0].require = Some("100rel"), "1001", 5);
    assert_eq!(sim.phones[0].invite_finals(), [420]);
    let r = sim.phones[0]
        .responses
        .iter()
        .find(|r| r.status.as_u16() == 420);
    assert_eq!(r.unwrap().headers.get("Unsupported"), Some("100rel"));
}

#[test]
fn refused_calls_take_no_relay_ports() {
    let sim = outcome(|_| {}, "1999", 5);
    assert!(sim.opened.is_empty());
    assert!(
        !sim.media
            .iter()
            .any(|m| matches!(m, pbx::call::MediaCommand::Close { .. }))
    );
}

#[test]
fn relay_port_exhaustion_gives_503() {
    // Two port pairs: exactly one single-stream call (one pair per side).
    let mut sim = Sim::with_ports(17, NetConfig::perfect(), "30000-30003");
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carol", "1002", true);
    sim.phone("dave", "1003", true);
    sim.phones[b].behavior = ring(Some(1));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    assert_eq!(sim.pool.available(), 0);
    sim.phones[c].call("1003", sim.now);
    sim.run_until(secs(10));
    assert_eq!(sim.phones[c].invite_finals(), [503]);
    assert_eq!(sim.records[0].disposition, Disposition::Failed);
    assert_eq!(
        sim.phones[a].invite_finals(),
        [200],
        "the first call is unharmed"
    );
}

#[test]
fn snapshot_lists_ringing_and_connected_calls() {
    let mut sim = Sim::new(18, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let b1 = sim.phone("desk", "1001", true);
    let b2 = sim.phone("soft", "1001", true);
    sim.phones[b1].behavior = ring(Some(4));
    sim.phones[b2].behavior = ring(None);
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(2));
    let calls = sim.engine.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].phase, CallPhase::Ringing);
    assert_eq!(calls[0].ringing_contacts, 2);
    assert_eq!(calls[0].tenant, sim.tenant);
    assert!(calls[0].answered.is_none());
    sim.run_until(secs(6));
    let calls = sim.engine.calls();
    assert_eq!(calls[0].phase, CallPhase::Connected);
    assert_eq!(calls[0].ringing_contacts, 0);
}

#[test]
fn answer_never_acked_is_hung_up() {
    let sim = outcome(
        |s| {
            s.phones[0].ack_2xx = false;
            s.phones[1].behavior = ring(Some(1));
        },
        "1001",
        60,
    );
    let oks = sim.phones[0]
        .responses
        .iter()
        .filter(|r| r.status.as_u16() == 200)
        .count();
    assert!(oks >= 5, "the 2xx was retransmitted ({oks})");
    assert!(sim.phones[1].ended, "callee released");
    assert!(
        !sim.phones[0].received(Method::Bye).is_empty(),
        "caller released"
    );
    let r = &sim.records[0];
    assert_eq!(r.hangup_by, HangupBy::System);
    assert_eq!(r.hangup_cause, "no ACK from caller");
}

/// The caller cancels just as the callee answers. Whichever wins, the
/// caller and callee agree, and everything is released.
#[test]
fn cancel_racing_answer_over_a_lossy_network() {
    let (mut both, mut cancelled) = (0, 0);
    for seed in 0..SEEDS {
        let (mut sim, a, b) = two_phones(seed, NetConfig::lossy(seed));
        sim.phones[b].behavior = ring(Some(3));
        sim.phones[a].call("1001", sim.now);
        sim.run_until(Duration::from_millis(2_900 + seed * 10));
        let now = sim.now;
        sim.phones[a].cancel(now);
        sim.run_for(secs(20));
        let finals = sim.phones[a].invite_finals();
        match finals.as_slice() {
            [487] => {
                cancelled += 1;
                assert_eq!(
                    sim.records[0].disposition,
                    Disposition::Cancelled,
                    "seed {seed}"
                );
                let b_released = !cancels(&sim, b).is_empty() || sim.phones[b].ended;
                assert!(b_released, "seed {seed}: callee released");
            }
            [200] => {
                both += 1;
                let now = sim.now;
                sim.phones[a]
                    .send_in_dialog(Method::Bye, false, now)
                    .unwrap();
                sim.run_for(secs(20));
                assert!(sim.phones[b].ended, "seed {seed}");
            }
            other => panic!("seed {seed}: caller got {other:?}"),
        }
        sim.run_for(secs(60));
        assert!(sim.engine.is_empty(), "seed {seed}");
        assert_ports_returned(&sim);
        assert_eq!(sim.records.len(), 1, "seed {seed}");
    }
    assert!(
        cancelled > 0 && both > 0,
        "both outcomes occur ({cancelled}/{both})"
    );
}

#[test]
fn no_answer_over_a_lossy_network() {
    for seed in 0..SEEDS {
        let (mut sim, a, b) = two_phones(seed, NetConfig::lossy(seed));
        sim.phones[b].behavior = ring(None);
        sim.dir.edit("1001", |p| p.no_answer_timeout = secs(10));
        sim.phones[a].call("1001", sim.now);
        sim.run_until(secs(60));
        assert_eq!(sim.phones[a].invite_finals(), [480], "seed {seed}");
        assert_eq!(sim.records[0].disposition, Disposition::NoAnswer);
        sim.run_for(secs(60));
        assert!(sim.engine.is_empty(), "seed {seed}");
        assert_ports_returned(&sim);
    }
}

#[test]
fn media_timeout_hangs_up_both_legs() {
    let (mut sim, a, b) = two_phones(22, NetConfig::perfect());
    sim.phones[b].behavior = ring(Some(1));
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(5));
    let id = sim.engine.calls()[0].id;
    let now = sim.now;
    sim.engine.hang_up(id, "media timeout", now);
    sim.run_for(secs(5));
    assert!(sim.phones[a].ended && sim.phones[b].ended);
    let r = &sim.records[0];
    assert_eq!(
        (r.disposition, r.hangup_by),
        (Disposition::Answered, HangupBy::System)
    );
    assert_eq!(r.hangup_cause, "media timeout");
    sim.engine.hang_up(id, "again", now); // ignored
    sim.run_for(secs(60));
    assert_eq!(sim.records.len(), 1);
    assert_ports_returned(&sim);
}

/// Many calls at once, over a lossy network: every one connects, hangs up
/// and leaves one answered CDR; nothing is left behind.
#[test]
fn many_concurrent_calls() {
    const CALLS: usize = 60;
    let mut sim = Sim::with_ports(23, NetConfig::lossy(1), "30000-31999");
    let exts: Vec<&'static str> = (0..2 * CALLS)
        .map(|i| &*Box::leak(format!("{}", 2000 + i).into_boxed_str()))
        .collect();
    for (i, e) in exts.iter().enumerate() {
        let p = sim.phone(e, e, true);
        sim.phones[p].behavior = ring(Some(1 + (i % 5) as u64));
    }
    for i in 0..CALLS {
        let now = sim.now;
        sim.phones[2 * i].call(exts[2 * i + 1], now);
    }
    sim.run_until(secs(15));
    let live = sim.engine.calls();
    assert_eq!(live.len(), CALLS);
    assert!(live.iter().all(|c| c.phase == CallPhase::Connected));
    for i in 0..CALLS {
        let now = sim.now;
        let who = if i % 2 == 0 { 2 * i } else { 2 * i + 1 };
        sim.phones[who]
            .send_in_dialog(Method::Bye, false, now)
            .unwrap();
    }
    sim.run_for(secs(100));
    assert_eq!(sim.records.len(), CALLS);
    assert!(
        sim.records
            .iter()
            .all(|r| r.disposition == Disposition::Answered)
    );
    assert!(sim.engine.is_empty());
    assert_ports_returned(&sim);
}

/// The caller cancels while the driver is still authenticating its INVITE:
/// the engine answers the CANCEL and the INVITE (487) itself, and ignores
/// the INVITE when the driver hands it over.
#[test]
fn cancel_while_the_invite_is_being_authenticated() {
    let (mut sim, a, b) = two_phones(25, NetConfig::perfect());
    sim.defer_invites = true;
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(1));
    assert_eq!(sim.deferred.len(), 1);
    let now = sim.now;
    sim.phones[a].cancel(now);
    sim.run_until(secs(2));
    sim.release_invites();
    sim.run_until(secs(40));
    assert_eq!(sim.phones[a].invite_finals(), [487]);
    assert!(
        sim.phones[a].responses.iter().any(
            |r| r.status.as_u16() == 200 && r.cseq().unwrap().unwrap().method == Method::Cancel
        )
    );
    assert!(sim.phones[b].received(Method::Invite).is_empty());
    assert!(sim.engine.is_empty() && sim.records.is_empty() && sim.opened.is_empty());
}

#[test]
fn out_of_dialog_options_answered_other_methods_refused() {
    let (mut sim, a, _) = two_phones(26, NetConfig::perfect());
    sim.phones[a].dialog = Some(phone::PhoneDialog {
        call_id: "ping-1".into(),
        local: "<sip:1000@pbx.test>;tag=p1".into(),
        remote: "<sip:pbx.test>".into(),
        target: "sip:pbx.test".parse().unwrap(),
        cseq: 1,
    });
    let now = sim.now;
    sim.phones[a]
        .send_in_dialog(Method::Options, false, now)
        .unwrap();
    sim.phones[a]
        .send_in_dialog(Method::Message, false, now)
        .unwrap();
    sim.run_until(secs(5));
    let codes: Vec<u16> = sim.phones[a]
        .responses
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(codes, [200, 405]);
    let allow = sim.phones[a].responses[1].headers.get("Allow").unwrap();
    assert!(allow.contains("INVITE") && allow.contains("UPDATE"));
    assert!(sim.engine.is_empty());
}

/// One contact declines (603) while another rings: the decline is the
/// callee's answer everywhere (RFC 3261 §16.7), so the ringing contact is
/// cancelled and the caller hears 603 at once.
#[test]
fn decline_on_one_contact_stops_the_others() {
    let mut sim = Sim::new(27, NetConfig::perfect());
    let a = sim.phone("alice", "1000", true);
    let b1 = sim.phone("desk", "1001", true);
    let b2 = sim.phone("soft", "1001", true);
    sim.phones[b1].behavior = Behavior::Reject(603);
    sim.phones[b2].behavior = ring(None);
    sim.phones[a].call("1001", sim.now);
    sim.run_until(secs(3));
    assert_eq!(sim.phones[a].invite_finals(), [603]);
    let c = sim.phones[b2].received(Method::Cancel);
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].headers.get("Reason"),
        Some("SIP;cause=603;text=\"Declined\"")
    );
    assert_eq!(sim.records[0].disposition, Disposition::Rejected);
}

/// The last 2xx to a re-INVITE that `phone` received, as SDP.
fn last_reinvite_answer(sim: &Sim, phone: usize) -> media::Sdp {
    let ok = sim.phones[phone]
        .responses
        .iter()
        .rev()
        .find(|r| {
            r.status.is_success()
                && r.cseq()
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.method == Method::Invite && c.seq > 1)
        })
        .expect("a 2xx to the re-INVITE");
    std::str::from_utf8(&ok.body).unwrap().parse().unwrap()
}

fn music(sim: &Sim) -> Vec<(media::Side, bool)> {
    sim.media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::Music { to, on, .. } => Some((*to, *on)),
            _ => None,
        })
        .collect()
}

fn reinvite(sim: &mut Sim, phone: usize, sdp_edit: impl Fn(String) -> String) {
    let now = sim.now;
    let body = sdp_edit(String::from_utf8(phone::sdp(&sim.phones[phone].ip(), 40000)).unwrap());
    sim.phones[phone].send_in_dialog_with(sip::Method::Invite, body.into_bytes(), now);
    sim.run_for(secs(5));
}

/// Hold is answered by Switchboard itself: the holder gets `recvonly` from
/// the relay, the other party keeps its session (no re-INVITE reaches it)
/// and hears music; resume restores two-way media. Legacy `c=0.0.0.0`,
/// both parties holding at once, and a codec change on resume work too.
#[test]
fn hold_is_answered_here_with_music_until_resume() {
    let (mut sim, a, b) = connected(28, NetConfig::perfect());
    reinvite(&mut sim, a, |s| s.replace("a=sendrecv", "a=sendonly"));
    assert_eq!(
        sim.phones[b].received(Method::Invite).len(),
        1,
        "B untouched"
    );
    let ans = last_reinvite_answer(&sim, a);
    assert_eq!(
        ans.media[0].direction_attr(),
        Some(media::Direction::RecvOnly)
    );
    assert_eq!(ans.connection.unwrap().address, "203.0.113.7");
    assert_eq!(music(&sim), vec![(media::Side::B, true)]);

    // B holds too (legacy style): music both ways.
    let ip = sim.phones[b].ip();
    reinvite(&mut sim, b, |s| {
        s.replace(&format!("c=IN IP4 {ip}"), "c=IN IP4 0.0.0.0")
    });
    assert_eq!(
        sim.phones[a].received(Method::Invite).len(),
        0,
        "A untouched"
    );
    assert_eq!(
        music(&sim),
        vec![(media::Side::B, true), (media::Side::A, true)]
    );

    // A resumes offering PCMA only, while B was set up with PCMU first:
    // answered with PCMA, and the relay converts toward A.
    reinvite(&mut sim, a, |s| {
        s.replace("RTP/AVP 0 8 101", "RTP/AVP 8 101")
    });
    let ans = last_reinvite_answer(&sim, a);
    assert_eq!(
        ans.media[0].direction_attr(),
        Some(media::Direction::SendRecv)
    );
    assert_eq!(ans.media[0].formats, vec!["8".to_owned(), "101".to_owned()]);
    assert_eq!(music(&sim).last(), Some(&(media::Side::B, false)));
    let to_a = sim.leg_configs(media::Side::A);
    assert_eq!(
        to_a.last().unwrap().transcode,
        Some(media::Transcode::UlawToAlaw)
    );

    // B resumes: no music left, still no re-INVITE crossed the bridge.
    reinvite(&mut sim, b, |s| s);
    assert_eq!(music(&sim).last(), Some(&(media::Side::A, false)));
    assert_eq!(sim.phones[a].received(Method::Invite).len(), 0);
    assert_eq!(sim.phones[b].received(Method::Invite).len(), 1);
}

/// A re-INVITE that is not a hold (a codec or address change) still
/// crosses the bridge.
#[test]
fn other_reinvites_cross_the_bridge() {
    let (mut sim, a, b) = connected(29, NetConfig::perfect());
    reinvite(&mut sim, a, |s| s.replace("40000", "40010"));
    let re = sim.phones[b].received(Method::Invite);
    assert_eq!(re.len(), 2);
    let sdp: media::Sdp = std::str::from_utf8(&re[1].body).unwrap().parse().unwrap();
    assert_eq!(sdp.connection.unwrap().address, "203.0.113.7");
    assert!(music(&sim).is_empty());
}
