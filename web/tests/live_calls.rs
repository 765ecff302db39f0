//! Calls in progress: the business, operator and member pages (with their htmx polls) and
//! `GET /api/v1/calls`, and their isolation between businesses.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use store::*;
use support::{App, Backend, Resp, active_call};

const ALPHA: &str = "+442079460999";
const BRAVO: &str = "+441134960123";

async fn api_token(app: &App, tenant: Option<TenantId>) -> String {
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

async fn api_get(app: &App, tok: Option<&str>, path: &str) -> Resp {
    let mut r = Request::builder().method(Method::GET).uri(path);
    if let Some(t) = tok {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    app.send(r.body(Body::empty()).unwrap()).await
}

/// Alpha: 201 talking to +442079460999 for 65 s. Bravo: an outside caller ringing 201, and 203
/// talking to +441134960123 for an hour. (Numbers long enough never to turn up by chance in a
/// random id or token on the page.)
async fn two_businesses(app: &App) -> (Tenant, Tenant) {
    let a = app.tenant("alpha").await;
    let bt = app.tenant("bravo").await;
    app.live.set(vec![
        active_call(1, a.id, "201", ALPHA, Some(65)),
        active_call(2, bt.id, "+447400123456", "201", None),
        active_call(3, bt.id, "203", BRAVO, Some(3723)),
    ]);
    (a, bt)
}

async fn business_and_operator_pages(b: Backend) {
    let app = App::new(b).await;
    let (a, bt) = two_businesses(&app).await;
    let mut adm = app
        .signed_in(Some(bt.id), Role::Admin, "bob@bravo.test")
        .await;
    let url = format!("/t/{}/active-calls", bt.id);

    for leaky in [false, true] {
        app.live.set_leaky(leaky);
        let r = adm.get(&url).await;
        r.assert(StatusCode::OK);
        assert!(r.body.contains(&format!(
            r#"<a href="{url}" aria-current="page">Active calls</a>"#
        )));
        assert!(r.body.contains("+447400123456") && r.body.contains("ringing 0:1"));
        assert!(
            r.body.contains("<td>1:02:0"),
            "talking for an hour: {}",
            r.body
        );
        assert!(r.body.contains("2 calls in progress, 1 connected"));
        assert!(
            !r.body.contains(ALPHA),
            "alpha's call leaks (leaky: {leaky})"
        );
        assert!(r.body.contains(&format!(r#"hx-get="{url}""#)));
        assert!(r.body.contains(&format!(r#"<a href="{url}">Refresh</a>"#)));

        // The poll gets the list alone.
        let r = adm.htmx_get(&url).await;
        r.assert(StatusCode::OK);
        assert!(
            r.body.trim_start().starts_with(r#"<div id="live-calls""#),
            "{}",
            r.body
        );
        assert!(!r.body.contains("<html") && !r.body.contains(ALPHA));
        assert_eq!(r.headers["vary"], "HX-Request");
    }
    app.live.set_leaky(false);

    // Another business's page, its poll: not found, nothing of it.
    for r in [
        adm.get(&format!("/t/{}/active-calls", a.id)).await,
        adm.htmx_get(&format!("/t/{}/active-calls", a.id)).await,
    ] {
        r.assert(StatusCode::NOT_FOUND);
        assert!(!r.body.contains(ALPHA) && !r.body.contains("alpha"));
    }
    adm.get("/operator/active-calls")
        .await
        .assert(StatusCode::FORBIDDEN);

    // No calls: said so.
    app.live.set(vec![]);
    assert!(adm.get(&url).await.body.contains("No calls in progress."));
    app.live.set(vec![
        active_call(1, a.id, "201", ALPHA, Some(65)),
        active_call(2, bt.id, "+447400123456", "201", None),
    ]);

    // The operator: every business's calls, named and linked to the business's page.
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    let r = op.get("/operator/active-calls").await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("alpha Ltd") && r.body.contains("bravo Ltd"));
    assert!(r.body.contains(&format!(
        r#"<a href="/t/{}/active-calls">alpha Ltd</a>"#,
        a.id
    )));
    assert!(r.body.contains("<td>1:05</td>") || r.body.contains("<td>1:06</td>"));
    assert!(r.body.contains("+447400123456"));
    assert!(r.body.contains(r#"aria-current="page">Active calls</a>"#));
    let r = op.htmx_get("/operator/active-calls").await;
    assert!(!r.body.contains("<html") && r.body.contains("alpha Ltd"));
    // And one business's, through the business.
    let r = op.get(&format!("/t/{}/active-calls", a.id)).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains(ALPHA) && !r.body.contains("+447400123456"));

    // A poll after signing out: htmx is told to go to the sign-in page instead of swapping it
    // into the list.
    let mut gone = app.browser();
    let r = gone.htmx_get(&url).await;
    r.assert(StatusCode::NO_CONTENT);
    assert_eq!(r.headers["hx-redirect"], "/login");
    assert_eq!(gone.get(&url).await.location(), "/login");
}

async fn member_sees_own_calls(b: Backend) {
    let app = App::new(b).await;
    let (_, bt) = two_businesses(&app).await;
    let mia = app.user(Some(bt.id), Role::Member, "mia@bravo.test").await;
    let mut settings = ExtensionSettings::new("Mia");
    settings.user_id = Some(mia.id);
    let (ext, _) = app
        .dir
        .create_extension(
            bt.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings,
            },
            None,
        )
        .await
        .unwrap();
    let mut m = app.browser();
    m.login("mia@bravo.test", support::PASSWORD)
        .await
        .assert(StatusCode::SEE_OTHER);
    for leaky in [false, true] {
        app.live.set_leaky(leaky);
        let r = m.get("/account/extension").await;
        r.assert(StatusCode::OK);
        assert!(r.body.contains("Calls in progress") && r.body.contains("+447400123456"));
        // Not a call of hers, and not another business's 201.
        assert!(
            !r.body.contains(BRAVO) && !r.body.contains(ALPHA),
            "{}",
            r.body
        );
        let r = m.htmx_get("/account/extension").await;
        assert!(
            r.body.contains("1 call in progress, 0 connected"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("<form"));
    }
    // Her extension unlinked while the page is open: the poll sends the whole page away.
    let mut unlinked = ext.settings.clone();
    unlinked.user_id = None;
    app.dir
        .update_extension(bt.id, ext.id, &unlinked)
        .await
        .unwrap();
    let r = m.htmx_get("/account/extension").await;
    r.assert(StatusCode::NO_CONTENT);
    assert_eq!(r.headers["hx-redirect"], "/account/password");

    // Members do not get the business's page.
    m.get(&format!("/t/{}/active-calls", bt.id))
        .await
        .assert(StatusCode::NOT_FOUND);
}

async fn calls_api(b: Backend) {
    let app = App::new(b).await;
    let (a, bt) = two_businesses(&app).await;
    let tok_b = api_token(&app, Some(bt.id)).await;
    let op = api_token(&app, None).await;

    let r = api_get(&app, None, "/api/v1/calls").await;
    r.assert(StatusCode::UNAUTHORIZED);

    for leaky in [false, true] {
        app.live.set_leaky(leaky);
        let r = api_get(&app, Some(&tok_b), "/api/v1/calls").await;
        r.assert(StatusCode::OK);
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 2, "{}", r.body);
        assert!(items.iter().all(|c| c["tenant_id"] == bt.id.to_string()));
        assert!(!r.body.contains(&a.id.to_string()) && !r.body.contains(ALPHA));
        let ringing = &items[1];
        assert_eq!(
            (ringing["state"].as_str(), ringing["caller"].as_str()),
            (Some("ringing"), Some("+447400123456"))
        );
        assert!(ringing["answered_at"].is_null() && ringing["duration_secs"].is_null());
        let talking = &items[0];
        assert_eq!(talking["state"], "connected");
        assert!(talking["duration_secs"].as_u64().unwrap() >= 3723);
        // Naming itself is fine; naming another business is not found.
        let own = format!("/api/v1/calls?tenant={}", bt.id);
        assert_eq!(
            api_get(&app, Some(&tok_b), &own).await.json()["items"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let r = api_get(
            &app,
            Some(&tok_b),
            &format!("/api/v1/calls?tenant={}", a.id),
        )
        .await;
        r.assert(StatusCode::NOT_FOUND);
        assert!(!r.body.contains(ALPHA));
    }
    app.live.set_leaky(false);

    // The operator: everything, or one business.
    let r = api_get(&app, Some(&op), "/api/v1/calls").await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 3);
    let r = api_get(&app, Some(&op), &format!("/api/v1/calls?tenant={}", a.id)).await;
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["callee"].as_str(), items[0]["id"].as_u64()),
        (Some(ALPHA), Some(1))
    );
    let r = api_get(
        &app,
        Some(&op),
        &format!("/api/v1/calls?tenant={}", TenantId::new()),
    )
    .await;
    assert_eq!(r.json()["error"]["code"], "not_found");
    let r = api_get(&app, Some(&op), "/api/v1/calls?tenant=nope").await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["field"], "tenant");
}

both_backends!(
    business_and_operator_pages,
    member_sees_own_calls,
    calls_api
);
