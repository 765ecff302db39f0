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

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use serde_json::{Value, json};
    use tower::ServiceExt as _;

    use crate::{AppState, router};

    async fn get(state: AppState, path: &str) -> (StatusCode, Value) {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = router(state).oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get("content-type").cloned();
        let body = to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        assert_eq!(content_type.unwrap(), "application/json");
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn sqlite_state(dir: &tempfile::TempDir, migrate: bool) -> AppState {
        let url = format!("sqlite://{}", dir.path().join("web.db").display());
        let directory = store::connect(&url).await.unwrap();
        if migrate {
            directory.migrate().await.unwrap();
        }
        AppState::new(directory)
    }

    #[tokio::test]
    async fn healthz_is_ok_even_before_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let state = sqlite_state(&dir, false).await;
        assert_eq!(
            get(state, "/healthz").await,
            (StatusCode::OK, json!({"status": "ok"}))
        );
    }

    #[tokio::test]
    async fn readyz_is_ready_on_a_migrated_database() {
        let dir = tempfile::tempdir().unwrap();
        let state = sqlite_state(&dir, true).await;
        assert_eq!(
            get(state, "/readyz").await,
            (
                StatusCode::OK,
                json!({"status": "ready", "database": "ok", "migrations": "applied"})
            )
        );
    }

    #[tokio::test]
    async fn readyz_names_pending_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let state = sqlite_state(&dir, false).await;
        let (status, body) = get(state, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["database"], "ok");
        assert!(
            body["migrations"]["pending"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
            "{body}"
        );
    }

    #[tokio::test]
    async fn readyz_reports_an_unreachable_database() {
        let dir = tempfile::tempdir().unwrap();
        let state = sqlite_state(&dir, true).await;
        state.directory.close().await;
        let (status, body) = get(state, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["database"], "unreachable", "{body}");
    }

    #[tokio::test]
    async fn unknown_paths_are_json_404() {
        let dir = tempfile::tempdir().unwrap();
        let state = sqlite_state(&dir, true).await;
        let (status, body) = get(state, "/nope").await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, json!({"error": "not found"}))
        );
    }

    #[tokio::test]
    async fn serve_stops_when_shutdown_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let state = sqlite_state(&dir, true).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(listener, state, async {
            let _ = rx.await;
        }));
        tx.send(()).unwrap();
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    }

    #[tokio::test]
    async fn shutdown_does_not_hang_on_an_idle_keep_alive_connection() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let dir = tempfile::tempdir().unwrap();
        let state = sqlite_state(&dir, true).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve(listener, state, async {
            let _ = rx.await;
        }));

        // A client (say, a load balancer) keeps its connection open after a request.
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );

        tx.send(()).unwrap();
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
        assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
        drop(conn);
    }
}
