//! The calls driver: one task owning the transaction layer and the call
//! engine (see [`crate::call`] for the protocol between them), fed by the
//! SIP service's message path.
//!
//! * Every SIP message the registrar does not take (responses, INVITE, ACK,
//!   CANCEL, BYE, UPDATE, in-dialog OPTIONS...) arrives on a bounded channel
//!   as [`Input::Sip`] and goes into the [`TransactionLayer`].
//! * A dialog-creating INVITE from a trunk's address is looked up
//!   ([`Resolver::prepare_inbound`]) on a spawned task and handed to
//!   [`CallEngine::on_inbound`]; one from a device is authenticated (407,
//!   Proxy-Authorization, the HA1 from the registrar's credential cache,
//!   failures counted by the brute-force guard), its dial plan prepared
//!   ([`Resolver::prepare`]) on a spawned task, then handed to
//!   [`CallEngine::on_invite`] with the tenant and extension of the
//!   credential (never what the caller claims in From).
//! * The engine's outputs go to the layer (SIP), the [`MediaDriver`] (relay
//!   sockets; a bind failure ends the call with 503), and the CDR writer.
//! * A read-only snapshot of the active calls is published for the web app
//!   ([`CallsView`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use sip::auth::{Algorithm, NonceStatus, Verifier};
use sip::guard::{AuthGate, Guard};
use sip::transaction::{Config as TxConfig, Event, Target, TransactionLayer, Transport, TxKey};
use sip::{Message, Request, Response, StatusCode};
use std::collections::HashMap;

use store::{CdrId, Directory, ExtensionId, ExtensionNumber, StoreError, TenantId, TrunkId};
use tokio::sync::{mpsc, watch};

use crate::call::auth::{self, ChallengeAlgorithms, InviteAuth};
use crate::call::{
    CallEngine, CallSummary, CallerIdentity, ContactTarget, EngineConfig, ExtensionProfile,
    InboundCall, Locator, RingGroupAnswered, SipOutput, is_initial_invite,
};
use crate::cdr::CdrSender;
use crate::dialplan::{self, PreparedPlan, Resolver};
use crate::location::LocationService;
use crate::media_driver::{MediaDriver, MediaEvent};
use crate::registrar::cache::{CredCache, LookupGate, Resolved};
use crate::transport::{Flow, Outbound, TransportKind};

/// Messages waiting for the calls task at most; beyond that new ones are
/// dropped (UDP peers retransmit).
pub(crate) const QUEUE: usize = 65_536;

/// How often the trunk table (inbound sources) is reread as a safety net; a trunk changed
/// through the service layer is reloaded at once (`server::changes`).
const TRUNK_REFRESH: Duration = Duration::from_secs(10);

/// How often the active-calls snapshot is republished while calls change.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(250);

/// What the calls task consumes.
pub(crate) enum Input {
    /// A parsed message and the flow it came on.
    Sip { message: Message, flow: Flow },
    /// An initial INVITE from a device, authenticated (or refused) and its
    /// dial plan prepared.
    Authed {
        key: TxKey,
        request: Request,
        source: Target,
        outcome: AuthOutcome,
    },
    /// An initial INVITE from a trunk, its number looked up.
    Inbound {
        key: TxKey,
        request: Request,
        source: Target,
        trunk: TrunkId,
        result: Result<dialplan::Inbound, StoreError>,
    },
    /// The trunks' inbound sources, credentials and rates, reread.
    Trunks(TrunkTable),
    /// An outbound connection (a TCP trunk) could not be made.
    ConnectFailed(TransportKind, SocketAddr),
    /// A layer event held back while its dial plan was prepared (REFER).
    Event(Event),
}

/// The verdict on an initial INVITE before a transaction is made for it.
enum Stateless {
    /// Create the transaction and authenticate it (a lookup may follow).
    Stateful,
    /// Answer statelessly with this (a 407 challenge, 400, 403 or 503).
    Reply(Response),
    /// Say nothing (banned source).
    Drop,
}

pub(crate) enum AuthOutcome {
    Caller(CallerIdentity),
    Reply(Response),
    /// Say nothing (banned source).
    Drop,
}

pub(crate) use crate::trunks::inbound::TrunkTable;

/// Reads the enabled trunks: inbound sources, digest credentials and call
/// rates ([`crate::trunks::inbound::load`]).
pub(crate) async fn load_trunk_sources(dir: &dyn Directory) -> Result<TrunkTable, StoreError> {
    crate::trunks::inbound::load(dir).await
}

/// The active calls, as last published by the calls task.
#[derive(Clone)]
pub struct CallsView {
    inner: Arc<Mutex<Arc<Vec<CallSummary>>>>,
}

impl std::fmt::Debug for CallsView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallsView")
            .field("calls", &self.snapshot().len())
            .finish()
    }
}

impl CallsView {
    fn new() -> Self {
        CallsView {
            inner: Arc::new(Mutex::new(Arc::new(Vec::new()))),
        }
    }

    /// Every call not yet over (at most a quarter of a second old).
    pub fn snapshot(&self) -> Arc<Vec<CallSummary>> {
        Arc::clone(&self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The wall-clock time of an instant in a [`CallSummary`].
    pub fn wall_time(&self, at: Instant) -> SystemTime {
        wall_of(at)
    }

    fn publish(&self, calls: Vec<CallSummary>) {
        let connected = calls
            .iter()
            .filter(|c| c.phase == crate::call::CallPhase::Connected)
            .count();
        metrics::gauge!("calls_active").set(calls.len() as f64);
        metrics::gauge!("calls_connected").set(connected as f64);
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(calls);
    }
}

/// The wall-clock time of a monotonic instant, against the clocks as they
/// read now (so a wall-clock step since start-up is followed).
fn wall_of(at: Instant) -> SystemTime {
    let (mono, wall) = (Instant::now(), SystemTime::now());
    if at <= mono {
        wall - (mono - at)
    } else {
        wall + (at - mono)
    }
}

/// The location service as the engine's [`Locator`].
struct Contacts {
    location: Arc<LocationService>,
}

impl Locator for Contacts {
    fn contacts(&self, tenant: TenantId, extension: &ExtensionProfile) -> Vec<ContactTarget> {
        self.location
            .lookup(tenant, extension.id)
            .into_iter()
            .filter_map(|b| {
                let uri = sip::Uri::parse(&b.contact).ok()?;
                let transport = transport_of(b.flow.kind);
                Some(ContactTarget {
                    uri,
                    flow: Target::new(transport, b.flow.remote),
                })
            })
            .collect()
    }
}

/// What authentication needs, shared with its spawned tasks.
pub(crate) struct AuthContext {
    pub verifier: Verifier,
    pub challenges: ChallengeAlgorithms,
    pub cache: Arc<CredCache>,
    pub guard: Arc<Mutex<Guard>>,
    /// The guard's clock origin (the SIP service's).
    pub epoch: Instant,
    pub directory: Arc<dyn Directory>,
    /// Bounds credential lookups (shared with the registrar).
    pub lookups: Arc<LookupGate>,
    pub resolver: Resolver,
    pub plan: Arc<PreparedPlan>,
    /// Extension numbers by id (a credential names the id), kept briefly.
    pub numbers: Mutex<HashMap<(TenantId, ExtensionId), (ExtensionNumber, Instant)>>,
}

/// How long a calling extension's number is reused without a lookup.
const NUMBER_TTL: Duration = Duration::from_secs(30);

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

impl AuthContext {
    fn guard(&self) -> std::sync::MutexGuard<'_, Guard> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The trunks' sources are never banned nor rate limited by the guard.
    pub(crate) fn exempt_trunks(&self, trunks: &TrunkTable) {
        let nets = trunks
            .sources
            .iter()
            .filter_map(|t| sip::guard::IpNet::new(t.net, t.prefix))
            .collect();
        self.guard().set_trunk_sources(nets);
    }

    /// What a device's initial INVITE gets before any transaction or lookup exists: a 407
    /// (no credentials for our realm, or a nonce not issued to this source, or an expired
    /// one), silence (banned source), or the stateful path (a fresh nonce of ours).
    fn stateless_check(&self, request: &Request, ip: IpAddr) -> Stateless {
        let Some(realm) = crate::registrar::realm_of(request) else {
            return Stateless::Reply(request.response_tagged(StatusCode::BAD_REQUEST));
        };
        let now = unix_now();
        let creds =
            match auth::inspect_invite(&self.verifier, self.challenges, request, &realm, ip, now) {
                InviteAuth::Challenge(resp) => return Stateless::Reply(resp),
                InviteAuth::Verify(creds) => creds,
            };
        match self
            .guard()
            .check_auth(ip, &creds.username, &realm, self.epoch.elapsed())
        {
            AuthGate::Allow => {}
            AuthGate::IpBanned { .. } => return Stateless::Drop,
            AuthGate::UserLocked { .. } => {
                return Stateless::Reply(request.response_tagged(StatusCode::FORBIDDEN));
            }
        }
        let again = |stale| {
            auth::challenge(
                &self.verifier,
                self.challenges,
                request,
                &realm,
                ip,
                stale,
                now,
            )
        };
        match self.verifier.check_nonce(&creds, &realm, Some(ip), now) {
            NonceStatus::Fresh => {
                if self.lookups.is_full() {
                    return Stateless::Reply(unavailable(request));
                }
                Stateless::Stateful
            }
            NonceStatus::Expired => Stateless::Reply(again(true)),
            NonceStatus::Invalid => {
                crate::registrar::bad_nonce(&self.guard, ip, self.epoch.elapsed());
                Stateless::Reply(again(false))
            }
        }
    }

    /// The whole check of a device's INVITE with credentials: guard, HA1,
    /// digest, the calling extension, then the dial plan.
    async fn authenticate(
        &self,
        request: &Request,
        creds: sip::auth::Credentials,
        realm: &str,
        ip: IpAddr,
    ) -> AuthOutcome {
        let guard_now = self.epoch.elapsed();
        match self
            .guard()
            .check_auth(ip, &creds.username, realm, guard_now)
        {
            AuthGate::Allow => {}
            AuthGate::IpBanned { .. } => return AuthOutcome::Drop,
            AuthGate::UserLocked { .. } => {
                return AuthOutcome::Reply(request.response_tagged(StatusCode::FORBIDDEN));
            }
        }
        let resolved = match self.cache.get(realm, &creds.username, Instant::now()) {
            Some((r, stale)) => {
                if stale {
                    self.cache.refresh(realm, &creds.username);
                }
                r
            }
            None => {
                let Some(_permit) = self.lookups.enter().await else {
                    return AuthOutcome::Reply(unavailable(request));
                };
                match self.cache.fetch(realm, &creds.username).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "credential lookup failed for an INVITE");
                        return AuthOutcome::Reply(unavailable(request));
                    }
                }
            }
        };
        let (stored, known) = match &resolved {
            Resolved::Known { tenant, cred, .. } => {
                let ha1 = match creds.algorithm.base() {
                    Algorithm::Md5 => cred.ha1_md5.clone(),
                    _ => cred.ha1_sha256.clone(),
                };
                (Some(ha1), Some((*tenant, cred.extension_id)))
            }
            Resolved::Unknown { .. } => (None, None),
        };
        let verdict = auth::verify_invite(
            &self.verifier,
            self.challenges,
            request,
            &creds,
            realm,
            ip,
            stored.as_deref(),
            unix_now(),
        );
        if let Err(resp) = verdict {
            if resp.status == StatusCode::FORBIDDEN {
                tracing::info!(%ip, realm, "INVITE authentication failed");
                metrics::counter!("sip_auth_failures_total", "method" => "INVITE").increment(1);
                let events =
                    self.guard()
                        .record_failure(ip, &creds.username, realm, self.epoch.elapsed());
                for ev in events {
                    tracing::warn!(?ev, "brute-force guard");
                }
            }
            return AuthOutcome::Reply(resp);
        }
        let Some((tenant, extension_id)) = known else {
            return AuthOutcome::Reply(request.response_tagged(StatusCode::FORBIDDEN));
        };
        self.guard()
            .record_success(ip, &creds.username, realm, self.epoch.elapsed());
        let extension = match self.extension_number(tenant, extension_id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "calling extension lookup failed");
                return AuthOutcome::Reply(unavailable(request));
            }
        };
        let Ok(credential) = creds.username.parse() else {
            return AuthOutcome::Reply(request.response_tagged(StatusCode::FORBIDDEN));
        };
        if let Err(resp) = self.prepare(request, tenant, Some(&extension)).await {
            return AuthOutcome::Reply(resp);
        }
        AuthOutcome::Caller(CallerIdentity {
            tenant,
            extension,
            credential,
        })
    }

    /// The number of the extension a credential belongs to.
    async fn extension_number(
        &self,
        tenant: TenantId,
        id: ExtensionId,
    ) -> Result<ExtensionNumber, StoreError> {
        let now = Instant::now();
        if let Some((n, at)) = self
            .numbers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant, id))
        {
            if now.saturating_duration_since(*at) < NUMBER_TTL {
                return Ok(n.clone());
            }
        }
        let number = self.directory.get_extension(tenant, id).await?.number;
        let mut map = self.numbers.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| now.saturating_duration_since(*at) < NUMBER_TTL);
        }
        map.insert((tenant, id), (number.clone(), now));
        Ok(number)
    }

    /// Prepares the dial plan for what `request` dialled.
    async fn prepare(
        &self,
        request: &Request,
        tenant: TenantId,
        caller: Option<&ExtensionNumber>,
    ) -> Result<(), Response> {
        let Some(dialled) = dialplan::dialled_of(request) else {
            let mut r = request.response_tagged(StatusCode::NOT_FOUND);
            r.reason = "Not Found (no number in the Request-URI)".to_owned();
            return Err(r);
        };
        match self
            .resolver
            .prepare(&self.plan, tenant, caller, &dialled)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "dial plan lookup failed");
                Err(unavailable(request))
            }
        }
    }
}

fn unavailable(request: &Request) -> Response {
    let mut r = request.response_tagged(StatusCode::SERVICE_UNAVAILABLE);
    r.headers.push("Retry-After", "5");
    r
}

/// The calls task's parts, built by the SIP service.
pub(crate) struct CallsDriver {
    pub layer: TransactionLayer,
    pub engine: CallEngine,
    pub media: MediaDriver,
    pub media_events: mpsc::UnboundedReceiver<MediaEvent>,
    pub cdr: CdrSender,
    pub outbound: Outbound,
    /// The UDP listener's address (the local side of flows we send on).
    pub local: SocketAddr,
    pub auth: Arc<AuthContext>,
    pub inputs: mpsc::Receiver<Input>,
    /// For spawned tasks to post their results back.
    pub self_tx: mpsc::Sender<Input>,
    pub view: CallsView,
    pub trunks: TrunkTable,
    /// Round-robin answers, written to the directory in order
    /// ([`spawn_group_writer`]).
    pub group_answers: mpsc::UnboundedSender<RingGroupAnswered>,
    /// The trunk OPTIONS keepalive (`None`: off).
    pub keepalive: Option<crate::trunks::keepalive::Keepalive>,
    /// Registrations to providers, for trunks that ask for one.
    pub registrations: crate::trunks::register::Registrations,
}

/// Writes each round-robin group's last answering member to the directory,
/// one at a time and in the order the engine reported them (so the newest
/// answer is the one that stays). Ends when the sender is dropped.
pub(crate) fn spawn_group_writer(
    dir: Arc<dyn Directory>,
) -> mpsc::UnboundedSender<RingGroupAnswered> {
    let (tx, mut rx) = mpsc::unbounded_channel::<RingGroupAnswered>();
    tokio::spawn(async move {
        while let Some(a) = rx.recv().await {
            if let Err(e) = dir
                .set_ring_group_last_answered(a.tenant, a.group, Some(a.position))
                .await
            {
                // A group deleted meanwhile, or the database away: the
                // engine still remembers it until restart.
                tracing::warn!(error = %e, tenant = %a.tenant, "round-robin position not saved");
            }
        }
    });
    tx
}

/// Builds the engine half of the driver.
pub(crate) fn engine(
    config: EngineConfig,
    plan: Arc<PreparedPlan>,
    location: Arc<LocationService>,
    ports: media::PortPool,
) -> CallEngine {
    CallEngine::new(config, plan, Arc::new(Contacts { location }), ports)
}

pub(crate) fn new_view() -> CallsView {
    CallsView::new()
}

/// The transaction layer's settings for the calls side.
pub(crate) fn layer(seed: u64) -> TransactionLayer {
    TransactionLayer::new(TxConfig::default(), seed)
}

impl CallsDriver {
    /// Runs until `stop` turns true; then hangs up every call, lets the
    /// BYEs go out and returns.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.share_trunk_networks();
        self.engine
            .trunk_status
            .set_trunks(self.trunks.rates.iter().copied(), Instant::now());
        self.registrations
            .update(&self.trunks.targets, Instant::now());
        let mut refresh = tokio::time::interval(TRUNK_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut snapshot = tokio::time::interval(SNAPSHOT_EVERY);
        snapshot.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = false;
        loop {
            let deadline = self.next_deadline();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = self.inputs.recv() => {
                    let Some(input) = input else { break };
                    self.on_input(input);
                    // take whatever else is queued before publishing
                    while let Ok(input) = self.inputs.try_recv() {
                        self.on_input(input);
                    }
                    dirty = true;
                }
                Some(ev) = self.media_events.recv() => {
                    let MediaEvent::TimedOut { call } = ev;
                    tracing::info!(call, "no media: hanging up");
                    self.engine.hang_up(call, "media timeout", Instant::now());
                    self.pump();
                    dirty = true;
                }
                () = sleep => {
                    let now = Instant::now();
                    self.layer.handle_timeout(now);
                    self.engine.handle_timeout(now);
                    self.trunk_tick(now);
                    self.pump();
                    dirty = true;
                }
                _ = refresh.tick() => self.spawn_trunk_refresh(),
                _ = snapshot.tick(), if dirty => {
                    dirty = false;
                    self.view.publish(self.engine.calls());
                }
                _ = stop.changed() => break,
            }
        }
        self.shutdown().await;
    }

    /// Tells the engine every trunk's addresses ([`TrunkTable::networks`]):
    /// in-dialog requests of a trunk leg are accepted from any of them.
    fn share_trunk_networks(&mut self) {
        let nets: Vec<_> = self.trunks.networks().collect();
        self.engine.set_trunk_networks(nets);
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        let trunks = self.keepalive.as_ref().and_then(|k| k.poll_timeout());
        [
            self.layer.poll_timeout(),
            self.engine.poll_timeout(),
            trunks,
            self.registrations.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    async fn shutdown(&mut self) {
        let now = Instant::now();
        let live: Vec<u64> = self.engine.calls().iter().map(|c| c.id).collect();
        if !live.is_empty() {
            tracing::info!(calls = live.len(), "hanging up active calls");
        }
        for id in live {
            self.engine.hang_up_with(id, 503, "server shutdown", now);
        }
        self.pump();
        // Give the BYEs and CANCELs a moment to be answered (or retransmitted).
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            let at = self.next_deadline().map_or(until, |d| d.min(until));
            tokio::select! {
                Some(Input::Sip { message, flow }) = self.inputs.recv() => {
                    self.on_sip(message, flow);
                }
                () = tokio::time::sleep_until(at.into()) => {
                    let now = Instant::now();
                    self.layer.handle_timeout(now);
                    self.engine.handle_timeout(now);
                    self.pump();
                }
            }
        }
        self.view.publish(Vec::new());
    }

    fn on_input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Sip { message, flow } => self.on_sip(message, flow),
            Input::Authed {
                key,
                request,
                source,
                outcome,
            } => match outcome {
                AuthOutcome::Caller(identity) => {
                    self.engine.on_invite(key, request, source, identity, now);
                    self.pump();
                }
                AuthOutcome::Reply(resp) => self.respond(&key, resp),
                AuthOutcome::Drop => {}
            },
            Input::Inbound {
                key,
                request,
                source,
                trunk,
                result,
            } => match result {
                Ok(dialplan::Inbound {
                    tenant: Some(tenant),
                    ..
                }) => {
                    self.engine.on_inbound(
                        key,
                        request,
                        source,
                        InboundCall { tenant, trunk },
                        now,
                    );
                    self.pump();
                }
                Ok(_) => {
                    let mut r = request.response_tagged(StatusCode::NOT_FOUND);
                    r.reason = "Not Found (number not in service)".to_owned();
                    self.respond(&key, r);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "inbound number lookup failed");
                    self.respond(&key, unavailable(&request));
                }
            },
            Input::Trunks(t) => {
                self.engine
                    .trunk_status
                    .set_trunks(t.rates.iter().copied(), now);
                self.registrations.update(&t.targets, now);
                self.auth.exempt_trunks(&t);
                self.trunks = t;
                self.share_trunk_networks();
            }
            Input::Event(ev) => {
                self.engine.handle_event(ev, now);
                self.pump();
            }
            Input::ConnectFailed(kind, remote) => {
                let transport = transport_of(kind);
                self.layer
                    .connection_failed(Target::new(transport, remote), now);
                self.pump();
            }
        }
    }

    fn respond(&mut self, key: &TxKey, response: Response) {
        // An error means the transaction is gone (cancelled meanwhile).
        let _ = self.layer.send_response(key, response, Instant::now());
        self.pump();
    }

    fn on_sip(&mut self, message: Message, flow: Flow) {
        let transport = match flow.kind {
            TransportKind::Udp => Transport::Udp,
            TransportKind::Tcp => Transport::Tcp,
            TransportKind::Tls => Transport::Tls,
            TransportKind::Ws => Transport::Ws,
            TransportKind::Wss => Transport::Wss,
        };
        let source = Target::new(transport, flow.remote);
        if let Message::Request(request) = &message {
            if is_initial_invite(request) && !self.is_trunk_source(source.addr) {
                match self.auth.stateless_check(request, source.addr.ip()) {
                    Stateless::Stateful => {}
                    Stateless::Drop => return,
                    Stateless::Reply(mut resp) => {
                        // the same RFC 3581 rule as every other response
                        resp.stamp_source(source.addr);
                        let dest = sip::transaction::response_target(request, source);
                        self.layer.send_stateless(&Message::Response(resp), dest);
                        self.pump();
                        return;
                    }
                }
            }
        }
        if let Err(e) = self.layer.receive(message, source, Instant::now()) {
            tracing::debug!(remote = %flow.remote, error = %e, "message not matched to a transaction");
            metrics::counter!("sip_dropped_total", "reason" => "transaction").increment(1);
        }
        self.pump();
    }

    /// Drains every queue until nothing moves: layer events into the engine,
    /// engine outputs into the layer, media and CDRs out, bytes onto the wire.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(ev) = self.layer.poll_event() {
                moved = true;
                let now = Instant::now();
                let ev = match self.keepalive.as_mut() {
                    Some(k) => k.on_event(ev, &self.engine.trunk_status, now),
                    None => Some(ev),
                };
                let ev = ev.and_then(|ev| {
                    self.registrations
                        .on_event(ev, &self.engine.trunk_status, now)
                });
                if let Some(ev) = ev {
                    self.on_event(ev);
                }
            }
            while let Some(out) = self.engine.poll_sip() {
                moved = true;
                self.on_output(out);
            }
            while let Some(cmd) = self.engine.poll_media() {
                moved = true;
                if let Err(e) = self.media.execute(cmd) {
                    tracing::error!(error = %e, "relay ports could not be bound");
                    self.engine.hang_up_with(
                        e.call,
                        503,
                        "relay ports unavailable",
                        Instant::now(),
                    );
                }
            }
            while let Some(tenant) = self.engine.poll_outside_started() {
                moved = true;
                self.auth.plan.outside_calls().started(tenant);
            }
            while let Some(rec) = self.engine.poll_record() {
                moved = true;
                self.on_record(&rec);
            }
            while let Some(a) = self.engine.poll_ring_group_answered() {
                moved = true;
                let _ = self.group_answers.send(a);
            }
            while let Some(t) = self.layer.poll_transmit() {
                moved = true;
                self.transmit(t);
            }
            if !moved {
                break;
            }
        }
    }

    fn on_record(&mut self, rec: &crate::call::CallRecord) {
        if rec.counted_outside {
            self.auth.plan.outside_calls().ended(rec.tenant);
        }
        metrics::counter!("calls_total", "disposition" => rec.disposition.as_str()).increment(1);
        let row = rec.to_new_cdr(CdrId::new(), wall_of);
        if self.cdr.send(row).is_err() {
            tracing::error!(call = rec.call, "CDR writer stopped; record lost");
        }
    }

    fn transmit(&mut self, t: sip::transaction::Transmit) {
        let kind = match t.dest.transport {
            Transport::Udp => TransportKind::Udp,
            Transport::Tcp => TransportKind::Tcp,
            Transport::Tls => TransportKind::Tls,
            Transport::Ws => TransportKind::Ws,
            Transport::Wss => TransportKind::Wss,
        };
        let flow = Flow {
            kind,
            local: self.local,
            remote: t.dest.addr,
            conn: None,
        };
        if let Err(e) = self.outbound.send(&flow, Bytes::copy_from_slice(&t.bytes)) {
            tracing::debug!(remote = %t.dest.addr, error = %e, "SIP message not sent");
            if let Some(key) = t.key {
                self.layer.transport_error(&key, Instant::now());
            }
        }
    }

    fn on_output(&mut self, out: SipOutput) {
        let now = Instant::now();
        match out {
            SipOutput::Request { request, dest } => {
                if let Err(e) = self.layer.send_request(request.clone(), dest, now) {
                    tracing::debug!(error = %e, "request refused by the transaction layer");
                    self.engine.send_failed(&request, now);
                }
            }
            SipOutput::Response { key, response } => {
                let _ = self.layer.send_response(&key, response, now);
            }
            SipOutput::Ack { request, dest } => {
                self.layer.send_stateless(&Message::Request(request), dest);
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Request {
                key,
                request,
                source,
                ..
            } if is_initial_invite(&request) => self.on_initial_invite(key, request, source),
            Event::Request {
                ref request,
                source,
                ..
            } if request.method == sip::Method::Refer => {
                match self.engine.refer_context(request, source) {
                    Some((tenant, by, target)) => self.prepare_then(ev, tenant, by, target),
                    None => self.engine.handle_event(ev, now),
                }
            }
            ev => self.engine.handle_event(ev, now),
        }
    }

    /// Whether an INVITE from `addr` is a trunk's (and so not challenged).
    fn is_trunk_source(&self, addr: SocketAddr) -> bool {
        self.trunks.by_source(addr).is_some()
    }

    fn on_initial_invite(&mut self, key: TxKey, request: Request, source: Target) {
        metrics::counter!("call_attempts_total").increment(1);
        if let Some(trunk) = self.trunks.by_source(source.addr) {
            self.inbound_from_trunk(key, request, source, trunk);
            return;
        }
        let Some(realm) = crate::registrar::realm_of(&request).map(|r| r.into_owned()) else {
            self.respond(&key, request.response_tagged(StatusCode::BAD_REQUEST));
            return;
        };
        let creds = match auth::inspect_invite(
            &self.auth.verifier,
            self.auth.challenges,
            &request,
            &realm,
            source.addr.ip(),
            unix_now(),
        ) {
            InviteAuth::Challenge(resp) => {
                self.respond(&key, resp);
                return;
            }
            InviteAuth::Verify(creds) => creds,
        };
        if let Some(t) = self.trunks.by_username(&creds.username).cloned() {
            match crate::trunks::inbound_digest(
                &self.auth,
                &request,
                &creds,
                &realm,
                source.addr.ip(),
                &t,
                unix_now(),
            ) {
                Ok(()) => self.inbound_from_trunk(key, request, source, t.trunk),
                Err(Some(resp)) => self.respond(&key, resp),
                Err(None) => {}
            }
            return;
        }
        let (ctx, tx) = (Arc::clone(&self.auth), self.self_tx.clone());
        tokio::spawn(async move {
            let outcome = ctx
                .authenticate(&request, creds, &realm, source.addr.ip())
                .await;
            let _ = tx
                .send(Input::Authed {
                    key,
                    request,
                    source,
                    outcome,
                })
                .await;
        });
    }

    /// The trunks' periodic work: due REGISTERs go out, probes past their
    /// timeout mark their trunk down, and each keepalive round sends an
    /// OPTIONS to every enabled trunk that has none waiting.
    fn trunk_tick(&mut self, now: Instant) {
        let status = Arc::clone(&self.engine.trunk_status);
        for (trunk, req, dest) in self.registrations.due(now, &mut self.engine) {
            match self.layer.send_request(req, dest, now) {
                Ok(key) => self.registrations.sent(key, trunk),
                Err(e) => self
                    .registrations
                    .send_failed(trunk, &e.to_string(), &status, now),
            }
        }
        let Some(k) = self.keepalive.as_mut() else {
            return;
        };
        k.expire(now, &status);
        if !k.round_due(now) {
            return;
        }
        for t in self.trunks.targets.clone() {
            if self
                .keepalive
                .as_ref()
                .is_some_and(|k| k.in_flight(t.trunk))
            {
                continue;
            }
            let Some(uri) = crate::trunks::trunk_uri(None, &t.host, t.port, t.dest.transport)
            else {
                continue;
            };
            let from = format!("<sip:switchboard@{}>", self.engine.sip_addr());
            let to = format!("<{uri}>");
            let req =
                self.engine
                    .trunk_request(sip::Method::Options, uri, (&from, &to), t.dest, None, 1);
            match self.layer.send_request(req, t.dest, now) {
                Ok(key) => {
                    if let Some(k) = self.keepalive.as_mut() {
                        k.sent(key, t.trunk, now);
                    }
                }
                Err(e) => tracing::debug!(trunk = %t.trunk, error = %e, "keepalive not sent"),
            }
        }
    }

    /// An INVITE recognised as the trunk's (by source or digest): within
    /// the trunk's call rate, its number is looked up and the call handed to
    /// the engine; over it, 503 with Retry-After.
    fn inbound_from_trunk(&mut self, key: TxKey, request: Request, source: Target, trunk: TrunkId) {
        if !self.engine.trunk_status.take_call(trunk, Instant::now()) {
            tracing::info!(%trunk, remote = %source.addr, "trunk call rate exceeded: inbound call refused");
            metrics::counter!("trunk_rate_limited_total", "direction" => "inbound").increment(1);
            let mut r = request.response_tagged(StatusCode::SERVICE_UNAVAILABLE);
            r.reason = "Service Unavailable (trunk call rate exceeded)".to_owned();
            r.headers.push("Retry-After", "1");
            self.respond(&key, r);
            return;
        }
        let Some(dialled) = dialplan::dialled_of(&request) else {
            self.respond(&key, request.response_tagged(StatusCode::NOT_FOUND));
            return;
        };
        let (ctx, tx) = (Arc::clone(&self.auth), self.self_tx.clone());
        tokio::spawn(async move {
            let result = ctx.resolver.prepare_inbound(&ctx.plan, &dialled).await;
            let _ = tx
                .send(Input::Inbound {
                    key,
                    request,
                    source,
                    trunk,
                    result,
                })
                .await;
        });
    }

    /// Prepares the dial plan for `target` (a transfer's), then hands
    /// `ev` to the engine.
    fn prepare_then(&self, ev: Event, tenant: TenantId, by: Option<String>, target: String) {
        let (ctx, tx) = (Arc::clone(&self.auth), self.self_tx.clone());
        tokio::spawn(async move {
            let by: Option<ExtensionNumber> = by.and_then(|b| b.parse().ok());
            if let Err(e) = ctx
                .resolver
                .prepare(&ctx.plan, tenant, by.as_ref(), &target)
                .await
            {
                tracing::warn!(error = %e, "transfer target lookup failed");
            }
            let _ = tx.send(Input::Event(ev)).await;
        });
    }

    fn spawn_trunk_refresh(&self) {
        let (ctx, tx) = (Arc::clone(&self.auth), self.self_tx.clone());
        tokio::spawn(async move {
            match load_trunk_sources(&*ctx.directory).await {
                Ok(t) => {
                    let _ = tx.send(Input::Trunks(t)).await;
                }
                Err(e) => tracing::warn!(error = %e, "reading trunks failed"),
            }
        });
    }
}

/// The transaction layer's name for a transport kind.
fn transport_of(kind: TransportKind) -> Transport {
    match kind {
        TransportKind::Udp => Transport::Udp,
        TransportKind::Tcp => Transport::Tcp,
        TransportKind::Tls => Transport::Tls,
        TransportKind::Ws => Transport::Ws,
        TransportKind::Wss => Transport::Wss,
    }
}
