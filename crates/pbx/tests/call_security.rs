//! Attacks on the call engine, each named after the attack, on the
//! in-memory network (see calls/harness.rs).

#[path = "calls/harness.rs"]
mod harness;
#[path = "calls/phone.rs"]
mod phone;

use harness::*;
use pbx::call::CallPhase;
use sip::Method;
use std::time::Duration;

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

/// A carrier behind a trunk, with +44 20 7946 0018 routed to 1001.
fn carrier(sim: &mut Sim) -> usize {
    let c = sim.phone("carrier1", "9901", false);
    let trunk = sim.dir.add_trunk(sim.phones[c].addr, None);
    sim.trunk_sources.insert(sim.phones[c].addr, trunk);
    sim.dir
        .numbers
        .lock()
        .unwrap()
        .insert("+442079460018".into(), "1001".into());
    c
}

/// A carrier behind a trunk, Bob (1001) answering its call to a number.
fn inbound_connected(seed: u64) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed, NetConfig::perfect());
    let c = carrier(&mut sim);
    let b = sim.phone("bob", "1001", true);
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
    let c = carrier(&mut sim);
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

/// An offer with three audio and three video m-lines (a phone trying to
/// eat relay ports): two of each are relayed, the third of each kind is
/// refused with port 0 and takes no ports.
#[test]
fn offer_with_many_m_lines_gets_ports_for_two_audio_and_two_video_only() {
    let (mut sim, a, b) = two_phones(73, NetConfig::perfect());
    sim.phones[b].behavior = ring(None);
    let mut offer = String::from(
        "v=0\r\no=- 7 7 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n",
    );
    for (i, kind) in ["audio", "audio", "audio", "video", "video", "video"]
        .iter()
        .enumerate()
    {
        let pt = if *kind == "audio" { "0" } else { "96" };
        offer.push_str(&format!("m={kind} {} RTP/AVP {pt}\r\n", 40000 + 2 * i));
        if *kind == "video" {
            offer.push_str("a=rtpmap:96 H264/90000\r\n");
        }
    }
    sim.phones[a].offer = Some(offer.into_bytes());
    let free = sim.pool.available();
    sim.phones[a].call("1001", sim.now);
    sim.run_for(secs(2));
    let invites = sim.phones[b].received(Method::Invite);
    assert_eq!(invites.len(), 1, "the call rings");
    let sdp: media::Sdp = std::str::from_utf8(&invites[0].body)
        .unwrap()
        .parse()
        .unwrap();
    let ports: Vec<bool> = sdp.media.iter().map(|m| m.port != 0).collect();
    assert_eq!(ports, [true, true, false, true, true, false]);
    assert_eq!(sim.open_ports.values().next().unwrap().len(), 4);
    assert_eq!(free - sim.pool.available(), 8, "4 streams x 2 legs");
    sim.phones[a].cancel(sim.now);
    sim.run_for(secs(40));
    assert_ports_returned(&sim);
}

/// Every ordinary port pair is taken (by a flood of calls): an ordinary
/// call gets 503, a 999 still gets ports from the reserve and reaches the
/// emergency trunk.
#[test]
fn emergency_call_gets_reserved_ports_when_the_pool_is_otherwise_exhausted() {
    // 10 pairs, 20 % kept for emergency calls.
    let pool = media::PortPool::new("30000-30019".parse().unwrap()).with_emergency_reserve(20);
    let mut sim = Sim::with_pool(74, NetConfig::perfect(), pool);
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carrier1", "9901", false);
    sim.dir.add_trunk(sim.phones[c].addr, None);
    sim.phones[c].behavior = ring(Some(1));
    let flood: Vec<_> = std::iter::from_fn(|| sim.pool.allocate().ok()).collect();
    assert_eq!(flood.len(), 8);
    sim.phones[a].call("1001", sim.now);
    sim.run_for(secs(2));
    assert_eq!(sim.phones[a].invite_finals(), [503]);
    assert!(sim.phones[b].received(Method::Invite).is_empty());
    let now = sim.now;
    sim.phones[a].call("999", now);
    sim.run_for(secs(3));
    assert_eq!(sim.phones[c].received(Method::Invite).len(), 1);
    assert_eq!(sim.phones[a].invite_finals(), [503, 200]);
    drop(flood);
}

/// A call left up for ever (a stuck phone, or one leg kept open on
/// purpose to hold ports): hung up at the call length cap (4 h), BYE to
/// both legs, the record naming the cap.
#[test]
fn call_is_hung_up_at_the_call_length_cap() {
    let (mut sim, a, b) = connected(75, NetConfig::perfect());
    sim.run_for(secs(4 * 3600 - 60));
    assert_eq!(sim.engine.calls().len(), 1, "still up before the cap");
    sim.run_for(secs(120));
    assert!(sim.engine.calls().is_empty());
    assert_eq!(sim.phones[a].received(Method::Bye).len(), 1);
    assert_eq!(sim.phones[b].received(Method::Bye).len(), 1);
    assert_eq!(sim.records.len(), 1);
    assert!(
        sim.records[0].hangup_cause.contains("call length cap"),
        "{}",
        sim.records[0].hangup_cause
    );
    sim.run_for(secs(40));
    assert_ports_returned(&sim);
}

/// A call held for longer than the hold cap (1 h; music on hold is not
/// subject to the media timeout) is hung up, the record naming the cap.
#[test]
fn call_held_past_the_hold_cap_is_hung_up() {
    let (mut sim, a, b) = connected(76, NetConfig::perfect());
    let hold = String::from_utf8(phone::sdp(&sim.phones[a].ip(), 40000))
        .unwrap()
        .replace("a=sendrecv", "a=sendonly");
    let now = sim.now;
    sim.phones[a].send_in_dialog_with(Method::Invite, hold.into_bytes(), now);
    sim.run_for(secs(3500));
    assert_eq!(sim.engine.calls().len(), 1, "still up before the cap");
    sim.run_for(secs(200));
    assert!(sim.engine.calls().is_empty());
    assert_eq!(sim.phones[a].received(Method::Bye).len(), 1);
    assert_eq!(sim.phones[b].received(Method::Bye).len(), 1);
    assert!(
        sim.records[0].hangup_cause.contains("hold length cap"),
        "{}",
        sim.records[0].hangup_cause
    );
}

/// The relay is told where each leg's media may come from (its
/// signalling address and its SDP), so RTP sprayed at the port range from
/// elsewhere cannot capture a held or silent leg (see the relay's
/// `rtp_from_another_address_does_not_capture_a_held_leg`).
#[test]
fn relay_legs_accept_media_only_from_their_party() {
    let (sim, a, b) = connected(77, NetConfig::perfect());
    let ip = |p: usize| -> std::net::IpAddr { sim.phones[p].addr.ip() };
    let (la, lb) = (
        sim.leg_configs(media::Side::A),
        sim.leg_configs(media::Side::B),
    );
    assert!(!la.is_empty() && !lb.is_empty());
    assert!(la.iter().all(|c| c.sources == [ip(a)]), "{la:?}");
    assert!(
        lb.iter()
            .filter(|c| c.remote_rtp.is_some())
            .all(|c| c.sources == [ip(b)]),
        "{lb:?}"
    );
}

/// The final responses a phone got, with their reason phrases.
fn finals_with_reason(sim: &Sim, phone: usize) -> Vec<(u16, String)> {
    sim.phones[phone]
        .responses
        .iter()
        .filter(|r| {
            r.status.is_final()
                && r.cseq()
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.method == Method::Invite && c.seq == 1)
        })
        .map(|r| (r.status.as_u16(), r.reason.clone()))
        .collect()
}

/// One phone of a business whose limit is 60 calls places 60 calls that
/// keep ringing (each takes relay ports): the 61st is refused with 403 and
/// a reason naming the limit, while a phone of another business still
/// calls, and the same phone can still reach 999.
#[test]
fn sixty_first_call_of_one_phone_is_refused_while_other_businesses_still_call() {
    let mut sim = Sim::with_ports(78, NetConfig::perfect(), "30000-30999");
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let c = sim.phone("carol", "2000", true);
    let t = sim.phone("carrier1", "9901", false);
    sim.dir.add_trunk(sim.phones[t].addr, None);
    sim.phones[t].behavior = ring(None);
    let other_business = store::TenantId::new();
    let carol_addr = sim.phones[c].addr;
    sim.tenants.insert(carol_addr, other_business);
    sim.dir.call_limits.lock().unwrap().insert(sim.tenant, 60);
    // The business's admin lets both extensions take many calls: the
    // business limit is what stops the flood.
    sim.dir.edit("1000", |p| p.max_calls = 1000);
    sim.dir.edit("1001", |p| p.max_calls = 1000);
    sim.phones[b].behavior = ring(None);
    for _ in 0..60 {
        let now = sim.now;
        sim.phones[a].call("1001", now);
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(secs(1));
    assert_eq!(sim.engine.calls().len(), 60);
    assert!(finals_with_reason(&sim, a).is_empty(), "all 60 ring");
    let now = sim.now;
    sim.phones[a].call("1001", now);
    sim.run_for(secs(1));
    let refused = finals_with_reason(&sim, a);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 403);
    assert!(refused[0].1.contains("call limit"), "{}", refused[0].1);
    assert_eq!(sim.phones[b].received(Method::Invite).len(), 60);
    // Another business is not affected.
    let now = sim.now;
    sim.phones[c].call("1001", now);
    sim.run_for(secs(1));
    assert_eq!(sim.phones[b].received(Method::Invite).len(), 61);
    // Emergency calls bypass the business limit.
    let now = sim.now;
    sim.phones[a].call("999", now);
    sim.run_for(secs(1));
    assert_eq!(sim.phones[t].received(Method::Invite).len(), 1);
    assert!(
        sim.records
            .iter()
            .any(|r| r.hangup_cause.contains("business concurrent call limit")),
        "the refusal is in the CDRs"
    );
}

/// The per-extension limit (default 8) counts calls made and received:
/// the 9th call an extension places gets 486, and a call for an extension
/// already in as many calls as it may take is treated as busy.
#[test]
fn extension_call_limit_counts_calls_made_and_received() {
    let mut sim = Sim::with_ports(79, NetConfig::perfect(), "30000-30999");
    let a = sim.phone("alice", "1000", true);
    let b = sim.phone("bob", "1001", true);
    let d = sim.phone("dave", "1003", true);
    sim.dir.edit("1001", |p| p.max_calls = 1000);
    sim.phones[b].behavior = ring(None);
    for _ in 0..8 {
        let now = sim.now;
        sim.phones[a].call("1001", now);
        sim.run_for(Duration::from_millis(50));
    }
    sim.run_for(secs(1));
    assert!(finals_with_reason(&sim, a).is_empty(), "8 calls ring");
    let now = sim.now;
    sim.phones[a].call("1001", now);
    sim.run_for(secs(1));
    let refused = finals_with_reason(&sim, a);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 486);
    assert!(refused[0].1.contains("1000"), "{}", refused[0].1);
    // Alice (1000) is in 8 calls: Dave's call for her hears busy.
    let now = sim.now;
    sim.phones[d].call("1000", now);
    sim.run_for(secs(1));
    assert_eq!(sim.phones[d].invite_finals(), [486]);
    assert!(sim.phones[a].received(Method::Invite).is_empty());
}
