//! Contract tests: change events reach a server in another process (another pool on the same
//! database), in order, never its own, and a reader that fell behind is told to resync.

use std::time::Duration;

use store::changes::{Action, Change, Delivery, WatchOptions};
use store::*;

use super::support::Backend;

fn trunk_change(action: Action) -> Change {
    Change::Trunk {
        trunk: TrunkId::new(),
        action,
    }
}

async fn next(w: &mut store::changes::ChangeWatch) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), w.recv())
        .await
        .expect("a change within 5 s")
        .expect("the watch is open")
}

async fn another_process_sees_changes_in_order_but_not_its_own(b: Backend) {
    let db = b.open().await;
    // The "CLI": a second connection pool on the same database.
    let cli = store::connect(&db.url).await.unwrap();
    let server = ChangeBus::new();
    let mut options = WatchOptions::new(server.origin());
    options.poll = Duration::from_millis(20);
    let mut watch = db.dir.watch_changes(options).await.unwrap();

    let cli_origin = ChangeBus::new().origin();
    let first = trunk_change(Action::Created);
    let own = trunk_change(Action::Updated);
    let second = Change::Extension {
        tenant: TenantId::new(),
        extension: ExtensionId::new(),
        action: Action::Deleted,
    };
    cli.record_change(cli_origin, &first).await.unwrap();
    db.dir.record_change(server.origin(), &own).await.unwrap();
    cli.record_change(cli_origin, &second).await.unwrap();

    assert_eq!(next(&mut watch).await, Delivery::Change(first));
    assert_eq!(next(&mut watch).await, Delivery::Change(second));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch.recv())
            .await
            .is_err(),
        "its own change was delivered back"
    );
}

async fn changes_before_the_watch_started_are_not_replayed(b: Backend) {
    let db = b.open().await;
    let origin = ChangeBus::new().origin();
    db.dir
        .record_change(origin, &trunk_change(Action::Deleted))
        .await
        .unwrap();
    let mut options = WatchOptions::new(ChangeBus::new().origin());
    options.poll = Duration::from_millis(20);
    let mut watch = db.dir.watch_changes(options).await.unwrap();
    let after = trunk_change(Action::Created);
    db.dir.record_change(origin, &after).await.unwrap();
    assert_eq!(next(&mut watch).await, Delivery::Change(after));
}

contract_tests!(
    another_process_sees_changes_in_order_but_not_its_own,
    changes_before_the_watch_started_are_not_replayed,
);

/// SQLite: a reader whose cursor points below rows pruned from the log resynchronises instead
/// of skipping them silently.
#[tokio::test]
async fn sqlite_reader_behind_the_pruned_log_resyncs() {
    let db = Backend::Sqlite.open().await;
    let mut options = WatchOptions::new(ChangeBus::new().origin());
    // the first poll runs at once; the next one only after the rows below are written and pruned
    options.poll = Duration::from_millis(800);
    let mut watch = db.dir.watch_changes(options).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let origin = ChangeBus::new().origin();
    let c = trunk_change(Action::Created);
    db.dir.record_change(origin, &c).await.unwrap();
    db.dir.record_change(origin, &c).await.unwrap();
    db.raw(
        "DELETE FROM change_log WHERE seq = (SELECT MIN(seq) FROM change_log)",
        &[],
    )
    .await
    .unwrap();
    match next(&mut watch).await {
        Delivery::Resync(why) => assert!(why.contains("pruned"), "{why}"),
        other => panic!("expected a resync, got {other:?}"),
    }
    assert_eq!(next(&mut watch).await, Delivery::Change(c));
}
