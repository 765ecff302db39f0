//! The operator's pages end to end in process: businesses, the number inventory, trunks.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use store::changes::{Action, ChangeWatch, Delivery, WatchOptions};
use store::*;
use support::{App, Backend, between};

/// The next change another process reads from the change log: the trunk pages announce
/// every trunk they create, edit or delete, so running servers reload their trunks.
async fn next_trunk_change(log: &mut ChangeWatch) -> (TrunkId, Action) {
    match tokio::time::timeout(Duration::from_secs(5), log.recv()).await {
        Ok(Some(Delivery::Change(Change::Trunk { trunk, action }))) => (trunk, action),
        other => panic!("expected a trunk change in the change log, got {other:?}"),
    }
}

async fn operator_flow(b: Backend) {
    let app = App::new(b).await;
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;

    // A bad slug: 422, the message beside the field, every typed value kept.
    let r = op
        .post(
            "/operator/tenants",
            &[
                ("name", "Acme Plumbing"),
                ("slug", "Acme!"),
                ("sip_domain", "acme.pbx.test"),
                ("max_concurrent_calls", "8"),
                ("max_outside_calls", "4"),
                ("allow_international", "on"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-slug""#), "{}", r.body);
    assert!(r.body.contains(r#"value="Acme Plumbing""#) && r.body.contains(r#"value="8""#));
    assert!(r.body.contains(r#"name="allow_international" checked"#));

    let fields = [
        ("name", "Acme Plumbing"),
        ("slug", "acme"),
        ("sip_domain", "acme.pbx.test"),
        ("max_concurrent_calls", "8"),
        ("max_outside_calls", "4"),
        ("allow_international", "on"),
    ];
    let r = op.post("/operator/tenants", &fields).await;
    r.assert(StatusCode::SEE_OTHER);
    let page = r.location().to_owned();
    let t = app
        .dir
        .get_tenant_by_domain(&"acme.pbx.test".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(page, format!("/operator/tenants/{}", t.id));
    assert_eq!(
        (
            t.settings.max_concurrent_calls,
            t.settings.allow_international,
            t.settings.allow_premium
        ),
        (8, true, false)
    );
    // The same domain again: a conflict shown beside the field.
    let r = op
        .post(
            "/operator/tenants",
            &[
                ("name", "B"),
                ("slug", "acme2"),
                ("sip_domain", "acme.pbx.test"),
                ("max_concurrent_calls", "1"),
                ("max_outside_calls", "1"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains(r#"id="e-sip_domain""#) && r.body.contains("already used"),
        "{}",
        r.body
    );

    // First admin: a one-time password that works.
    let r = op
        .post(
            &format!("{page}/admins"),
            &[("email", "ann@acme.test"), ("display_name", "Ann")],
        )
        .await;
    r.assert(StatusCode::OK);
    let pw = between(&r.body, r#"id="pw">"#, "<").to_owned();
    assert!(pw.len() >= 20);
    app.browser()
        .login("ann@acme.test", &pw)
        .await
        .assert(StatusCode::SEE_OTHER);

    // A range of 100 numbers in one action; an overlapping range adds nothing.
    let r = op
        .post(
            "/operator/numbers",
            &[("first", "0113 496 0000"), ("last", "0113 496 0099")],
        )
        .await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("Added 100 numbers."));
    let r = op
        .post(
            "/operator/numbers",
            &[("first", "0113 496 0090"), ("last", "0113 496 0109")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-first""#), "{}", r.body);
    assert!(r.body.contains(r#"value="0113 496 0109""#));
    let all = app
        .dir
        .list_numbers(NumberScope::All, Page::first(1000))
        .await
        .unwrap();
    assert_eq!(all.total, 100);
    let r = op
        .post(
            "/operator/numbers",
            &[("first", "0113 496 0000"), ("last", "0113 497 0000")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("at most 10000"));
    let r = op
        .post("/operator/numbers", &[("first", "+44 (0)20 7946 0018")])
        .await;
    assert!(r.body.contains("Added 020 7946 0018."), "{}", r.body);
    let r = op.get("/operator/numbers?find=0113+496+0042").await;
    assert!(
        r.body.contains("0113 496 0042") && r.body.contains("1 number<"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("0113 496 0041"));
    let r = op.get("/operator/numbers?find=020+7946+0999").await;
    assert!(r.body.contains("020 7946 0999 is not on the platform."));
    let r = op.get("/operator/numbers?find=zzz").await;
    assert!(r.body.contains("is not a valid phone number"));
    let r = op.get("/operator/numbers").await;
    assert!(r.body.contains("geographic") && r.body.contains("0113 496 0000"));

    // A range can go straight to the business.
    let r = op
        .post(
            "/operator/numbers",
            &[
                ("first", "020 7946 0100"),
                ("last", "020 7946 0104"),
                ("tenant", &t.id.to_string()),
            ],
        )
        .await;
    assert!(r.body.contains("Added 5 numbers."), "{}", r.body);
    let given = app
        .dir
        .list_numbers(NumberScope::Tenant(t.id), Page::first(10))
        .await
        .unwrap();
    assert_eq!(given.total, 5);
    let r = op
        .post(
            "/operator/numbers",
            &[("first", "020 7946 0200"), ("tenant", "nonsense")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose a business from the list."));

    // Assign one to the business, picked from the list.
    let n = &all.items[0];
    op.post(
        "/operator/numbers/assign",
        &[("number", &n.id.to_string()), ("tenant", &t.id.to_string())],
    )
    .await
    .assert(StatusCode::SEE_OTHER);
    let mine = app
        .dir
        .list_numbers(NumberScope::Tenant(t.id), Page::first(10))
        .await
        .unwrap();
    assert_eq!(mine.items.len(), 6);
    assert!(mine.items.iter().any(|m| m.id == n.id));
    // Only a business from the list: a typed SIP domain changes nothing.
    let n2 = &all.items[1];
    op.post(
        "/operator/numbers/assign",
        &[
            ("number", &n2.id.to_string()),
            ("tenant", &t.id.to_string()),
        ],
    )
    .await
    .assert(StatusCode::SEE_OTHER);
    let r = op
        .post(
            "/operator/numbers/assign",
            &[
                ("number", &all.items[2].id.to_string()),
                ("tenant", "acme.pbx.test"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose a business from the list."));
    let count = app
        .dir
        .list_numbers(NumberScope::Tenant(t.id), Page::first(10))
        .await
        .unwrap()
        .total;
    assert_eq!(count, 7);
    assert!(op.get("/operator/numbers").await.body.contains(&format!(
        r#"<option value="{}">Acme Plumbing · acme.pbx.test</option>"#,
        t.id
    )));

    // Inventory numbers can be deleted (after a confirm page); a business's number cannot.
    let spare = &all.items[99];
    let del = format!("/operator/numbers/{}/delete", spare.id);
    op.get(&del).await.assert(StatusCode::OK);
    op.post(&del, &[("confirm", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert!(app.dir.get_number_by_e164(&spare.e164).await.is_err());
    let held = format!("/operator/numbers/{}/delete", n.id);
    op.get(&held).await.assert(StatusCode::NOT_FOUND);
    op.post(&held, &[("confirm", "yes")])
        .await
        .assert(StatusCode::NOT_FOUND);
    assert!(app.dir.get_number_by_e164(&n.e164).await.is_ok());

    // Suspend goes through a confirm page.
    let r = op.get(&format!("{page}/suspend")).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("Suspend Acme Plumbing?"));
    op.post(&format!("{page}/suspend"), &[])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert!(
        !app.dir.get_tenant(t.id).await.unwrap().suspended,
        "no confirm, no suspend"
    );
    op.post(&format!("{page}/suspend"), &[("confirm", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert!(app.dir.get_tenant(t.id).await.unwrap().suspended);
}

async fn operator_trunks(b: Backend) {
    let app = App::new(b).await;
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    let mut options = WatchOptions::new(ChangeBus::new().origin());
    options.poll = Duration::from_millis(20);
    let mut log = app.dir.watch_changes(options).await.unwrap();
    let mut fields = vec![
        ("name", "Carrier A"),
        ("host", "sip.carrier.test"),
        ("port", "70000"),
        ("transport", "tls"),
        ("username", "acct1"),
        ("password", "trunk-secret"),
        ("priority", "5"),
        ("emergency_priority", "1"),
        ("enabled", "on"),
    ];
    let r = op.post("/operator/trunks", &fields).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-port""#) && r.body.contains(r#"value="sip.carrier.test""#));
    assert!(
        !r.body.contains("trunk-secret"),
        "passwords are never shown back"
    );
    fields[2] = ("port", "5061");
    let r = op.post("/operator/trunks", &fields).await;
    r.assert(StatusCode::SEE_OTHER);
    let url = r.location().to_owned();
    let t = app.dir.list_trunks().await.unwrap().remove(0);
    assert_eq!(next_trunk_change(&mut log).await, (t.id, Action::Created));
    assert_eq!(
        (
            t.settings.port,
            t.settings.transport,
            t.settings.emergency_priority
        ),
        (5061, Transport::Tls, Some(1))
    );
    assert_eq!(
        t.settings.password.as_ref().map(|p| p.expose().to_owned()),
        Some("trunk-secret".into())
    );

    // Edit with an empty password: the stored one is kept; untick enabled.
    let r = op.get(&url).await;
    assert!(r.body.contains("leave empty to keep") && !r.body.contains("trunk-secret"));
    let edit: Vec<(&str, &str)> = fields
        .iter()
        .copied()
        .filter(|(k, _)| *k != "enabled")
        .map(|(k, v)| {
            if k == "password" {
                (k, "")
            } else if k == "priority" {
                (k, "7")
            } else {
                (k, v)
            }
        })
        .collect();
    op.post(&url, &edit).await.assert(StatusCode::OK);
    assert_eq!(next_trunk_change(&mut log).await, (t.id, Action::Updated));
    let t = app.dir.get_trunk(t.id).await.unwrap();
    assert_eq!((t.settings.priority, t.settings.enabled), (7, false));
    assert_eq!(
        t.settings.password.as_ref().map(|p| p.expose().to_owned()),
        Some("trunk-secret".into())
    );
    assert!(op.get("/operator/trunks").await.body.contains("disabled"));

    // Delete through the confirm page; business admins never reach trunks.
    let t2 = app.tenant("acme").await;
    let mut adm = app
        .signed_in(Some(t2.id), Role::Admin, "ann@acme.test")
        .await;
    adm.get(&url).await.assert(StatusCode::FORBIDDEN);
    op.get(&format!("{url}/delete"))
        .await
        .assert(StatusCode::OK);
    op.post(&format!("{url}/delete"), &[("confirm", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert_eq!(next_trunk_change(&mut log).await, (t.id, Action::Deleted));
    assert!(app.dir.list_trunks().await.unwrap().is_empty());
    op.get(&url).await.assert(StatusCode::NOT_FOUND);
}

/// Issue #10: an inbound source of 0.0.0.0/0 would let anyone call in as the
/// carrier. The form refuses it with the reason at the field, and accepts
/// it only when the operator ticks the force box.
async fn cidr_slash_zero_trunk_is_refused(b: Backend) {
    let app = App::new(b).await;
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    let mut fields = vec![
        ("name", "Carrier A"),
        ("host", "sip.carrier.test"),
        ("port", "5060"),
        ("transport", "udp"),
        ("priority", "5"),
        ("inbound_source", "0.0.0.0/0"),
        ("enabled", "on"),
    ];
    let r = op.post("/operator/trunks", &fields).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-inbound_source""#), "{}", r.body);
    assert!(r.body.contains("wider than /24"), "{}", r.body);
    assert!(app.dir.list_trunks().await.unwrap().is_empty());
    fields.push(("force_wide_source", "on"));
    op.post("/operator/trunks", &fields)
        .await
        .assert(StatusCode::SEE_OTHER);
    let t = app.dir.list_trunks().await.unwrap().remove(0);
    assert_eq!(t.settings.inbound_source.as_deref(), Some("0.0.0.0/0"));
    assert!(t.settings.force_wide_source);
    assert_eq!(
        t.settings.calls_per_second,
        store::TrunkSettings::DEFAULT_CALLS_PER_SECOND
    );
}

both_backends!(
    operator_flow,
    operator_trunks,
    cidr_slash_zero_trunk_is_refused
);
