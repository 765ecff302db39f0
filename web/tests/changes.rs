//! Every admin mutation of the API goes through the service layer and publishes a typed
//! change event: in process on the bus (the request answers once it is applied), and into the
//! change log for other processes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use store::changes::{Action, Delivery, WatchOptions};
use store::*;
use tower::ServiceExt as _;

struct App {
    router: axum::Router,
    dir: Arc<dyn Directory>,
    seen: Arc<Mutex<Vec<Change>>>,
    _tmp: tempfile::TempDir,
}

async fn app() -> App {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("d.db").display());
    let dir = store::connect(&url).await.unwrap();
    dir.migrate().await.unwrap();
    let bus = ChangeBus::new();
    // the engine's part: receive, remember, report applied
    let mut rx = bus.subscribe();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Some(d) = rx.recv().await {
            if let Delivery::Change(c) = d {
                sink.lock().unwrap().push(c);
            }
            rx.applied();
        }
    });
    let state = web::AppState::new(dir.clone()).with_changes(bus);
    App {
        router: web::router(state),
        dir,
        seen,
        _tmp: tmp,
    }
}

async fn token(app: &App, tenant: Option<TenantId>) -> String {
    let t = format!("sbt_{}", web::crypto::random_token());
    app.dir
        .create_api_token(&NewApiToken {
            tenant_id: tenant,
            name: "test".into(),
            token_hash: web::crypto::token_hash(&t),
            prefix: t[..10].into(),
            created_by: None,
            expires_at: None,
        })
        .await
        .unwrap();
    t
}

async fn call(
    app: &App,
    tok: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(&method)
        .uri(path)
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), app.router.clone().oneshot(req))
        .await
        .expect("answered in time")
        .unwrap();
    let status = res.status();
    let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn last(app: &App) -> Change {
    *app.seen.lock().unwrap().last().expect("a change event")
}

#[tokio::test]
async fn every_api_mutation_publishes_its_change_in_process_and_for_other_processes() {
    let app = app().await;
    let mut options = WatchOptions::new(ChangeBus::new().origin());
    options.poll = Duration::from_millis(20);
    let mut other_process = app.dir.watch_changes(options).await.unwrap();
    let t = app
        .dir
        .create_tenant(&NewTenant {
            slug: "acme".parse().unwrap(),
            sip_domain: "acme.example.com".parse().unwrap(),
            settings: TenantSettings::new("Acme"),
        })
        .await
        .unwrap();
    let admin = token(&app, Some(t.id)).await;
    let op = token(&app, None).await;
    let base = format!("/api/v1/tenants/{}", t.id);

    let (s, v) = call(
        &app,
        &admin,
        Method::POST,
        &format!("{base}/extensions"),
        json!({"number": "101", "display_name": "Alice"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let ext: ExtensionId = v["extension"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        last(&app),
        Change::Extension {
            tenant: t.id,
            extension: ext,
            action: Action::Created
        }
    );

    let (s, v) = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("{base}/extensions/{ext}"),
        json!({"dnd": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        last(&app),
        Change::Extension {
            tenant: t.id,
            extension: ext,
            action: Action::Updated
        }
    );

    let (s, v) = call(
        &app,
        &admin,
        Method::POST,
        &format!("{base}/extensions/{ext}/password"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        matches!(last(&app), Change::Credential { tenant, extension, action: Action::Regenerated, .. } if tenant == t.id && extension == ext)
    );

    let (s, v) = call(
        &app,
        &admin,
        Method::POST,
        &format!("{base}/extensions/{ext}/devices"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let device: CredentialId = v["device"]["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        last(&app),
        Change::Credential {
            tenant: t.id,
            extension: ext,
            credential: device,
            action: Action::Created
        }
    );
    let (s, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("{base}/extensions/{ext}/devices/{device}"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        last(&app),
        Change::Credential {
            tenant: t.id,
            extension: ext,
            credential: device,
            action: Action::Deleted
        }
    );

    let (s, v) = call(
        &app,
        &admin,
        Method::POST,
        &format!("{base}/ring-groups"),
        json!({"number": "500", "name": "Sales", "members": ["101"]}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        matches!(last(&app), Change::RingGroup { tenant, action: Action::Created, .. } if tenant == t.id)
    );

    let (s, v) = call(
        &app,
        &op,
        Method::POST,
        "/api/v1/trunks",
        json!({"name": "carrier", "host": "127.0.0.9", "inbound_source": "127.0.0.9"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(matches!(
        last(&app),
        Change::Trunk {
            action: Action::Created,
            ..
        }
    ));

    let (s, v) = call(
        &app,
        &op,
        Method::POST,
        "/api/v1/numbers",
        json!({"first": "+44 113 496 0123", "tenant_id": t.id.to_string()}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        matches!(last(&app), Change::Number { tenant: Some(tenant), action: Action::Created, .. } if tenant == t.id)
    );

    let (s, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("{base}/extensions/{ext}"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        last(&app),
        Change::Extension {
            tenant: t.id,
            extension: ext,
            action: Action::Deleted
        }
    );

    // another process reads the same changes, in the same order, from the change log
    let in_process = app.seen.lock().unwrap().clone();
    assert_eq!(in_process.len(), 9, "{in_process:#?}");
    for expected in in_process {
        let got = tokio::time::timeout(Duration::from_secs(5), other_process.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, Delivery::Change(expected));
    }
}
