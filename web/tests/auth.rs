//! Sign-in, sessions, CSRF, roles and the first-run setup link, in process on both backends.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{Backend, PASSWORD};

async fn login_logout_and_cookie_flags(b: Backend) {
    let app = support::App::new(b).await;
    let t = app.tenant("acme").await;
    app.user(Some(t.id), Role::Admin, "ann@acme.test").await;

    let mut br = app.browser();
    br.get("/").await.assert(StatusCode::SEE_OTHER);
    // Hardening headers on pages; static assets are cacheable.
    let r = br.get("/login").await;
    let h = |name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(h("content-security-policy").contains("script-src 'self'"));
    assert_eq!(
        (h("cache-control").as_str(), h("referrer-policy").as_str()),
        ("no-store", "same-origin")
    );
    assert_eq!(h("x-frame-options"), "DENY");
    let js = br.get("/static/htmx.min.js").await;
    js.assert(StatusCode::OK);
    assert!(js.body.starts_with("/* htmx 2.0.11"));
    assert!(
        js.headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    br.get("/static/app.js").await.assert(StatusCode::OK);
    br.get("/static/nope.js")
        .await
        .assert(StatusCode::NOT_FOUND);
    assert_eq!(br.get("/account/password").await.location(), "/login");

    // Wrong password: one message, the typed e-mail kept.
    let r = br.login("ann@acme.test", "nope").await;
    r.assert(StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong e-mail address or password."));
    assert!(r.body.contains(r#"value="ann@acme.test""#));
    // Unknown user: same answer.
    let r = br.login("who@acme.test", "nope").await;
    r.assert(StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong e-mail address or password."));

    let r = br.login("ann@acme.test", PASSWORD).await;
    r.assert(StatusCode::SEE_OTHER);
    let cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP without a trusted proxy: {cookie}"
    );
    let token = br.cookie.clone().unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(br.get("/").await.location(), format!("/t/{}", t.id));

    // Only the hash is stored.
    let hash = web::crypto::token_hash(&token);
    assert!(
        app.dir
            .get_web_session(&hash, time::OffsetDateTime::now_utc())
            .await
            .is_ok()
    );

    br.post("/logout", &[]).await.assert(StatusCode::SEE_OTHER);
    assert!(
        app.dir
            .get_web_session(&hash, time::OffsetDateTime::now_utc())
            .await
            .is_err()
    );
    // The old cookie no longer works.
    br.cookie = Some(token);
    assert_eq!(br.get("/account/password").await.location(), "/login");
}

async fn login_rate_limit(b: Backend) {
    let app = support::App::new(b).await;
    app.user(None, Role::Operator, "op@example.test").await;
    let mut br = app.browser();
    for _ in 0..web::throttle::ACCOUNT_LIMIT {
        br.login("op@example.test", "wrong")
            .await
            .assert(StatusCode::UNAUTHORIZED);
    }
    // Now even the right password is refused, with a clear message.
    let r = br.login("op@example.test", PASSWORD).await;
    r.assert(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.body
            .contains("Too many failed sign-in attempts. Try again in 15 minutes."),
        "{}",
        r.body
    );
}

async fn csrf_is_required_for_state_changes(b: Backend) {
    let app = support::App::new(b).await;
    let mut br = app.signed_in(None, Role::Operator, "op@example.test").await;
    let good = br.csrf.clone().unwrap();

    // No token, a wrong token, a token in the header: only the right one passes.
    let r = br.post_raw("/logout", &[]).await;
    r.assert(StatusCode::BAD_REQUEST);
    assert!(r.body.contains("This form has expired"));
    br.post_raw("/logout", &[("csrf_token", "x".repeat(43))])
        .await
        .assert(StatusCode::BAD_REQUEST);
    let req = axum::http::Request::post("/account/password")
        .header(
            "cookie",
            format!("sb_session={}", br.cookie.clone().unwrap()),
        )
        .header("x-csrf-token", "wrong")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("current=a"))
        .unwrap();
    app.send(req).await.assert(StatusCode::BAD_REQUEST);
    // htmx-style header with the right token is accepted.
    let req = axum::http::Request::post("/account/password")
        .header(
            "cookie",
            format!("sb_session={}", br.cookie.clone().unwrap()),
        )
        .header("x-csrf-token", good.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("current=a&new_password=b&confirm=c"))
        .unwrap();
    app.send(req).await.assert(StatusCode::UNPROCESSABLE_ENTITY);
    // Still signed in: the refused requests changed nothing.
    br.get("/account/password").await.assert(StatusCode::OK);

    // A cross-site login POST without a session is refused too.
    let req = axum::http::Request::post("/login")
        .header("host", "pbx.test")
        .header("origin", "https://evil.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("email=op%40example.test&password=x"))
        .unwrap();
    app.send(req).await.assert(StatusCode::BAD_REQUEST);
}

async fn password_change(b: Backend) {
    let app = support::App::new(b).await;
    let mut br = app.signed_in(None, Role::Operator, "op@example.test").await;
    let mut other = app.browser();
    other
        .login("op@example.test", PASSWORD)
        .await
        .assert(StatusCode::SEE_OTHER);

    let r = br
        .post(
            "/account/password",
            &[
                ("current", "bad"),
                ("new_password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("This is not your current password."));
    assert!(r.body.contains("at least 10 characters"));

    let new = "a much better passphrase";
    br.post(
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new_password", new),
            ("confirm", new),
        ],
    )
    .await
    .assert(StatusCode::OK);
    // This browser stays in, the other session is gone, the new password works.
    br.get("/account/password").await.assert(StatusCode::OK);
    assert_eq!(other.get("/account/password").await.location(), "/login");
    app.browser()
        .login("op@example.test", new)
        .await
        .assert(StatusCode::SEE_OTHER);
}

async fn roles_are_enforced(b: Backend) {
    let app = support::App::new(b).await;
    let t = app.tenant("acme").await;
    let mut admin = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    admin
        .get("/operator/tenants")
        .await
        .assert(StatusCode::FORBIDDEN);
    admin
        .get("/operator/numbers")
        .await
        .assert(StatusCode::FORBIDDEN);
    admin
        .get(&format!("/t/{}/extensions", t.id))
        .await
        .assert(StatusCode::OK);
    let mut member = app
        .signed_in(Some(t.id), Role::Member, "mo@acme.test")
        .await;
    member
        .get(&format!("/t/{}/extensions", t.id))
        .await
        .assert(StatusCode::NOT_FOUND);
    member
        .get("/operator/tenants")
        .await
        .assert(StatusCode::FORBIDDEN);
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    op.get("/operator/tenants").await.assert(StatusCode::OK);
    op.get(&format!("/t/{}/extensions", t.id))
        .await
        .assert(StatusCode::OK);

    // A suspended business's admin is refused at sign-in.
    app.dir.set_tenant_suspended(t.id, true).await.unwrap();
    let r = app.browser().login("ann@acme.test", PASSWORD).await;
    r.assert(StatusCode::FORBIDDEN);
    assert!(r.body.contains("suspended"));
    admin
        .get(&format!("/t/{}/extensions", t.id))
        .await
        .assert(StatusCode::FORBIDDEN);
}

async fn first_run_setup_link(b: Backend) {
    let app = support::App::new(b).await;
    let link = web::ensure_setup_link(&*app.dir, "http://pbx.test:8080/")
        .await
        .unwrap()
        .expect("no operator yet: a link");
    let path = link
        .strip_prefix("http://pbx.test:8080")
        .unwrap()
        .to_owned();
    assert!(path.starts_with("/setup/"));
    let mut br = app.browser();
    br.get(&path).await.assert(StatusCode::OK);
    br.get("/setup/not-a-token")
        .await
        .assert(StatusCode::NOT_FOUND);

    // A weak password is refused and the typed values kept.
    let r = br
        .post(
            &path,
            &[
                ("email", "olga@example.test"),
                ("display_name", "Olga"),
                ("password", "short"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"value="olga@example.test""#) && r.body.contains("at least 10"));

    br.post(
        &path,
        &[
            ("email", "olga@example.test"),
            ("display_name", "Olga"),
            ("password", PASSWORD),
        ],
    )
    .await
    .assert(StatusCode::OK);
    // Used once, and no further link is made now that an operator exists.
    br.get(&path).await.assert(StatusCode::NOT_FOUND);
    assert_eq!(
        web::ensure_setup_link(&*app.dir, "http://x").await.unwrap(),
        None
    );
    br.login("olga@example.test", PASSWORD)
        .await
        .assert(StatusCode::SEE_OTHER);
    assert_eq!(br.get("/").await.location(), "/operator");
}

async fn sessions_end_after_their_maximum_age(b: Backend) {
    let app = support::App::new(b).await;
    let t = app.tenant("acme").await;
    let user = app.user(Some(t.id), Role::Admin, "ann@acme.test").await;
    // A session created long ago (still within its idle window): refused and removed.
    let token = web::crypto::random_token();
    let hash = web::crypto::token_hash(&token);
    let now = time::OffsetDateTime::now_utc();
    app.dir
        .create_web_session(&NewWebSession {
            id_hash: hash.clone(),
            user_id: user.id,
            csrf_token: web::crypto::random_token(),
            expires_at: now + time::Duration::hours(1),
            ip: None,
            user_agent: None,
        })
        .await
        .unwrap();
    let mut br = app.browser();
    br.cookie = Some(token.clone());
    br.get("/account/password").await.assert(StatusCode::OK);
    let config = web::WebConfig {
        session_max_age: std::time::Duration::ZERO,
        ..web::WebConfig::default()
    };
    let strict = web::router(web::AppState::with_config(app.dir.clone(), config));
    let req = axum::http::Request::get("/account/password")
        .header("cookie", format!("sb_session={token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(strict, req).await.unwrap();
    assert_eq!(res.headers()["location"], "/login");
    assert!(app.dir.get_web_session(&hash, now).await.is_err());
}

both_backends!(
    sessions_end_after_their_maximum_age,
    login_logout_and_cookie_flags,
    login_rate_limit,
    csrf_is_required_for_state_changes,
    password_change,
    roles_are_enforced,
    first_run_setup_link,
);
