//! Group commit of registrar changes.
//!
//! The registrar updates memory at once and hands the matching directory changes, with the
//! 200 OK it has built, to this task through a bounded queue. The task takes everything queued
//! (up to `max_batch` changes, waiting at most `linger` for more), commits it with one
//! [`store::Directory::apply_registration_batch`] call, and only then sends the 200s: a phone
//! told "registered" is registered in the database. While a commit runs, the next batch
//! accumulates, so the commit rate adapts to the load (one transaction per batch, not per
//! REGISTER).
//!
//! Failures: while the database is unavailable the batch is retried with back-off (50 ms up to
//! 2 s) and nothing is answered; the queue fills, and past `queue_capacity` jobs the registrar
//! answers `500 Server Internal Error` with `Retry-After` without touching memory. Any other
//! error (a credential deleted meanwhile, say) is isolated by committing the jobs of the batch
//! one by one; the jobs that still fail are answered 500 (memory keeps their binding until it
//! expires or the phone re-registers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip::{Response, StatusCode};
use store::{Directory, RegistrationChange, StoreError};
use tokio::sync::{mpsc, watch};

use crate::transport::{Flow, Outbound};

/// Group-commit settings.
#[derive(Clone, Debug)]
pub struct PersistConfig {
    /// Changes per transaction at most. Default 500.
    pub max_batch: usize,
    /// Jobs (REGISTERs) waiting for a commit at most; beyond, REGISTERs get 500 + Retry-After.
    /// Default 20,000.
    pub queue_capacity: usize,
    /// At shutdown, how long to keep retrying an unavailable database before giving up.
    /// Default 10 s.
    pub shutdown_grace: Duration,
    /// How long the first job of a batch waits for company before the commit starts. Each
    /// commit writes several pages whatever its size, so a short wait under load saves far
    /// more than it costs in latency. Default 1 ms.
    pub linger: Duration,
}

impl Default for PersistConfig {
    fn default() -> Self {
        PersistConfig {
            max_batch: 500,
            queue_capacity: 20_000,
            shutdown_grace: Duration::from_secs(10),
            linger: Duration::from_millis(1),
        }
    }
}

/// A response to send once the job's changes are committed.
pub(crate) struct Reply {
    pub outbound: Outbound,
    pub target: Flow,
    pub response: Response,
}

impl Reply {
    fn send(self, ok: bool) {
        let mut response = self.response;
        if !ok {
            response.status = StatusCode::SERVER_INTERNAL_ERROR;
            response.reason = "Server Internal Error (binding not stored)".to_owned();
            response.headers.remove("Contact");
            response.headers.push("Retry-After", "5");
        }
        let _ = self
            .outbound
            .send(&self.target, Bytes::from(response.to_bytes()));
    }
}

pub(crate) struct Job {
    pub changes: Vec<RegistrationChange>,
    pub reply: Option<Reply>,
}

/// Runs until the queue is closed and drained. `stop` only shortens retries at shutdown.
pub(crate) async fn run(
    dir: Arc<dyn Directory>,
    mut rx: mpsc::Receiver<Job>,
    cfg: PersistConfig,
    stop: watch::Receiver<bool>,
) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut changes: Vec<RegistrationChange> = Vec::new();
    let mut spans: Vec<usize> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut n = first.changes.len();
        jobs.push(first);
        let deadline = tokio::time::Instant::now() + cfg.linger;
        while n < cfg.max_batch {
            let next = match rx.try_recv() {
                Ok(j) => Some(j),
                Err(mpsc::error::TryRecvError::Empty) if !cfg.linger.is_zero() => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
                Err(_) => None,
            };
            match next {
                Some(j) => {
                    n += j.changes.len();
                    jobs.push(j);
                }
                None => break,
            }
        }
        for j in &mut jobs {
            spans.push(j.changes.len());
            changes.append(&mut j.changes);
        }
        let ok = if changes.is_empty() {
            Ok(())
        } else {
            commit(&*dir, &changes, &cfg, &stop).await
        };
        match ok {
            Ok(()) => {
                for j in jobs.drain(..) {
                    if let Some(r) = j.reply {
                        r.send(true);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, changes = changes.len(), "registration batch failed; retrying job by job");
                let mut at = 0;
                for (j, len) in jobs.drain(..).zip(spans.iter()) {
                    let part = changes.get(at..at + len).unwrap_or(&[]);
                    at += len;
                    let ok = part.is_empty() || commit(&*dir, part, &cfg, &stop).await.is_ok();
                    if !ok {
                        tracing::warn!("registration not stored; answered 500");
                    }
                    if let Some(r) = j.reply {
                        r.send(ok);
                    }
                }
            }
        }
        changes.clear();
        spans.clear();
    }
}

/// Commits, retrying while the database is unavailable (bounded only at shutdown).
async fn commit(
    dir: &dyn Directory,
    changes: &[RegistrationChange],
    cfg: &PersistConfig,
    stop: &watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let mut backoff = Duration::from_millis(50);
    let mut stopping_since: Option<Instant> = None;
    loop {
        match dir.apply_registration_batch(changes).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_unavailable() => {
                if *stop.borrow() {
                    let since = *stopping_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= cfg.shutdown_grace {
                        return Err(e);
                    }
                }
                tracing::warn!(error = %e, "directory unavailable; registration batch will be retried");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}
