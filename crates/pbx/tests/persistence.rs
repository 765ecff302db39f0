//! Persistence of bindings and the credential cache against the directory: restart, commit
//! before 200, back-pressure, credential changes.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn regenerated_password_works_at_once() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    env.dir
        .regenerate_credential(
            env.tenant.id,
            env.alice.id,
            &sip::auth::ha1_md5("1001", DOMAIN, "new pw")
                .parse()
                .unwrap(),
            &sip::auth::ha1_sha256("1001", DOMAIN, "new pw")
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = ua.register_req();
    assert_eq!(ua.register_with(r, "new pw").await.status.as_u16(), 200);
    svc.shutdown().await;
}

#[tokio::test]
async fn bindings_survive_a_restart() {
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    svc.shutdown().await;
    let svc = start(&env, |_| {}).await;
    let b = svc
        .handle
        .location()
        .lookup(env.tenant.id, env.alice.extension_id);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].contact, format!("sip:1001@{}", ua.local));
    assert_eq!(b[0].flow.remote, ua.local);
    assert!(b[0].remaining_secs(std::time::SystemTime::now()) > 3500);
    // the phone refreshes through the new service (new nonce secret: a fresh challenge)
    ua.server = svc.addr();
    assert_eq!(ua.register().await.status.as_u16(), 200);
    assert_eq!(svc.handle.location().count(), 1);
    svc.shutdown().await;
}

#[tokio::test]
async fn deleted_credential_stops_working_after_the_cache_ttl() {
    let env = env().await;
    let svc = start(&env, |c| c.registrar.cache_ttl = Duration::from_millis(500)).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    env.dir
        .delete_credential(env.tenant.id, env.alice.id)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // the stale entry is served once (its binding cannot be stored any more: 500) while it
    // is refetched in the background
    let first = ua.register().await.status.as_u16();
    assert!(first == 500 || first == 403, "{first}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ua.register().await.status.as_u16(), 403);
    svc.shutdown().await;
}

/// While the database is locked the REGISTER is held (no 200 before the commit); once the
/// lock goes, the binding is committed and answered.
#[tokio::test]
async fn the_200_waits_for_the_commit() {
    use sqlx::Connection;
    let env = env().await;
    let svc = start(&env, |_| {}).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    let mut r = ua.register_req();
    let ch = ua.send(&r).await;
    let mut lock = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    r.cseq += 1;
    r.branch = format!("z9hG4bK{}", rand_token());
    ua.authorize(&mut r, &ch, PASSWORD);
    let bytes = ua.render(&r);
    ua.send_raw(&bytes).await;
    assert!(
        ua.recv_within(Duration::from_millis(800)).await.is_none(),
        "no answer while the database is locked"
    );
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    let ok = ua.recv().await;
    assert_eq!(ok.status.as_u16(), 200);
    assert_eq!(
        env.dir
            .list_registrations(env.tenant.id, env.alice.extension_id)
            .await
            .unwrap()
            .len(),
        1
    );
    lock.close().await.unwrap();
    svc.shutdown().await;
}

/// With the database stuck and the commit queue full, further REGISTERs are refused with
/// 500 + Retry-After at once (memory untouched); the queued ones complete when it recovers.
#[tokio::test]
async fn full_commit_queue_answers_500_retry_after() {
    use sqlx::Connection;
    let env = env().await;
    let svc = start(&env, |c| c.persist.queue_capacity = 1).await;
    let mut uas = Vec::new();
    let mut authorized = Vec::new();
    for _ in 0..3 {
        let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
        let mut r = ua.register_req();
        let ch = ua.send(&r).await;
        r.cseq += 1;
        r.branch = format!("z9hG4bK{}", rand_token());
        ua.authorize(&mut r, &ch, PASSWORD);
        authorized.push(ua.render(&r));
        uas.push(ua);
    }
    let mut lock = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    for (ua, bytes) in uas.iter_mut().zip(&authorized).take(2) {
        ua.send_raw(bytes).await;
        // let the persister take the first job before the second arrives
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    uas[2].send_raw(&authorized[2]).await;
    let refused = uas[2].recv().await;
    assert_eq!(refused.status.as_u16(), 500, "{refused:?}");
    assert!(refused.headers.get("Retry-After").is_some());
    assert_eq!(svc.handle.location().count(), 2);
    sqlx::raw_sql("ROLLBACK").execute(&mut lock).await.unwrap();
    assert_eq!(uas[0].recv().await.status.as_u16(), 200);
    assert_eq!(uas[1].recv().await.status.as_u16(), 200);
    lock.close().await.unwrap();
    svc.shutdown().await;
}
