//! The registrar over real UDP sockets against an in-process SipService and a SQLite directory.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn register_ok_lists_contact_and_is_stored() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let ok = ua.register().await;
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
    let c = contacts(&ok);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].starts_with(&format!("<sip:1001@{}>;expires=", ua.local)),
        "{c:?}"
    );
    let exp: u32 = c[0].rsplit('=').next().unwrap().parse().unwrap();
    assert!((3595..=3600).contains(&exp), "{exp}");
    assert!(ok.headers.get("Date").unwrap().ends_with("GMT"));
    assert!(ok.to_addr().unwrap().unwrap().tag().is_some());
    // in memory, with the flow it came on
    let b = svc
        .handle
        .location()
        .lookup(env.tenant.id, env.alice.extension_id);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].flow.remote, ua.local);
    assert_eq!(b[0].user_agent.as_deref(), Some("switchboard-test"));
    // and committed before the 200 was sent
    let rows = env
        .dir
        .list_registrations(env.tenant.id, env.alice.extension_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].binding.contact_uri,
        format!("sip:1001@{}", ua.local)
    );
    assert_eq!(rows[0].binding.source_addr, ua.local);
    svc.shutdown().await;
}

#[tokio::test]
async fn registers_and_stores_without_the_dedicated_thread() {
    let env = env().await;
    let svc = start(&env, |c| c.dedicated_thread = false).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let ok = ua.register().await;
    assert_eq!(ok.status.as_u16(), 200, "{ok:?}");
    let rows = env
        .dir
        .list_registrations(env.tenant.id, env.alice.extension_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    svc.shutdown().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_answered_alike() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut known = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let r = known.register_req();
    let bad_known = known.register_with(r, "wrong").await;
    let mut unknown = Ua::udp("127.0.0.1", svc.addr(), "9999").await;
    let r = unknown.register_req();
    let ch_unknown = unknown.send(&r).await;
    let mut r2 = r.clone();
    r2.cseq += 1;
    unknown.authorize(&mut r2, &ch_unknown, "whatever");
    let bad_unknown = unknown.send(&r2).await;
    assert_eq!(bad_known.status.as_u16(), 403);
    assert_eq!(bad_unknown.status.as_u16(), 403);
    assert_eq!(bad_known.reason, bad_unknown.reason);
    assert_eq!(header_names(&bad_known), header_names(&bad_unknown));
    // the challenges look the same too
    let r = known.register_req();
    let ch_known = known.send(&r).await;
    assert_eq!(header_names(&ch_known), header_names(&ch_unknown));
    assert_eq!(ch_known.headers("WWW-Authenticate").count(), 2);
    let algs: Vec<_> = ch_known
        .headers("WWW-Authenticate")
        .map(|h| sip::auth::Challenge::parse(h).unwrap().algorithm)
        .collect();
    assert_eq!(
        algs,
        [sip::auth::Algorithm::Sha256, sip::auth::Algorithm::Md5]
    );
    svc.shutdown().await;
}

#[tokio::test]
async fn md5_answer_is_accepted() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    let ch = ua.send(&r).await;
    let md5 = ch.headers("WWW-Authenticate").nth(1).unwrap();
    let c = sip::auth::Challenge::parse(md5).unwrap();
    r.cseq += 1;
    ua.cseq = r.cseq;
    r.branch = format!("z9hG4bK{}", rand_token());
    r.auth = Some(
        c.answer("1001", PASSWORD, "REGISTER", &r.uri, 1, "abc")
            .to_header_value(),
    );
    assert_eq!(ua.send(&r).await.status.as_u16(), 200);
    svc.shutdown().await;
}

#[tokio::test]
async fn stale_nonce_gets_stale_challenge() {
    let env = env().await;
    let svc = start(&env, |c| c.verifier.nonce_lifetime = Duration::from_secs(1)).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    let ch = ua.send(&r).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    r.cseq += 1;
    r.branch = format!("z9hG4bK{}", rand_token());
    ua.authorize(&mut r, &ch, PASSWORD);
    let stale = ua.send(&r).await;
    assert_eq!(stale.status.as_u16(), 401);
    let c = sip::auth::Challenge::parse(stale.headers("WWW-Authenticate").next().unwrap()).unwrap();
    assert!(c.stale, "{stale:?}");
    // answering the new challenge works
    r.cseq += 1;
    r.branch = format!("z9hG4bK{}", rand_token());
    ua.authorize(&mut r, &stale, PASSWORD);
    assert_eq!(ua.send(&r).await.status.as_u16(), 200);
    svc.shutdown().await;
}

#[tokio::test]
async fn interval_too_brief_and_clamping() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    r.expires = Some(30);
    let resp = ua.register_with(r, PASSWORD).await;
    assert_eq!(resp.status.as_u16(), 423);
    assert_eq!(resp.headers.get("Min-Expires"), Some("60"));
    let mut r = ua.register_req();
    r.contacts = vec![format!("<sip:1001@{}>;expires=99999", ua.local)];
    let ok = ua.register_with(r, PASSWORD).await;
    assert_eq!(ok.status.as_u16(), 200);
    assert!(
        contacts(&ok)[0].ends_with(";expires=3600"),
        "{:?}",
        contacts(&ok)
    );
    svc.shutdown().await;
}

#[tokio::test]
async fn contact_star_needs_expires_zero_and_removes_all() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    let mut r = ua.register_req();
    r.contacts = vec!["*".into()];
    r.expires = Some(3600);
    assert_eq!(ua.register_with(r, PASSWORD).await.status.as_u16(), 400);
    let mut r = ua.register_req();
    r.contacts = vec!["*".into()];
    r.expires = Some(0);
    let ok = ua.register_with(r, PASSWORD).await;
    assert_eq!(ok.status.as_u16(), 200);
    assert!(contacts(&ok).is_empty());
    assert!(
        svc.handle
            .location()
            .lookup(env.tenant.id, env.alice.extension_id)
            .is_empty()
    );
    let rows = env
        .dir
        .list_registrations(env.tenant.id, env.alice.extension_id)
        .await
        .unwrap();
    assert!(rows.is_empty());
    svc.shutdown().await;
}

#[tokio::test]
async fn two_contacts_refresh_and_single_removal() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    r.contacts = vec![
        "<sip:1001@10.0.0.1:5060>;q=0.8".into(),
        "<sip:1001@10.0.0.2:5060>;expires=120".into(),
    ];
    let ok = ua.register_with(r, PASSWORD).await;
    assert_eq!(ok.status.as_u16(), 200);
    let c = contacts(&ok);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(
        c.iter()
            .any(|c| c.starts_with("<sip:1001@10.0.0.1:5060>;expires=") && c.ends_with(";q=0.800")),
        "{c:?}"
    );
    assert!(
        c.iter()
            .any(|c| c.starts_with("<sip:1001@10.0.0.2:5060>;expires=12")),
        "{c:?}"
    );
    // refresh one: still two bindings
    let mut r = ua.register_req();
    r.contacts = vec!["<sip:1001@10.0.0.2:5060>".into()];
    r.expires = Some(600);
    let ok = ua.register_with(r, PASSWORD).await;
    let c = contacts(&ok);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(
        c.iter()
            .any(|c| c.starts_with("<sip:1001@10.0.0.2:5060>;expires=60")),
        "{c:?}"
    );
    // remove one
    let mut r = ua.register_req();
    r.contacts = vec!["<sip:1001@10.0.0.1:5060>;expires=0".into()];
    let ok = ua.register_with(r, PASSWORD).await;
    let c = contacts(&ok);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].starts_with("<sip:1001@10.0.0.2:5060>"));
    // a query (no Contact) lists without changing
    let mut r = ua.register_req();
    r.contacts.clear();
    let ok = ua.register_with(r, PASSWORD).await;
    assert_eq!(contacts(&ok).len(), 1);
    assert_eq!(
        env.dir
            .list_registrations(env.tenant.id, env.alice.extension_id)
            .await
            .unwrap()
            .len(),
        1
    );
    svc.shutdown().await;
}

#[tokio::test]
async fn bindings_expire_on_time() {
    let env = env().await;
    let svc = start(&env, |c| {
        c.registrar.min_expires = 1;
        c.sweep_interval = Duration::from_millis(200);
    })
    .await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    r.expires = Some(2);
    assert_eq!(ua.register_with(r, PASSWORD).await.status.as_u16(), 200);
    let loc = svc.handle.location();
    assert_eq!(loc.lookup(env.tenant.id, env.alice.extension_id).len(), 1);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert!(loc.lookup(env.tenant.id, env.alice.extension_id).is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(loc.count(), 0, "swept");
    svc.shutdown().await;
}

#[tokio::test]
async fn retransmission_is_answered_again_and_old_cseq_refused() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let ok = ua.register().await;
    assert_eq!(ok.status.as_u16(), 200);
    let again = ua.last_sent.clone();
    ua.send_raw(&again).await;
    let ok2 = ua.recv().await;
    assert_eq!(ok2.status.as_u16(), 200, "{ok2:?}");
    assert_eq!(contacts(&ok2).len(), 1);
    assert_eq!(
        ok.to_addr().unwrap().unwrap().tag(),
        ok2.to_addr().unwrap().unwrap().tag()
    );
    // same Call-ID, lower CSeq, properly authenticated: refused
    let mut r = ua.register_req();
    r.cseq = 1;
    let first = ua.send(&r).await;
    r.branch = format!("z9hG4bK{}", rand_token());
    ua.authorize(&mut r, &first, PASSWORD);
    let refused = ua.send(&r).await;
    assert_eq!(refused.status.as_u16(), 500, "{refused:?}");
    svc.shutdown().await;
}

#[tokio::test]
async fn rport_and_received_are_filled() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    // a phone behind NAT writes its private address in Via
    r.via_host = Some("192.168.1.50:5062".into());
    let resp = ua.send(&r).await;
    let via = resp.top_via().unwrap().unwrap();
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(via.rport(), Some(Some(ua.local.port())));
    assert_eq!(via.host, "192.168.1.50");
    svc.shutdown().await;
}

#[tokio::test]
async fn options_malformed_and_other_methods() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    r.method = "OPTIONS";
    r.contacts.clear();
    let ok = ua.send(&r).await;
    assert_eq!(ok.status.as_u16(), 200);
    assert!(ok.headers.get("Allow").unwrap().contains("REGISTER"));
    assert!(ok.headers.get("Accept").is_some());
    assert!(ok.headers.get("Supported").is_some());
    // Max-Forwards: 0
    let bytes = String::from_utf8(ua.render(&r))
        .unwrap()
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    ua.send_raw(bytes.as_bytes()).await;
    assert_eq!(ua.recv().await.status.as_u16(), 483);
    // INVITE without credentials: the calls side challenges it
    let mut inv = r.clone();
    inv.method = "INVITE";
    let resp = ua.send(&inv).await;
    assert_eq!(resp.status.as_u16(), 407);
    assert!(resp.headers.get("Proxy-Authenticate").is_some());
    // malformed CSeq with readable Via: 400 with a reason
    let bad = String::from_utf8(ua.render(&r))
        .unwrap()
        .replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS");
    ua.send_raw(bad.as_bytes()).await;
    // (the answer copies the broken CSeq, so read it as text)
    let resp = String::from_utf8(ua.recv_bytes(WAIT).await.unwrap()).unwrap();
    let status_line = resp.lines().next().unwrap();
    assert!(status_line.starts_with("SIP/2.0 400 Bad Request"), "{resp}");
    assert!(status_line.contains("CSeq"), "{status_line}");
    // garbage: no answer, no panic; the service still answers afterwards
    for i in 0..200u32 {
        let mut junk: Vec<u8> = (0..(i * 7 % 1400)).map(|_| rand::random::<u8>()).collect();
        if i % 3 == 0 {
            junk.splice(0..0, b"REGISTER sip:x SIP/2.0\r\nVia: ".iter().copied());
        }
        ua.send_raw(&junk).await;
    }
    while ua.recv_within(Duration::from_millis(300)).await.is_some() {}
    let ok = ua.send(&r).await;
    assert_eq!(ok.status.as_u16(), 200);
    svc.shutdown().await;
}

#[tokio::test]
async fn brute_force_is_banned_without_locking_out_others() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    // an attacker at 127.0.0.5 tries ten username/password pairs
    let mut attacker = Ua::udp("127.0.0.5", svc.addr(), "1001").await;
    for i in 0..10 {
        attacker.user = if i == 0 {
            "1001".into()
        } else {
            format!("20{i:02}")
        };
        let r = attacker.register_req();
        let resp = attacker.register_with(r, "guess").await;
        assert_eq!(resp.status.as_u16(), 403, "attempt {i}");
    }
    // banned: not even a challenge any more
    let r = attacker.register_req();
    let b = attacker.render(&r);
    attacker.send_raw(&b).await;
    assert!(
        attacker
            .recv_within(Duration::from_millis(500))
            .await
            .is_none()
    );
    // the real phone elsewhere is fine
    let mut phone = Ua::udp("127.0.0.6", svc.addr(), "1001").await;
    assert_eq!(phone.register().await.status.as_u16(), 200);
    // behind one NAT: a few wrong guesses on 1002 do not lock 1001 out from the same IP
    let mut office_bad = Ua::udp("127.0.0.7", svc.addr(), "1002").await;
    for _ in 0..4 {
        let r = office_bad.register_req();
        assert_eq!(
            office_bad.register_with(r, "typo").await.status.as_u16(),
            403
        );
    }
    let mut office_good = Ua::udp("127.0.0.7", svc.addr(), "1001").await;
    assert_eq!(office_good.register().await.status.as_u16(), 200);
    svc.shutdown().await;
}

#[tokio::test]
async fn username_must_match_to_user() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    let ch = ua.send(&r).await;
    r.cseq += 1;
    let c = sip::auth::Challenge::parse(ch.headers("WWW-Authenticate").next().unwrap()).unwrap();
    // bob's credentials on alice's AOR
    r.auth = Some(
        c.answer("1002", PASSWORD, "REGISTER", &r.uri, 1, "x")
            .to_header_value(),
    );
    let resp = ua.send(&r).await;
    assert_eq!(resp.status.as_u16(), 403);
    svc.shutdown().await;
}

/// A phone whose NAT mapping changed registers a new contact with the same +sip.instance:
/// the new binding replaces the old one instead of piling up. A contact given twice counts once.
#[tokio::test]
async fn same_instance_replaces_and_duplicates_count_once() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let inst = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\";reg-id=1";
    let mut r = ua.register_req();
    r.contacts = vec![
        format!("<sip:1001@198.51.100.7:40000>;{inst}"),
        format!("<sip:1001@198.51.100.7:40000>;{inst}"),
    ];
    let ok = ua.register_with(r, PASSWORD).await;
    assert_eq!(contacts(&ok).len(), 1, "{:?}", contacts(&ok));
    assert!(
        contacts(&ok)[0].contains("+sip.instance="),
        "{:?}",
        contacts(&ok)
    );
    let mut r = ua.register_req();
    r.contacts = vec![format!("<sip:1001@198.51.100.7:41111>;{inst}")];
    let ok = ua.register_with(r, PASSWORD).await;
    let c = contacts(&ok);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].starts_with("<sip:1001@198.51.100.7:41111>"), "{c:?}");
    let rows = env
        .dir
        .list_registrations(env.tenant.id, env.alice.extension_id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].binding.contact_uri, "sip:1001@198.51.100.7:41111");
    assert_eq!(rows[0].binding.reg_id, Some(1));
    svc.shutdown().await;
}

#[tokio::test]
async fn challenge_order_can_put_md5_first() {
    let env = env().await;
    let svc = start(&env, |c| {
        c.registrar.challenges = pbx::ChallengeAlgorithms::Md5ThenSha256
    })
    .await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let r = ua.register_req();
    let ch = ua.send(&r).await;
    let algs: Vec<_> = ch
        .headers("WWW-Authenticate")
        .map(|h| sip::auth::Challenge::parse(h).unwrap().algorithm)
        .collect();
    assert_eq!(
        algs,
        [sip::auth::Algorithm::Md5, sip::auth::Algorithm::Sha256]
    );
    // answering the first (MD5) works
    assert_eq!(ua.register().await.status.as_u16(), 200);
    svc.shutdown().await;
    let svc = start(&env, |c| {
        c.registrar.challenges = pbx::ChallengeAlgorithms::Md5Only
    })
    .await;
    ua.server = svc.addr();
    let r = ua.register_req();
    let ch = ua.send(&r).await;
    assert_eq!(ch.headers("WWW-Authenticate").count(), 1);
    assert!(
        ch.headers
            .get("WWW-Authenticate")
            .unwrap()
            .contains("algorithm=MD5")
    );
    assert_eq!(ua.register().await.status.as_u16(), 200);
    svc.shutdown().await;
}
