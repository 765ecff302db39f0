//! The CDR writer: a task that inserts call records into the directory in
//! the order they were produced, and keeps them while the database is away.
//!
//! * Records go into an unbounded queue ([`CdrSender::send`] never blocks the
//!   call engine); its depth is the `cdr_queue_depth` gauge, and a warning is
//!   logged each time it crosses another multiple of
//!   [`CdrWriterConfig::warn_depth`].
//! * The head of the queue is inserted first; on an error worth retrying
//!   (`Unavailable`, `Internal`) it stays at the head and the writer backs off
//!   exponentially ([`CdrWriterConfig::backoff_min`] doubling up to
//!   [`CdrWriterConfig::backoff_max`]), so order is preserved. Inserts are
//!   idempotent by CDR id, so a retry after an ambiguous failure (written but
//!   not acknowledged) cannot duplicate a record. Every failure counts in
//!   `cdr_write_failures_total`.
//! * When records pile up (a burst of calls, a slow database), the head of
//!   the queue goes in batches of up to 200 in one transaction
//!   ([`store::Directory::insert_cdrs`]); a batch refused as invalid is
//!   retried record by record.
//! * A record the directory refuses as invalid (`Invalid`, `Conflict`,
//!   `NotFound`, `Row`: e.g. its tenant was deleted) can never be written; it
//!   is logged in full at error level and dropped, so it does not block the
//!   queue forever.
//! * [`CdrWriter::shutdown`] stops accepting, keeps writing for a grace
//!   period, then returns what is left ([`ShutdownReport::unwritten`]) and
//!   logs the count, so the caller can keep them.
//!
//! * With [`CdrWriterConfig::spill_path`] set (e.g. next to the SQLite file),
//!   what is left at shutdown is also written to that file (JSON lines, see
//!   [`spill`]), and the next writer started with the same path queues those
//!   records first. The file is removed only once all of them are written;
//!   a crash in between replays them, which the idempotent insert absorbs.
//!   While the database stays away (back-off at its cap), the queue is also
//!   kept in that file, so a crash during an outage loses nothing either.

pub mod spill;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use store::{Directory, NewCdr, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Writer settings.
#[derive(Clone, Debug)]
pub struct CdrWriterConfig {
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How long [`CdrWriter::shutdown`] keeps trying.
    pub grace: Duration,
    /// Log a warning each time the queue grows past another multiple of this.
    pub warn_depth: usize,
    /// Where records left at shutdown are kept for the next start-up.
    pub spill_path: Option<PathBuf>,
}

impl Default for CdrWriterConfig {
    fn default() -> Self {
        Self {
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            warn_depth: 10_000,
            spill_path: None,
        }
    }
}

/// What the writer did by the time it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Records inserted (or found already there).
    pub written: u64,
    /// Records refused by the directory as invalid, dropped.
    pub rejected: u64,
    /// Records still queued when the grace period ran out, in order.
    pub unwritten: Vec<NewCdr>,
    /// Whether `unwritten` is safely in the spill file.
    pub spilled: bool,
}

/// Queues records for the writer. Cheap to clone; hand one to the driver.
#[derive(Clone)]
pub struct CdrSender {
    tx: mpsc::UnboundedSender<NewCdr>,
    depth: Arc<AtomicUsize>,
}

impl CdrSender {
    /// Queues `cdr`. After shutdown the record is handed back.
    pub fn send(&self, cdr: NewCdr) -> Result<(), Box<NewCdr>> {
        self.depth.fetch_add(1, Ordering::Relaxed);
        match self.tx.send(cdr) {
            Ok(()) => {
                metrics::gauge!("cdr_queue_depth").increment(1.0);
                Ok(())
            }
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                Err(Box::new(e.0))
            }
        }
    }

    /// Records queued and not yet written.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }
}

/// The running writer.
pub struct CdrWriter {
    sender: CdrSender,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<ShutdownReport>,
}

fn is_permanent(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Invalid { .. }
            | StoreError::Conflict { .. }
            | StoreError::NotFound { .. }
            | StoreError::Row { .. }
    )
}

impl CdrWriter {
    /// Starts the writer task on the current runtime.
    pub fn spawn(dir: Arc<dyn Directory>, config: CdrWriterConfig) -> Self {
        Self::spawn_with(dir, config, Vec::new())
    }

    /// Starts the writer with records left over from a previous run queued
    /// first (e.g. a previous [`ShutdownReport::unwritten`]).
    pub fn spawn_with(
        dir: Arc<dyn Directory>,
        config: CdrWriterConfig,
        backlog: Vec<NewCdr>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let depth = Arc::new(AtomicUsize::new(0));
        let sender = CdrSender { tx, depth };
        let mut from_file = 0;
        if let Some(path) = &config.spill_path {
            match spill::load(path) {
                Ok((records, bad)) => {
                    if !records.is_empty() || bad > 0 {
                        tracing::info!(path = %path.display(), records = records.len(), unreadable = bad, "replaying spilled CDRs");
                    }
                    from_file = records.len();
                    for cdr in records {
                        let _ = sender.send(cdr);
                    }
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot read the CDR spill file");
                }
            }
        }
        for cdr in backlog {
            let _ = sender.send(cdr);
        }
        let (stop_tx, stop_rx) = oneshot::channel();
        let depth = sender.depth.clone();
        let task = tokio::spawn(run(dir, config, rx, stop_rx, depth, from_file));
        Self {
            sender,
            stop: Some(stop_tx),
            task,
        }
    }

    pub fn sender(&self) -> CdrSender {
        self.sender.clone()
    }

    /// Stops accepting records, writes what it can within the grace period
    /// and returns the rest.
    pub async fn shutdown(mut self) -> ShutdownReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        drop(self.sender);
        match self.task.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "CDR writer task failed");
                ShutdownReport::default()
            }
        }
    }
}

struct State {
    dir: Arc<dyn Directory>,
    config: CdrWriterConfig,
    queue: VecDeque<NewCdr>,
    depth: Arc<AtomicUsize>,
    backoff: Duration,
    report: ShutdownReport,
    warned_at: usize,
    /// Records from the spill file not yet done with.
    from_file: usize,
    /// The last batch was refused as invalid: write the next record alone.
    single: bool,
}

/// Records per insert transaction when a backlog builds up.
const BATCH: usize = 200;

impl State {
    fn done_with_head(&mut self) {
        self.queue.pop_front();
        if self.from_file > 0 {
            self.from_file -= 1;
            if self.from_file == 0
                && let Some(path) = &self.config.spill_path
                && let Err(e) = spill::store(path, &[])
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the CDR spill file");
            }
        }
        self.depth.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("cdr_queue_depth").decrement(1.0);
        self.backoff = self.config.backoff_min;
    }

    fn watch_depth(&mut self) {
        let warn = self.config.warn_depth.max(1);
        let level = self.queue.len() / warn;
        if level > self.warned_at {
            tracing::warn!(
                depth = self.queue.len(),
                "CDR queue is growing: records are not being written"
            );
        }
        self.warned_at = level;
    }

    /// Tries the head once. `true`: move on at once; `false`: back off.
    async fn write_head(&mut self) -> bool {
        // A backlog goes in batches (one transaction each); a batch the
        // directory refuses as invalid is retried record by record, so
        // only the bad record is dropped.
        if self.queue.len() > 1 && !self.single {
            let n = self.queue.len().min(BATCH);
            let batch: Vec<NewCdr> = self.queue.iter().take(n).cloned().collect();
            match self.dir.insert_cdrs(&batch).await {
                Ok(_) => {
                    self.report.written += n as u64;
                    for _ in 0..n {
                        self.done_with_head();
                    }
                    return true;
                }
                Err(e) if is_permanent(&e) => {
                    self.single = true;
                    return true;
                }
                Err(e) => {
                    metrics::counter!("cdr_write_failures_total").increment(1);
                    tracing::warn!(error = %e, queued = self.queue.len(), retry_in = ?self.backoff, "CDR write failed; will retry");
                    return false;
                }
            }
        }
        self.single = false;
        let Some(cdr) = self.queue.front() else {
            return true;
        };
        match self.dir.insert_cdr(cdr).await {
            Ok(fresh) => {
                if !fresh {
                    tracing::debug!(id = %cdr.id, "CDR was already written");
                }
                self.report.written += 1;
                self.done_with_head();
                true
            }
            Err(e) if is_permanent(&e) => {
                metrics::counter!("cdr_write_failures_total").increment(1);
                tracing::error!(error = %e, cdr = ?cdr, "CDR refused by the directory; dropped");
                self.report.rejected += 1;
                self.done_with_head();
                true
            }
            Err(e) => {
                metrics::counter!("cdr_write_failures_total").increment(1);
                tracing::warn!(error = %e, queued = self.queue.len(), retry_in = ?self.backoff, "CDR write failed; will retry");
                false
            }
        }
    }

    /// During an outage (the back-off at its cap), keeps the queue in the
    /// spill file as well, so that a crash does not lose it. Rewritten only
    /// when records were added since.
    fn spill_during_outage(&mut self) {
        let Some(path) = self.config.spill_path.clone() else {
            return;
        };
        if self.backoff < self.config.backoff_max || self.queue.len() == self.from_file {
            return;
        }
        match spill::store(&path, self.queue.make_contiguous()) {
            Ok(()) => self.from_file = self.queue.len(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the CDR spill file")
            }
        }
    }

    fn next_backoff(&mut self) -> Duration {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.backoff_max);
        wait
    }
}

async fn run(
    dir: Arc<dyn Directory>,
    config: CdrWriterConfig,
    mut rx: mpsc::UnboundedReceiver<NewCdr>,
    mut stop: oneshot::Receiver<()>,
    depth: Arc<AtomicUsize>,
    from_file: usize,
) -> ShutdownReport {
    let mut s = State {
        dir,
        backoff: config.backoff_min,
        config,
        queue: VecDeque::new(),
        depth,
        report: ShutdownReport::default(),
        warned_at: 0,
        from_file,
        single: false,
    };
    // Until shutdown (or every sender is gone).
    let mut retry_at: Option<Instant> = None;
    loop {
        // A long drain must not hold shutdown past its grace period.
        if !matches!(stop.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
            break;
        }
        while let Ok(cdr) = rx.try_recv() {
            s.queue.push_back(cdr);
        }
        s.watch_depth();
        if !s.queue.is_empty() && retry_at.is_none_or(|t| t <= Instant::now()) {
            retry_at = if s.write_head().await {
                None
            } else {
                let wait = s.next_backoff();
                s.spill_during_outage();
                Some(Instant::now() + wait)
            };
            continue;
        }
        let sleep = async {
            match retry_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut stop => break,
            got = rx.recv() => match got {
                Some(cdr) => s.queue.push_back(cdr),
                // Every sender is gone (the writer was dropped): flush.
                None => break,
            },
            () = sleep => {}
        }
    }
    // Shutdown: take what was sent, then write within the grace period.
    rx.close();
    while let Ok(cdr) = rx.try_recv() {
        s.queue.push_back(cdr);
    }
    let deadline = Instant::now() + s.config.grace;
    while !s.queue.is_empty() && Instant::now() < deadline {
        let attempt = tokio::time::timeout_at(deadline, s.write_head()).await;
        match attempt {
            Ok(true) => {}
            Ok(false) => {
                let wait = s.next_backoff();
                tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
            }
            Err(_) => break,
        }
    }
    let remaining: Vec<NewCdr> = s.queue.drain(..).collect();
    if let Some(path) = &s.config.spill_path {
        match spill::store(path, &remaining) {
            Ok(()) => s.report.spilled = true,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot write the CDR spill file")
            }
        }
    }
    if !remaining.is_empty() {
        tracing::error!(
            unwritten = remaining.len(),
            spilled = s.report.spilled,
            "CDR writer stopped with records not written; they are returned to the caller"
        );
    }
    metrics::gauge!("cdr_queue_depth").set(0.0);
    s.depth.store(0, Ordering::Relaxed);
    s.report.unwritten = remaining;
    s.report
}
