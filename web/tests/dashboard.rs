//! The business dashboard (the admin's landing page) and the missed-calls filter it links to.

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use store::*;
use support::{App, Backend, active_call, between};
use time::{Duration, OffsetDateTime};

async fn ext(app: &App, t: TenantId, number: &str, name: &str) -> (Extension, SipCredential) {
    let (e, c) = app
        .dir
        .create_extension(
            t,
            &NewExtension {
                number: number.parse().unwrap(),
                settings: ExtensionSettings::new(name),
            },
            Some(&NewCredential {
                username: number.parse().unwrap(),
                ha1_md5: web::crypto::sip_ha1(number, "x", "y").0,
                ha1_sha256: web::crypto::sip_ha1(number, "x", "y").1,
                mac_address: None,
                model: None,
            }),
        )
        .await
        .unwrap();
    (e, c.unwrap())
}

async fn register(app: &App, t: TenantId, e: &Extension, c: &SipCredential, expires_in: i64) {
    app.dir
        .upsert_registration(
            t,
            &Binding {
                extension_id: e.id,
                credential_id: c.id,
                aor: format!("sip:{}@acme.pbx.test", e.number),
                contact_uri: format!("sip:{}@192.0.2.7:5060", e.number),
                call_id: format!("{}-reg", e.number),
                cseq: 1,
                q: None,
                expires_at: OffsetDateTime::now_utc() + Duration::seconds(expires_in),
                instance_id: None,
                reg_id: None,
                source_addr: "192.0.2.7:5060".parse::<SocketAddr>().unwrap(),
                transport: Transport::Udp,
                local_addr: None,
                user_agent: Some("Desk phone".into()),
                path: None,
            },
        )
        .await
        .unwrap();
}

fn cdr(
    t: TenantId,
    direction: Direction,
    caller: &str,
    callee: &str,
    started: OffsetDateTime,
    answered: bool,
) -> NewCdr {
    NewCdr {
        id: CdrId::new(),
        tenant_id: t,
        call_id: format!("{}@pbx", CdrId::new()),
        direction,
        caller: caller.into(),
        callee: callee.into(),
        dialled: callee.into(),
        trunk_id: None,
        started_at: started,
        answered_at: answered.then(|| started + Duration::seconds(2)),
        ended_at: started + Duration::seconds(30),
        duration_secs: if answered { 28 } else { 0 },
        disposition: if answered {
            Disposition::Answered
        } else {
            Disposition::NoAnswer
        },
        hangup_cause: "normal".into(),
        hangup_by: HangupBy::Caller,
        transferred_by: None,
        transferred_to: None,
    }
}

/// The number shown in the dashboard's figure with this id.
fn figure(html: &str, id: &str) -> u64 {
    let v = between(html, &format!("id=\"{id}\">"), "</a>");
    v.trim().parse().unwrap_or_else(|_| panic!("{id}: {v:?}"))
}

async fn business_dashboard(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let other = app.tenant("bravo").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);

    // The admin lands on the dashboard, the first link of the navigation.
    assert_eq!(adm.get("/").await.location(), base);
    let r = adm.get(&base).await;
    r.assert(StatusCode::OK);
    let nav = between(&r.body, "<nav aria-label=\"Main\">", "</nav>");
    let first = between(nav, "<li>", "</li>");
    assert!(
        first.contains(&format!("href=\"{base}\"")) && first.contains("Dashboard"),
        "{nav}"
    );
    assert!(first.contains("aria-current=\"page\""), "{first}");
    assert!(r.body.contains("No calls today."), "empty business");
    for id in [
        "phones-online",
        "phones-offline",
        "calls-now",
        "calls-today",
        "missed-today",
    ] {
        assert_eq!(figure(&r.body, id), 0, "{id}");
    }

    let (e201, c201) = ext(&app, t.id, "201", "Reception").await;
    let (e202, c202) = ext(&app, t.id, "202", "Sales").await;
    let (e203, _) = ext(&app, t.id, "203", "Warehouse").await;
    let (b201, bc201) = ext(&app, other.id, "201", "Bravo desk").await;
    register(&app, t.id, &e201, &c201, 300).await;
    // Registered once, expired since: offline.
    register(&app, t.id, &e202, &c202, -60).await;
    register(&app, other.id, &b201, &bc201, 300).await;

    app.live.set(vec![
        active_call(1, t.id, "201", "202", Some(5)),
        active_call(2, t.id, "+442079460018", "203", None),
        active_call(3, other.id, "201", "202", Some(5)),
    ]);

    let start = OffsetDateTime::now_utc()
        .date()
        .with_time(time::Time::MIDNIGHT)
        .assume_utc();
    let at = |m: i64| start + Duration::minutes(m);
    let mut calls = vec![
        cdr(t.id, Direction::Internal, "201", "202", at(1), true),
        cdr(t.id, Direction::Internal, "202", "201", at(2), true),
        cdr(
            t.id,
            Direction::Inbound,
            "+442079460018",
            "201",
            at(3),
            false,
        ),
        cdr(t.id, Direction::Internal, "203", "201", at(4), false),
        // Not answered, but nobody here missed it.
        cdr(
            t.id,
            Direction::Outbound,
            "203",
            "+442079460019",
            at(5),
            false,
        ),
        // Yesterday.
        cdr(
            t.id,
            Direction::Inbound,
            "+442079460020",
            "203",
            at(-30),
            false,
        ),
    ];
    for m in 0..4 {
        calls.push(cdr(
            other.id,
            Direction::Internal,
            "202",
            "201",
            at(m),
            false,
        ));
    }
    app.dir.insert_cdrs(&calls).await.unwrap();

    let r = adm.get(&base).await;
    r.assert(StatusCode::OK);
    let h = &r.body;
    assert_eq!(figure(h, "phones-online"), 1);
    assert_eq!(figure(h, "phones-offline"), 2);
    assert_eq!(figure(h, "calls-now"), 2);
    assert_eq!(figure(h, "calls-today"), 5);
    assert_eq!(figure(h, "missed-today"), 2);
    assert!(h.contains(&format!("href=\"{base}/active-calls\" id=\"calls-now\"")));

    // The charts: server-drawn SVG, named by <title> and <desc>, the numbers in a table.
    let hourly = between(h, "<svg", "</figure>");
    assert!(
        hourly.contains("role=\"img\" aria-labelledby=\"chart-hourly-title chart-hourly-desc\"")
    );
    assert!(hourly.contains("<title id=\"chart-hourly-title\">Calls per hour today (UTC)</title>"));
    assert!(
        hourly.contains(
            "<desc id=\"chart-hourly-desc\">5 calls in all; the most, 5, at 00:00.</desc>"
        ),
        "{hourly}"
    );
    assert_eq!(hourly.matches("<rect ").count(), 24);
    assert!(hourly.contains("<title>00:00: 5 calls</title>"), "{hourly}");
    let numbers = between(hourly, "<table class=\"visually-hidden\">", "</table>");
    assert!(
        numbers.contains("<tr><th scope=\"row\">00:00</th><td>5</td></tr>"),
        "{numbers}"
    );
    assert!(numbers.contains("<tr><th scope=\"row\">01:00</th><td>0</td></tr>"));
    let weekly = between(h, "id=\"chart-weekly-title\"", "</figure>");
    assert_eq!(weekly.matches("<rect ").count(), 14);
    let label = |d: OffsetDateTime| {
        d.format(time::macros::format_description!(
            "[weekday repr:short] [day padding:none]"
        ))
        .unwrap()
    };
    let numbers = between(weekly, "<table class=\"visually-hidden\">", "</table>");
    // Today: two answered, two missed (the unanswered outbound call is neither); yesterday
    // one missed; the other business's calls nowhere.
    for (day, answered, missed) in [(start, 2, 2), (start - Duration::days(1), 0, 1)] {
        let row = format!(
            "<tr><th scope=\"row\">{}</th><td>{answered}</td><td>{missed}</td></tr>",
            label(day)
        );
        assert!(numbers.contains(&row), "{row} in {numbers}");
    }
    assert_eq!(numbers.matches("<tr><th scope=\"row\">").count(), 7);
    // Drawn here: nothing fetched from elsewhere.
    assert!(!h.contains("cdn") && !h.contains("src=\"http"));

    // Busiest: 201 took part in 4 calls, 203 in 2, 202 in 2 (ties by number).
    let busiest = between(h, "<table id=\"busiest\">", "</table>");
    let rows: Vec<&str> = busiest.split("<tr><td>").skip(1).collect();
    assert_eq!(rows.len(), 3, "{busiest}");
    assert!(
        rows[0].contains(&format!("{base}/extensions/{}", e201.id)),
        "{busiest}"
    );
    assert!(rows[0].contains("Reception") && rows[0].contains("<td>4</td>"));
    assert!(
        rows[1].contains("202") && rows[1].contains("<td>2</td>"),
        "{busiest}"
    );
    assert!(rows[2].contains(&e203.id.to_string()) && rows[2].contains("<td>2</td>"));
    assert!(!h.contains("Bravo desk"));

    // "Missed calls today" opens the call history filtered to them.
    let day = start.date().to_string();
    let missed_href = format!("{base}/calls?from={day}&#38;to={day}&#38;missed=1");
    assert!(
        h.contains(&format!("href=\"{missed_href}\" id=\"missed-today\"")),
        "{h}"
    );
    let r = adm.get(&missed_href.replace("&#38;", "&")).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("2 calls"), "{}", r.body);
    assert!(r.body.contains("+442079460018"));
    assert!(!r.body.contains("+442079460019") && !r.body.contains("+442079460020"));
    let form = between(&r.body, "role=\"search\"", "</form>");
    assert!(
        form.contains("name=\"missed\" value=\"1\" checked"),
        "{form}"
    );
    // The filter goes with the CSV export and the pages.
    assert!(r.body.contains("calls.csv?from="), "{}", r.body);
    let csv_href = between(&r.body, "href=\"", "\">Download as CSV").replace("&#38;", "&");
    let csv_href = csv_href.rsplit("href=\"").next().unwrap().to_owned();
    assert!(csv_href.ends_with("&missed=1"), "{csv_href}");
    let r = adm.get(&csv_href).await;
    r.assert(StatusCode::OK);
    assert_eq!(
        r.body.lines().count(),
        3,
        "header and the two missed calls: {}",
        r.body
    );
    // Unticked, every call of the day is back.
    let r = adm.get(&format!("{base}/calls?from={day}&to={day}")).await;
    assert!(r.body.contains("5 calls"), "{}", r.body);
    assert!(!r.body.contains("name=\"missed\" value=\"1\" checked"));

    // Names beside numbers for the business's own extensions, and a direction icon whose
    // word is beside it.
    let table = between(&r.body, "<tbody>", "</tbody>");
    let row = |needle: &str| {
        table
            .split("<tr>")
            .find(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {table}"))
    };
    let inbound = row("+442079460018");
    assert!(
        inbound.contains("<td>+442079460018</td>"),
        "an outside number has no name: {inbound}"
    );
    assert!(
        inbound.contains("<td>Reception <span class=\"hint\">201</span></td>"),
        "{inbound}"
    );
    assert!(inbound.contains("<span class=\"dir\" aria-hidden=\"true\">↙</span> inbound"));
    let outbound = row("+442079460019");
    assert!(outbound.contains("<td>Warehouse <span class=\"hint\">203</span></td>"));
    assert!(outbound.contains("↗</span> outbound"), "{outbound}");
    assert!(table.contains("↔</span> internal"));
    assert!(table.contains("<td>Sales <span class=\"hint\">202</span></td>"));
    // Bravo's 201 is another business's: its name never shows here.
    assert!(!table.contains("Bravo desk"));

    // Another business's admin does not see this dashboard.
    let mut bob = app
        .signed_in(Some(other.id), Role::Admin, "bob@bravo.test")
        .await;
    let r = bob.get(&base).await;
    assert_ne!(r.status, StatusCode::OK);
    let r = bob.get(&format!("/t/{}", other.id)).await;
    assert_eq!(figure(&r.body, "calls-today"), 4);
    assert_eq!(figure(&r.body, "missed-today"), 4);
    assert_eq!(figure(&r.body, "calls-now"), 1);
    assert_eq!(figure(&r.body, "phones-online"), 1);

    // An operator reaches it through the business, with the business's links.
    let mut op = app.signed_in(None, Role::Operator, "op@pbx.test").await;
    let r = op.get(&base).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body
            .contains(&format!("href=\"{base}\" aria-current=\"page\">Dashboard"))
    );
    assert_eq!(figure(&r.body, "calls-today"), 5);

    // The API's call list takes the same filter.
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
    let get = |q: &str| {
        Request::builder()
            .uri(format!("/api/v1/tenants/{}/calls{q}", t.id))
            .header("authorization", format!("Bearer {tok}"))
            .body(Body::empty())
            .unwrap()
    };
    let r = app.send(get("?missed=true")).await;
    r.assert(StatusCode::OK);
    assert_eq!(r.json()["total"], 3, "two today, one yesterday");
    let r = app.send(get("")).await;
    assert_eq!(r.json()["total"], 6);
}

async fn operator_dashboard(b: Backend) {
    let app = App::new(b).await;
    let mut op = app.signed_in(None, Role::Operator, "olga@pbx.test").await;
    assert_eq!(op.get("/").await.location(), "/operator");
    let r = op.get("/operator").await;
    r.assert(StatusCode::OK);
    let nav = between(&r.body, "<nav aria-label=\"Main\">", "</nav>");
    let first = between(nav, "<li>", "</li>");
    assert!(
        first.contains("href=\"/operator\" aria-current=\"page\">Dashboard"),
        "{nav}"
    );
    assert!(r.body.contains("No trunks yet."));
    for id in [
        "businesses",
        "numbers-in-use",
        "numbers-free",
        "phones-online",
        "calls-now",
    ] {
        assert_eq!(figure(&r.body, id), 0, "{id}");
    }

    let acme = app.tenant("acme").await;
    let bravo = app.tenant("bravo").await;
    let (e, c) = ext(&app, acme.id, "201", "Reception").await;
    let (e2, c2) = ext(&app, acme.id, "202", "Sales").await;
    let (b1, bc1) = ext(&app, bravo.id, "201", "Desk").await;
    register(&app, acme.id, &e, &c, 300).await;
    register(&app, acme.id, &e2, &c2, -5).await;
    register(&app, bravo.id, &b1, &bc1, 300).await;
    for (n, owner) in [
        ("+442079460001", Some(acme.id)),
        ("+442079460002", Some(bravo.id)),
        ("+442079460003", None),
        ("+442079460004", None),
        ("+442079460005", None),
    ] {
        app.dir
            .add_number(&n.parse().unwrap(), owner)
            .await
            .unwrap();
    }
    app.live.set(vec![
        active_call(1, acme.id, "201", "202", Some(5)),
        active_call(2, bravo.id, "201", "+442079460019", None),
    ]);
    let now = OffsetDateTime::now_utc();
    let start = now.date().with_time(time::Time::MIDNIGHT).assume_utc();
    app.dir
        .insert_cdrs(&[
            cdr(acme.id, Direction::Internal, "201", "202", start, true),
            cdr(
                bravo.id,
                Direction::Internal,
                "201",
                "202",
                start + Duration::minutes(1),
                false,
            ),
            cdr(
                bravo.id,
                Direction::Internal,
                "201",
                "202",
                start - Duration::minutes(1),
                false,
            ),
        ])
        .await
        .unwrap();
    let mut up = TrunkSettings::new("carrier-a", "sip.a.test", 5060);
    up.priority = 1;
    let up = app.dir.create_trunk(&up).await.unwrap();
    let down = app
        .dir
        .create_trunk(&TrunkSettings::new("carrier-b", "sip.b.test", 5060))
        .await
        .unwrap();
    let mut off = TrunkSettings::new("carrier-c", "sip.c.test", 5060);
    off.enabled = false;
    app.dir.create_trunk(&off).await.unwrap();
    app.trunks.set(
        up.id,
        web::TrunkState {
            health: "up".into(),
            last_status: Some(200),
            latency_ms: Some(14),
            checked_at: Some(now),
            registration: Some(web::TrunkRegistration {
                state: "registered".into(),
                expires_at: Some(now + Duration::minutes(50)),
                status: None,
                reason: None,
            }),
        },
    );
    app.trunks.set(
        down.id,
        web::TrunkState {
            health: "down".into(),
            last_status: None,
            latency_ms: None,
            checked_at: Some(now),
            registration: Some(web::TrunkRegistration {
                state: "failed".into(),
                expires_at: None,
                status: Some(403),
                reason: Some("403 Forbidden".into()),
            }),
        },
    );

    let r = op.get("/operator").await;
    r.assert(StatusCode::OK);
    let h = &r.body;
    assert_eq!(figure(h, "businesses"), 2);
    assert_eq!(figure(h, "numbers-in-use"), 2);
    assert_eq!(figure(h, "numbers-free"), 3);
    assert_eq!(figure(h, "phones-online"), 2);
    assert_eq!(figure(h, "calls-now"), 2);
    let today = between(h, "id=\"calls-today\">", "</span>");
    assert_eq!(today, "2", "today's calls of every business");
    let trunks = between(h, "<table id=\"trunk-status\">", "</table>");
    let rows: Vec<&str> = trunks.split("<tr><td>").skip(1).collect();
    assert_eq!(rows.len(), 3, "{trunks}");
    assert!(
        rows[0].contains("carrier-a") && rows[0].contains("badge ok\">up<"),
        "{trunks}"
    );
    assert!(
        rows[0].contains("OPTIONS answered 200 in 14 ms") && rows[0].contains("registered until")
    );
    assert!(rows[0].contains(&format!("href=\"/operator/trunks/{}\"", up.id)));
    let b = rows.iter().find(|r| r.contains("carrier-b")).unwrap();
    assert!(
        b.contains("badge bad\">down<") && b.contains("registration failed: 403 Forbidden"),
        "{b}"
    );
    let c = rows.iter().find(|r| r.contains("carrier-c")).unwrap();
    assert!(c.contains(">disabled<"), "{c}");

    // A business admin has no way in.
    let mut adm = app
        .signed_in(Some(acme.id), Role::Admin, "ann@acme.test")
        .await;
    assert_ne!(adm.get("/operator").await.status, StatusCode::OK);
}

both_backends!(business_dashboard, operator_dashboard);
