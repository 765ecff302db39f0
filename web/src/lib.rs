//! The web app: for now the health endpoints the operator's container
//! orchestration and the end-to-end tests use. The admin UI, REST API and
//! phone provisioning are later work and will hang off the same router.
//!
//! Launch it the way the binary and the tests do:
//! `web::serve(listener, AppState::new(directory), shutdown).await`.

mod health;

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use store::Directory;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub directory: Arc<dyn Directory>,
}

impl AppState {
    pub fn new(directory: Arc<dyn Directory>) -> Self {
        Self { directory }
    }
}

/// All routes of the web app.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(health::not_found)
        .with_state(state)
}

/// Serves the app on `listener` until `shutdown` completes; requests in
/// flight are allowed to finish before this returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
