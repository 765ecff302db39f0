//! The SIP edge under attack, over real sockets against an in-process SipService: spoofed
//! failures, TCP floods and slow connections, stateless challenges, odd URI schemes.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use store::{Secret, Transport, TrunkSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

const CARRIER: &str = "127.0.0.2:5070";

async fn add_carrier(env: &Env) {
    env.dir
        .create_trunk(&TrunkSettings {
            name: "carrier".into(),
            host: "127.0.0.2".into(),
            port: 5070,
            transport: Transport::Udp,
            username: None,
            password: Some(Secret::new("unused")),
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
}

/// `n` REGISTERs with wrong passwords from `ua`, each under a real nonce issued to it.
async fn wrong_passwords(ua: &mut Ua, n: u32) -> Vec<u16> {
    let mut codes = Vec::new();
    for i in 0..n {
        ua.user = format!("{}", 3000 + i);
        let r = ua.register_req();
        let Some(first) = ({
            let bytes = ua.render(&r);
            ua.send_raw(&bytes).await;
            ua.recv_within(Duration::from_millis(500)).await
        }) else {
            codes.push(0);
            continue;
        };
        let mut r2 = r.clone();
        r2.cseq += 1;
        r2.branch = format!("z9hG4bK{}", rand_token());
        ua.authorize(&mut r2, &first, "wrong");
        let bytes = ua.render(&r2);
        ua.send_raw(&bytes).await;
        codes.push(
            ua.recv_within(Duration::from_millis(500))
                .await
                .map_or(0, |r| r.status.as_u16()),
        );
    }
    codes
}

/// REGISTERs with made-up nonces, as a blind spoofer would send them.
async fn garbage_nonces(ua: &mut Ua, n: u32) {
    for i in 0..n {
        let mut r = ua.register_req();
        r.user = format!("{}", 4000 + i);
        r.auth = Some(format!(
            "Digest username=\"{}\", realm=\"{DOMAIN}\", nonce=\"{}\", uri=\"sip:{DOMAIN}\", \
             response=\"00000000000000000000000000000000\", qop=auth, nc=00000001, cnonce=\"x\"",
            r.user,
            "A".repeat(sip::auth::NONCE_LEN)
        ));
        let bytes = ua.render(&r);
        ua.send_raw(&bytes).await;
    }
    while ua.recv_within(Duration::from_millis(200)).await.is_some() {}
}

fn options(from: SocketAddr, uri: &str) -> Vec<u8> {
    format!(
        "OPTIONS {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
         From: <sip:carrier@{from}>;tag=o1\r\nTo: <sip:{DOMAIN}>\r\nCall-ID: {}@o\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        rand_token(),
        rand_token()
    )
    .into_bytes()
}

fn invite(from: SocketAddr, to: &str) -> Vec<u8> {
    format!(
        "INVITE sip:{to}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
         From: <sip:+441134960000@{from}>;tag=i1\r\nTo: <sip:{to}@{DOMAIN}>\r\nCall-ID: {}@i\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:carrier@{from}>\r\nContent-Length: 0\r\n\r\n",
        rand_token(),
        rand_token()
    )
    .into_bytes()
}

/// The first non-100 answer. Every caller expects one, so the wait is long
/// (10 s per datagram): on a loaded machine a dial-plan lookup took over 2 s.
async fn answer_to(sock: &UdpSocket, server: SocketAddr, bytes: &[u8]) -> Option<sip::Response> {
    sock.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let r = parse_response(&buf[..n]);
        if r.status.as_u16() != 100 {
            return Some(r);
        }
    }
}

#[tokio::test]
async fn spoofed_failures_do_not_ban_a_trunk() {
    let env = env().await;
    add_carrier(&env).await;
    let svc = start(&env, |_| {}).await;
    // An attacker sends REGISTERs with the carrier's source address: blind ones with made-up
    // nonces, and (being on the same host here, so seeing the answers) 30 wrong passwords
    // under real nonces, three times what bans an ordinary source.
    let mut spoofer = Ua::udp("127.0.0.2", svc.addr(), "3000").await;
    garbage_nonces(&mut spoofer, 30).await;
    let codes = wrong_passwords(&mut spoofer, 30).await;
    assert!(codes.iter().all(|c| *c == 403), "{codes:?}");
    // The carrier, from its own port on that address, is still heard.
    let carrier = UdpSocket::bind(CARRIER).await.unwrap();
    let from: SocketAddr = CARRIER.parse().unwrap();
    let ok = answer_to(
        &carrier,
        svc.addr(),
        &options(from, &format!("sip:{DOMAIN}")),
    )
    .await;
    assert_eq!(ok.map(|r| r.status.as_u16()), Some(200));
    // and its INVITE reaches the dial plan (no such number here: 404), not a ban
    let r = answer_to(&carrier, svc.addr(), &invite(from, "+441134960999"))
        .await
        .expect("the carrier's INVITE is answered");
    assert_eq!(r.status.as_u16(), 404, "{r:?}");

    // Blind garbage nonces from an ordinary address do not ban it either...
    let mut victim = Ua::udp("127.0.0.3", svc.addr(), "1001").await;
    garbage_nonces(&mut victim, 30).await;
    assert_eq!(victim.register().await.status.as_u16(), 200);
    // ... while real failures from an ordinary address do (the guard is on).
    let mut attacker = Ua::udp("127.0.0.4", svc.addr(), "3000").await;
    let codes = wrong_passwords(&mut attacker, 12).await;
    assert_eq!(codes.last(), Some(&0), "banned, so silent: {codes:?}");
    svc.shutdown().await;
}

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 7 7 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=sendrecv\r\n"
    )
}

/// An INVITE from extension `user` at `from` to `to`, with an offer and (optionally) credentials.
fn invite_from(
    from: SocketAddr,
    user: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    auth: Option<&str>,
) -> Vec<u8> {
    let body = sdp("127.0.0.1", 40_000);
    let auth = auth
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!(
        "INVITE sip:{to}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
         From: <sip:{user}@{DOMAIN}>;tag=b1\r\nTo: <sip:{to}@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n\
         Contact: <sip:{user}@{from}>\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        rand_token(),
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn responses_from_a_banned_address_still_reach_the_calls_engine() {
    // 1001's phone registers from 127.0.0.5; then someone else on that address gets it
    // banned. The server's INVITE to the phone must still get its answer through.
    let env = env().await;
    let svc = start(&env, |c| {
        c.guard.ip_failures = 3;
        c.guard.trusted_ip_factor = 1;
    })
    .await;
    let mut alice = Ua::udp("127.0.0.5", svc.addr(), "1001").await;
    assert_eq!(alice.register().await.status.as_u16(), 200);
    let mut attacker = Ua::udp("127.0.0.5", svc.addr(), "3000").await;
    let codes = wrong_passwords(&mut attacker, 5).await;
    assert_eq!(codes.last(), Some(&0), "the address is banned: {codes:?}");

    // 1002 calls 1001 (INVITE, 407, INVITE with credentials).
    let bob = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let from = bob.local_addr().unwrap();
    let call_id = format!("{}@b", rand_token());
    let first = invite_from(from, "1002", "1001", &call_id, 1, None);
    let challenge = answer_to(&bob, svc.addr(), &first).await.unwrap();
    assert_eq!(challenge.status.as_u16(), 407);
    let ch =
        sip::auth::Challenge::parse(challenge.headers.get("Proxy-Authenticate").unwrap()).unwrap();
    let creds = ch
        .answer(
            "1002",
            PASSWORD,
            "INVITE",
            &format!("sip:1001@{DOMAIN}"),
            1,
            "cn",
        )
        .to_header_value();
    let second = invite_from(from, "1002", "1001", &call_id, 2, Some(&creds));
    bob.send_to(&second, svc.addr()).await.unwrap();

    // The phone gets the INVITE and answers 486 from its (banned) address.
    let invite = alice
        .recv_bytes(Duration::from_secs(3))
        .await
        .expect("INVITE to the phone");
    let sip::Message::Request(req) = sip::parse_datagram(&invite, &sip::Limits::default()).unwrap()
    else {
        panic!("expected the INVITE")
    };
    assert_eq!(req.method, sip::Method::Invite);
    let busy = req.response_tagged(sip::StatusCode::new(486).unwrap());
    alice.send_raw(&busy.to_bytes()).await;

    // The caller hears busy: the 486 was taken, not dropped by the guard.
    let mut buf = vec![0u8; 65535];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut got = Vec::new();
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, bob.recv_from(&mut buf)).await {
        let code = parse_response(&buf[..n]).status.as_u16();
        got.push(code);
        if code >= 200 {
            break;
        }
    }
    assert_eq!(got.last(), Some(&486), "{got:?}");
    svc.shutdown().await;
}

#[tokio::test]
async fn invite_challenge_is_stateless() {
    let env = env().await;
    let svc = start(&env, |c| {
        c.guard.burst = 100;
        c.guard.rate_per_sec = 20;
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let from = sock.local_addr().unwrap();
    let bytes = invite(from, "1002");
    let a = answer_to(&sock, svc.addr(), &bytes).await.unwrap();
    let b = answer_to(&sock, svc.addr(), &bytes).await.unwrap();
    assert_eq!(a.status.as_u16(), 407);
    assert_eq!(b.status.as_u16(), 407);
    // A server transaction would have absorbed the retransmission and resent the same
    // 407; stateless, each copy gets its own challenge.
    let nonce = |r: &sip::Response| r.headers.get("Proxy-Authenticate").unwrap().to_owned();
    assert_ne!(nonce(&a), nonce(&b));
    // Made-up nonces are re-challenged the same way (no lookup, no failure counted), and
    // each costs the source 20 rate tokens (here 100 of burst, 20 a second): of 30 the
    // first few are answered 407, then the source is throttled, never banned.
    let forged = |i: u32| {
        let auth = format!(
            "Digest username=\"1001\", realm=\"{DOMAIN}\", nonce=\"{}\", uri=\"sip:1002@{DOMAIN}\", \
             response=\"00000000000000000000000000000000\", qop=auth, nc=00000001, cnonce=\"c{i}\"",
            "B".repeat(sip::auth::NONCE_LEN)
        );
        invite_from(from, "1001", "1002", &format!("g{i}@x"), 1, Some(&auth))
    };
    let mut buf = vec![0u8; 65535];
    let mut challenged = 0;
    for i in 0..30 {
        sock.send_to(&forged(i), svc.addr()).await.unwrap();
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await
        {
            assert_eq!(parse_response(&buf[..n]).status.as_u16(), 407);
            challenged += 1;
        }
    }
    assert!((5..30).contains(&challenged), "{challenged} answered");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = answer_to(&sock, svc.addr(), &forged(99)).await;
    assert_eq!(r.map(|r| r.status.as_u16()), Some(407), "not banned");
    svc.shutdown().await;
}

#[tokio::test]
async fn options_with_a_foreign_uri_scheme_gets_416_and_allow_lists_refer() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let from = sock.local_addr().unwrap();
    // RFC 4475 §3.3.2 (unkscm) and §3.3.3 (novelsc), and two more
    for uri in [
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "soap.beep://192.0.2.103:3002",
        "http://www.example.com",
        "mailto:a@example.com",
    ] {
        let r = answer_to(&sock, svc.addr(), &options(from, uri))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 416, "{uri}");
    }
    for uri in [format!("sip:{DOMAIN}"), "tel:+441134960000".to_owned()] {
        let r = answer_to(&sock, svc.addr(), &options(from, &uri))
            .await
            .unwrap();
        assert_eq!(r.status.as_u16(), 200, "{uri}");
        if uri.starts_with("sip:") {
            let allow = r.headers.get("Allow").unwrap();
            assert!(allow.split(", ").any(|m| m == "REFER"), "{allow}");
        }
    }
    svc.shutdown().await;
}

async fn connect_from(ip: &str, server: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    s.connect(server).await.unwrap()
}

/// Whether the server closed the connection within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn tcp_connection_flood_from_one_ip_is_capped() {
    let env = env().await;
    let svc = start(&env, |c| c.tcp.max_per_ip = 4).await;
    let server = svc.handle.local_addrs().tcp;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.6", server).await);
    }
    let mut fifth = connect_from("127.0.0.6", server).await;
    assert!(closed_within(&mut fifth, Duration::from_secs(2)).await);
    for s in &mut held {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
    // another address is not affected
    let mut other = connect_from("127.0.0.7", server).await;
    assert!(!closed_within(&mut other, Duration::from_millis(200)).await);
    // a slot frees when a connection ends
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from("127.0.0.6", server).await;
    assert!(!closed_within(&mut again, Duration::from_millis(200)).await);
    svc.shutdown().await;
}

#[tokio::test]
async fn banned_source_is_refused_at_tcp_accept() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let server = svc.handle.local_addrs().tcp;
    let mut before = connect_from("127.0.0.8", server).await;
    assert!(!closed_within(&mut before, Duration::from_millis(100)).await);
    let mut attacker = Ua::udp("127.0.0.8", svc.addr(), "3000").await;
    wrong_passwords(&mut attacker, 12).await;
    let mut after = connect_from("127.0.0.8", server).await;
    assert!(closed_within(&mut after, Duration::from_secs(2)).await);
    svc.shutdown().await;
}

#[tokio::test]
async fn slow_drip_tcp_connection_is_closed_before_its_first_message() {
    let env = env().await;
    let svc = start(&env, |c| {
        c.tcp.first_message_timeout = Duration::from_millis(800)
    })
    .await;
    let server = svc.handle.local_addrs().tcp;
    let mut s = connect_from("127.0.0.9", server).await;
    let start = tokio::time::Instant::now();
    // one byte every 100 ms: each read is quick, the message never completes
    let head = b"REGISTER sip:acme.example.com SIP/2.0\r\nVia: SIP/2.0/TCP x;branch=z9hG4bK1\r\n";
    let mut closed = false;
    for b in head.iter().cycle().take(60) {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut s, Duration::from_millis(100)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after {:?}", start.elapsed());
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // a connection that sends a complete message in time lives on
    let mut ua = Ua::tcp(server, "1001").await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    svc.shutdown().await;
}

#[tokio::test]
async fn directory_lookup_flood_gets_503_with_retry_after() {
    // One lookup at a time and none waiting: a burst of REGISTERs for names the cache has
    // never seen finds the gate full and is told to come back, never left unanswered.
    let env = env().await;
    let svc = start(&env, |c| {
        c.registrar.max_lookups = 1;
        c.registrar.lookup_backlog = 0;
        c.guard.exempt.push("127.0.0.10".parse().unwrap());
    })
    .await;
    let mut ua = Ua::udp("127.0.0.10", svc.addr(), "5000").await;
    let r = ua.register_req();
    let challenge = ua.send(&r).await;
    assert_eq!(challenge.status.as_u16(), 401);
    let n = 200u32;
    for i in 0..n {
        ua.user = format!("{}", 5000 + i);
        let mut r = ua.register_req();
        ua.authorize(&mut r, &challenge, "guess");
        let bytes = ua.render(&r);
        ua.send_raw(&bytes).await;
    }
    let (mut refused, mut busy) = (0, 0);
    while let Some(resp) = ua.recv_within(Duration::from_secs(2)).await {
        match resp.status.as_u16() {
            403 => refused += 1,
            503 => {
                assert_eq!(resp.headers.get("Retry-After"), Some("5"));
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refused + busy, n, "every request answered");
    println!("{refused} answered 403 after a lookup, {busy} told 503 Retry-After: 5");
    assert!(busy > 0, "no 503 among {n} concurrent lookups");
    svc.shutdown().await;
}
