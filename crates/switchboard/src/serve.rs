//! `switchboard serve`: migrate, start every service, stop them together.
//!
//! Services are tasks in one [`Services`] set sharing one shutdown token. The
//! web app is the first; the SIP service (the `pbx` crate's registrar and
//! call engine) is spawned in the same way by [`spawn_services`]. When any
//! service ends on its own, or SIGTERM/Ctrl-C arrives, the token is
//! cancelled and the others get a bounded grace period to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use store::Directory;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::Settings;

/// How long services get to finish in-flight work after shutdown starts.
const GRACE: Duration = Duration::from_secs(20);

/// Long-running tasks that stop together.
pub struct Services {
    shutdown: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl Services {
    pub fn new() -> Self {
        Self {
            shutdown: CancellationToken::new(),
            tasks: JoinSet::new(),
        }
    }

    /// The token every service watches; cancelled when shutdown starts.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs `service` until it returns; it must return soon after the
    /// shutdown token is cancelled.
    pub fn spawn<F>(&mut self, name: &'static str, service: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.spawn(async move { (name, service.await) });
    }

    /// Waits for a stop signal or for a service to end, then stops the rest.
    /// An error from any service makes the whole run an error.
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut failure = None;
        tokio::select! {
            () = stop => info!("shutdown requested"),
            Some(joined) = self.tasks.join_next() => {
                failure = outcome(joined).err();
                match &failure {
                    Some(e) => error!("{e:#}; shutting down"),
                    None => warn!("a service stopped on its own; shutting down"),
                }
            }
        }
        self.shutdown.cancel();
        let drained = tokio::time::timeout(GRACE, async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Err(e) = outcome(joined) {
                    error!("{e:#}");
                    failure.get_or_insert(e);
                }
            }
        })
        .await;
        if drained.is_err() {
            warn!(grace = ?GRACE, "services did not stop within the grace period; aborting them");
            self.tasks.shutdown().await;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Default for Services {
    fn default() -> Self {
        Self::new()
    }
}

fn outcome(
    joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match joined {
        Ok((name, Ok(()))) => {
            info!(service = name, "stopped");
            Ok(())
        }
        Ok((name, Err(e))) => Err(e.context(format!("{name} service failed"))),
        Err(e) => bail!("a service task panicked or was aborted: {e}"),
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// First run (no operator yet): makes a one-time setup link and logs it once, at INFO, as an
/// ordinary start-up message (it is not a warning). The only log sink the binary installs is
/// the console (stderr, see `main.rs`); the link is written to no file. Nothing when an
/// operator exists.
async fn announce_setup_link(directory: &dyn Directory, base_url: &str) {
    match web::ensure_setup_link(directory, base_url).await {
        Ok(Some(link)) => info!(
            link = %link,
            "no operator account exists yet: open this one-time link to create the first operator (valid 24 h)"
        ),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "cannot create the first-run setup link"),
    }
}

/// Serves until SIGTERM or Ctrl-C, then stops every service gracefully.
pub async fn run(settings: &Settings, directory: Arc<dyn Directory>) -> anyhow::Result<()> {
    // Poll the stop future once so its signal handlers exist before any
    // service starts: a SIGTERM while SIP loads bindings (the web app already
    // answers) then stops us cleanly instead of killing the process.
    let mut stop = std::pin::pin!(stop_signal());
    std::future::poll_fn(|cx| {
        let _ = stop.as_mut().poll(cx);
        std::task::Poll::Ready(())
    })
    .await;
    let services = spawn_services(settings, directory).await?;
    info!("switchboard running; SIGTERM or Ctrl-C stops it");
    services.run_until(stop).await?;
    info!("switchboard stopped");
    Ok(())
}

/// Binds every listener and spawns every service. Binding happens here,
/// before anything runs, so a taken port is reported at start-up.
pub async fn spawn_services(
    settings: &Settings,
    directory: Arc<dyn Directory>,
) -> anyhow::Result<Services> {
    let mut services = Services::new();

    let listener = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", settings.http_addr))?;
    let http_addr = listener
        .local_addr()
        .context("HTTP listener has no local address")?;
    info!(addr = %http_addr, "http listening");
    // First run: no operator yet, so hand out a one-time setup link (never a
    // default password).
    let base_url = match (&settings.public_addr, http_addr.ip().is_unspecified()) {
        (Some(public), _) => format!("http://{public}:{}", http_addr.port()),
        (None, true) => format!("http://127.0.0.1:{}", http_addr.port()),
        (None, false) => format!("http://{http_addr}"),
    };
    announce_setup_link(&*directory, &base_url).await;

    if settings.rtp_ports.low() % 2 == 1 {
        warn!(
            rtp_ports = %settings.rtp_ports,
            pairs = settings.rtp_ports.pairs(),
            "SWITCHBOARD_RTP_PORTS starts on an odd port; RTP uses even ports, so it is left unused"
        );
    }
    if settings.public_addr.is_none() && settings.sip_addr.ip().is_unspecified() {
        warn!(
            "SWITCHBOARD_PUBLIC_ADDR is not set while SIP listens on all interfaces; \
             phones outside this host need it to reach the server for SIP and media"
        );
    }

    if let Some(addr) = settings.metrics_addr {
        let handle = crate::metrics::install_recorder()?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        let bound = listener
            .local_addr()
            .context("metrics listener has no local address")?;
        info!(addr = %bound, "metrics listening");
        let token = services.shutdown_token();
        services.spawn("metrics", async move {
            crate::metrics::serve(listener, handle, token.cancelled_owned())
                .await
                .context("metrics server error")
        });
    }

    // The SIP service: UDP and TCP on the same port, bindings loaded from the
    // directory before the first packet; on shutdown it stops listening and
    // flushes accepted binding changes before it returns. Started last: it
    // serves as soon as it is bound.
    let mut sip_config = pbx::SipConfig::new(settings.sip_addr);
    // MD5 only by default, like Asterisk and FreeSWITCH: clients built on
    // libre (baresip 1.0, Debian's) refuse a 401 that also offers SHA-256.
    sip_config.registrar.challenges = settings.sip_digest.challenges();
    sip_config.public_addr = settings.public_addr.as_ref().map(ToString::to_string);
    sip_config.calls.rtp_ports =
        media::PortRange::new(settings.rtp_ports.low(), settings.rtp_ports.high())
            .map_err(|e| anyhow::anyhow!("SWITCHBOARD_RTP_PORTS: {e}"))?;
    sip_config.calls.media.media_timeout = Duration::from_secs(settings.media_timeout);
    sip_config.calls.emergency_port_reserve = settings.emergency_port_reserve;
    sip_config.calls.max_call_duration = Duration::from_secs(settings.max_call_duration);
    sip_config.calls.max_hold_duration = Duration::from_secs(settings.max_hold_duration);
    sip_config.calls.trunk_keepalive = Duration::from_secs(settings.trunk_keepalive);
    sip_config.calls.cdr.spill_path = Some(cdr_spill_path(settings));
    // Admin changes: the web app publishes on this bus and the engine applies them at once;
    // changes made by other processes arrive through the directory (see store::changes).
    let changes = store::ChangeBus::new();
    sip_config.changes = Some(changes.clone());
    sip_config.change_poll = Duration::from_millis(settings.change_poll_ms);
    settings.sip_guard.apply(&mut sip_config);
    let token = services.shutdown_token();
    let sip = pbx::SipService::start(sip_config, Arc::clone(&directory), token.cancelled_owned())
        .await
        .with_context(|| format!("cannot start SIP on {}", settings.sip_addr))?;
    let addrs = sip.local_addrs();
    info!(addr = %addrs.udp, "sip listening on udp");
    info!(addr = %addrs.tcp, "sip listening on tcp");
    let calls = sip.calls();
    let trunk_status = sip.trunk_status();
    let reg_failures = sip.registration_failures();
    services.spawn("sip", async move {
        sip.join().await.context("SIP service error")
    });

    // The web app, told where phones register (the bound port, also when
    // the settings said 0) and reading the live calls from the engine.
    let config = web::WebConfig {
        sip_registrar: Some(match &settings.public_addr {
            Some(public) => format!("{public}:{}", addrs.udp.port()),
            None => addrs.udp.to_string(),
        }),
        cookie_secure: settings.cookie_secure.0,
        trusted_proxies: settings.trusted_proxies.0.clone(),
        ..Default::default()
    };
    info!(
        cookie_secure = %settings.cookie_secure,
        trusted_proxies = %settings.trusted_proxies,
        "web settings"
    );
    let state = web::AppState::with_config(Arc::clone(&directory), config)
        .with_live_calls(Arc::new(EngineCalls(calls)))
        .with_trunk_states(Arc::new(EngineTrunks(trunk_status)))
        .with_registration_failures(Arc::new(EngineRegFailures(reg_failures)))
        .with_changes(changes);
    let token = services.shutdown_token();
    services.spawn("web", async move {
        web::serve(listener, state, token.cancelled_owned())
            .await
            .context("HTTP server error")
    });

    Ok(services)
}

/// The trunks' health and registration as the web app reads them.
struct EngineTrunks(Arc<pbx::trunks::TrunkStatus>);

impl web::TrunkStates for EngineTrunks {
    fn state(&self, trunk: store::TrunkId) -> Option<web::TrunkState> {
        use pbx::trunks::Registration;
        let r = self.0.get(trunk)?;
        Some(web::TrunkState {
            health: r.health.as_str().to_owned(),
            last_status: r.last_status,
            latency_ms: r
                .latency
                .map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
            checked_at: r.checked_at.map(time::OffsetDateTime::from),
            registration: r.registration.map(|reg| match reg {
                Registration::Registered { expires_at } => web::TrunkRegistration {
                    state: "registered".into(),
                    expires_at: Some(time::OffsetDateTime::from(expires_at)),
                    status: None,
                    reason: None,
                },
                Registration::Failed { status, reason } => web::TrunkRegistration {
                    state: "failed".into(),
                    expires_at: None,
                    status,
                    reason: Some(reason),
                },
            }),
        })
    }
}

/// The registrar's recent failed registrations as the web app reads them.
struct EngineRegFailures(Arc<pbx::registrar::failures::RegistrationFailures>);

impl web::RegistrationFailures for EngineRegFailures {
    fn recent(
        &self,
        tenant: store::TenantId,
        credential: store::CredentialId,
    ) -> Vec<web::RegistrationFailure> {
        self.0
            .recent(tenant, credential)
            .into_iter()
            .map(|f| web::RegistrationFailure {
                at: time::OffsetDateTime::from(f.at),
                source: f.source,
                reason: f.reason.describe().to_owned(),
                count: f.count,
            })
            .collect()
    }
}

/// The engine's active calls as the web app reads them.
struct EngineCalls(pbx::CallsView);

impl web::LiveCalls for EngineCalls {
    fn active_calls(&self, tenant: Option<store::TenantId>) -> Vec<web::ActiveCall> {
        let wall = |at| time::OffsetDateTime::from(self.0.wall_time(at));
        self.0
            .snapshot()
            .iter()
            .filter(|c| tenant.is_none_or(|t| c.tenant == t))
            .filter_map(|c| {
                let state = match c.phase {
                    pbx::call::CallPhase::Ringing => web::CallState::Ringing,
                    pbx::call::CallPhase::Answering => web::CallState::Answering,
                    pbx::call::CallPhase::Connected => web::CallState::Connected,
                    pbx::call::CallPhase::Ended => return None,
                };
                Some(web::ActiveCall {
                    id: c.id,
                    tenant: c.tenant,
                    caller: c.caller.clone(),
                    dialled: c.dialled.clone(),
                    callee: c.callee.clone(),
                    state,
                    started_at: wall(c.started),
                    answered_at: c.answered.map(wall),
                })
            })
            .collect()
    }
}

/// Where unwritten call records wait for the next start.
fn cdr_spill_path(settings: &Settings) -> std::path::PathBuf {
    if let Some(p) = &settings.cdr_spill {
        return p.clone();
    }
    let url = settings.database_url.expose();
    match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(rest) => {
            let path = rest.split('?').next().unwrap_or(rest);
            if path.is_empty() || path == ":memory:" {
                "switchboard-cdr-spill.jsonl".into()
            } else {
                format!("{path}.cdr-spill.jsonl").into()
            }
        }
        None => "switchboard-cdr-spill.jsonl".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_signal_cancels_services_and_waits_for_them() {
        let mut services = Services::new();
        let token = services.shutdown_token();
        let (tx, rx) = tokio::sync::oneshot::channel();
        services.spawn("worker", async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send("finished");
            Ok(())
        });
        services.run_until(async {}).await.unwrap();
        assert_eq!(rx.await.unwrap(), "finished");
    }

    #[tokio::test]
    async fn a_failing_service_stops_the_others_and_reports_the_error() {
        let mut services = Services::new();
        let token = services.shutdown_token();
        services.spawn("steady", async move {
            token.cancelled().await;
            Ok(())
        });
        services.spawn("broken", async { bail!("port exploded") });
        let err = services
            .run_until(std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(format!("{err:#}"), "broken service failed: port exploded");
    }

    /// Captures what the console subscriber would print.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn setup_link_is_logged_once_at_info() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let dir = store::connect("sqlite::memory:").await.unwrap();
        dir.migrate().await.unwrap();

        announce_setup_link(&*dir, "http://127.0.0.1:8080").await;
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("/setup/")).collect();
        assert_eq!(lines.len(), 1, "logged once: {text}");
        assert!(
            lines[0].contains(" INFO ") && !lines[0].contains("WARN"),
            "at INFO: {text}"
        );
        assert!(
            lines[0].contains("link=http://127.0.0.1:8080/setup/"),
            "{text}"
        );

        // With an operator, no link at all.
        dir.create_user(&store::NewUser {
            tenant_id: None,
            email: "ops@example.test".parse().unwrap(),
            display_name: String::new(),
            role: store::Role::Operator,
            password_hash: web::crypto::hash_password("a long enough password".into())
                .await
                .unwrap(),
        })
        .await
        .unwrap();
        out.0.lock().unwrap().clear();
        announce_setup_link(&*dir, "http://127.0.0.1:8080").await;
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("/setup/"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_service_is_aborted_after_the_grace_period() {
        let mut services = Services::new();
        services.spawn("stuck", std::future::pending());
        services.run_until(async {}).await.unwrap();
    }
}
