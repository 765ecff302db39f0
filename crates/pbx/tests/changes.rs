//! Admin changes from other processes, as the SIP service reads them from the directory's
//! change log (SQLite: polled), including the case where some were missed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sqlx::Connection as _;
use store::changes::Action;
use store::{Change, ChangeBus, RingGroupId};

/// Rows of the change log are pruned before the server read them: the server cannot know
/// what it missed, so it resynchronises. Here a credential was deleted meanwhile (with no
/// event of its own): its binding goes, and the phone stops being rung.
#[tokio::test]
async fn missed_changes_resync_and_drop_bindings_of_deleted_credentials() {
    let env = env().await;
    let svc = start(&env, |c| {
        // the first read is at start; the next one after the log below is written and pruned
        c.change_poll = Duration::from_secs(3);
    })
    .await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1001").await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    let location = svc.handle.location();
    assert_eq!(
        location.lookup(env.tenant.id, env.alice.extension_id).len(),
        1
    );

    // another process deletes the credential and records changes; the log is pruned
    env.dir
        .delete_credential(env.tenant.id, env.alice.id)
        .await
        .unwrap();
    let other = ChangeBus::new().origin();
    let noise = Change::RingGroup {
        tenant: env.tenant.id,
        group: RingGroupId::new(),
        action: Action::Updated,
    };
    env.dir.record_change(other, &noise).await.unwrap();
    env.dir.record_change(other, &noise).await.unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
    sqlx::query("DELETE FROM change_log WHERE seq = (SELECT MIN(seq) FROM change_log)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(8);
    while !location
        .lookup(env.tenant.id, env.alice.extension_id)
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the deleted credential's binding is still there after the resync"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    svc.shutdown().await;
}

/// A change recorded by another process (the CLI) reaches the running service: a deleted
/// extension's binding is dropped without waiting for it to expire.
#[tokio::test]
async fn a_change_from_another_process_drops_bindings_at_once() {
    let env = env().await;
    let svc = start(&env, |c| c.change_poll = Duration::from_millis(50)).await;
    let mut ua = Ua::udp("127.0.0.1", svc.addr(), "1002").await;
    assert_eq!(ua.register().await.status.as_u16(), 200);
    let location = svc.handle.location();
    env.dir
        .delete_extension(env.tenant.id, env.bob.extension_id)
        .await
        .unwrap();
    let cli = ChangeBus::new().origin();
    env.dir
        .record_change(
            cli,
            &Change::Extension {
                tenant: env.tenant.id,
                extension: env.bob.extension_id,
                action: Action::Deleted,
            },
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !location
        .lookup(env.tenant.id, env.bob.extension_id)
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "binding of a deleted extension kept"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // and it cannot come back with the deleted credential (cached before the change)
    let again = ua.register().await.status.as_u16();
    assert_eq!(again, 403, "a deleted extension's phone registered again");
    svc.shutdown().await;
}
