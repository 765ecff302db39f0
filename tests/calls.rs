//! Calls end to end: the real binary, real softphones (baresip) and a
//! scripted carrier on loopback.
//!
//! * Two phones call each other by extension and each hears the other's
//!   tone (440 Hz one way, 880 Hz the other), recorded by baresip's sndfile
//!   module; the call leaves one CDR.
//! * Outcomes a caller hears: busy (DND), no answer, cancel, and
//!   forward-always to a third phone.
//! * A call to a UK mobile leaves through the trunks in E.164, failing over
//!   from a dead trunk to a carrier that challenges for digest; the
//!   carrier's SDP names a wrong address and audio still reaches it (the
//!   relay latches). While the tenant is at its outside-call limit 999 still
//!   goes out and another outside call is refused. An inbound call from the
//!   carrier to a +44 number rings the extension it is routed to.

mod clients;
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clients::pbx::{DOMAIN, Pbx, pbx, pbx_with};
use clients::{Phone, PhoneOpts, baresip_phone, clients_available};
use common::block_on;
use store::{CdrQuery, Direction, Disposition, ForwardTarget, Transport, TrunkSettings};

fn opts(ip: &'static str, tone: u32) -> PhoneOpts {
    PhoneOpts {
        ip,
        tone,
        auto_answer: true,
        dial: None,
        quit_after: 40,
        control_port: None,
    }
}

fn dialling(ip: &'static str, tone: u32, number: &str, quit_after: u32) -> PhoneOpts {
    PhoneOpts {
        ip,
        tone,
        auto_answer: false,
        dial: Some(number.to_owned()),
        quit_after,
        control_port: None,
    }
}

/// Asserts that `heard` carries `freq` through most of the call.
fn assert_heard(phone: &Phone, freq: f64, who: &str) {
    let (samples, rate) = phone.heard();
    let second = rate as usize;
    assert!(
        samples.len() >= 3 * second,
        "{who} recorded only {} samples",
        samples.len()
    );
    // Skip the first half second (call set-up), then check each half second.
    let mut good = 0;
    let chunks: Vec<&[i16]> = samples[second / 2..].chunks(second / 2).collect();
    for c in &chunks {
        if c.len() == second / 2 && media::tone::dominant(c, rate, &[440.0, 880.0]) == Some(freq) {
            good += 1;
        }
    }
    assert!(
        good * 10 >= chunks.len() * 8,
        "{who} heard {freq} Hz in only {good} of {} half-seconds",
        chunks.len()
    );
}

#[test]
fn two_phones_call_by_extension_and_hear_each_other() {
    if !clients_available("two_phones_call", &["baresip"]) {
        return;
    }
    let pbx = pbx(&["101", "102"], "31000-31199");
    let mut bob = pbx.phone("102", opts(clients::OTHER_IP, 880));
    let mut alice = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 6),
    );
    alice.wait_exit(Duration::from_secs(20));
    assert!(
        alice.proc.log().contains("Call established"),
        "{}",
        alice.proc.log()
    );
    assert_heard(&alice, 880.0, "the caller");
    assert_heard(&bob, 440.0, "the callee");
    let cdr = &pbx.cdr_rows(1)[0].record;
    assert_eq!(
        (
            cdr.caller.as_str(),
            cdr.callee.as_str(),
            cdr.dialled.as_str()
        ),
        ("101", "102", "102")
    );
    assert_eq!(cdr.direction, Direction::Internal);
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.hangup_by, store::HangupBy::Caller);
    assert!(cdr.answered_at.is_some());
    assert!((3..=7).contains(&cdr.duration_secs), "{cdr:?}");
    bob.proc.terminate(Duration::from_secs(5));
}

#[test]
fn busy_no_answer_cancel_and_forwarding() {
    if !clients_available("call_outcomes", &["baresip"]) {
        return;
    }
    let pbx = pbx(&["101", "102", "103"], "31200-31399");
    // 102 rings without answering; 103 answers.
    let mut bob_opts = opts(clients::OTHER_IP, 880);
    bob_opts.auto_answer = false;
    let _bob = pbx.phone("102", bob_opts);
    let _carol = pbx.phone("103", opts("127.0.0.4", 880));

    // Busy: 102 on do-not-disturb.
    pbx.edit_extension("102", |s| s.dnd = true);
    let mut a = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 4),
    );
    a.wait_exit(Duration::from_secs(15));
    assert!(a.proc.log().contains("486 Busy Here"), "{}", a.proc.log());
    pbx.edit_extension("102", |s| s.dnd = false);

    // No answer: 102 rings for its 5 s timeout, then the caller hears 480.
    pbx.edit_extension("102", |s| s.no_answer_timeout_secs = 5);
    let mut a = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 9),
    );
    a.wait_exit(Duration::from_secs(20));
    assert!(
        a.proc.log().contains("480 Temporarily Unavailable"),
        "{}",
        a.proc.log()
    );

    // Cancel: the caller gives up after 2 s of ringing.
    pbx.edit_extension("102", |s| s.no_answer_timeout_secs = 30);
    let mut a = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 3),
    );
    a.wait_exit(Duration::from_secs(15));

    // Forward always to 103, who answers.
    pbx.edit_extension("102", |s| {
        s.forwarding.always = Some(ForwardTarget::Extension("103".parse().unwrap()));
    });
    let mut a = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 5),
    );
    a.wait_exit(Duration::from_secs(15));
    assert!(
        a.proc.log().contains("Call established"),
        "{}",
        a.proc.log()
    );

    let rows = pbx.cdr_rows(4);
    let got: Vec<(&str, Disposition, &str)> = rows
        .iter()
        .rev()
        .map(|c| {
            (
                c.record.callee.as_str(),
                c.record.disposition,
                c.record.dialled.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("102", Disposition::Busy, "102"),
            ("102", Disposition::NoAnswer, "102"),
            ("102", Disposition::Cancelled, "102"),
            ("103", Disposition::Answered, "102"),
        ],
        "{rows:#?}"
    );
}

// ------------------------------------------------------------ the carrier

/// What the scripted carrier saw.
#[derive(Default, Debug)]
struct Seen {
    /// Request-URI and From of every INVITE, in order.
    invites: Vec<(String, String)>,
    authorized: usize,
    rtp_received: usize,
    byes: usize,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n").skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

fn response(req: &str, status: &str, to_tag: Option<&str>, extra: &str, body: &str) -> String {
    let mut r = format!("SIP/2.0 {status}\r\n");
    for v in headers(req, "Via") {
        r.push_str(&format!("Via: {v}\r\n"));
    }
    let to = header(req, "To").unwrap_or_default();
    let to = match to_tag {
        Some(t) if !to.contains("tag=") => format!("{to};tag={t}"),
        _ => to.to_owned(),
    };
    r.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        header(req, "From").unwrap_or_default(),
        header(req, "Call-ID").unwrap_or_default(),
        header(req, "CSeq").unwrap_or_default(),
        body.len()
    ));
    r
}

fn carrier_sdp(rtp: u16) -> String {
    // A wrong connection address: audio must reach the carrier anyway, sent
    // to where its RTP comes from.
    format!(
        "v=0\r\no=carrier 1 1 IN IP4 192.0.2.99\r\ns=-\r\nc=IN IP4 192.0.2.99\r\nt=0 0\r\n\
         m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// The relay address in an SDP body.
fn sdp_media_addr(body: &str) -> Option<SocketAddr> {
    let ip = body
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim();
    let port = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?;
    format!("{ip}:{port}").parse().ok()
}

/// Runs the carrier's signalling and media until `stop`: challenges the
/// first INVITE of each call with 407, answers authorised ones with 200,
/// sends RTP to the relay and counts what comes back.
fn carrier(sock: UdpSocket, rtp: UdpSocket, seen: Arc<Mutex<Seen>>, stop: Arc<Mutex<bool>>) {
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    rtp.set_nonblocking(true).unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let mut relay: Option<SocketAddr> = None;
    let mut seq: u16 = 0;
    let mut last_rtp = Instant::now();
    let mut buf = [0u8; 4096];
    while !*stop.lock().unwrap() {
        if let Ok((n, from)) = sock.recv_from(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let first = msg.lines().next().unwrap_or_default().to_owned();
            if first.starts_with("INVITE ") {
                let uri = first
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let from_hdr = header(&msg, "From").unwrap_or_default().to_owned();
                seen.lock().unwrap().invites.push((uri, from_hdr));
                let authorised = header(&msg, "Proxy-Authorization").is_some_and(|a| {
                    a.contains("username=\"trunkuser\"") && a.contains("response=")
                });
                let reply = if authorised {
                    seen.lock().unwrap().authorized += 1;
                    let body = msg.split("\r\n\r\n").nth(1).unwrap_or_default();
                    relay = sdp_media_addr(body);
                    response(
                        &msg,
                        "200 OK",
                        Some("carrier1"),
                        "Contact: <sip:carrier@127.0.0.1>\r\nContent-Type: application/sdp\r\n",
                        &carrier_sdp(rtp_port),
                    )
                } else {
                    response(
                        &msg,
                        "407 Proxy Authentication Required",
                        Some("carrier0"),
                        "Proxy-Authenticate: Digest realm=\"carrier.example\", nonce=\"c0ffee\", qop=\"auth\", algorithm=MD5\r\n",
                        "",
                    )
                };
                let _ = sock.send_to(reply.as_bytes(), from);
            } else if first.starts_with("BYE ") {
                seen.lock().unwrap().byes += 1;
                relay = None;
                let _ = sock.send_to(response(&msg, "200 OK", None, "", "").as_bytes(), from);
            }
        }
        while let Ok((n, _)) = rtp.recv_from(&mut buf) {
            if n >= 12 {
                seen.lock().unwrap().rtp_received += 1;
            }
        }
        if let Some(to) = relay {
            if last_rtp.elapsed() >= Duration::from_millis(20) {
                last_rtp = Instant::now();
                seq = seq.wrapping_add(1);
                let mut pkt = vec![0x80, 0x00];
                pkt.extend_from_slice(&seq.to_be_bytes());
                pkt.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                pkt.extend_from_slice(&0x0c0f_fee0_u32.to_be_bytes());
                pkt.extend(std::iter::repeat_n(0xffu8, 160));
                let _ = rtp.send_to(&pkt, to);
            }
        }
    }
}

#[test]
fn trunk_failover_emergency_at_limit_and_inbound_numbers() {
    if !clients_available("trunk_calls", &["baresip"]) {
        return;
    }
    // A dead trunk first (bound, never answers), then the carrier.
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let carrier_addr = sock.local_addr().unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    // The tenant holds +44 20 7946 0018, routed to 102, and may make one
    // outside call at a time.
    let pbx = pbx_with(&["101", "102", "103"], "31400-31599", |dir, tenant| {
        block_on(async {
            let ext = dir
                .get_extension_by_number(tenant, &"102".parse().unwrap())
                .await
                .unwrap();
            dir.add_number_routed(
                &"+442079460018".parse().unwrap(),
                tenant,
                store::RouteTarget::Extension(ext.id),
            )
            .await
            .unwrap();
            let t = dir.get_tenant(tenant).await.unwrap();
            let mut s = t.settings.clone();
            s.max_outside_calls = 1;
            s.main_number = Some("+442079460018".parse().unwrap());
            dir.update_tenant(tenant, &s).await.unwrap();
            for (name, port, priority, emergency, creds) in [
                ("dead", dead_port, 1, None, false),
                ("carrier", carrier_addr.port(), 2, Some(1), true),
            ] {
                dir.create_trunk(&TrunkSettings {
                    name: name.into(),
                    host: "127.0.0.1".into(),
                    port,
                    transport: Transport::Udp,
                    username: creds.then(|| "trunkuser".to_owned()),
                    password: creds.then(|| store::Secret::new("trunkpass")),
                    from_domain: Some("sip.acme.example".into()),
                    priority,
                    emergency_priority: emergency,
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
            }
        });
    });
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(Mutex::new(false));
    let carrier_thread = {
        let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
        let sock = sock.try_clone().unwrap();
        thread::spawn(move || carrier(sock, rtp, seen, stop))
    };

    // 101 calls a mobile in national form: out through the carrier after
    // the dead trunk's set-up timeout, in E.164, presenting the main number.
    let mut a = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "07400123456", 16),
    );
    let deadline = Instant::now() + Duration::from_secs(12);
    while seen.lock().unwrap().authorized == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        a.proc
            .wait_for_line(Duration::from_secs(5), |l| l.contains("Call established"))
            .is_some(),
        "{}\n{}",
        a.proc.log(),
        pbx.server.log()
    );
    {
        let s = seen.lock().unwrap();
        let (uri, from) = &s.invites[0];
        assert!(uri.starts_with("sip:+447400123456@"), "{uri}");
        assert!(from.contains("+442079460018"), "{from}");
    }
    // At the limit now: 999 still goes out; another outside call does not.
    let mut e = baresip_phone(
        pbx.account("103"),
        pbx.sip,
        &dialling("127.0.0.4", 440, "999", 3),
    );
    let mut o = baresip_phone(
        pbx.account("102"),
        pbx.sip,
        &dialling(clients::OTHER_IP, 440, "07400123457", 3),
    );
    e.wait_exit(Duration::from_secs(15));
    o.wait_exit(Duration::from_secs(15));
    assert!(
        o.proc.log().contains("503"),
        "the second outside call: {}",
        o.proc.log()
    );
    assert!(
        seen.lock()
            .unwrap()
            .invites
            .iter()
            .any(|(uri, _)| uri.starts_with("sip:999@") || uri.starts_with("sip:+999")),
        "999 did not reach the carrier: {:?}",
        seen.lock().unwrap().invites
    );
    a.wait_exit(Duration::from_secs(20));
    assert!(
        seen.lock().unwrap().rtp_received > 50,
        "the carrier (wrong SDP address) got no audio: {:?}",
        seen.lock().unwrap()
    );
    *stop.lock().unwrap() = true;
    carrier_thread.join().unwrap();

    // Inbound: the carrier calls +44 20 7946 0018 from its trunk address;
    // 102 (auto answer) picks up.
    let _bob = pbx.phone("102", opts(clients::OTHER_IP, 880));
    let callee_rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let invite = format!(
        "INVITE sip:+442079460018@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKin1;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+447700900123@carrier.example>;tag=in1\r\n\
         To: <sip:+442079460018@{sip}>\r\n\
         Call-ID: inbound-1@carrier\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:carrier@{me}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        sip = pbx.sip,
        me = carrier_addr,
        len = carrier_sdp(callee_rtp.local_addr().unwrap().port()).len(),
        sdp = carrier_sdp(callee_rtp.local_addr().unwrap().port()),
    );
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    sock.send_to(invite.as_bytes(), pbx.sip).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    let ok = loop {
        assert!(Instant::now() < deadline, "no 200 for the inbound call");
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with("SIP/2.0 200") {
                break msg;
            }
            assert!(
                !msg.starts_with("SIP/2.0 4") && !msg.starts_with("SIP/2.0 5"),
                "inbound call refused: {msg}"
            );
        }
    };
    let to = header(&ok, "To").unwrap().to_owned();
    let bye = format!(
        "BYE sip:+442079460018@{sip} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKin2;rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+447700900123@carrier.example>;tag=in1\r\n\
         To: {to}\r\nCall-ID: inbound-1@carrier\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        sip = pbx.sip,
        me = carrier_addr,
    );
    let ack = bye
        .replace("BYE sip", "ACK sip")
        .replace("z9hG4bKin2", "z9hG4bKin3")
        .replace("CSeq: 2 BYE", "CSeq: 1 ACK");
    sock.send_to(ack.as_bytes(), pbx.sip).unwrap();
    thread::sleep(Duration::from_secs(2));
    sock.send_to(bye.as_bytes(), pbx.sip).unwrap();

    let rows = pbx.cdr_rows(4);
    let find = |dialled: &str| {
        rows.iter()
            .find(|c| c.record.dialled == dialled)
            .unwrap_or_else(|| panic!("no CDR for {dialled}: {rows:#?}"))
    };
    let out = &find("07400123456").record;
    assert_eq!(out.direction, Direction::Outbound);
    assert_eq!(out.callee, "+447400123456");
    assert_eq!(out.disposition, Disposition::Answered);
    assert!(out.trunk_id.is_some());
    let sos = &find("999").record;
    assert_eq!(sos.direction, Direction::Emergency);
    let refused = &find("07400123457").record;
    assert_eq!(refused.disposition, Disposition::Failed);
    let inbound = &find("+442079460018").record;
    assert_eq!(inbound.direction, Direction::Inbound);
    assert_eq!(inbound.callee, "102");
    assert_eq!(inbound.disposition, Disposition::Answered);
}

/// Share of half-second windows of `samples[from_s..to_s]` whose dominant
/// frequency among `candidates` is in `expected`.
fn share_of(samples: &[i16], rate: u32, span: (f64, f64), expected: &[f64]) -> f64 {
    let mut candidates: Vec<f64> = media::music::MELODY.to_vec();
    candidates.extend([440.0, 660.0, 880.0]);
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let half = rate as usize / 2;
    let (from, to) = (
        (span.0 * f64::from(rate)) as usize,
        ((span.1 * f64::from(rate)) as usize).min(samples.len()),
    );
    let windows: Vec<&[i16]> = samples[from..to].chunks_exact(half).collect();
    let hits = windows
        .iter()
        .filter(|w| {
            // the strongest candidate, whatever its share
            let best = candidates
                .iter()
                .copied()
                .max_by(|a, b| {
                    media::tone::goertzel_power(w, *a, rate)
                        .total_cmp(&media::tone::goertzel_power(w, *b, rate))
                })
                .unwrap();
            expected.contains(&best)
        })
        .count();
    hits as f64 / windows.len().max(1) as f64
}

/// Each half second: RMS and the strongest of the candidate frequencies.
fn describe(samples: &[i16], rate: u32) -> String {
    let mut candidates: Vec<f64> = media::music::MELODY.to_vec();
    candidates.extend([440.0, 660.0, 880.0]);
    samples
        .chunks_exact(rate as usize / 2)
        .map(|w| {
            let rms =
                (w.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
            let best = candidates
                .iter()
                .copied()
                .max_by(|a, b| {
                    media::tone::goertzel_power(w, *a, rate)
                        .total_cmp(&media::tone::goertzel_power(w, *b, rate))
                })
                .unwrap();
            format!("{rms:.0}:{best:.0}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn hold_plays_music_to_the_other_party_and_resume_restores_audio() {
    if !clients_available("hold_music", &["baresip"]) {
        return;
    }
    let pbx = pbx(&["101", "102"], "32000-32199");
    let bob = pbx.phone("102", opts(clients::OTHER_IP, 880));
    let mut alice_opts = dialling(clients::PHONE_IP, 440, "102", 14);
    alice_opts.control_port = Some(clients::free_tcp_port());
    let mut alice = baresip_phone(pbx.account("101"), pbx.sip, &alice_opts);
    assert!(
        alice
            .proc
            .wait_for_line(Duration::from_secs(10), |l| l.contains("Call established"))
            .is_some(),
        "{}",
        alice.proc.log()
    );
    let established = Instant::now();
    thread::sleep(Duration::from_secs(3));
    assert!(alice.command("hold"), "hold refused: {}", alice.proc.log());
    let held_at = established.elapsed().as_secs_f64();
    thread::sleep(Duration::from_secs(4));
    assert!(alice.command("resume"), "resume refused");
    let resumed_at = established.elapsed().as_secs_f64();
    alice.wait_exit(Duration::from_secs(20));

    let (heard, rate) = bob.heard();
    let notes = media::music::MELODY;
    let before = share_of(&heard, rate, (0.5, held_at - 0.5), &[440.0]);
    let during = share_of(&heard, rate, (held_at + 1.0, resumed_at - 0.5), &notes);
    let after = share_of(&heard, rate, (resumed_at + 1.0, resumed_at + 4.0), &[440.0]);
    assert!(
        before >= 0.8,
        "before hold, 440 Hz in {before:.2} of the windows"
    );
    assert!(
        during >= 0.8,
        "while held, music in {during:.2} of the windows"
    );
    assert!(
        after >= 0.8,
        "after resume, 440 Hz in {after:.2} of the windows (held {held_at:.1} s, resumed {resumed_at:.1} s; heard {:.1} s: {})",
        heard.len() as f64 / f64::from(rate),
        describe(&heard, rate)
    );
    assert!(
        pbx.server.log().contains("holds=true") && pbx.server.log().contains("holds=false"),
        "{}",
        pbx.server.log()
    );
    let cdr = &pbx.cdr_rows(1)[0].record;
    assert_eq!(cdr.disposition, Disposition::Answered);
}

#[test]
fn blind_transfer_by_the_callee_connects_the_caller_to_the_target() {
    if !clients_available("blind_transfer", &["baresip"]) {
        return;
    }
    let pbx = pbx(&["101", "102", "103"], "32200-32399");
    let mut bob_opts = opts(clients::OTHER_IP, 880);
    bob_opts.control_port = Some(clients::free_tcp_port());
    let mut bob = pbx.phone("102", bob_opts);
    let carol = pbx.phone("103", opts("127.0.0.4", 660));
    let mut alice = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 12),
    );
    assert!(
        alice
            .proc
            .wait_for_line(Duration::from_secs(10), |l| l.contains("Call established"))
            .is_some(),
        "{}",
        alice.proc.log()
    );
    let established = Instant::now();
    thread::sleep(Duration::from_secs(3));
    assert!(
        bob.command_with("transfer", &format!("sip:103@{DOMAIN}")),
        "transfer refused: {}",
        bob.proc.log()
    );
    let transferred_at = established.elapsed().as_secs_f64();
    // Bob is released once Carol answers.
    assert!(
        bob.proc
            .wait_for_line(Duration::from_secs(10), |l| l.contains("terminated"))
            .is_some(),
        "{}",
        bob.proc.log()
    );
    alice.wait_exit(Duration::from_secs(20));
    let (heard, rate) = alice.heard();
    let before = share_of(&heard, rate, (0.5, transferred_at - 0.5), &[880.0]);
    let after = share_of(
        &heard,
        rate,
        (
            transferred_at + 1.5,
            heard.len() as f64 / f64::from(rate) - 0.5,
        ),
        &[660.0],
    );
    assert!(
        before >= 0.8,
        "before: Bob's 880 Hz in {before:.2}: {}",
        describe(&heard, rate)
    );
    assert!(
        after >= 0.8,
        "after: Carol's 660 Hz in {after:.2}: {}",
        describe(&heard, rate)
    );
    assert_heard(&carol, 440.0, "the target");
    let cdr = &pbx.cdr_rows(1)[0].record;
    assert_eq!(cdr.caller, "101");
    assert_eq!(cdr.callee, "103");
    assert_eq!(cdr.transferred_by.as_deref(), Some("102"));
    assert_eq!(cdr.transferred_to.as_deref(), Some("103"));
    assert_eq!(cdr.disposition, Disposition::Answered);
}

/// The share of half seconds of `samples` (8 kHz) in `span` where `freq`
/// is the strongest of the test tones and the melody.
fn heard_share(samples: &[i16], span: (f64, f64), freq: f64) -> f64 {
    share_of(samples, 8000, span, &[freq])
}

/// What `samples` (8 kHz) carry, half second by half second, as runs of
/// at least two windows: "440", "660", "880" or "music" (the melody).
fn sound_runs(samples: &[i16]) -> Vec<&'static str> {
    let labels: Vec<&'static str> = samples
        .chunks_exact(4000)
        .map(|w| {
            let loud = w.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / w.len() as f64;
            if loud.sqrt() < 300.0 {
                return "silence";
            }
            let tones = [(440.0, "440"), (660.0, "660"), (880.0, "880")];
            let best_tone = tones
                .iter()
                .map(|(f, l)| (media::tone::goertzel_power(w, *f, 8000), *l))
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap();
            let best_note = media::music::MELODY
                .iter()
                .map(|f| media::tone::goertzel_power(w, *f, 8000))
                .fold(0.0, f64::max);
            if best_note > best_tone.0 {
                "music"
            } else {
                best_tone.1
            }
        })
        .collect();
    let mut runs: Vec<(&'static str, usize)> = Vec::new();
    for l in labels {
        match runs.last_mut() {
            Some((last, n)) if *last == l => *n += 1,
            _ => runs.push((l, 1)),
        }
    }
    runs.into_iter()
        .filter(|(l, n)| *n >= 2 && *l != "silence")
        .map(|(l, _)| l)
        .collect()
}

fn escape_replaces(r: &str) -> String {
    r.replace('@', "%40")
        .replace(';', "%3B")
        .replace('=', "%3D")
}

/// Attended transfer with a scripted transferor (Bob): Alice (baresip)
/// calls Bob; Bob holds her, calls Carol (baresip), then REFERs Alice's
/// call with Replaces naming his call with Carol. Alice ends up hearing
/// Carol, Bob leaves both calls, and the records say so.
#[test]
fn attended_transfer_with_real_phones() {
    if !clients_available("attended_transfer", &["baresip"]) {
        return;
    }
    let pbx = pbx(&["101", "102", "103"], "32400-32599");
    let acct = pbx.account("102");
    let mut bob = clients::sipua::SipUa::new(
        "127.0.0.5",
        pbx.sip,
        &acct.user,
        &acct.password,
        DOMAIN,
        880.0,
    );
    bob.register();
    let carol = pbx.phone("103", opts("127.0.0.4", 660));
    let mut alice = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 14),
    );
    let mut d1 = bob.answer(&[]);
    let started = Instant::now();
    bob.run(Duration::from_secs(2), &[&d1]);
    assert_eq!(bob.hold(&mut d1), 200);
    let held_at = started.elapsed().as_secs_f64();
    let d2 = bob.call("103", "", &[]).expect("Carol answers");
    bob.run(Duration::from_secs(2), &[&d2]);
    let refer_to = format!(
        "Refer-To: <sip:103@{DOMAIN}?Replaces={}>\r\n",
        escape_replaces(&clients::sipua::SipUa::replaces(&d2))
    );
    assert_eq!(bob.request(&mut d1, "REFER", &refer_to, "", &[&d2]), 202);
    let transferred_at = started.elapsed().as_secs_f64();
    bob.run(Duration::from_secs(2), &[]);
    assert_eq!(bob.notifies, ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"]);
    assert_eq!(bob.byes.len(), 2, "Bob leaves both calls: {:?}", bob.byes);
    alice.wait_exit(Duration::from_secs(20));
    let (heard, rate) = alice.heard();
    assert_eq!(rate, 8000);
    // baresip records what it decodes, so the file's timeline is not the
    // wall clock: check the order of what Alice heard instead.
    let picture = describe(&heard, 8000);
    assert_eq!(
        sound_runs(&heard),
        ["880", "music", "660"],
        "Alice should hear Bob, music while held, then Carol: {picture}"
    );
    let _ = (held_at, transferred_at);
    let (c_heard, _) = carol.heard();
    let c_end = c_heard.len() as f64 / 8000.0;
    let alice_share = heard_share(&c_heard, (c_end - 4.0, c_end - 0.5), 440.0);
    assert!(
        alice_share >= 0.7,
        "Carol heard Alice in {alice_share:.2}: {}",
        describe(&c_heard, 8000)
    );
    let rows = pbx.cdr_rows(2);
    let consult = rows
        .iter()
        .find(|c| c.record.hangup_cause == "attended transfer")
        .expect("the consultation call's record");
    assert_eq!(consult.record.caller, "102");
    let main = rows.iter().find(|c| c.record.caller == "101").unwrap();
    assert_eq!(main.record.callee, "103");
    assert_eq!(main.record.transferred_by.as_deref(), Some("102"));
    assert_eq!(main.record.transferred_to.as_deref(), Some("103"));
}

/// Directed pickup: Alice (baresip) calls 102, whose phone rings; Dave's
/// phone (scripted) sends INVITE with Replaces naming that ringing dialog
/// and takes the call. The ringing phone is cancelled.
#[test]
fn directed_pickup_with_replaces() {
    if !clients_available("pickup", &["baresip"]) {
        return;
    }
    let pbx = pbx(&["101", "102", "103"], "32600-32799");
    let b = pbx.account("102");
    let mut bob =
        clients::sipua::SipUa::new("127.0.0.5", pbx.sip, &b.user, &b.password, DOMAIN, 880.0);
    bob.register();
    let d = pbx.account("103");
    let mut dave =
        clients::sipua::SipUa::new("127.0.0.6", pbx.sip, &d.user, &d.password, DOMAIN, 660.0);
    let mut alice = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 10),
    );
    let early = bob.ring();
    bob.run(Duration::from_millis(500), &[]);
    let replaces = format!(
        "Replaces: {}\r\nRequire: replaces\r\n",
        clients::sipua::SipUa::replaces(&early)
    );
    let call = dave
        .call("102", &replaces, &[])
        .expect("the pickup is answered");
    dave.run(Duration::from_secs(4), &[&call]);
    bob.run(Duration::from_millis(200), &[]);
    // (CANCEL retransmissions arrive while Bob is not reading)
    let mut cancels = bob.cancels.clone();
    cancels.dedup();
    assert_eq!(
        cancels,
        std::slice::from_ref(&early.call_id),
        "the ringing phone stops"
    );
    assert!(
        alice.proc.log().contains("Call established"),
        "{}",
        alice.proc.log()
    );
    let heard = std::mem::take(&mut dave.heard);
    let end = heard.len() as f64 / 8000.0;
    let share = heard_share(&heard, (0.5, end), 440.0);
    assert!(
        share >= 0.7,
        "Dave heard Alice in {share:.2}: {}",
        describe(&heard, 8000)
    );
    alice.wait_exit(Duration::from_secs(15));
    let (a_heard, _) = alice.heard();
    let a_end = a_heard.len() as f64 / 8000.0;
    let share = heard_share(&a_heard, (0.5, a_end - 0.5), 660.0);
    assert!(
        share >= 0.7,
        "Alice heard Dave in {share:.2}: {}",
        describe(&a_heard, 8000)
    );
    let cdr = &pbx.cdr_rows(1)[0].record;
    assert_eq!((cdr.caller.as_str(), cdr.callee.as_str()), ("101", "103"));
    assert_eq!(cdr.disposition, Disposition::Answered);
}

/// Stopping the server mid-call hangs the call up cleanly (BYE to both
/// phones) and its record is written before the process exits.
#[test]
fn a_call_in_progress_at_shutdown_is_ended_and_recorded() {
    if !clients_available("shutdown_call", &["baresip"]) {
        return;
    }
    let Pbx {
        _db: db,
        server,
        sip,
        dir,
        tenant,
        accounts,
    } = pbx(&["101", "102"], "30400-30599");
    let account = |n: &str| accounts.iter().find(|a| a.user == n).unwrap();
    let mut bob = baresip_phone(account("102"), sip, &opts(clients::OTHER_IP, 880));
    bob.wait_registered();
    let mut alice = baresip_phone(
        account("101"),
        sip,
        &dialling(clients::PHONE_IP, 440, "102", 30),
    );
    assert!(
        alice
            .proc
            .wait_for_line(Duration::from_secs(10), |l| l.contains("Call established"))
            .is_some(),
        "{}",
        alice.proc.log()
    );
    thread::sleep(Duration::from_secs(2));
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    // Both phones were told.
    for (who, p) in [("caller", &mut alice), ("callee", &mut bob)] {
        assert!(
            p.proc
                .wait_for_line(Duration::from_secs(5), |l| l.contains("terminated"))
                .is_some(),
            "the {who} was not hung up: {}",
            p.proc.log()
        );
    }
    let rows = block_on(dir.list_cdrs(tenant, &CdrQuery::default()))
        .unwrap()
        .items;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let cdr = &rows[0].record;
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.hangup_cause, "server shutdown");
    assert_eq!(cdr.hangup_by, store::HangupBy::System);
    assert!(cdr.duration_secs >= 1);
    drop(db);
}

/// A colleague dials `**102` on a plain softphone and takes the call
/// ringing at 102.
#[test]
fn star_star_pickup_from_a_softphone() {
    if !clients_available("star_pickup", &["baresip"]) {
        return;
    }
    let pbx = pbx(&["101", "102", "103"], "30200-30399");
    let mut ringing = opts(clients::OTHER_IP, 880);
    ringing.auto_answer = false;
    let bob = pbx.phone("102", ringing);
    let mut alice = baresip_phone(
        pbx.account("101"),
        pbx.sip,
        &dialling(clients::PHONE_IP, 440, "102", 12),
    );
    let mut bob = bob;
    assert!(
        bob.proc
            .wait_for_line(Duration::from_secs(10), |l| l.contains("Incoming call")
                || l.contains("ringing"))
            .is_some(),
        "{}",
        bob.proc.log()
    );
    let mut dave = baresip_phone(
        pbx.account("103"),
        pbx.sip,
        &dialling("127.0.0.4", 660, "**102", 6),
    );
    assert!(
        dave.proc
            .wait_for_line(Duration::from_secs(10), |l| l.contains("Call established"))
            .is_some(),
        "{}\n{}",
        dave.proc.log(),
        pbx.server.log()
    );
    alice.wait_exit(Duration::from_secs(20));
    dave.wait_exit(Duration::from_secs(20));
    assert!(alice.proc.log().contains("Call established"));
    assert_heard(&dave, 440.0, "the picker");
    let (heard, _) = alice.heard();
    assert!(
        sound_runs(&heard).contains(&"660"),
        "Alice heard Dave: {}",
        describe(&heard, 8000)
    );
    let cdr = &pbx.cdr_rows(1)[0].record;
    assert_eq!((cdr.caller.as_str(), cdr.callee.as_str()), ("101", "103"));
}
