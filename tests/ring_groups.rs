//! Ring groups end to end: the real binary, real softphones (baresip) and a
//! scripted mobile carrier on loopback.
//!
//! * A simultaneous group rings two phones and an outside number at once;
//!   the phone that answers talks to the caller (each hears the other's
//!   tone), sees "Phone 101 (Sales)" as the caller, and the carrier's leg is
//!   cancelled with `Reason: SIP;cause=200;text="Call completed elsewhere"`.
//! * A round-robin group hands successive calls to successive members, and
//!   the rotation is written to the directory.
//! * A sequential group skips an unregistered member at once, rings the
//!   next for its turn, then falls back to an extension that answers.

mod clients;
mod common;

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clients::pbx::{Pbx, pbx_with};
use clients::{Phone, PhoneOpts, baresip_phone, clients_available};
use common::block_on;
use store::{
    Directory, Disposition, RingGroup, RingGroupMember, RingGroupSettings, RingStrategy,
    RouteTarget, TenantId, Transport, TrunkSettings,
};

const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

/// Creates ring group `number` with `members` (extension numbers, or
/// `+...` outside numbers) in the directory.
async fn group(
    dir: &dyn Directory,
    tenant: TenantId,
    number: &str,
    settings: RingGroupSettings,
    members: &[&str],
) -> RingGroup {
    let mut list = Vec::new();
    for m in members {
        list.push(if m.starts_with('+') {
            RingGroupMember::External(m.parse().unwrap())
        } else {
            let e = dir
                .get_extension_by_number(tenant, &m.parse().unwrap())
                .await
                .unwrap();
            RingGroupMember::Extension(e.id)
        });
    }
    let g = dir
        .create_ring_group(tenant, &number.parse().unwrap(), &settings)
        .await
        .unwrap();
    dir.set_ring_group_members(tenant, g.id, &list)
        .await
        .unwrap()
}

impl Pbx {
    /// `caller` dials `number` and hangs up after `secs` seconds.
    fn call(&self, caller: &str, ip: &'static str, number: &str, secs: u32) -> Phone {
        let mut p = baresip_phone(
            self.account(caller),
            self.sip,
            &PhoneOpts {
                ip,
                tone: 440,
                auto_answer: false,
                dial: Some(number.to_owned()),
                quit_after: secs,
                control_port: None,
            },
        );
        p.wait_exit(Duration::from_secs(u64::from(secs) + 15));
        p
    }

    /// Waits (bounded) until the tenant has `n` CDRs; returns them, oldest first.
    fn cdrs(&self, n: usize) -> Vec<store::NewCdr> {
        self.cdr_rows(n)
            .into_iter()
            .rev()
            .map(|c| c.record)
            .collect()
    }
}

fn answering(ip: &'static str, tone: u32) -> PhoneOpts {
    PhoneOpts {
        ip,
        tone,
        auto_answer: true,
        dial: None,
        quit_after: 90,
        control_port: None,
    }
}

fn ringing(ip: &'static str) -> PhoneOpts {
    PhoneOpts {
        auto_answer: false,
        ..answering(ip, 880)
    }
}

/// Whether `phone` heard `freq` through most of what it recorded.
fn assert_heard(phone: &Phone, freq: f64, who: &str) {
    let (samples, rate) = phone.heard();
    let second = rate as usize;
    assert!(
        samples.len() >= 3 * second,
        "{who} recorded only {} samples",
        samples.len()
    );
    let chunks: Vec<&[i16]> = samples[second / 2..].chunks(second / 2).collect();
    let good = chunks
        .iter()
        .filter(|c| {
            c.len() == second / 2 && media::tone::dominant(c, rate, &[440.0, 880.0]) == Some(freq)
        })
        .count();
    assert!(
        good * 10 >= chunks.len() * 8,
        "{who} heard {freq} Hz in only {good} of {} half-seconds",
        chunks.len()
    );
}

// ------------------------------------------------------------ the mobile carrier

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
}

fn response(req: &str, status: &str) -> String {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for l in req.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        let name = l.split(':').next().unwrap_or_default().trim();
        if ["via", "from", "call-id", "cseq"].contains(&name.to_ascii_lowercase().as_str()) {
            r.push_str(l);
            r.push_str("\r\n");
        }
    }
    let to = header(req, "To").unwrap_or_default();
    let to = if to.contains("tag=") {
        to.to_owned()
    } else {
        format!("{to};tag=mobile")
    };
    r.push_str(&format!("To: {to}\r\nContent-Length: 0\r\n\r\n"));
    r
}

/// A carrier whose mobile rings and never answers: INVITE → 180, CANCEL →
/// 200 and 487. Keeps every request it got.
fn ringing_carrier(sock: UdpSocket, seen: Arc<Mutex<Vec<String>>>, stop: Arc<Mutex<bool>>) {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 8192];
    let mut invite: Option<String> = None;
    while !*stop.lock().unwrap() {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.starts_with("SIP/2.0") {
            continue;
        }
        seen.lock().unwrap().push(msg.clone());
        if msg.starts_with("INVITE ") {
            let _ = sock.send_to(response(&msg, "180 Ringing").as_bytes(), from);
            invite = Some(msg);
        } else if msg.starts_with("CANCEL ") {
            let _ = sock.send_to(response(&msg, "200 OK").as_bytes(), from);
            if let Some(inv) = &invite {
                let _ = sock.send_to(response(inv, "487 Request Terminated").as_bytes(), from);
            }
        }
    }
}

// ------------------------------------------------------------ the tests

#[test]
fn the_first_to_answer_gets_the_call_and_the_others_are_told_it_was_answered_elsewhere() {
    if !clients_available("ring_group_simultaneous", &["baresip"]) {
        return;
    }
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let carrier_port = carrier.local_addr().unwrap().port();
    let pbx = pbx_with(&["101", "102", "103"], "31600-31799", |dir, tenant| {
        block_on(async {
            let t = dir.get_tenant(tenant).await.unwrap();
            dir.add_number(&"+442079460018".parse().unwrap(), Some(tenant))
                .await
                .unwrap();
            let mut s = t.settings.clone();
            s.main_number = Some("+442079460018".parse().unwrap());
            dir.update_tenant(tenant, &s).await.unwrap();
            dir.create_trunk(&TrunkSettings {
                name: "mobile carrier".into(),
                host: "127.0.0.1".into(),
                port: carrier_port,
                transport: Transport::Udp,
                username: None,
                password: None,
                from_domain: Some("sip.acme.example".into()),
                priority: 1,
                emergency_priority: None,
                enabled: true,
                inbound_source: None,
                force_wide_source: false,
                inbound_auth: false,
                calls_per_second: TrunkSettings::DEFAULT_CALLS_PER_SECOND,
                register: false,
                registrar: None,
                register_expires: TrunkSettings::DEFAULT_REGISTER_EXPIRES,
            })
            .await
            .unwrap();
            let settings = RingGroupSettings::new("Sales", RingStrategy::Simultaneous);
            group(
                dir,
                tenant,
                "20",
                settings,
                &["102", "+447400123456", "103"],
            )
            .await;
        });
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(Mutex::new(false));
    let carrier_thread = {
        let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
        thread::spawn(move || ringing_carrier(carrier, seen, stop))
    };
    // 102 rings and never answers; 103 answers at once.
    let mut bob = pbx.phone("102", ringing(clients::OTHER_IP));
    let mut carol = pbx.phone("103", answering("127.0.0.4", 880));

    let alice = pbx.call("101", clients::PHONE_IP, "20", 8);
    assert!(
        alice.proc.log().contains("Call established"),
        "{}\n{}",
        alice.proc.log(),
        pbx.server.log()
    );
    assert_heard(&alice, 880.0, "the caller");
    *stop.lock().unwrap() = true;
    carrier_thread.join().unwrap();
    bob.proc.terminate(Duration::from_secs(5));
    carol.proc.terminate(Duration::from_secs(5));
    assert_heard(&carol, 440.0, "the member who answered");

    // The ringing phone showed who calls, through which group (baresip logs
    // the From display name of a call it does not answer at once).
    assert!(
        bob.proc
            .log()
            .contains("Incoming call from: Phone 101 (Sales)"),
        "{}",
        bob.proc.log()
    );
    // The outside member rang and was cancelled as answered elsewhere (the
    // carrier shows the CANCEL on the wire; baresip 1.0 does not log a
    // CANCEL's Reason, only that the session closed).
    let seen = seen.lock().unwrap();
    let invite = seen
        .iter()
        .find(|m| m.starts_with("INVITE "))
        .expect("INVITE");
    assert!(invite.starts_with("INVITE sip:+447400123456@"), "{invite}");
    let cancel = seen
        .iter()
        .find(|m| m.starts_with("CANCEL "))
        .unwrap_or_else(|| panic!("no CANCEL reached the carrier: {seen:#?}"));
    assert_eq!(header(cancel, "Reason"), Some(COMPLETED_ELSEWHERE));
    assert!(
        !bob.proc.log().contains("Call established") && bob.proc.log().contains("session closed"),
        "{}",
        bob.proc.log()
    );

    let cdr = &pbx.cdrs(1)[0];
    assert_eq!(
        (
            cdr.caller.as_str(),
            cdr.callee.as_str(),
            cdr.dialled.as_str()
        ),
        ("101", "103", "20")
    );
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.direction, store::Direction::Internal);
}

#[test]
fn round_robin_rotates_and_sequential_skips_then_falls_back() {
    if !clients_available("ring_group_hunting", &["baresip"]) {
        return;
    }
    let groups: Arc<Mutex<Vec<RingGroup>>> = Arc::default();
    let pbx = pbx_with(
        &["101", "102", "103", "104", "105", "106"],
        "31800-31999",
        |dir, tenant| {
            block_on(async {
                let mut rr = RingGroupSettings::new("Support", RingStrategy::RoundRobin);
                rr.member_timeout_secs = 5;
                let rr = group(dir, tenant, "21", rr, &["102", "103"]).await;
                let fallback = dir
                    .get_extension_by_number(tenant, &"105".parse().unwrap())
                    .await
                    .unwrap();
                let mut seq = RingGroupSettings::new("Night", RingStrategy::Sequential);
                seq.member_timeout_secs = 5;
                seq.ring_timeout_secs = 20;
                seq.fallback = RouteTarget::Extension(fallback.id);
                let seq = group(dir, tenant, "22", seq, &["106", "104"]).await;
                groups.lock().unwrap().extend([rr, seq]);
            });
        },
    );
    let rr = groups.lock().unwrap()[0].clone();
    let mut p102 = pbx.phone("102", answering(clients::OTHER_IP, 880));
    let mut p103 = pbx.phone("103", answering("127.0.0.4", 880));
    // 104 rings without answering; 105 (the fallback) answers; 106 is not
    // registered at all.
    let mut p104 = pbx.phone("104", ringing("127.0.0.5"));
    let mut p105 = pbx.phone("105", answering("127.0.0.6", 880));

    // Round robin: 102 takes the first call, 103 the second, 102 the third.
    for _ in 0..3 {
        let a = pbx.call("101", clients::PHONE_IP, "21", 5);
        assert!(
            a.proc.log().contains("Call established"),
            "{}",
            a.proc.log()
        );
    }
    let answered: Vec<String> = pbx.cdrs(3).into_iter().map(|c| c.callee).collect();
    assert_eq!(answered, ["102", "103", "102"]);
    // The driver wrote each answer to the directory: position 0 (102) last.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let g = block_on(pbx.dir.get_ring_group(pbx.tenant, rr.id)).unwrap();
        if g.last_answered_member == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "last answered: {:?}",
            g.last_answered_member
        );
        thread::sleep(Duration::from_millis(100));
    }

    // Sequential: 106 (unregistered) is skipped at once, 104 rings for its
    // 5 s turn, then the call goes to 105.
    let a = pbx.call("101", clients::PHONE_IP, "22", 11);
    assert!(
        a.proc.log().contains("Call established"),
        "{}\n{}",
        a.proc.log(),
        pbx.server.log()
    );
    p104.proc.terminate(Duration::from_secs(5));
    p105.proc.terminate(Duration::from_secs(5));
    assert!(
        p104.proc
            .log()
            .contains("Incoming call from: Phone 101 (Night)"),
        "{}",
        p104.proc.log()
    );
    assert!(!p104.proc.log().contains("Call established"));
    let cdr = pbx.cdrs(4).pop().unwrap();
    assert_eq!((cdr.callee.as_str(), cdr.dialled.as_str()), ("105", "22"));
    assert_eq!(cdr.disposition, Disposition::Answered);
    let waited = cdr.answered_at.unwrap() - cdr.started_at;
    assert!(
        waited >= time::Duration::seconds(4) && waited < time::Duration::seconds(8),
        "answered after {waited}: one 5 s turn, no time lost on 106"
    );
    p102.proc.terminate(Duration::from_secs(5));
    p103.proc.terminate(Duration::from_secs(5));
}
