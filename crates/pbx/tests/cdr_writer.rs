//! The CDR writer against a real SQLite directory behind a wrapper that can
//! fail: retries, order, exactly-once, shutdown flush and hand-back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pbx::cdr::{CdrWriter, CdrWriterConfig};
use store::*;
use time::OffsetDateTime;

#[path = "cdr_writer/flaky.rs"]
mod flaky;

use flaky::Flaky;

struct Env {
    flaky: Arc<Flaky>,
    tenant: TenantId,
    _tmp: tempfile::TempDir,
}

async fn env(fail_first: usize) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("sb.db").display());
    let inner = store::connect(&url).await.unwrap();
    inner.migrate().await.unwrap();
    let tenant = inner
        .create_tenant(&NewTenant {
            slug: "acme".parse().unwrap(),
            sip_domain: "acme.example.com".parse().unwrap(),
            settings: TenantSettings::new("Acme"),
        })
        .await
        .unwrap();
    let flaky = Arc::new(Flaky {
        inner,
        fail_first: AtomicUsize::new(fail_first),
        down: AtomicBool::new(false),
        reject: Mutex::new(Vec::new()),
        attempts: AtomicUsize::new(0),
        written: Mutex::new(Vec::new()),
    });
    Env {
        flaky,
        tenant: tenant.id,
        _tmp: tmp,
    }
}

fn cdr(tenant: TenantId, i: usize) -> NewCdr {
    let now = OffsetDateTime::now_utc();
    NewCdr {
        id: CdrId::new(),
        tenant_id: tenant,
        call_id: format!("call-{i}"),
        direction: Direction::Internal,
        caller: "1001".into(),
        callee: "1002".into(),
        dialled: "1002".into(),
        trunk_id: None,
        started_at: now,
        answered_at: Some(now),
        ended_at: now,
        duration_secs: 0,
        disposition: Disposition::Answered,
        hangup_cause: "caller hung up".into(),
        hangup_by: HangupBy::Caller,
        transferred_by: None,
        transferred_to: None,
    }
}

fn fast() -> CdrWriterConfig {
    CdrWriterConfig {
        backoff_min: Duration::from_millis(1),
        backoff_max: Duration::from_millis(20),
        grace: Duration::from_secs(5),
        warn_depth: 1000,
        spill_path: None,
    }
}

async fn stored(env: &Env) -> u64 {
    let q = CdrQuery::default();
    env.flaky
        .inner
        .list_cdrs(env.tenant, &q)
        .await
        .unwrap()
        .total
}

#[tokio::test]
async fn retries_through_an_outage_writing_each_record_once_in_order() {
    let env = env(7).await;
    let writer = CdrWriter::spawn(env.flaky.clone(), fast());
    let tx = writer.sender();
    let sent: Vec<NewCdr> = (0..20).map(|i| cdr(env.tenant, i)).collect();
    for c in &sent {
        tx.send(c.clone()).unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while stored(&env).await < 20 {
        assert!(tokio::time::Instant::now() < deadline, "not all written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = writer.shutdown().await;
    assert_eq!(report.written, 20);
    assert!(report.unwritten.is_empty());
    assert_eq!(stored(&env).await, 20);
    let ids: Vec<CdrId> = sent.iter().map(|c| c.id).collect();
    assert_eq!(
        *env.flaky.written.lock().unwrap(),
        ids,
        "in order, once each"
    );
    assert_eq!(env.flaky.attempts.load(Ordering::SeqCst), 27);
    assert_eq!(tx.depth(), 0);
}

#[tokio::test]
async fn shutdown_flushes_the_queue() {
    let env = env(3).await;
    let writer = CdrWriter::spawn(env.flaky.clone(), fast());
    let tx = writer.sender();
    for i in 0..50 {
        tx.send(cdr(env.tenant, i)).unwrap();
    }
    let report = writer.shutdown().await;
    assert_eq!(report.written, 50);
    assert!(report.unwritten.is_empty());
    assert_eq!(stored(&env).await, 50);
    // After shutdown a record is handed back, not lost.
    assert!(tx.send(cdr(env.tenant, 99)).is_err());
}

#[tokio::test]
async fn records_left_at_shutdown_are_handed_back_and_written_by_the_next_writer() {
    let env = env(0).await;
    env.flaky.down.store(true, Ordering::SeqCst);
    let config = CdrWriterConfig {
        grace: Duration::from_millis(100),
        ..fast()
    };
    let writer = CdrWriter::spawn(env.flaky.clone(), config.clone());
    let tx = writer.sender();
    let sent: Vec<NewCdr> = (0..10).map(|i| cdr(env.tenant, i)).collect();
    for c in &sent {
        tx.send(c.clone()).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = writer.shutdown().await;
    assert_eq!(report.written, 0);
    assert_eq!(report.unwritten, sent);
    assert!(env.flaky.attempts.load(Ordering::SeqCst) > 1);

    env.flaky.down.store(false, Ordering::SeqCst);
    let writer = CdrWriter::spawn_with(env.flaky.clone(), config, report.unwritten);
    let report = writer.shutdown().await;
    assert_eq!(report.written, 10);
    assert_eq!(stored(&env).await, 10);
    let ids: Vec<CdrId> = sent.iter().map(|c| c.id).collect();
    assert_eq!(*env.flaky.written.lock().unwrap(), ids);
}

#[tokio::test]
async fn an_invalid_record_is_dropped_without_blocking_the_rest() {
    let env = env(0).await;
    let bad = cdr(env.tenant, 0);
    env.flaky.reject.lock().unwrap().push(bad.id);
    let writer = CdrWriter::spawn(env.flaky.clone(), fast());
    let tx = writer.sender();
    tx.send(bad).unwrap();
    tx.send(cdr(env.tenant, 1)).unwrap();
    let report = writer.shutdown().await;
    assert_eq!(report.rejected, 1);
    assert_eq!(report.written, 1);
    assert_eq!(stored(&env).await, 1);
}

#[tokio::test]
async fn a_retried_record_already_written_is_not_duplicated() {
    let env = env(0).await;
    let c = cdr(env.tenant, 0);
    env.flaky.inner.insert_cdr(&c).await.unwrap();
    let writer = CdrWriter::spawn(env.flaky.clone(), fast());
    writer.sender().send(c).unwrap();
    let report = writer.shutdown().await;
    assert_eq!(report.written, 1);
    assert_eq!(stored(&env).await, 1);
}

#[tokio::test]
async fn unwritten_records_spill_to_a_file_and_replay_at_the_next_start() {
    let env = env(0).await;
    let path = env._tmp.path().join("cdr-spill.jsonl");
    env.flaky.down.store(true, Ordering::SeqCst);
    let config = CdrWriterConfig {
        grace: Duration::from_millis(50),
        spill_path: Some(path.clone()),
        ..fast()
    };
    let writer = CdrWriter::spawn(env.flaky.clone(), config.clone());
    let sent: Vec<NewCdr> = (0..10).map(|i| cdr(env.tenant, i)).collect();
    for c in &sent {
        writer.sender().send(c.clone()).unwrap();
    }
    let report = writer.shutdown().await;
    assert!(report.spilled);
    assert_eq!(report.unwritten.len(), 10);
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(lines, 10);

    // Restart: the spilled records go first, then new ones; the file goes
    // once they are all written.
    // A generous grace: shutdown waits at most this long for the writes,
    // and 50 ms for eleven SQLite inserts failed once on a loaded machine.
    env.flaky.down.store(false, Ordering::SeqCst);
    let config = CdrWriterConfig {
        grace: Duration::from_secs(10),
        ..config
    };
    let writer = CdrWriter::spawn(env.flaky.clone(), config);
    let late = cdr(env.tenant, 10);
    writer.sender().send(late.clone()).unwrap();
    let report = writer.shutdown().await;
    assert_eq!(report.written, 11);
    assert!(report.unwritten.is_empty());
    assert!(!path.exists());
    let mut ids: Vec<CdrId> = sent.iter().map(|c| c.id).collect();
    ids.push(late.id);
    assert_eq!(*env.flaky.written.lock().unwrap(), ids);
    assert_eq!(stored(&env).await, 11);
}

#[tokio::test]
async fn during_a_long_outage_the_queue_is_kept_on_disk() {
    let env = env(0).await;
    let path = env._tmp.path().join("cdr-spill.jsonl");
    env.flaky.down.store(true, Ordering::SeqCst);
    let config = CdrWriterConfig {
        spill_path: Some(path.clone()),
        ..fast()
    };
    let writer = CdrWriter::spawn(env.flaky.clone(), config);
    for i in 0..5 {
        writer.sender().send(cdr(env.tenant, i)).unwrap();
    }
    let lines = || {
        std::fs::read_to_string(&path)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while lines() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "queue not spilled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    env.flaky.down.store(false, Ordering::SeqCst);
    while stored(&env).await < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not written after the outage"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!path.exists(), "the file goes once its records are written");
    let report = writer.shutdown().await;
    assert_eq!(report.written, 5);
}

#[tokio::test]
async fn shutdown_of_a_slow_drain_is_bounded_by_the_grace_period() {
    let env = env(0).await;
    let config = CdrWriterConfig {
        grace: Duration::from_millis(30),
        ..fast()
    };
    let writer = CdrWriter::spawn(env.flaky.clone(), config);
    let sent: Vec<NewCdr> = (0..3000).map(|i| cdr(env.tenant, i)).collect();
    for c in &sent {
        writer.sender().send(c.clone()).unwrap();
    }
    let started = std::time::Instant::now();
    let report = writer.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.written as usize + report.unwritten.len(), 3000);
    // What is left is the tail, in order.
    assert_eq!(report.unwritten[..], sent[report.written as usize..]);
}

/// A backlog is written in batches; a batch holding a record the directory
/// refuses is retried record by record, so only that record is dropped.
#[tokio::test]
async fn a_backlog_is_batched_and_one_bad_record_costs_only_itself() {
    let env = env(0).await;
    let dir: Arc<dyn Directory> = Arc::clone(&env.flaky.inner);
    let writer = CdrWriter::spawn(Arc::clone(&dir), fast());
    let tx = writer.sender();
    for i in 0..450 {
        let mut c = cdr(env.tenant, i);
        if i == 230 {
            c.tenant_id = TenantId::new(); // refused: no such tenant
        }
        tx.send(c).unwrap();
    }
    drop(tx);
    let report = writer.shutdown().await;
    assert_eq!((report.written, report.rejected), (449, 1));
    assert!(report.unwritten.is_empty());
    let total = dir
        .list_cdrs(env.tenant, &CdrQuery::default())
        .await
        .unwrap()
        .total;
    assert_eq!(total, 449);
}
