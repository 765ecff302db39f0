//! The SIP edge under attack, end to end against the real binary:
//! * sipvicious' scanners (`svmap`, `svwar`) learn nothing beyond "a SIP
//!   server answers here", and `svcrack` is banned without cracking, while
//!   the carrier's calls and the other phones keep working;
//! * an attacker that forges REGISTERs (and INVITEs) with the carrier's
//!   source address (on loopback it simply binds the carrier's IP) does not
//!   get the carrier banned: its next call still comes through.
//!
//! The carrier is a socket in the test on 127.0.0.5 (a trunk in the
//! directory), the callee a scripted phone (`clients::sipua`) on
//! 127.0.0.3, the attacker on 127.0.0.1 or 127.0.0.5. Nothing leaves
//! loopback.

mod clients;
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use clients::pbx::{DOMAIN, Pbx, pbx_with};
use clients::sipua::{SipUa, header};
use clients::{OTHER_IP, clients_available, options_probe, svcrack, svmap, svwar};
use common::block_on;
use store::{Transport, TrunkSettings};

const CARRIER_IP: &str = "127.0.0.5";
const NUMBER: &str = "+442079460018";

/// A PBX with 101 and 102, `NUMBER` routed to 102, and a trunk whose
/// carrier is `carrier` (a socket bound on `CARRIER_IP`).
fn pbx_with_carrier(rtp: &str, carrier: SocketAddr) -> Pbx {
    pbx_with(&["101", "102"], rtp, |dir, tenant| {
        block_on(async {
            let ext = dir
                .get_extension_by_number(tenant, &"102".parse().unwrap())
                .await
                .unwrap();
            dir.add_number_routed(
                &NUMBER.parse().unwrap(),
                tenant,
                store::RouteTarget::Extension(ext.id),
            )
            .await
            .unwrap();
            dir.create_trunk(&TrunkSettings {
                name: "carrier".into(),
                host: CARRIER_IP.into(),
                port: carrier.port(),
                transport: Transport::Udp,
                username: None,
                password: None,
                from_domain: None,
                priority: 1,
                emergency_priority: Some(1),
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
        });
    })
}

/// The carrier calls `NUMBER`; 102 (a scripted phone) answers. Returns the
/// final status the carrier saw (ACKing a 2xx and hanging up after it).
fn carrier_call(pbx: &Pbx, carrier: &UdpSocket, callee: &mut SipUa, n: u32) -> u16 {
    let me = carrier.local_addr().unwrap();
    let rtp = UdpSocket::bind((CARRIER_IP, 0)).unwrap();
    let sdp = format!(
        "v=0\r\no=c 1 1 IN IP4 {CARRIER_IP}\r\ns=-\r\nc=IN IP4 {CARRIER_IP}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=sendrecv\r\n",
        rtp.local_addr().unwrap().port()
    );
    let call_id = format!("carrier-{n}-{}@carrier", std::process::id());
    let invite = format!(
        "INVITE sip:{NUMBER}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKc{n}a;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+447700900123@carrier.example>;tag=c{n}\r\n\
         To: <sip:{NUMBER}@{sip}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:carrier@{me}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        sip = pbx.sip,
        len = sdp.len(),
    );
    carrier.send_to(invite.as_bytes(), pbx.sip).unwrap();
    carrier
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    let mut answered = false;
    loop {
        if Instant::now() > deadline {
            return 0;
        }
        let Ok((len, _)) = carrier.recv_from(&mut buf) else {
            continue;
        };
        let msg = String::from_utf8_lossy(&buf[..len]).into_owned();
        let Some(code) = msg
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse::<u16>().ok())
        else {
            continue;
        };
        if code < 200 {
            // the server took the call: the phone gets it and answers
            if !answered {
                answered = true;
                callee.answer(&[]);
            }
            continue;
        }
        if (200..300).contains(&code) {
            let to = header(&msg, "To").unwrap_or_default().to_owned();
            let common = format!(
                "Max-Forwards: 70\r\nFrom: <sip:+447700900123@carrier.example>;tag=c{n}\r\n\
                 To: {to}\r\nCall-ID: {call_id}\r\n"
            );
            let ack = format!(
                "ACK sip:{NUMBER}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKc{n}b;rport\r\n\
                 {common}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                sip = pbx.sip
            );
            let bye = format!(
                "BYE sip:{NUMBER}@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKc{n}c;rport\r\n\
                 {common}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
                sip = pbx.sip
            );
            carrier.send_to(ack.as_bytes(), pbx.sip).unwrap();
            callee.run(Duration::from_millis(300), &[]);
            carrier.send_to(bye.as_bytes(), pbx.sip).unwrap();
            callee.run(Duration::from_millis(300), &[]);
        }
        return code;
    }
}

fn output(o: &common::Output) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

#[test]
fn scanners_learn_nothing_and_svcrack_is_banned_while_the_trunk_and_phones_work() {
    if !clients_available("sip_attacks_scanners", &["svmap", "svwar", "svcrack"]) {
        return;
    }
    let carrier = UdpSocket::bind((CARRIER_IP, 0)).unwrap();
    let pbx = pbx_with_carrier("30000-30199", carrier.local_addr().unwrap());
    let mut callee = SipUa::new(
        OTHER_IP,
        pbx.sip,
        "102",
        &pbx.account("102").password,
        DOMAIN,
        660.0,
    );
    callee.register();

    // svmap finds a SIP server but no product or version.
    let out = svmap(pbx.sip);
    let all = output(&out);
    println!("svmap:\n{all}");
    assert!(all.contains(&pbx.sip.to_string()), "{all}");
    let row = all
        .lines()
        .find(|l| l.contains(&pbx.sip.to_string()))
        .unwrap_or_default();
    assert!(
        row.contains("unknown"),
        "svmap fingerprinted the server: {row}"
    );
    assert!(!all.to_ascii_lowercase().contains("switchboard"), "{all}");
    // svwar names no extension, by REGISTER, OPTIONS or INVITE.
    for method in ["REGISTER", "OPTIONS", "INVITE"] {
        let all = output(&svwar(pbx.sip, DOMAIN, method));
        println!("svwar -m {method}:\n{all}");
        for ext in ["101", "102"] {
            assert!(
                !all.lines().any(|l| l.contains(&format!("| {ext} "))),
                "svwar -m {method} found {ext}:\n{all}"
            );
        }
    }
    // svcrack with the right password in its dictionary, after 30 wrong ones.
    let acct = pbx.account("101");
    let mut dictionary: Vec<String> = (1..=30).map(|i| format!("guess{i:02}")).collect();
    dictionary.push(acct.password.clone());
    let all = output(&svcrack(pbx.sip, DOMAIN, "101", &dictionary));
    println!("svcrack:\n{all}");
    assert!(!all.contains(&acct.password), "svcrack cracked 101:\n{all}");
    let all = output(&svcrack(pbx.sip, DOMAIN, "102", &dictionary));
    assert!(!all.contains(&pbx.account("102").password), "{all}");
    assert_eq!(
        options_probe("127.0.0.1", pbx.sip, DOMAIN, Duration::from_secs(2)),
        None,
        "svcrack's address is not banned; server log:\n{}",
        pbx.server.log()
    );

    // The carrier's call still reaches 102, and 101 registers from its phone.
    assert_eq!(
        carrier_call(&pbx, &carrier, &mut callee, 1),
        200,
        "server log:\n{}",
        pbx.server.log()
    );
    let mut phone = SipUa::new(
        clients::PHONE_IP,
        pbx.sip,
        "101",
        &acct.password,
        DOMAIN,
        440.0,
    );
    phone.register();
}

/// A REGISTER for `user` from `sock` with `auth` (an Authorization value).
fn register(sock: &UdpSocket, sip: SocketAddr, user: &str, n: u32, auth: Option<&str>) {
    let me = sock.local_addr().unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let msg = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKf{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=f{n}\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: forged-{n}@x\r\nCSeq: {n} REGISTER\r\nContact: <sip:{user}@{me}>\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), sip).unwrap();
}

/// The WWW-Authenticate of the next 401 on `sock`, if any within a second.
fn challenge(sock: &UdpSocket) -> Option<String> {
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 8192];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    header(&msg, "WWW-Authenticate").map(str::to_owned)
}

#[test]
fn forged_registers_from_the_carriers_address_do_not_stop_its_calls() {
    let carrier = UdpSocket::bind((CARRIER_IP, 0)).unwrap();
    let pbx = pbx_with_carrier("30200-30399", carrier.local_addr().unwrap());
    let mut callee = SipUa::new(
        OTHER_IP,
        pbx.sip,
        "102",
        &pbx.account("102").password,
        DOMAIN,
        660.0,
    );
    callee.register();
    assert_eq!(carrier_call(&pbx, &carrier, &mut callee, 1), 200);

    // The attacker takes the carrier's IP (any other port): blind forgeries
    // with made-up nonces, then wrong passwords under nonces it was really
    // issued there: 60 failures, six times what bans an ordinary source.
    let attacker = UdpSocket::bind((CARRIER_IP, 0)).unwrap();
    let garbage = "A".repeat(sip::auth::NONCE_LEN);
    for n in 1..=30u32 {
        let user = format!("{}", 200 + n);
        let auth = format!(
            "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{garbage}\", \
             uri=\"sip:{DOMAIN}\", response=\"00000000000000000000000000000000\", \
             qop=auth, nc=00000001, cnonce=\"x\""
        );
        register(&attacker, pbx.sip, &user, n, Some(&auth));
    }
    thread::sleep(Duration::from_millis(300));
    let mut buf = [0u8; 8192];
    attacker.set_nonblocking(true).unwrap();
    while attacker.recv_from(&mut buf).is_ok() {}
    attacker.set_nonblocking(false).unwrap();
    let mut refused = 0;
    for n in 100..130u32 {
        let user = format!("{}", 200 + n);
        register(&attacker, pbx.sip, &user, n, None);
        let Some(ch) = challenge(&attacker) else {
            continue;
        };
        let c = sip::auth::Challenge::parse(&ch).unwrap();
        let auth = c
            .answer(
                &user,
                "wrong",
                "REGISTER",
                &format!("sip:{DOMAIN}"),
                1,
                "cn",
            )
            .to_header_value();
        register(&attacker, pbx.sip, &user, n + 1000, Some(&auth));
        let mut b = [0u8; 8192];
        if let Ok((len, _)) = attacker.recv_from(&mut b) {
            if b[..len].starts_with(b"SIP/2.0 403") {
                refused += 1;
            }
        }
    }
    assert_eq!(
        refused, 30,
        "every wrong password answered 403, none dropped"
    );

    // The carrier's next call comes through.
    assert_eq!(
        carrier_call(&pbx, &carrier, &mut callee, 2),
        200,
        "server log:\n{}",
        pbx.server.log()
    );
    assert!(
        !pbx.server
            .log()
            .lines()
            .any(|l| l.contains("banned") && l.contains(CARRIER_IP)),
        "the carrier's address was banned:\n{}",
        pbx.server.log()
    );
}
