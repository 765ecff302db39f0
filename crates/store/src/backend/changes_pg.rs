//! The change log on PostgreSQL: each row is also sent with `NOTIFY` in the same transaction,
//! and servers `LISTEN`. A lost listening connection means notifications were lost with it:
//! the reader is told to resynchronise.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use crate::changes::{
    Change, ChangeWatch, Delivery, LOG_KEEP, NOTIFY_CHANNEL, WATCH_QUEUE, WatchOptions,
};
use crate::error::{Result, StoreError};

type Pool = sqlx::PgPool;

/// The NOTIFY payload: who sent it and what changed.
#[derive(serde::Serialize, serde::Deserialize)]
struct Note {
    origin: uuid::Uuid,
    change: Change,
}

pub(crate) async fn record_change(
    pool: &Pool,
    origin: uuid::Uuid,
    change: &Change,
    db_err: fn(sqlx::Error) -> StoreError,
    at: time::OffsetDateTime,
) -> Result<()> {
    let note = serde_json::to_string(&Note {
        origin,
        change: *change,
    })
    .map_err(|e| StoreError::Internal(format!("change event not serialisable: {e}")))?;
    let mut tx = pool.begin().await.map_err(db_err)?;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO change_log (origin, payload, created_at) VALUES ($1, $2, $3) RETURNING seq",
    )
    .bind(origin)
    .bind(change.to_json())
    .bind(at)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(note)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if seq % 100 == 0 {
        sqlx::query("DELETE FROM change_log WHERE seq <= $1")
            .bind(seq - LOG_KEEP)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

async fn listen(pool: &Pool) -> std::result::Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(NOTIFY_CHANNEL).await?;
    Ok(l)
}

/// Returns once `LISTEN` is in place, so no change committed after this returns is missed.
pub(crate) async fn watch_changes(
    pool: &Pool,
    options: WatchOptions,
    db_err: fn(sqlx::Error) -> StoreError,
) -> Result<ChangeWatch> {
    let first = listen(pool).await.map_err(db_err)?;
    let (tx, rx) = mpsc::channel(WATCH_QUEUE);
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut listener = Some(first);
        loop {
            let l = match listener.as_mut() {
                Some(l) => l,
                None => {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = tx.closed() => return,
                    }
                    match listen(&pool).await {
                        Ok(l) => {
                            // Whatever was sent while we were away is gone.
                            let why = "the LISTEN connection was re-established".to_owned();
                            if tx.send(Delivery::Resync(why)).await.is_err() {
                                return;
                            }
                            listener.insert(l)
                        }
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(e) => {
                            tracing::debug!(error = %e, "LISTEN for changes failed; retrying");
                            continue;
                        }
                    }
                }
            };
            let got = tokio::select! {
                got = l.try_recv() => got,
                () = tx.closed() => return,
            };
            let delivery = match got {
                Ok(Some(n)) => match serde_json::from_str::<Note>(n.payload()) {
                    Ok(note) if note.origin == options.origin => continue,
                    Ok(note) => Delivery::Change(note.change),
                    Err(e) => Delivery::Resync(format!("unreadable change notification: {e}")),
                },
                // The connection dropped and was re-established: notifications were lost.
                Ok(None) => Delivery::Resync("the LISTEN connection was lost".to_owned()),
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for changes failed; reconnecting");
                    listener = None;
                    continue;
                }
            };
            if tx.send(delivery).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
