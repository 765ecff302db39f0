//! Registrations and call history pages, and their isolation between businesses.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend};
use time::{Duration, OffsetDateTime};

async fn setup(app: &App, slug: &str, agent: &str, caller: &str) -> Tenant {
    let t = app.tenant(slug).await;
    let (ext, _) = app
        .dir
        .create_extension(
            t.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Desk"),
            },
            Some(&NewCredential {
                username: "201".parse().unwrap(),
                ha1_md5: web::crypto::sip_ha1("201", "x", "y").0,
                ha1_sha256: web::crypto::sip_ha1("201", "x", "y").1,
                mac_address: None,
                model: None,
            }),
        )
        .await
        .unwrap();
    let cred = app
        .dir
        .list_credentials(t.id, ext.id)
        .await
        .unwrap()
        .remove(0);
    let now = OffsetDateTime::now_utc();
    app.dir
        .upsert_registration(
            t.id,
            &Binding {
                extension_id: ext.id,
                credential_id: cred.id,
                aor: format!("sip:201@{}", t.sip_domain),
                contact_uri: "sip:201@192.0.2.7:5060".into(),
                call_id: "c1".into(),
                cseq: 1,
                q: None,
                expires_at: now + Duration::minutes(5),
                instance_id: None,
                reg_id: None,
                source_addr: "192.0.2.7:5060".parse().unwrap(),
                transport: Transport::Udp,
                local_addr: None,
                user_agent: Some(agent.into()),
                path: None,
            },
        )
        .await
        .unwrap();
    app.dir
        .insert_cdr(&NewCdr {
            id: CdrId::new(),
            tenant_id: t.id,
            call_id: format!("call-{slug}"),
            direction: Direction::Inbound,
            caller: caller.into(),
            callee: "201".into(),
            dialled: "+442079460018".into(),
            trunk_id: None,
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
    t
}

async fn registrations_and_calls(b: Backend) {
    let app = App::new(b).await;
    let a = setup(&app, "alpha", "AlphaPhone/1.0", "=cmd|' /C calc'!A0").await;
    let bt = setup(&app, "bravo", "BravoPhone/2.0", "+447400123456").await;
    let mut adm = app
        .signed_in(Some(bt.id), Role::Admin, "bob@bravo.test")
        .await;
    let base = format!("/t/{}", bt.id);

    let r = adm.get(&format!("{base}/registrations")).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body.contains("BravoPhone/2.0")
            && r.body.contains("192.0.2.7:5060")
            && r.body.contains("udp")
    );
    assert!(!r.body.contains("AlphaPhone"));

    let r = adm.get(&format!("{base}/calls")).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body.contains("+447400123456") && r.body.contains("2:00") && r.body.contains("1 call")
    );
    assert!(!r.body.contains("calc"));
    let r = adm.get(&format!("{base}/calls?party=7400")).await;
    assert!(r.body.contains("1 call"));
    let r = adm.get(&format!("{base}/calls?party=9999")).await;
    assert!(r.body.contains("0 calls"));
    let r = adm
        .get(&format!("{base}/calls?from=2000-01-01&to=2000-01-02"))
        .await;
    assert!(r.body.contains("0 calls"));
    let r = adm.get(&format!("{base}/calls?from=someday")).await;
    assert!(r.body.contains("is not a date"));

    let r = adm.get(&format!("{base}/calls.csv")).await;
    r.assert(StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.body);
    assert!(lines[0].starts_with("started_at,") && lines[1].contains("+447400123456"));

    // A's pages, through B's session: not found, and nothing of A.
    for url in ["registrations", "calls", "calls.csv"] {
        let r = adm.get(&format!("/t/{}/{url}", a.id)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{url}");
        assert!(!r.body.contains("Alpha") && !r.body.contains("calc"));
    }

    // The CSV of a business whose caller tried a formula neutralises it.
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    let r = op.get(&format!("/t/{}/calls.csv", a.id)).await;
    assert!(r.body.contains("'=cmd"), "{}", r.body);

    // The operator sees every business's registrations; a business admin does not get the page.
    let r = op.get("/operator/registrations").await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("AlphaPhone/1.0") && r.body.contains("BravoPhone/2.0"));
    assert!(r.body.contains("alpha Ltd") && r.body.contains("sip:201@bravo.pbx.test"));
    adm.get("/operator/registrations")
        .await
        .assert(StatusCode::FORBIDDEN);
}

/// A reversed date range says so beside the dates, naming both, instead of "0 calls".
async fn reversed_date_range(b: Backend) {
    let app = App::new(b).await;
    let t = setup(&app, "bravo", "BravoPhone/2.0", "+447400123456").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "bob@bravo.test")
        .await;
    let base = format!("/t/{}", t.id);
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let long = time::macros::format_description!("[day padding:none] [month repr:long] [year]");
    let today = OffsetDateTime::now_utc().date();
    let yesterday = today.previous_day().unwrap();
    let (t0, y0) = (today.format(&day).unwrap(), yesterday.format(&day).unwrap());

    let r = adm.get(&format!("{base}/calls?from={y0}&to={t0}")).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("1 call"), "{}", r.body);

    let r = adm.get(&format!("{base}/calls?from={t0}&to={y0}")).await;
    let msg = format!(
        "The from date ({}) is after the to date ({}), so no call can match.",
        today.format(&long).unwrap(),
        yesterday.format(&long).unwrap()
    );
    assert!(
        r.body
            .contains(&format!(r#"<p class="field-error" id="e-to">{msg}"#))
            && r.body.contains(&format!(
                r#"name="to" type="date" value="{y0}" aria-invalid="true" aria-describedby="e-to""#
            ))
            && r.body.contains(&format!(r#"value="{t0}""#)),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("0 calls") && !r.body.contains("No calls."),
        "no silent empty list: {}",
        r.body
    );

    // The API refuses a reversed range too, naming both times.
    let tok = format!("sbt_{}", web::crypto::random_token());
    app.dir
        .create_api_token(&NewApiToken {
            tenant_id: Some(t.id),
            name: "test".into(),
            token_hash: web::crypto::token_hash(&tok),
            prefix: tok[..10].into(),
            created_by: None,
            expires_at: None,
        })
        .await
        .unwrap();
    let req = axum::http::Request::get(format!(
        "/api/v1/tenants/{}/calls?from=2026-11-24T00:00:00Z&to=2026-11-01T00:00:00Z",
        t.id
    ))
    .header("authorization", format!("Bearer {tok}"))
    .body(axum::body::Body::empty())
    .unwrap();
    let r = app.send(req).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    let e = &r.json()["error"];
    assert_eq!(e["field"], "to");
    assert_eq!(
        e["message"],
        "from (2026-11-24T00:00:00Z) is after to (2026-11-01T00:00:00Z), so no call can match"
    );
}

both_backends!(registrations_and_calls, reversed_date_range);
