//! The web app: the admin UI for operators, business admins and members (askama pages, htmx,
//! embedded static assets), the REST API under `/api/v1` with its OpenAPI document, and the
//! health endpoints.
//!
//! # Wiring it into the binary
//!
//! ```ignore
//! let directory = store::connect(&url).await?;
//! directory.migrate().await?;
//! // First run: no operator yet -> a one-time link (24 h) to create one. Print it; never a
//! // default password. `None` once an operator exists.
//! if let Some(link) = web::ensure_setup_link(&*directory, "https://pbx.example.com").await? {
//!     println!("Create the first operator account: {link}");
//! }
//! let config = web::WebConfig {
//!     cookie_secure: web::CookieSecure::Auto,   // Always behind a TLS proxy
//!     // Only these peers' X-Forwarded-For/-Proto/-Host are believed (empty: none).
//!     trusted_proxies: web::config::parse_cidr_list("10.0.0.5")?,
//!     sip_registrar: Some("sip.example.com:5060".into()), // shown in softphone configs
//!     ..web::WebConfig::default()
//! };
//! // Calls in progress: the binary bridges the call engine into `web::LiveCalls`.
//! let state = web::AppState::with_config(directory, config).with_live_calls(engine_view);
//! web::serve(listener, state, shutdown).await?;
//! ```
//!
//! # Layout
//! - [`error`]: `PageError` (HTML) and `ApiError` (JSON) over one `AppError`.
//! - [`session`]: DB-backed sessions, cookies, CSRF; [`auth`]: the extractors every handler
//!   takes (`Authed`, `OperatorUser`, `AdminOf`, `ApiCaller`, `ApiOperator`, `ApiAdminOf`).
//! - [`live`]: calls in progress ([`LiveCalls`], fed by the binary).
//! - `pages::*`: HTML handlers; [`views`]: one askama struct per page; `api::*`: REST handlers.

mod api;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod error;
mod headers;
mod health;
pub mod live;
mod pages;
pub mod reg_failures;
pub mod reveal;
pub mod service;
pub mod session;
mod static_files;
pub mod throttle;
pub mod trunk_state;
pub mod views;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use store::Directory;
use tokio::net::TcpListener;

pub use config::{CookieSecure, WebConfig};
pub use live::{ActiveCall, CallState, LiveCalls, NoLiveCalls};
pub use reg_failures::{NoRegistrationFailures, RegistrationFailure, RegistrationFailures};
pub use trunk_state::{NoTrunkStates, TrunkRegistration, TrunkState, TrunkStates};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub directory: Arc<dyn Directory>,
    pub config: Arc<WebConfig>,
    /// Calls in progress; none unless the binary attaches the call engine.
    pub live_calls: Arc<dyn LiveCalls>,
    /// Every admin mutation goes through it (and is announced to the engine).
    pub service: service::Service,
    /// Trunk health and registration; none unless the binary attaches the engine.
    pub trunk_states: Arc<dyn TrunkStates>,
    /// Recent failed registrations per credential; none unless the binary attaches the engine.
    pub reg_failures: Arc<dyn RegistrationFailures>,
    /// New SIP passwords waiting for their one view (POST/redirect/GET).
    pub reveals: Arc<reveal::Reveals>,
}

impl AppState {
    /// Default configuration (see [`WebConfig::default`]).
    pub fn new(directory: Arc<dyn Directory>) -> Self {
        Self::with_config(directory, WebConfig::default())
    }

    pub fn with_config(directory: Arc<dyn Directory>, config: WebConfig) -> Self {
        Self {
            service: service::Service::new(Arc::clone(&directory), store::ChangeBus::new()),
            directory,
            config: Arc::new(config),
            live_calls: Arc::new(NoLiveCalls),
            trunk_states: Arc::new(NoTrunkStates),
            reg_failures: Arc::new(NoRegistrationFailures),
            reveals: Arc::new(reveal::Reveals::default()),
        }
    }

    /// Publishes admin changes on `bus`, the one the SIP engine of this process subscribes to.
    pub fn with_changes(mut self, bus: store::ChangeBus) -> Self {
        self.service = service::Service::new(Arc::clone(&self.directory), bus);
        self
    }

    /// Shows the trunk states `states` reports on the trunk pages and the trunks API.
    pub fn with_trunk_states(mut self, states: Arc<dyn TrunkStates>) -> Self {
        self.trunk_states = states;
        self
    }

    /// Shows the failed registrations `failures` reports on the extension page.
    pub fn with_registration_failures(mut self, failures: Arc<dyn RegistrationFailures>) -> Self {
        self.reg_failures = failures;
        self
    }

    /// Shows the calls `live` reports on the active-calls pages and `GET /api/v1/calls`.
    pub fn with_live_calls(mut self, live: Arc<dyn LiveCalls>) -> Self {
        self.live_calls = live;
        self
    }
}

/// If the platform has no operator yet, creates a one-time setup link (valid for 24 hours) and
/// returns it as `{base_url}/setup/{token}` for the binary to print; `None` once an operator
/// exists. Only the token's hash is stored. Each call while no operator exists makes a new
/// link; older unexpired ones stay valid until one of them is used.
pub async fn ensure_setup_link(
    directory: &dyn Directory,
    base_url: &str,
) -> Result<Option<String>, store::StoreError> {
    pages::auth::ensure_setup_link(directory, base_url, WebConfig::default().setup_link_ttl).await
}

/// All routes of the web app.
pub fn router(state: AppState) -> Router {
    use pages::{auth, business as biz, operator as op};
    let ui = Router::new()
        .route("/", get(auth::root))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route(
            "/account/password",
            get(auth::password_page).post(auth::change_password),
        )
        .route(
            "/setup/{token}",
            get(auth::setup_form).post(auth::setup_submit),
        )
        .merge(op::routes())
        .merge(pages::op_numbers::routes())
        .merge(biz::routes())
        .merge(pages::dashboard::routes())
        .merge(pages::biz_numbers::routes())
        .merge(pages::ring_groups::routes())
        .merge(pages::tokens::routes())
        .merge(pages::activity::routes())
        .merge(pages::live_calls::routes())
        .merge(pages::users::routes())
        .merge(pages::member::routes())
        .merge(pages::trunks::routes())
        .merge(pages::settings::routes())
        .merge(pages::devices::routes());
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/{file}", get(static_files::serve))
        .merge(ui)
        .merge(api::routes())
        .fallback(health::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::session_layer,
        ))
        .layer(axum::middleware::from_fn(headers::layer))
        .with_state(state)
}

/// Serves the app on `listener` until `shutdown` completes; requests in
/// flight are allowed to finish before this returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
