//! The change log on SQLite: rows appended by writers, polled by servers.
//!
//! Writers are serialised by SQLite (write transactions begin IMMEDIATE), so sequence numbers
//! become visible in order and a reader's cursor never skips a row that commits later.

use std::time::Duration;

use sqlx::Row as _;
use tokio::sync::mpsc;

use crate::changes::{Change, ChangeWatch, Delivery, LOG_KEEP, WATCH_QUEUE, WatchOptions};
use crate::error::{Result, StoreError};

type Pool = sqlx::SqlitePool;

/// Rows read per poll at most; more wait for the next poll (which comes at once).
const BATCH: i64 = 500;

pub(crate) async fn record_change(
    pool: &Pool,
    origin: uuid::Uuid,
    change: &Change,
    db_err: fn(sqlx::Error) -> StoreError,
    at: String,
) -> Result<()> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO change_log (origin, payload, created_at) VALUES ($1, $2, $3) RETURNING seq",
    )
    .bind(origin)
    .bind(change.to_json())
    .bind(at)
    .fetch_one(pool)
    .await
    .map_err(db_err)?;
    if seq % 100 == 0 {
        sqlx::query("DELETE FROM change_log WHERE seq <= $1")
            .bind(seq - LOG_KEEP)
            .execute(pool)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

async fn last_seq(pool: &Pool) -> std::result::Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM change_log")
        .fetch_one(pool)
        .await
}

pub(crate) async fn watch_changes(
    pool: &Pool,
    options: WatchOptions,
    db_err: fn(sqlx::Error) -> StoreError,
) -> Result<ChangeWatch> {
    let start = last_seq(pool).await.map_err(db_err)?;
    let (tx, rx) = mpsc::channel(WATCH_QUEUE);
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut cursor = start;
        let mut tick = tokio::time::interval(options.poll.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = tx.closed() => return,
            }
            loop {
                match poll_once(&pool, cursor, options.origin).await {
                    Ok(Poll { rows, gap, last }) => {
                        failing = false;
                        if gap {
                            let why = format!(
                                "change log rows after {cursor} were pruned before this server read them"
                            );
                            if tx.send(Delivery::Resync(why)).await.is_err() {
                                return;
                            }
                        }
                        let full = rows.len() as i64 >= BATCH;
                        for d in rows {
                            if tx.send(d).await.is_err() {
                                return;
                            }
                        }
                        cursor = last.unwrap_or(cursor);
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        // The cursor stays: the rows are read on a later poll.
                        if !failing {
                            tracing::warn!(error = %e, "reading the change log failed; retrying");
                        }
                        failing = true;
                        break;
                    }
                }
            }
        }
    });
    Ok(rx)
}

struct Poll {
    rows: Vec<Delivery>,
    /// The first row is not `cursor + 1`: rows were pruned unread.
    gap: bool,
    last: Option<i64>,
}

async fn poll_once(
    pool: &Pool,
    cursor: i64,
    origin: uuid::Uuid,
) -> std::result::Result<Poll, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, origin, payload FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(cursor)
    .bind(BATCH)
    .fetch_all(pool)
    .await?;
    let mut out = Poll {
        rows: Vec::with_capacity(rows.len()),
        gap: false,
        last: None,
    };
    for r in rows {
        let seq: i64 = r.try_get("seq")?;
        if out.last.is_none() && seq != cursor + 1 {
            out.gap = true;
        }
        out.last = Some(seq);
        let from: uuid::Uuid = r.try_get("origin")?;
        if from == origin {
            continue;
        }
        let payload: String = r.try_get("payload")?;
        out.rows.push(match Change::from_json(&payload) {
            Ok(c) => Delivery::Change(c),
            Err(e) => Delivery::Resync(format!("change log row {seq} is unreadable: {e}")),
        });
    }
    Ok(out)
}
