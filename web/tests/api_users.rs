//! The REST API for a business's users and an extension's devices, and their isolation.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use store::*;
use support::{App, Backend, Resp};

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

async fn call(app: &App, tok: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    let r = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("bearer {tok}"));
    let req = match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => r.body(Body::empty()),
    };
    app.send(req.unwrap()).await
}

async fn users_and_devices(b: Backend) {
    let app = App::new(b).await;
    let a = app.tenant("alpha").await;
    let bt = app.tenant("bravo").await;
    let tok = token(&app, Some(bt.id)).await;
    let base = format!("/api/v1/tenants/{}", bt.id);

    let r = call(
        &app,
        &tok,
        Method::POST,
        &format!("{base}/users"),
        Some(json!({"email": "mia@bravo.test", "display_name": "Mia"})),
    )
    .await;
    r.assert(StatusCode::CREATED);
    let v = r.json();
    assert_eq!(v["user"]["role"], "member");
    let uid = v["user"]["id"].as_str().unwrap().to_owned();
    let pw = v["password"].as_str().unwrap().to_owned();
    app.browser()
        .login("mia@bravo.test", &pw)
        .await
        .assert(StatusCode::SEE_OTHER);
    let r = call(
        &app,
        &tok,
        Method::POST,
        &format!("{base}/users"),
        Some(json!({"email": "mia@bravo.test"})),
    )
    .await;
    r.assert(StatusCode::CONFLICT);
    let r = call(
        &app,
        &tok,
        Method::POST,
        &format!("{base}/users"),
        Some(json!({"email": "x@bravo.test", "role": "operator"})),
    )
    .await;
    assert_eq!(r.json()["error"]["field"], "role");

    let r = call(
        &app,
        &tok,
        Method::PATCH,
        &format!("{base}/users/{uid}"),
        Some(json!({"role": "admin", "disabled": true})),
    )
    .await;
    r.assert(StatusCode::OK);
    assert_eq!(
        (r.json()["role"].as_str(), r.json()["disabled"].as_bool()),
        (Some("admin"), Some(true))
    );
    app.browser()
        .login("mia@bravo.test", &pw)
        .await
        .assert(StatusCode::UNAUTHORIZED);
    call(
        &app,
        &tok,
        Method::PATCH,
        &format!("{base}/users/{uid}"),
        Some(json!({"disabled": false})),
    )
    .await
    .assert(StatusCode::OK);
    let r = call(
        &app,
        &tok,
        Method::POST,
        &format!("{base}/users/{uid}/password"),
        None,
    )
    .await;
    r.assert(StatusCode::OK);
    let pw2 = r.json()["password"].as_str().unwrap().to_owned();
    app.browser()
        .login("mia@bravo.test", &pw)
        .await
        .assert(StatusCode::UNAUTHORIZED);
    app.browser()
        .login("mia@bravo.test", &pw2)
        .await
        .assert(StatusCode::SEE_OTHER);
    let r = call(&app, &tok, Method::GET, &format!("{base}/users"), None).await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);

    // Devices.
    let r = call(
        &app,
        &tok,
        Method::POST,
        &format!("{base}/extensions"),
        Some(json!({"number": "201", "display_name": "Desk"})),
    )
    .await;
    let eid = r.json()["extension"]["id"].as_str().unwrap().to_owned();
    let r = call(
        &app,
        &tok,
        Method::POST,
        &format!("{base}/extensions/{eid}/devices"),
        Some(json!({"mac_address": "00:11:22:AA:BB:CC", "model": "Yealink T54W"})),
    )
    .await;
    r.assert(StatusCode::CREATED);
    let v = r.json();
    assert_eq!(
        (
            v["device"]["username"].as_str(),
            v["device"]["mac_address"].as_str()
        ),
        (Some("201-2"), Some("001122aabbcc"))
    );
    let did = v["device"]["id"].as_str().unwrap().to_owned();
    let r = call(
        &app,
        &tok,
        Method::POST,
        &format!("{base}/extensions/{eid}/devices"),
        Some(json!({"mac_address": "001122aabbcc"})),
    )
    .await;
    r.assert(StatusCode::CONFLICT);
    let r = call(
        &app,
        &tok,
        Method::POST,
        &format!("{base}/extensions/{eid}/devices"),
        Some(json!({"mac_address": "zz"})),
    )
    .await;
    assert_eq!(r.json()["error"]["field"], "mac_address");
    let r = call(
        &app,
        &tok,
        Method::GET,
        &format!("{base}/extensions/{eid}/devices"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 2);
    call(
        &app,
        &tok,
        Method::DELETE,
        &format!("{base}/extensions/{eid}/devices/{did}"),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);

    // Isolation: B's token with A's ids.
    let alice = app.user(Some(a.id), Role::Admin, "alice@alpha.test").await;
    let (ae, _) = app
        .dir
        .create_extension(
            a.id,
            &NewExtension {
                number: "301".parse().unwrap(),
                settings: ExtensionSettings::new("Alpha Secret"),
            },
            Some(&NewCredential {
                username: "301".parse().unwrap(),
                ha1_md5: web::crypto::sip_ha1("301", "a", "b").0,
                ha1_sha256: web::crypto::sip_ha1("301", "a", "b").1,
                mac_address: None,
                model: None,
            }),
        )
        .await
        .unwrap();
    let ac = app
        .dir
        .list_credentials(a.id, ae.id)
        .await
        .unwrap()
        .remove(0);
    for tenant in [a.id, bt.id] {
        let t = format!("/api/v1/tenants/{tenant}");
        let calls: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, format!("{t}/users"), None),
            (
                Method::POST,
                format!("{t}/users"),
                Some(json!({"email": "evil@x.test"})),
            ),
            (
                Method::PATCH,
                format!("{t}/users/{}", alice.id),
                Some(json!({"disabled": true})),
            ),
            (
                Method::POST,
                format!("{t}/users/{}/password", alice.id),
                None,
            ),
            (
                Method::GET,
                format!("{t}/extensions/{}/devices", ae.id),
                None,
            ),
            (
                Method::POST,
                format!("{t}/extensions/{}/devices", ae.id),
                Some(json!({})),
            ),
            (
                Method::DELETE,
                format!("{t}/extensions/{}/devices/{}", ae.id, ac.id),
                None,
            ),
            (
                Method::DELETE,
                format!("{t}/extensions/{eid}/devices/{}", ac.id),
                None,
            ),
        ];
        for (m, url, body) in calls {
            let r = call(&app, &tok, m.clone(), &url, body).await;
            let own = tenant == bt.id && url.ends_with("/users");
            if !own {
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {url}: {}", r.body);
            }
            for s in ["alice", "Alpha", &a.id.to_string(), &ae.id.to_string()] {
                assert!(!r.body.contains(s), "{m} {url} leaks {s}");
            }
        }
    }
    let alice2 = app.dir.get_user(a.id, alice.id).await.unwrap();
    assert_eq!(
        (alice2.disabled, alice2.password_hash),
        (false, alice.password_hash)
    );
    assert_eq!(
        app.dir.list_credentials(a.id, ae.id).await.unwrap().len(),
        1
    );
}

async fn trunks(b: Backend) {
    let app = App::new(b).await;
    let op = token(&app, None).await;
    let t = app.tenant("acme").await;
    let biz = token(&app, Some(t.id)).await;
    let r = call(&app, &op, Method::POST, "/api/v1/trunks", Some(json!({"name": "Carrier", "host": "sip.carrier.test", "transport": "tls", "port": 5061, "password": "s3cret"}))).await;
    r.assert(StatusCode::CREATED);
    let v = r.json();
    assert_eq!(
        (v["transport"].as_str(), v["has_password"].as_bool()),
        (Some("tls"), Some(true))
    );
    assert!(!r.body.contains("s3cret"), "the password is never returned");
    let id = v["id"].as_str().unwrap().to_owned();
    let r = call(
        &app,
        &op,
        Method::POST,
        "/api/v1/trunks",
        Some(json!({"host": "x"})),
    )
    .await;
    assert_eq!(r.json()["error"]["field"], "name");
    let r = call(
        &app,
        &op,
        Method::POST,
        "/api/v1/trunks",
        Some(json!({"name": "x", "host": "x", "transport": "ws"})),
    )
    .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    let r = call(
        &app,
        &op,
        Method::PATCH,
        &format!("/api/v1/trunks/{id}"),
        Some(json!({"enabled": false, "priority": 3})),
    )
    .await;
    r.assert(StatusCode::OK);
    assert_eq!(
        (
            r.json()["enabled"].as_bool(),
            r.json()["priority"].as_i64(),
            r.json()["has_password"].as_bool()
        ),
        (Some(false), Some(3), Some(true))
    );
    let stored = app.dir.get_trunk(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        stored.settings.password.map(|p| p.expose().to_owned()),
        Some("s3cret".into())
    );
    // Business tokens never reach trunks.
    call(&app, &biz, Method::GET, "/api/v1/trunks", None)
        .await
        .assert(StatusCode::FORBIDDEN);
    call(
        &app,
        &biz,
        Method::DELETE,
        &format!("/api/v1/trunks/{id}"),
        None,
    )
    .await
    .assert(StatusCode::FORBIDDEN);
    call(
        &app,
        &op,
        Method::DELETE,
        &format!("/api/v1/trunks/{id}"),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    call(
        &app,
        &op,
        Method::GET,
        &format!("/api/v1/trunks/{id}"),
        None,
    )
    .await
    .assert(StatusCode::NOT_FOUND);
}

/// Issue #10: the API refuses an inbound source wider than /24 (or /48)
/// with a 422 naming the field and the reason, unless forced.
async fn cidr_slash_zero_trunk_is_refused(b: Backend) {
    let app = App::new(b).await;
    let op = token(&app, None).await;
    for wide in ["0.0.0.0/0", "::/0"] {
        let r = call(
            &app,
            &op,
            Method::POST,
            "/api/v1/trunks",
            Some(json!({"name": "Any", "host": "sip.carrier.test", "inbound_source": wide})),
        )
        .await;
        r.assert(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["field"], "inbound_source", "{}", r.body);
        assert!(r.body.contains("wider than"), "{}", r.body);
    }
    let r = call(&app, &op, Method::POST, "/api/v1/trunks", Some(json!({"name": "Any", "host": "sip.carrier.test", "inbound_source": "0.0.0.0/0", "force_wide_source": true, "calls_per_second": 4}))).await;
    r.assert(StatusCode::CREATED);
    let v = r.json();
    assert_eq!(
        (
            v["force_wide_source"].as_bool(),
            v["calls_per_second"].as_u64(),
            v["inbound_auth"].as_bool()
        ),
        (Some(true), Some(4), Some(false))
    );
}

both_backends!(users_and_devices, trunks, cidr_slash_zero_trunk_is_refused);
