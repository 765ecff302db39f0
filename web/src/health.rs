//! `GET /healthz` (the process is up) and `GET /readyz` (the directory is
//! reachable and fully migrated).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

/// A readiness probe that cannot reach the database within this time says so
/// instead of hanging the orchestrator's probe.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let health = match tokio::time::timeout(READY_TIMEOUT, state.directory.health()).await {
        Ok(h) => h,
        Err(_) => {
            let body = json!({
                "status": "unavailable",
                "database": "timeout",
                "migrations": "unknown",
            });
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        }
    };
    if health.is_ok() {
        let body = json!({ "status": "ready", "database": "ok", "migrations": "applied" });
        return (StatusCode::OK, Json(body)).into_response();
    }
    if let Some(error) = &health.error {
        // Details may name hosts or users: they go to the log, not the client.
        tracing::warn!(backend = health.backend, %error, "readiness check failed");
    }
    let database = if health.reachable {
        "ok"
    } else {
        "unreachable"
    };
    let migrations = if !health.reachable {
        json!("unknown")
    } else if health.pending.is_empty() {
        json!("applied")
    } else {
        json!({ "pending": health.pending })
    };
    let body = json!({
        "status": "unavailable",
        "database": database,
        "migrations": migrations,
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

pub(crate) async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not found" }))).into_response()
}
