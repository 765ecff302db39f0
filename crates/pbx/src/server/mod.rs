//! The SIP service: listeners, per-message dispatch, registrar, location, persistence.
//!
//! Dispatch of every inbound message, in order:
//! 1. A response goes to the calls task without any guard check: the transaction layer
//!    accepts it only from where its request went, so the guard never drops the answers to
//!    our own requests.
//! 2. [`Guard::check_request`] on the source IP of a request: banned or over the rate →
//!    dropped silently (counted in `sip_dropped_total`). Trunk sources and the operator's
//!    exempt blocks pass.
//! 3. Parse. A request that fails but whose Via/From/To/Call-ID/CSeq can be read gets
//!    `400` (or 505/513) with the reason; anything else is dropped.
//! 4. A Request-URI whose scheme is not sip, sips or tel → 416 (RFC 3261 §8.2.2.1);
//!    Max-Forwards 0 → 483; a `Require` we do not support → 420.
//! 4. REGISTER → registrar; OPTIONS outside a dialog → 200 with Allow/Accept/Supported;
//!    everything else (INVITE, ACK, CANCEL, BYE, UPDATE, INFO, in-dialog requests, and every
//!    response) → the calls task ([`calls`]): the transaction layer and the B2BUA engine.
//!
//! Responses get RFC 3581 `received`/`rport` and go back on the request's flow
//! ([`crate::transport::apply_rport_received`]).

pub(crate) mod calls;
mod changes;
mod config;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rand::RngCore;
use sip::auth::Verifier;
use sip::guard::{Admission, Guard};
use sip::{Limits, Message, Method, Request, Response, StatusCode};
use store::Directory;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use calls::CallsView;
pub use config::{CallsConfig, SipConfig};

use crate::location::LocationService;
use crate::registrar::cache::{CredCache, LookupGate};
use crate::registrar::persist::{self, Job, Reply};
use crate::registrar::{Now, Registrar, Step};
use crate::transport::{
    ConnTable, ConnectionPolicy, Flow, Inbound, Outbound, ResponseTarget, TransportKind,
    apply_rport_received, tcp, udp,
};

/// Methods OPTIONS advertises.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, REGISTER";

/// Errors starting or stopping the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("loading registrations from the directory: {0}")]
    Load(#[from] store::StoreError),
    #[error("a service task failed: {0}")]
    Task(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The bound addresses (port 0 in the config is resolved here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddrs {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
}

/// Entry point: `SipService::start(config, directory, shutdown)`.
pub struct SipService;

/// A running service. Dropping it does not stop the service; the shutdown future does, and
/// [`SipServiceHandle::join`] waits for the end (listeners stopped, bindings flushed).
pub struct SipServiceHandle {
    addrs: LocalAddrs,
    calls: CallsView,
    trunks: Arc<crate::trunks::TrunkStatus>,
    reg_failures: Arc<crate::registrar::failures::RegistrationFailures>,
    location: Arc<LocationService>,
    outbound: Outbound,
    supervisor: JoinHandle<()>,
}

impl std::fmt::Debug for SipServiceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipServiceHandle")
            .field("addrs", &self.addrs)
            .finish_non_exhaustive()
    }
}

impl SipServiceHandle {
    pub fn local_addrs(&self) -> LocalAddrs {
        self.addrs
    }

    /// The location service, for the calls engine and the web app.
    pub fn location(&self) -> Arc<LocationService> {
        Arc::clone(&self.location)
    }

    /// The active calls (for the web app).
    pub fn calls(&self) -> CallsView {
        self.calls.clone()
    }

    /// The trunks' runtime state (health, registration), for the web app.
    pub fn trunk_status(&self) -> Arc<crate::trunks::TrunkStatus> {
        Arc::clone(&self.trunks)
    }

    /// Recent failed registrations per credential, for the web app.
    pub fn registration_failures(&self) -> Arc<crate::registrar::failures::RegistrationFailures> {
        Arc::clone(&self.reg_failures)
    }

    /// Sends on flows (for the calls engine: requests to registered phones).
    pub fn outbound(&self) -> Outbound {
        self.outbound.clone()
    }

    /// Waits until the shutdown future has fired, the listeners have stopped and every
    /// accepted binding change has been committed (or given up after the grace period).
    pub async fn join(self) -> Result<()> {
        self.supervisor
            .await
            .map_err(|e| Error::Task(e.to_string()))
    }
}

impl SipService {
    /// Binds UDP and TCP on `config.listen` (same port; port 0 picks one), loads unexpired
    /// bindings from the directory, and serves until `shutdown` completes.
    pub async fn start(
        config: SipConfig,
        directory: Arc<dyn Directory>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<SipServiceHandle> {
        let (std_socks, tcp_listener) = bind_both(config.listen, config.udp_sockets)?;
        let udp_addr = std_socks
            .first()
            .and_then(|s| s.local_addr().ok())
            .unwrap_or(config.listen);
        // The runtime of the UDP loops and the persister: a dedicated current-thread one (driven
        // by its own thread, below), or the caller's.
        let main_rt = tokio::runtime::Handle::current();
        let (sip_handle, sip_thread) = if config.dedicated_thread {
            let (handle, thread) = spawn_sip_thread().map_err(|e| Error::Task(e.to_string()))?;
            (handle, Some(thread))
        } else {
            (main_rt.clone(), None)
        };
        let udp_socks = {
            // register the sockets with the runtime that drains them
            let _ctx = sip_handle.enter();
            std_socks
                .into_iter()
                .map(|s| tokio::net::UdpSocket::from_std(s).map(Arc::new))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|source| Error::Bind {
                    addr: udp_addr,
                    source,
                })?
        };
        let tcp_addr = tcp_listener.local_addr().unwrap_or(udp_addr);

        let location = Arc::new(LocationService::new());
        let now = SystemTime::now();
        let loaded = directory
            .list_unexpired_registrations(time::OffsetDateTime::from(now))
            .await?;
        let n_loaded = loaded.len();
        location.load(
            loaded
                .into_iter()
                .map(|r| crate::registrar::from_store(r, udp_addr))
                .collect(),
        );

        let secret = match &config.nonce_secret {
            Some(s) => s.clone(),
            None => {
                let mut s = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut s);
                s
            }
        };
        let verifier = Verifier::new(&secret, config.verifier.clone());
        let guard = Arc::new(Mutex::new(Guard::new(config.guard.clone())));
        let cache = Arc::new(CredCache::new(
            Arc::clone(&directory),
            config.registrar.cache_ttl,
            config.registrar.cache_max_entries,
        ));
        let registrar_cache = Arc::clone(&cache);
        let reg_failures = Arc::new(crate::registrar::failures::RegistrationFailures::default());
        let lookups = Arc::new(LookupGate::new(
            config.registrar.max_lookups,
            config.registrar.lookup_backlog,
        ));
        let registrar = Registrar::new(
            config.registrar.clone(),
            cache,
            Arc::clone(&location),
            verifier,
            Arc::clone(&guard),
            Arc::clone(&reg_failures),
        );
        let conns = Arc::new(ConnTable::default());
        let outbound = Outbound::new(udp_socks.clone(), Arc::clone(&conns));
        let epoch = Instant::now();
        let (calls_tx, calls_rx) = mpsc::channel(calls::QUEUE);
        let calls_view = calls::new_view();
        let (calls_driver, cdr_writer) = build_calls(
            &config,
            udp_addr,
            &secret,
            CallsParts {
                cache: registrar_cache.clone(),
                lookups: Arc::clone(&lookups),
                guard: Arc::clone(&guard),
                epoch,
                directory: Arc::clone(&directory),
                location: Arc::clone(&location),
                outbound: outbound.clone(),
                inputs: calls_rx,
                self_tx: calls_tx.clone(),
                view: calls_view.clone(),
            },
        )
        .await;
        let (persist_tx, persist_rx) = mpsc::channel(config.persist.queue_capacity.max(1));
        let (stop_tx, stop_rx) = watch::channel(false);
        let changes_task = start_changes(
            &config,
            changes::Hooks {
                location: Arc::clone(&location),
                cache: Arc::clone(&registrar_cache),
                auth: Arc::clone(&calls_driver.auth),
                directory: Arc::clone(&directory),
                calls: calls_tx.clone(),
            },
            stop_rx.clone(),
        )
        .await;
        let core = Arc::new_cyclic(|me| Core {
            me: me.clone(),
            limits: config.limits,
            guard: Arc::clone(&guard),
            registrar,
            outbound: outbound.clone(),
            persist: persist_tx,
            lookups,
            epoch,
            runtime: main_rt,
            calls: calls_tx,
        });

        let persister = sip_handle.spawn(persist::run(
            Arc::clone(&directory),
            persist_rx,
            config.persist.clone(),
            stop_rx.clone(),
        ));
        let mut listeners = Vec::new();
        let sink: Arc<dyn Inbound> = core.clone();
        outbound.enable_tcp_dial(tcp::TcpDialer {
            sink: Arc::downgrade(&sink),
            cfg: config.tcp.clone(),
            limits: config.limits,
            stop: stop_rx.clone(),
        });
        for s in &udp_socks {
            listeners.push(sip_handle.spawn(udp::run(
                Arc::clone(s),
                Arc::clone(&sink),
                stop_rx.clone(),
            )));
        }
        listeners.push(tokio::spawn(tcp::run(
            tcp_listener,
            conns,
            Arc::clone(&sink),
            config.tcp.clone(),
            config.limits,
            stop_rx.clone(),
        )));
        drop(sink);
        let trunk_status = Arc::clone(calls_driver.engine.trunk_status());
        let calls_task = tokio::spawn(calls_driver.run(stop_rx.clone()));
        let sweeper = tokio::spawn(sweep_loop(
            Arc::clone(&location),
            guard,
            Arc::clone(&directory),
            config.sweep_interval,
            stop_rx.clone(),
        ));
        tracing::info!(udp = %udp_addr, tcp = %tcp_addr, bindings_loaded = n_loaded, "SIP service listening");

        let supervisor = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("SIP service stopping");
            let _ = stop_tx.send(true);
            for l in listeners {
                let _ = l.await;
            }
            let _ = sweeper.await;
            let _ = changes_task.await;
            // every call hung up, its record queued: then flush the records
            let _ = calls_task.await;
            let report = cdr_writer.shutdown().await;
            if !report.unwritten.is_empty() {
                tracing::warn!(
                    unwritten = report.unwritten.len(),
                    spilled = report.spilled,
                    "call records not yet written at shutdown"
                );
            }
            // lookups in flight hold the core; wait for them (bounded)
            let deadline = Instant::now() + Duration::from_secs(5);
            while Arc::strong_count(&core) > 1 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            drop(core); // closes the persister queue once the last job is in
            let _ = persister.await;
            // the last replies are out: let the dedicated thread end
            if let Some(t) = sip_thread {
                drop(t.keep);
                let thread = t.thread;
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            tracing::info!("SIP service stopped");
        });
        Ok(SipServiceHandle {
            trunks: trunk_status,
            reg_failures,
            calls: calls_view,
            addrs: LocalAddrs {
                udp: udp_addr,
                tcp: tcp_addr,
            },
            location,
            outbound,
            supervisor,
        })
    }
}

/// Subscribes to admin changes (this process's bus, and the directory's feed of other
/// processes' changes, in place before the first message is served) and spawns the task that
/// applies them.
async fn start_changes(
    config: &SipConfig,
    hooks: changes::Hooks,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let local = config.changes.as_ref().map(store::ChangeBus::subscribe);
    // Without a bus, a fresh origin: every row of the change log is someone else's.
    let origin = config.changes.as_ref().map_or_else(
        || store::ChangeBus::new().origin(),
        store::ChangeBus::origin,
    );
    let mut options = store::changes::WatchOptions::new(origin);
    options.poll = config.change_poll;
    let remote = match hooks.directory.watch_changes(options).await {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "changes made by other processes (CLI, other servers) will not reach this server");
            None
        }
    };
    tokio::spawn(changes::run(hooks, local, remote, stop))
}

/// The dedicated SIP thread: it drives a current-thread runtime until `keep` fires or is dropped.
struct SipThread {
    keep: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts the dedicated SIP thread and returns a handle to its runtime. The runtime is built,
/// run and dropped on that thread (a runtime must not be dropped inside async code).
fn spawn_sip_thread() -> std::io::Result<(tokio::runtime::Handle, SipThread)> {
    let (keep_tx, keep_rx) = tokio::sync::oneshot::channel::<()>();
    let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("sip".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let _ = handle_tx.send(Ok(rt.handle().clone()));
                    rt.block_on(async move {
                        let _ = keep_rx.await;
                    });
                }
                Err(e) => {
                    let _ = handle_tx.send(Err(e));
                }
            }
        })?;
    // building a current-thread runtime takes well under a millisecond
    let handle = handle_rx
        .recv()
        .map_err(|_| std::io::Error::other("SIP thread ended before starting its runtime"))??;
    Ok((
        handle,
        SipThread {
            keep: keep_tx,
            thread,
        },
    ))
}

/// UDP and TCP on the same port. With port 0, UDP picks it and TCP follows; if TCP finds it
/// taken, try again with a fresh port.
fn bind_both(
    addr: SocketAddr,
    udp_sockets: usize,
) -> Result<(Vec<std::net::UdpSocket>, tokio::net::TcpListener)> {
    let attempts = if addr.port() == 0 { 8 } else { 1 };
    let mut last_err = None;
    for _ in 0..attempts {
        let socks =
            udp::bind_std(addr, udp_sockets).map_err(|source| Error::Bind { addr, source })?;
        let port = socks
            .first()
            .and_then(|s| s.local_addr().ok())
            .map_or(addr.port(), |a| a.port());
        let at = SocketAddr::new(addr.ip(), port);
        match bind_tcp(at) {
            Ok(l) => return Ok((socks, l)),
            Err(e) => last_err = Some((at, e)),
        }
    }
    let (addr, source) = last_err.unwrap_or((addr, std::io::Error::other("no attempt")));
    Err(Error::Bind { addr, source })
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    tokio::net::TcpListener::from_std(s.into())
}

async fn sweep_loop(
    location: Arc<LocationService>,
    guard: Arc<Mutex<Guard>>,
    directory: Arc<dyn Directory>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let epoch = Instant::now();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_db_sweep = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let removed = location.sweep(SystemTime::now());
        if removed > 0 {
            tracing::debug!(removed, "expired bindings removed");
        }
        guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sweep(epoch.elapsed());
        if last_db_sweep.elapsed() >= Duration::from_secs(60) {
            last_db_sweep = Instant::now();
            let now = time::OffsetDateTime::now_utc();
            if let Err(e) = directory.delete_expired_registrations(now).await {
                tracing::warn!(error = %e, "deleting expired registrations failed");
            }
        }
    }
}

/// Shared state of the message path.
struct Core {
    /// This core, for tasks spawned from the message path.
    me: std::sync::Weak<Core>,
    limits: Limits,
    guard: Arc<Mutex<Guard>>,
    registrar: Registrar,
    outbound: Outbound,
    persist: mpsc::Sender<Job>,
    /// Bounds credential lookups (shared with INVITE authentication).
    lookups: Arc<LookupGate>,
    epoch: Instant,
    /// The caller's runtime: directory lookups run there, not on the dedicated SIP thread.
    runtime: tokio::runtime::Handle,
    /// The calls task's queue.
    calls: mpsc::Sender<calls::Input>,
}

impl Inbound for Core {
    fn on_datagram(&self, flow: Flow, bytes: &[u8]) {
        self.on_bytes(flow, bytes, false);
    }

    fn on_stream_message(&self, flow: Flow, bytes: &[u8]) {
        self.on_bytes(flow, bytes, true);
    }

    fn connect_failed(&self, kind: TransportKind, remote: SocketAddr) {
        // A full queue loses only the shortcut: the transactions then end by their timers.
        let _ = self
            .calls
            .try_send(calls::Input::ConnectFailed(kind, remote));
    }

    fn connection_policy(&self, remote: SocketAddr) -> ConnectionPolicy {
        let now = self.now().guard;
        let guard = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_exempt(remote.ip()) {
            ConnectionPolicy::Unlimited
        } else if guard.banned_until(remote.ip(), now).is_some() {
            ConnectionPolicy::Refuse
        } else {
            ConnectionPolicy::Limited
        }
    }
}

impl Core {
    fn now(&self) -> Now {
        let mono = Instant::now();
        Now {
            wall: SystemTime::now(),
            mono,
            guard: mono.saturating_duration_since(self.epoch),
        }
    }

    fn on_bytes(&self, flow: Flow, bytes: &[u8], stream: bool) {
        let now = self.now();
        if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
            // UDP keep-alive (CRLF or CRLFCRLF): nothing to answer on UDP
            return;
        }
        // Responses skip the guard: the transaction layer takes one only from the address its
        // request went to, and the answers to our own requests must never be dropped.
        let response = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .and_then(|i| bytes.get(i..))
            .is_some_and(|b| b.starts_with(b"SIP/"));
        let admission = if response {
            Admission::Allow
        } else {
            self.admit(flow.remote.ip(), now.guard)
        };
        match admission {
            Admission::Allow => {}
            Admission::RateLimited => {
                metrics::counter!("sip_dropped_total", "reason" => "rate_limited").increment(1);
                return;
            }
            Admission::Banned { .. } => {
                metrics::counter!("sip_dropped_total", "reason" => "banned").increment(1);
                return;
            }
        }
        let parsed = if stream {
            sip::parse_stream_message(bytes, &self.limits)
        } else {
            sip::parse_datagram(bytes, &self.limits)
        };
        let req = match parsed {
            Ok(Message::Request(r)) if !response => r,
            Ok(message @ Message::Response(_)) if response => {
                self.to_calls(message, flow);
                return;
            }
            // a request dressed as a response to skip the guard (or the reverse)
            Ok(_) => {
                metrics::counter!("sip_dropped_total", "reason" => "malformed").increment(1);
                return;
            }
            Err(_) if response => {
                metrics::counter!("sip_dropped_total", "reason" => "malformed").increment(1);
                return;
            }
            Err(e) => {
                metrics::counter!("sip_dropped_total", "reason" => "malformed").increment(1);
                if let Some(r) = sip::error_response(bytes, &e, &self.limits) {
                    self.respond(&flow, r);
                }
                return;
            }
        };
        self.on_request(req, flow, now);
    }

    fn admit(&self, ip: IpAddr, now: Duration) -> Admission {
        self.guard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check_request(ip, now)
    }

    fn on_request(&self, req: Request, flow: Flow, now: Now) {
        metrics::counter!("sip_requests_total", "method" => method_label(&req.method)).increment(1);
        if let Err(e) = sip::check_mandatory(&req) {
            let mut r = req.response_tagged(StatusCode::BAD_REQUEST);
            r.reason = format!("Bad Request ({e})");
            self.respond(&flow, r);
            return;
        }
        if req.method == Method::Ack {
            self.to_calls(Message::Request(req), flow);
            return;
        }
        if !(req.uri.is_sip()
            || req
                .uri
                .as_str()
                .get(..4)
                .is_some_and(|s| s.eq_ignore_ascii_case("tel:")))
        {
            let mut r = req.response_tagged(StatusCode::UNSUPPORTED_URI_SCHEME);
            r.reason = "Unsupported URI Scheme (use sip:, sips: or tel:)".to_owned();
            self.respond(&flow, r);
            return;
        }
        if req.max_forwards().ok().flatten() == Some(0) {
            self.respond(&flow, req.response_tagged(StatusCode::TOO_MANY_HOPS));
            return;
        }
        let unsupported: Vec<&str> = req
            .require()
            .filter(|t| {
                let replaces = req.method == Method::Invite && t.eq_ignore_ascii_case("replaces");
                !(t.eq_ignore_ascii_case("path") || replaces)
            })
            .collect();
        if !unsupported.is_empty() {
            let mut r = req.response_tagged(StatusCode::BAD_EXTENSION);
            r.headers.push("Unsupported", &unsupported.join(", "));
            self.respond(&flow, r);
            return;
        }
        match req.method {
            Method::Register => self.on_register(req, flow, now),
            Method::Options if !in_dialog(&req) => {
                // Keep-alive pings and capability queries: answered by the server itself.
                let mut r = req.response_tagged(StatusCode::OK);
                r.headers.push("Allow", ALLOW);
                r.headers.push("Accept", "application/sdp");
                r.headers.push("Supported", "path");
                r.headers.push("Accept-Language", "en");
                self.respond(&flow, r);
            }
            _ => self.to_calls(Message::Request(req), flow),
        }
    }

    /// Hands a message to the calls task; dropped when its queue is full (UDP peers
    /// retransmit, and a full queue means the task is far behind).
    fn to_calls(&self, message: Message, flow: Flow) {
        if self
            .calls
            .try_send(calls::Input::Sip { message, flow })
            .is_err()
        {
            metrics::counter!("sip_dropped_total", "reason" => "calls_busy").increment(1);
        }
    }

    fn on_register(&self, req: Request, flow: Flow, now: Now) {
        // A full commit queue is refused before memory changes.
        if self.persist.capacity() == 0 {
            tracing::warn!("registration queue full; answering 500");
            let mut r = req.response_tagged(StatusCode::SERVER_INTERNAL_ERROR);
            r.reason = "Server Internal Error (registrations backlog)".to_owned();
            r.headers.push("Retry-After", "5");
            self.respond(&flow, r);
            return;
        }
        let step = self.registrar.handle_fast(&req, &flow, now);
        match step {
            Step::Lookup => {
                // At most `max_lookups` directory lookups run; up to `lookup_backlog` more
                // requests wait for a slot (a restart where every phone re-registers at once);
                // beyond that they get 503 with Retry-After.
                if self.lookups.is_full() {
                    self.respond(&flow, busy(&req));
                    return;
                }
                let Some(core) = self.me.upgrade() else {
                    return;
                };
                let runtime = core.runtime.clone();
                runtime.spawn(async move {
                    let Some(_permit) = core.lookups.enter().await else {
                        core.respond(&flow, busy(&req));
                        return;
                    };
                    let step = core.registrar.handle_slow(&req, &flow, core.now()).await;
                    core.finish(&req, &flow, step);
                });
            }
            step => self.finish(&req, &flow, step),
        }
    }

    fn finish(&self, req: &Request, flow: &Flow, step: Step) {
        match step {
            Step::Reply(r) => self.respond(flow, r),
            Step::Drop | Step::Lookup => {}
            Step::Commit(changes, mut response) => {
                let ResponseTarget::Flow(target) = apply_rport_received(&mut response, flow) else {
                    return;
                };
                let job = Job {
                    changes,
                    reply: Some(Reply {
                        outbound: self.outbound.clone(),
                        target,
                        response,
                    }),
                };
                if let Err(
                    mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job),
                ) = self.persist.try_send(job)
                {
                    drop(job);
                    tracing::warn!("registration queue full; answering 500");
                    let mut r = req.response_tagged(StatusCode::SERVER_INTERNAL_ERROR);
                    r.reason = "Server Internal Error (registrations backlog)".to_owned();
                    r.headers.push("Retry-After", "5");
                    self.respond(flow, r);
                }
            }
        }
    }

    fn respond(&self, flow: &Flow, mut resp: Response) {
        let ResponseTarget::Flow(target) = apply_rport_received(&mut resp, flow) else {
            return;
        };
        if let Err(e) = self.outbound.send(&target, Bytes::from(resp.to_bytes())) {
            tracing::debug!(remote = %target.remote, error = %e, "response not sent");
        }
    }
}

/// 503 with Retry-After: too many credential lookups at once.
fn busy(req: &Request) -> Response {
    metrics::counter!("sip_dropped_total", "reason" => "lookup_busy").increment(1);
    let mut r = req.response_tagged(StatusCode::SERVICE_UNAVAILABLE);
    r.reason = "Service Unavailable (authentication backlog)".to_owned();
    r.headers.push("Retry-After", "5");
    r
}

/// Whether a request belongs to a dialog (its To has a tag).
fn in_dialog(req: &Request) -> bool {
    req.to_addr()
        .ok()
        .flatten()
        .is_some_and(|to| to.tag().is_some())
}

/// What [`build_calls`] takes from the service.
struct CallsParts {
    cache: Arc<CredCache>,
    lookups: Arc<LookupGate>,
    guard: Arc<Mutex<Guard>>,
    epoch: Instant,
    directory: Arc<dyn Directory>,
    location: Arc<LocationService>,
    outbound: Outbound,
    inputs: mpsc::Receiver<calls::Input>,
    self_tx: mpsc::Sender<calls::Input>,
    view: CallsView,
}

/// The calls task and the CDR writer it feeds.
async fn build_calls(
    config: &SipConfig,
    udp_addr: SocketAddr,
    secret: &[u8],
    parts: CallsParts,
) -> (calls::CallsDriver, crate::cdr::CdrWriter) {
    let c = &config.calls;
    let public_ip = config
        .public_addr
        .as_deref()
        .and_then(|p| p.parse::<IpAddr>().ok());
    let listen_ip = Some(udp_addr.ip()).filter(|ip| !ip.is_unspecified());
    let media_ip = c
        .media_addr
        .or(public_ip)
        .or(listen_ip)
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let sip_ip = public_ip.or(listen_ip).unwrap_or(media_ip);
    let mut engine_config = calls_engine_config(SocketAddr::new(sip_ip, udp_addr.port()), media_ip);
    engine_config.outside_ring_timeout = c.outside_ring_timeout;
    engine_config.max_call_duration = c.max_call_duration;
    engine_config.max_hold_duration = c.max_hold_duration;
    let outside = crate::dialplan::OutsideCalls::new();
    let plan = Arc::new(crate::dialplan::PreparedPlan::new(
        outside,
        crate::dialplan::PreparedPlan::DEFAULT_TTL,
    ));
    let mut media_config = c.media.clone();
    if media_config.bind_ip.is_unspecified() {
        if let Some(ip) = listen_ip {
            media_config.bind_ip = ip;
        }
    }
    let ports = media::PortPool::new(c.rtp_ports)
        .with_emergency_reserve(c.emergency_port_reserve)
        .with_probe(crate::media_driver::bind_probe(media_config.bind_ip));
    tracing::info!(
        rtp_ports = %c.rtp_ports,
        pairs = ports.capacity(),
        emergency_reserve = ports.reserve(),
        "relay port pool"
    );
    let engine = calls::engine(engine_config, Arc::clone(&plan), parts.location, ports);
    let (media, media_events) = crate::media_driver::MediaDriver::new(media_config);
    let writer = crate::cdr::CdrWriter::spawn(Arc::clone(&parts.directory), c.cdr.clone());
    let auth = Arc::new(calls::AuthContext {
        verifier: Verifier::new(secret, config.verifier.clone()),
        challenges: config.registrar.challenges,
        cache: parts.cache,
        guard: parts.guard,
        epoch: parts.epoch,
        directory: Arc::clone(&parts.directory),
        lookups: parts.lookups,
        resolver: crate::dialplan::Resolver::new(Arc::clone(&parts.directory)),
        plan,
        numbers: Default::default(),
    });
    // The trunk table is read before the first INVITE can arrive.
    let trunks = match calls::load_trunk_sources(&*parts.directory).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "reading trunks failed; inbound calls wait for the next refresh");
            Default::default()
        }
    };
    auth.exempt_trunks(&trunks);
    let driver = calls::CallsDriver {
        layer: calls::layer(rand::random()),
        engine,
        media,
        media_events,
        cdr: writer.sender(),
        outbound: parts.outbound,
        local: udp_addr,
        auth,
        inputs: parts.inputs,
        self_tx: parts.self_tx,
        view: parts.view,
        trunks,
        group_answers: calls::spawn_group_writer(Arc::clone(&parts.directory)),
        keepalive: crate::trunks::keepalive::Keepalive::new(c.trunk_keepalive, Instant::now()),
        registrations: Default::default(),
    };
    (driver, writer)
}

fn calls_engine_config(sip_addr: SocketAddr, media_addr: IpAddr) -> crate::call::EngineConfig {
    crate::call::EngineConfig::new(sip_addr, media_addr)
}

fn method_label(m: &Method) -> &'static str {
    m.standard_name().unwrap_or("other")
}
