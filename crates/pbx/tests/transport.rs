//! Transports and the edge: TCP keep-alives, responses on the same connection, framing errors,
//! connection limits, per-source rate limiting.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn crlf_ping_gets_pong_and_register_over_tcp() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let tcp_addr = svc.handle.local_addrs().tcp;
    assert_eq!(tcp_addr.port(), svc.addr().port());
    let mut ua = Ua::tcp(tcp_addr, "1001").await;
    ua.send_raw(b"\r\n\r\n").await;
    assert_eq!(ua.recv_bytes(WAIT).await.unwrap(), b"\r\n");
    let ok = ua.register().await;
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
    let b = svc
        .handle
        .location()
        .lookup(env.tenant.id, env.alice.extension_id);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].flow.kind, pbx::TransportKind::Tcp);
    assert!(b[0].flow.conn.is_some());
    // the calls engine can reach the phone on its connection
    let out = svc.handle.outbound();
    out.send(&b[0].flow, bytes::Bytes::from_static(b"\r\n"))
        .unwrap();
    assert_eq!(ua.recv_bytes(WAIT).await.unwrap(), b"\r\n");
    svc.shutdown().await;
}

#[tokio::test]
async fn oversized_frame_closes_the_connection() {
    let env = env().await;
    let svc = start(&env, |c| c.limits.max_message_size = 4096).await;
    let mut s = tokio::net::TcpStream::connect(svc.handle.local_addrs().tcp)
        .await
        .unwrap();
    let msg = format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 100000\r\n\r\n"
    );
    s.write_all(msg.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "connection closed by the server");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("SIP/2.0 513"), "{text}");
    svc.shutdown().await;
}

async fn closed_within(s: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(wait, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn idle_and_surplus_connections_are_closed() {
    let env = env().await;
    let svc = start(&env, |c| {
        c.tcp.max_connections = 1;
        c.tcp.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let addr = svc.handle.local_addrs().tcp;
    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    // make sure the first is accepted and registered before the second arrives
    first.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    first.read_exact(&mut pong).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut second, Duration::from_secs(2)).await,
        "over the limit"
    );
    assert!(
        closed_within(&mut first, Duration::from_secs(2)).await,
        "idle"
    );
    // the slot is free again
    let mut ua = Ua::tcp(addr, "1001").await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    svc.shutdown().await;
}

#[tokio::test]
async fn pipelined_messages_and_pings_in_one_write() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::tcp(svc.handle.local_addrs().tcp, "1001").await;
    let mut a = ua.register_req();
    a.method = "OPTIONS";
    a.contacts.clear();
    let mut b = a.clone();
    b.cseq += 1;
    let mut all = ua.render(&a);
    all.extend_from_slice(b"\r\n\r\n");
    all.extend_from_slice(&ua.render(&b));
    ua.send_raw(&all).await;
    let first = parse_response(&ua.recv_bytes(WAIT).await.unwrap());
    assert_eq!(first.cseq().unwrap().unwrap().seq, a.cseq);
    assert_eq!(ua.recv_bytes(WAIT).await.unwrap(), b"\r\n");
    let second = parse_response(&ua.recv_bytes(WAIT).await.unwrap());
    assert_eq!(second.cseq().unwrap().unwrap().seq, b.cseq);
    svc.shutdown().await;
}

/// Over the per-source rate the service goes quiet for that source only.
#[tokio::test]
async fn rate_limited_source_is_dropped_silently() {
    let env = env().await;
    let svc = start(&env, |c| {
        c.guard.burst = 5;
        c.guard.rate_per_sec = 1;
    })
    .await;
    let mut noisy = Ua::udp("127.0.0.8", svc.addr(), "1001").await;
    let mut r = noisy.register_req();
    r.method = "OPTIONS";
    r.contacts.clear();
    let bytes = noisy.render(&r);
    for _ in 0..20 {
        noisy.send_raw(&bytes).await;
    }
    let mut answers = 0;
    while noisy
        .recv_within(Duration::from_millis(300))
        .await
        .is_some()
    {
        answers += 1;
    }
    assert!((5..=6).contains(&answers), "{answers} answers");
    let mut other = Ua::udp("127.0.0.9", svc.addr(), "1001").await;
    assert_eq!(other.register().await.status.as_u16(), 200);
    svc.shutdown().await;
}

/// Mutated REGISTERs (valid ones with random bytes changed, cut or repeated) reach every
/// path of the registrar; nothing panics and the service keeps answering.
#[tokio::test]
async fn mutated_registers_do_not_hurt() {
    let env = env().await;
    let svc = start(&env, |c| c.guard.exempt.push("127.0.0.1".parse().unwrap())).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    r.contacts
        .push("<sip:1001@10.0.0.9:5060>;expires=120;q=0.5".into());
    r.extra.push("Path: <sip:edge.example;lr>".into());
    let ch = ua.send(&r).await;
    ua.authorize(&mut r, &ch, PASSWORD);
    let base = ua.render(&r);
    let alphabet = b" ;:,<>\"*=@0123456789\r\n\t%\\abcSIPz";
    for i in 0..600u32 {
        let mut m = base.clone();
        for _ in 0..(1 + i % 4) {
            if m.is_empty() {
                break;
            }
            let at = rand::random::<usize>() % m.len();
            match rand::random::<u8>() % 4 {
                0 => m[at] = alphabet[rand::random::<usize>() % alphabet.len()],
                1 => m.truncate(at.max(1)),
                2 => {
                    let piece: Vec<u8> = m[at..].iter().take(40).copied().collect();
                    m.splice(at..at, piece);
                }
                _ => {
                    m.remove(at);
                }
            }
        }
        ua.send_raw(&m).await;
    }
    // answers to broken requests echo broken headers: read them as bytes
    while ua.recv_bytes(Duration::from_millis(300)).await.is_some() {}
    // mutated digests count as failures, so 1001 is locked from this address by now (as the
    // guard intends); another user from the same address registers
    let mut bob = Ua::udp("127.0.0.1", svc.addr(), "1002").await;
    assert_eq!(bob.register().await.status.as_u16(), 200);
    svc.shutdown().await;
}
