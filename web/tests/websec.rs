//! The web app under attack: forwarded headers from untrusted peers, parallel and remote login
//! throttling, API tokens outliving their creator's rights or their expiry; and the trunk in
//! call history (page, CSV, API). In process on both backends.

mod support;

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use store::*;
use support::{App, Backend, PASSWORD, between};
use time::{Duration, OffsetDateTime};
use tower::ServiceExt;
use web::config::parse_cidr_list;

const PROXY: &str = "10.0.0.2";

fn router(app: &App, config: web::WebConfig) -> Router {
    web::router(web::AppState::with_config(app.dir.clone(), config))
}

fn behind_proxy(secure: web::CookieSecure) -> web::WebConfig {
    web::WebConfig {
        cookie_secure: secure,
        trusted_proxies: parse_cidr_list(&format!("{PROXY}, 2001:db8:ffff::/48")).unwrap(),
        ..web::WebConfig::default()
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// A request arriving on a socket from `peer`, with extra headers.
async fn send(
    r: &Router,
    peer: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "pbx.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::from(body)).unwrap();
    let peer: SocketAddr = SocketAddr::new(peer.parse().unwrap(), 40000);
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = r.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = to_bytes(res.into_body(), 16 << 20).await.unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn login(r: &Router, peer: &str, xff: Option<&str>, email: &str, password: &str) -> Reply {
    let mut headers = vec![(
        header::CONTENT_TYPE.as_str(),
        "application/x-www-form-urlencoded",
    )];
    if let Some(x) = xff {
        headers.push(("x-forwarded-for", x));
    }
    let body = format!(
        "email={}&password={}",
        support::enc(email),
        support::enc(password)
    );
    send(r, peer, Method::POST, "/login", &headers, body).await
}

async fn spoofed_x_forwarded_for_does_not_change_the_throttled_address(b: Backend) {
    let app = App::new(b).await;
    app.user(None, Role::Operator, "op@example.test").await;
    let r = router(&app, behind_proxy(web::CookieSecure::Auto));
    // An attacker connecting directly rotates X-Forwarded-For to dodge the limit.
    for i in 0..web::throttle::ACCOUNT_LIMIT {
        let xff = format!("198.51.100.{i}");
        let res = login(&r, "203.0.113.9", Some(&xff), "op@example.test", "guess").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{}", res.body);
    }
    let res = login(
        &r,
        "203.0.113.9",
        Some("198.51.100.99"),
        "op@example.test",
        PASSWORD,
    )
    .await;
    assert_eq!(
        res.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the header of an untrusted peer is ignored: {}",
        res.body
    );
    // Through the trusted proxy the header names the client: the throttled one is still
    // throttled, another client is not.
    let res = login(&r, PROXY, Some("203.0.113.9"), "op@example.test", PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    // A client prepending a fake hop does not escape either: only the proxy's entry counts.
    let res = login(
        &r,
        PROXY,
        Some("192.0.2.200, 203.0.113.9"),
        "op@example.test",
        PASSWORD,
    )
    .await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    let res = login(&r, PROXY, Some("198.51.100.7"), "op@example.test", PASSWORD).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
}

async fn failures_from_one_address_do_not_lock_the_admin_out_elsewhere(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    app.user(Some(t.id), Role::Admin, "ann@acme.test").await;
    let r = router(&app, web::WebConfig::default());
    for _ in 0..web::throttle::ACCOUNT_LIMIT + 3 {
        login(&r, "192.0.2.66", None, "ann@acme.test", "guess").await;
    }
    let res = login(&r, "192.0.2.66", None, "ann@acme.test", PASSWORD).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(res.body.contains("Try again in 15 minutes"), "{}", res.body);
    let res = login(&r, "198.51.100.20", None, "ann@acme.test", PASSWORD).await;
    assert_eq!(
        res.status,
        StatusCode::SEE_OTHER,
        "the admin still signs in from her own address: {}",
        res.body
    );
}

async fn parallel_wrong_passwords_cannot_exceed_the_limit(b: Backend) {
    let app = App::new(b).await;
    app.user(None, Role::Operator, "op@example.test").await;
    let r = router(&app, web::WebConfig::default());
    let tries = 4 * web::throttle::ACCOUNT_LIMIT;
    let tasks: Vec<_> = (0..tries)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move {
                login(&r, "203.0.113.50", None, "op@example.test", "guess")
                    .await
                    .status
            })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        checked,
        web::throttle::ACCOUNT_LIMIT,
        "only the limit's worth of {tries} parallel guesses reached the password check"
    );
}

async fn forwarded_proto_decides_secure_cookies_only_from_a_trusted_proxy(b: Backend) {
    let app = App::new(b).await;
    app.user(None, Role::Operator, "op@example.test").await;
    let cookie_of = |res: &Reply| {
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        res.headers[header::SET_COOKIE].to_str().unwrap().to_owned()
    };
    let form = format!(
        "email=op%40example.test&password={}",
        support::enc(PASSWORD)
    );
    let ct = (
        header::CONTENT_TYPE.as_str(),
        "application/x-www-form-urlencoded",
    );
    let xfp = ("x-forwarded-proto", "https");
    let auto = router(&app, behind_proxy(web::CookieSecure::Auto));
    let direct = send(
        &auto,
        "203.0.113.9",
        Method::POST,
        "/login",
        &[ct, xfp],
        form.clone(),
    )
    .await;
    assert!(!cookie_of(&direct).contains("Secure"));
    let proxied = send(
        &auto,
        PROXY,
        Method::POST,
        "/login",
        &[ct, xfp],
        form.clone(),
    )
    .await;
    assert!(cookie_of(&proxied).contains("; Secure"));
    let v6 = send(
        &auto,
        "2001:db8:ffff::1",
        Method::POST,
        "/login",
        &[ct, xfp],
        form.clone(),
    )
    .await;
    assert!(cookie_of(&v6).contains("; Secure"), "a trusted IPv6 block");

    let on = router(&app, behind_proxy(web::CookieSecure::Always));
    let res = send(
        &on,
        "203.0.113.9",
        Method::POST,
        "/login",
        &[ct],
        form.clone(),
    )
    .await;
    assert!(cookie_of(&res).contains("; Secure"));
    let off = router(&app, behind_proxy(web::CookieSecure::Never));
    let res = send(&off, PROXY, Method::POST, "/login", &[ct, xfp], form).await;
    assert!(!cookie_of(&res).contains("Secure"));
}

// ------------------------------------------------------------------ API tokens

/// Creates a token on the business's tokens page, as `admin`; returns it.
async fn token_from_page(app: &App, tenant: TenantId, email: &str, expires: &str) -> String {
    let mut br = app.browser();
    br.login(email, PASSWORD)
        .await
        .assert(StatusCode::SEE_OTHER);
    let r = br
        .post(
            &format!("/t/{tenant}/tokens"),
            &[("name", "CRM sync"), ("expires", expires)],
        )
        .await;
    r.assert(StatusCode::OK);
    between(&r.body, r#"id="api-token">"#, "<").to_owned()
}

async fn api_get(app: &App, token: &str, path: &str) -> support::Resp {
    let req = Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    app.send(req).await
}

async fn api_token_of_a_disabled_creator_is_refused(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let ann = app.user(Some(t.id), Role::Admin, "ann@acme.test").await;
    let tok = token_from_page(&app, t.id, "ann@acme.test", "").await;
    let calls = format!("/api/v1/tenants/{}/calls", t.id);
    api_get(&app, &tok, &calls).await.assert(StatusCode::OK);
    app.dir
        .set_user_disabled(Some(t.id), ann.id, true)
        .await
        .unwrap();
    let r = api_get(&app, &tok, &calls).await;
    r.assert(StatusCode::UNAUTHORIZED);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("created it is disabled"), "{msg}");
    assert!(
        r.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Enabled again, the token works again (it was never revoked).
    app.dir
        .set_user_disabled(Some(t.id), ann.id, false)
        .await
        .unwrap();
    api_get(&app, &tok, &calls).await.assert(StatusCode::OK);
}

async fn api_token_of_a_demoted_creator_is_refused(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let ann = app.user(Some(t.id), Role::Admin, "ann@acme.test").await;
    let tok = token_from_page(&app, t.id, "ann@acme.test", "").await;
    let calls = format!("/api/v1/tenants/{}/calls", t.id);
    api_get(&app, &tok, &calls).await.assert(StatusCode::OK);
    app.dir
        .set_user_role(t.id, ann.id, Role::Member)
        .await
        .unwrap();
    let r = api_get(&app, &tok, &calls).await;
    r.assert(StatusCode::UNAUTHORIZED);
    assert!(
        r.body.contains("no longer has the role"),
        "a clear reason: {}",
        r.body
    );
    // The tokens page says why it stopped working.
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    let page = op.get(&format!("/t/{}/tokens", t.id)).await;
    assert!(
        page.body.contains("creator no longer admin"),
        "{}",
        page.body
    );
}

async fn expired_api_token_is_refused_with_a_clear_message(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let ann = app.user(Some(t.id), Role::Admin, "ann@acme.test").await;
    let calls = format!("/api/v1/tenants/{}/calls", t.id);

    // The form refuses a past date and keeps what was typed.
    let mut br = app.browser();
    br.login("ann@acme.test", PASSWORD).await;
    let r = br
        .post(
            &format!("/t/{}/tokens", t.id),
            &[("name", "Old"), ("expires", "2000-01-01")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose a date after today."), "{}", r.body);
    assert!(r.body.contains(r#"value="Old""#) && r.body.contains(r#"value="2000-01-01""#));

    // A future expiry is shown on the page and the token works until then.
    let until = (OffsetDateTime::now_utc() + Duration::days(30))
        .date()
        .to_string();
    let tok = token_from_page(&app, t.id, "ann@acme.test", &until).await;
    api_get(&app, &tok, &calls).await.assert(StatusCode::OK);
    let me = api_get(&app, &tok, "/api/v1/token").await;
    me.assert(StatusCode::OK);
    let me = me.json();
    assert_eq!(me["name"], "CRM sync");
    assert_eq!(me["tenant_id"], t.id.to_string());
    // It stops at 00:00 London time on that date (23:00 UTC the day before in summer).
    let london_midnight = until
        .parse::<jiff::civil::Date>()
        .unwrap()
        .to_zoned(jiff::tz::db().get("Europe/London").unwrap())
        .unwrap()
        .timestamp()
        .as_second();
    let expires_at = OffsetDateTime::parse(
        me["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(expires_at.unix_timestamp(), london_midnight, "{me}");
    let page = br.get(&format!("/t/{}/tokens", t.id)).await;
    assert!(
        page.body.contains(&format!("<td>{until}</td>")),
        "{}",
        page.body
    );

    // Past its expiry: 401 saying so.
    let old = format!("sbt_{}", web::crypto::random_token());
    app.dir
        .create_api_token(&NewApiToken {
            tenant_id: Some(t.id),
            name: "old".into(),
            token_hash: web::crypto::token_hash(&old),
            prefix: old[..10].into(),
            created_by: Some(ann.id),
            expires_at: Some(OffsetDateTime::now_utc() - Duration::minutes(1)),
        })
        .await
        .unwrap();
    let r = api_get(&app, &old, &calls).await;
    r.assert(StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["code"], "token_refused");
    api_get(&app, &old, "/api/v1/token")
        .await
        .assert(StatusCode::UNAUTHORIZED);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.starts_with("This API token expired at ") && msg.contains("Create a new token"),
        "{msg}"
    );
    let page = br.get(&format!("/t/{}/tokens", t.id)).await;
    assert!(page.body.contains(">expired</span>"), "{}", page.body);
}

/// Issue #12: the name box showed the literal text "name" (the field macro's own parameter).
async fn token_name_field_starts_empty(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let mut br = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let r = br.get(&format!("/t/{}/tokens", t.id)).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body.contains(r#"name="name" type="text" value="""#),
        "{}",
        r.body
    );
    assert!(!r.body.contains(r#"value="name""#));
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    let r = op.get("/operator/tokens").await;
    assert!(
        r.body.contains(r#"name="name" type="text" value="""#),
        "{}",
        r.body
    );
}

// ------------------------------------------------------------------ the trunk in call history

async fn call_history_names_the_trunk(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let trunk = app
        .dir
        .create_trunk(&TrunkSettings {
            name: "Carrier One".into(),
            host: "sip.carrier.test".into(),
            port: 5060,
            transport: Transport::Udp,
            username: None,
            password: None,
            from_domain: None,
            priority: 1,
            emergency_priority: None,
            enabled: true,
            inbound_source: None,
            force_wide_source: false,
            inbound_auth: false,
            calls_per_second: TrunkSettings::DEFAULT_CALLS_PER_SECOND,
            register: false,
            registrar: None,
            register_expires: TrunkSettings::DEFAULT_REGISTER_EXPIRES,
        })
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    app.dir
        .insert_cdr(&NewCdr {
            id: CdrId::new(),
            tenant_id: t.id,
            call_id: "call-1".into(),
            direction: Direction::Inbound,
            caller: "+447400123456".into(),
            callee: "201".into(),
            dialled: "+442079460018".into(),
            trunk_id: Some(trunk.id),
            started_at: now - Duration::minutes(3),
            answered_at: Some(now - Duration::minutes(2)),
            ended_at: now,
            duration_secs: 120,
            disposition: Disposition::Answered,
            hangup_cause: "normal".into(),
            hangup_by: HangupBy::Caller,
            transferred_by: None,
            transferred_to: None,
        })
        .await
        .unwrap();
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let page = adm.get(&format!("/t/{}/calls", t.id)).await;
    page.assert(StatusCode::OK);
    assert!(page.body.contains("<th scope=\"col\">Trunk</th>"));
    assert!(page.body.contains("<td>Carrier One</td>"), "{}", page.body);

    let csv = adm.get(&format!("/t/{}/calls.csv", t.id)).await;
    let mut rows = csv::Reader::from_reader(csv.body.as_bytes());
    let col = rows
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "trunk")
        .expect("a trunk column");
    let row = rows.records().next().unwrap().unwrap();
    assert_eq!(&row[col], "Carrier One");
    let caller = rows
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "caller")
        .unwrap();
    assert_eq!(
        &row[caller], "'+447400123456",
        "a + cell is neutralised, still readable"
    );

    let tok = token_from_page(&app, t.id, "ann@acme.test", "").await;
    let r = api_get(&app, &tok, &format!("/api/v1/tenants/{}/calls", t.id)).await;
    r.assert(StatusCode::OK);
    assert_eq!(r.json()["items"][0]["trunk"], "Carrier One");

    let doc = app
        .send(
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .json();
    let trunk_prop = &doc["components"]["schemas"]["CallOut"]["properties"]["trunk"];
    assert!(
        trunk_prop.is_object(),
        "CallOut.trunk is documented: {trunk_prop}"
    );
}

both_backends!(
    spoofed_x_forwarded_for_does_not_change_the_throttled_address,
    failures_from_one_address_do_not_lock_the_admin_out_elsewhere,
    parallel_wrong_passwords_cannot_exceed_the_limit,
    forwarded_proto_decides_secure_cookies_only_from_a_trusted_proxy,
    api_token_of_a_disabled_creator_is_refused,
    api_token_of_a_demoted_creator_is_refused,
    expired_api_token_is_refused_with_a_clear_message,
    token_name_field_starts_empty,
    call_history_names_the_trunk,
);
