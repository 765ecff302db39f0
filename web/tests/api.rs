//! The REST API in process on both backends: the main flows, token scopes, JSON errors, the
//! tenant-isolation matrix, and the OpenAPI document checked against the real router.

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

async fn call(
    app: &App,
    tok: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let mut r = Request::builder().method(method).uri(path);
    if let Some(t) = tok {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => r.body(Body::empty()),
    };
    app.send(req.unwrap()).await
}

#[track_caller]
fn error_code(r: &Resp, status: StatusCode) -> (String, Option<String>) {
    r.assert(status);
    let v = r.json();
    (
        v["error"]["code"].as_str().unwrap().to_owned(),
        v["error"]["field"].as_str().map(str::to_owned),
    )
}

async fn api_flow(b: Backend) {
    let app = App::new(b).await;
    let op = token(&app, None).await;

    // No token, a garbage token: 401 with a JSON error and a WWW-Authenticate challenge.
    let r = call(&app, None, Method::GET, "/api/v1/tenants", None).await;
    assert_eq!(
        error_code(&r, StatusCode::UNAUTHORIZED).0,
        "unauthenticated"
    );
    assert!(r.headers.contains_key("www-authenticate"));
    let r = call(&app, Some("sbt_nope"), Method::GET, "/api/v1/tenants", None).await;
    r.assert(StatusCode::UNAUTHORIZED);

    let body = json!({"name": "Acme", "slug": "acme", "sip_domain": "acme.pbx.test", "allow_international": true});
    let r = call(
        &app,
        Some(&op),
        Method::POST,
        "/api/v1/tenants",
        Some(body.clone()),
    )
    .await;
    r.assert(StatusCode::CREATED);
    let tid = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["allow_international"], true);
    let r = call(&app, Some(&op), Method::POST, "/api/v1/tenants", Some(body)).await;
    let (code, field) = error_code(&r, StatusCode::CONFLICT);
    assert!(
        code == "conflict" && matches!(field.as_deref(), Some("slug" | "sip_domain")),
        "{field:?}"
    );
    let r = call(
        &app,
        Some(&op),
        Method::POST,
        "/api/v1/tenants",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(
        error_code(&r, StatusCode::UNPROCESSABLE_ENTITY).0,
        "invalid"
    );
    let r = call(&app, Some(&op), Method::GET, "/api/v1/tenants", None).await;
    assert_eq!(r.json()["total"], 1);

    // Numbers: a range, all or nothing; assign one.
    let r = call(
        &app,
        Some(&op),
        Method::POST,
        "/api/v1/numbers",
        Some(json!({"first": "0113 496 0000", "last": "0113 496 0099"})),
    )
    .await;
    r.assert(StatusCode::CREATED);
    assert_eq!(r.json()["total"], 100);
    let nid = r.json()["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["items"][0]["number_type"], "geographic");
    let r = call(
        &app,
        Some(&op),
        Method::POST,
        "/api/v1/numbers",
        Some(json!({"first": "0113 496 0099", "last": "0113 496 0105"})),
    )
    .await;
    assert_eq!(error_code(&r, StatusCode::CONFLICT).0, "conflict");
    let r = call(
        &app,
        Some(&op),
        Method::POST,
        "/api/v1/numbers",
        Some(json!({"first": "12"})),
    )
    .await;
    assert_eq!(
        error_code(&r, StatusCode::UNPROCESSABLE_ENTITY)
            .1
            .as_deref(),
        Some("first")
    );
    let r = call(
        &app,
        Some(&op),
        Method::GET,
        "/api/v1/numbers?unassigned=true&limit=5",
        None,
    )
    .await;
    assert_eq!(
        (
            r.json()["total"].as_u64(),
            r.json()["items"].as_array().unwrap().len()
        ),
        (Some(100), 5)
    );
    let r = call(
        &app,
        Some(&op),
        Method::POST,
        &format!("/api/v1/numbers/{nid}/assign"),
        Some(json!({"tenant_id": tid})),
    )
    .await;
    r.assert(StatusCode::OK);

    // The business's own token from here on.
    let tenant: TenantId = tid.parse().unwrap();
    let biz = token(&app, Some(tenant)).await;
    let base = format!("/api/v1/tenants/{tid}");
    let r = call(&app, Some(&biz), Method::GET, "/api/v1/tenants", None).await;
    assert_eq!(error_code(&r, StatusCode::FORBIDDEN).0, "forbidden");
    call(&app, Some(&biz), Method::GET, &base, None)
        .await
        .assert(StatusCode::OK);
    let r = call(
        &app,
        Some(&biz),
        Method::PATCH,
        &base,
        Some(json!({"allow_premium": true})),
    )
    .await;
    r.assert(StatusCode::FORBIDDEN);

    let r = call(
        &app,
        Some(&biz),
        Method::POST,
        &format!("{base}/extensions"),
        Some(json!({"number": "201", "display_name": "Reception"})),
    )
    .await;
    r.assert(StatusCode::CREATED);
    let v = r.json();
    let eid = v["extension"]["id"].as_str().unwrap().to_owned();
    let pw = v["sip"]["password"].as_str().unwrap();
    assert_eq!(
        (v["sip"]["username"].as_str(), v["sip"]["domain"].as_str()),
        (Some("201"), Some("acme.pbx.test"))
    );
    let cred = app
        .dir
        .get_credential_by_username(tenant, &"201".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        cred.ha1_md5,
        web::crypto::sip_ha1("201", "acme.pbx.test", pw).0
    );
    let r = call(
        &app,
        Some(&biz),
        Method::POST,
        &format!("{base}/extensions"),
        Some(json!({"number": "201", "display_name": "Again"})),
    )
    .await;
    assert_eq!(
        error_code(&r, StatusCode::CONFLICT).1.as_deref(),
        Some("number")
    );
    let r = call(
        &app,
        Some(&biz),
        Method::POST,
        &format!("{base}/extensions"),
        Some(json!({"number": 5})),
    )
    .await;
    assert_eq!(
        error_code(&r, StatusCode::UNPROCESSABLE_ENTITY).0,
        "invalid"
    );

    let r = call(
        &app,
        Some(&biz),
        Method::PATCH,
        &format!("{base}/extensions/{eid}"),
        Some(json!({"dnd": true, "forward_busy": "+44 (0)20 7946 0018"})),
    )
    .await;
    r.assert(StatusCode::OK);
    assert_eq!(
        (r.json()["dnd"].as_bool(), r.json()["forward_busy"].as_str()),
        (Some(true), Some("+442079460018"))
    );
    let r = call(
        &app,
        Some(&biz),
        Method::PATCH,
        &format!("{base}/extensions/{eid}"),
        Some(json!({"forward_always": "nowhere"})),
    )
    .await;
    assert_eq!(
        error_code(&r, StatusCode::UNPROCESSABLE_ENTITY)
            .1
            .as_deref(),
        Some("forward_always")
    );
    let r = call(
        &app,
        Some(&biz),
        Method::GET,
        &format!("{base}/extensions?q=recep"),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 1);

    // Route the number; then the extension cannot be deleted while routed.
    let r = call(
        &app,
        Some(&biz),
        Method::PUT,
        &format!("{base}/numbers/{nid}/route"),
        Some(json!({"extension": "201"})),
    )
    .await;
    r.assert(StatusCode::OK);
    assert_eq!(
        (
            r.json()["route"]["kind"].as_str(),
            r.json()["route"]["id"].as_str()
        ),
        (Some("extension"), Some(eid.as_str()))
    );
    let r = call(
        &app,
        Some(&biz),
        Method::PUT,
        &format!("{base}/numbers/{nid}/route"),
        Some(json!({"extension": "555"})),
    )
    .await;
    assert_eq!(
        error_code(&r, StatusCode::UNPROCESSABLE_ENTITY)
            .1
            .as_deref(),
        Some("extension")
    );
    let r = call(
        &app,
        Some(&biz),
        Method::GET,
        &format!("{base}/numbers"),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 1);
    let r = call(
        &app,
        Some(&biz),
        Method::DELETE,
        &format!("{base}/extensions/{eid}"),
        None,
    )
    .await;
    assert_eq!(error_code(&r, StatusCode::CONFLICT).0, "conflict");

    let r = call(
        &app,
        Some(&biz),
        Method::POST,
        &format!("{base}/extensions/{eid}/password"),
        None,
    )
    .await;
    r.assert(StatusCode::OK);
    let pw2 = r.json()["password"].as_str().unwrap().to_owned();
    assert_ne!(pw2, pw);
    let c2 = app.dir.get_credential(tenant, cred.id).await.unwrap();
    assert_eq!(
        c2.ha1_md5,
        web::crypto::sip_ha1("201", "acme.pbx.test", &pw2).0
    );
    call(
        &app,
        Some(&biz),
        Method::PUT,
        &format!("{base}/numbers/{nid}/route"),
        Some(json!({"extension": null})),
    )
    .await
    .assert(StatusCode::OK);
    call(
        &app,
        Some(&biz),
        Method::DELETE,
        &format!("{base}/extensions/{eid}"),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    call(
        &app,
        Some(&biz),
        Method::GET,
        &format!("{base}/extensions/{eid}"),
        None,
    )
    .await
    .assert(StatusCode::NOT_FOUND);

    // A revoked token stops working; a suspended business's token too.
    let stored = app
        .dir
        .get_api_token_by_hash(&web::crypto::token_hash(&biz))
        .await
        .unwrap();
    let other = token(&app, Some(tenant)).await;
    app.dir
        .revoke_api_token(Some(tenant), stored.id, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    call(&app, Some(&biz), Method::GET, &base, None)
        .await
        .assert(StatusCode::UNAUTHORIZED);
    call(
        &app,
        Some(&op),
        Method::PATCH,
        &base,
        Some(json!({"suspended": true})),
    )
    .await
    .assert(StatusCode::OK);
    call(&app, Some(&other), Method::GET, &base, None)
        .await
        .assert(StatusCode::FORBIDDEN);

    // Activity: nothing registered or called yet; a bad time filter is a 422 on its field.
    let r = call(
        &app,
        Some(&op),
        Method::GET,
        &format!("{base}/registrations"),
        None,
    )
    .await;
    assert_eq!(r.json()["items"], json!([]));
    let r = call(
        &app,
        Some(&op),
        Method::GET,
        &format!("{base}/calls?from=2026-11-24T00:00:00Z"),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 0);
    let r = call(
        &app,
        Some(&op),
        Method::GET,
        &format!("{base}/calls?from=yesterday"),
        None,
    )
    .await;
    assert_eq!(
        error_code(&r, StatusCode::UNPROCESSABLE_ENTITY)
            .1
            .as_deref(),
        Some("from")
    );

    // Unknown API paths answer JSON too.
    let r = call(&app, Some(&op), Method::GET, "/api/v1/nothing", None).await;
    assert_eq!(error_code(&r, StatusCode::NOT_FOUND).0, "not_found");
}

/// Business B's token with A's ids on every endpoint: 404, nothing of A in the body, nothing of
/// A changed.
async fn tenant_isolation_api(b: Backend) {
    let app = App::new(b).await;
    let a = app.tenant("alpha").await;
    let bt = app.tenant("bravo").await;
    let (ext, _) = app
        .dir
        .create_extension(
            a.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Alpha Secret Desk"),
            },
            None,
        )
        .await
        .unwrap();
    let num = app
        .dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(a.id))
        .await
        .unwrap();
    app.dir
        .create_extension(
            bt.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Bravo desk"),
            },
            None,
        )
        .await
        .unwrap();
    let group = app
        .dir
        .create_ring_group(
            a.id,
            &"30".parse().unwrap(),
            &RingGroupSettings::new("Alpha Secret Group", RingStrategy::Sequential),
        )
        .await
        .unwrap();
    app.dir
        .set_ring_group_members(a.id, group.id, &[RingGroupMember::Extension(ext.id)])
        .await
        .unwrap();
    let tok_b = token(&app, Some(bt.id)).await;
    // A call of A's in progress, and a bridge that hands out every call whatever it is asked.
    app.live.set(vec![
        support::active_call(1, a.id, "Alpha Secret Caller", "+442079460018", Some(30)),
        support::active_call(2, bt.id, "201", "202", None),
    ]);
    app.live.set_leaky(true);
    let secrets = [
        a.id.to_string(),
        ext.id.to_string(),
        num.id.to_string(),
        group.id.to_string(),
        "Alpha Secret".into(),
        "alpha".into(),
        "+442079460018".into(),
    ];

    for tenant in [a.id, bt.id] {
        let t = format!("/api/v1/tenants/{tenant}");
        let e = format!("{t}/extensions/{}", ext.id);
        let g = format!("{t}/ring-groups/{}", group.id);
        let calls: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, t.clone(), None),
            (Method::PATCH, t.clone(), Some(json!({"name": "Hacked"}))),
            (Method::GET, format!("{t}/extensions"), None),
            (
                Method::POST,
                format!("{t}/extensions"),
                Some(json!({"number": "777", "display_name": "Intruder"})),
            ),
            (Method::GET, format!("{t}/numbers"), None),
            (Method::GET, format!("{t}/registrations"), None),
            (Method::GET, format!("{t}/calls"), None),
            (Method::GET, format!("/api/v1/calls?tenant={tenant}"), None),
            (
                Method::PUT,
                format!("{t}/numbers/{}/route", num.id),
                Some(json!({"extension": "201"})),
            ),
            (Method::GET, e.clone(), None),
            (
                Method::PATCH,
                e.clone(),
                Some(json!({"display_name": "Hacked", "dnd": true})),
            ),
            (Method::DELETE, e.clone(), None),
            (Method::POST, format!("{e}/password"), None),
            (Method::GET, format!("{t}/ring-groups"), None),
            (
                Method::POST,
                format!("{t}/ring-groups"),
                Some(
                    json!({"number": "31", "name": "Intruder", "members": ["201"], "fallback": "30"}),
                ),
            ),
            (Method::GET, g.clone(), None),
            (
                Method::PATCH,
                g.clone(),
                Some(json!({"name": "Hacked", "members": ["201"]})),
            ),
            (Method::DELETE, g.clone(), None),
            (
                Method::PUT,
                format!("{t}/numbers/{}/route", num.id),
                Some(json!({"ring_group": "30"})),
            ),
        ];
        for (m, url, body) in calls {
            let r = call(&app, Some(&tok_b), m.clone(), &url, body).await;
            let own = tenant == bt.id
                && !url.contains(&ext.id.to_string())
                && !url.contains(&num.id.to_string())
                && !url.contains(&group.id.to_string());
            if !own {
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {url}: {}", r.body);
                assert_eq!(r.json()["error"]["code"], "not_found");
            }
            for s in &secrets {
                assert!(
                    !r.body.contains(s.as_str()),
                    "{m} {url} leaks {s}: {}",
                    r.body
                );
            }
        }
    }
    // Calls in progress without naming a business: B's own only.
    let r = call(&app, Some(&tok_b), Method::GET, "/api/v1/calls", None).await;
    r.assert(StatusCode::OK);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1, "{}", r.body);
    for s in &secrets {
        assert!(!r.body.contains(s.as_str()), "/api/v1/calls leaks {s}");
    }
    // Operator endpoints with A's ids: refused as a business token.
    let r = call(
        &app,
        Some(&tok_b),
        Method::POST,
        &format!("/api/v1/numbers/{}/assign", num.id),
        Some(json!({"tenant_id": bt.id.to_string()})),
    )
    .await;
    r.assert(StatusCode::FORBIDDEN);

    let after = app.dir.get_extension(a.id, ext.id).await.unwrap();
    assert_eq!(
        (after.settings.display_name.as_str(), after.settings.dnd),
        ("Alpha Secret Desk", false)
    );
    assert!(
        app.dir
            .list_credentials(a.id, ext.id)
            .await
            .unwrap()
            .is_empty()
    );
    let n = app.dir.get_number_by_e164(&num.e164).await.unwrap();
    assert_eq!((n.tenant_id, n.route), (Some(a.id), RouteTarget::None));
    let g = app.dir.get_ring_group(a.id, group.id).await.unwrap();
    assert_eq!(g.settings.name, "Alpha Secret Group");
    assert_eq!(g.members, [RingGroupMember::Extension(ext.id)]);
    assert!(app.dir.list_ring_groups(bt.id).await.unwrap().is_empty());
    assert_eq!(
        app.dir.get_tenant(a.id).await.unwrap().settings.name,
        "alpha Ltd"
    );
}

both_backends!(api_flow, tenant_isolation_api,);
