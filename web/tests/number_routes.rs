//! Nothing silently stops a number ringing (issue #12): the business Numbers page shows each
//! number's current route, unrouting a live number is confirmed first and reported after, and
//! the operator is warned before taking a routed number back to the inventory.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend};

async fn ext(app: &App, t: TenantId, number: &str, name: &str) -> Extension {
    app.dir
        .create_extension(
            t,
            &NewExtension {
                number: number.parse().unwrap(),
                settings: ExtensionSettings::new(name),
            },
            None,
        )
        .await
        .unwrap()
        .0
}

async fn business_numbers_page(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let e = ext(&app, t.id, "201", "Reception").await;
    let live = app
        .dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    let spare = app
        .dir
        .add_number(&"020 7946 0019".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    app.dir
        .set_number_route(t.id, live.id, RouteTarget::Extension(e.id))
        .await
        .unwrap();
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);

    // The route box holds where the number goes now.
    let r = adm.get(&format!("{base}/numbers")).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body.contains(&format!(
            r#"id="r-{}" name="extension" value="201""#,
            live.id
        )),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains(&format!(r#"id="r-{}" name="extension" value="""#, spare.id)),
        "{}",
        r.body
    );

    // Emptying it asks first, saying where calls go now; nothing changes yet.
    let route = format!("{base}/numbers/{}/route", live.id);
    let r = adm.post(&route, &[("extension", "")]).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body.contains("Stop routing 020 7946 0018?")
            && r.body.contains("extension 201 (Reception)")
            && r.body.contains(r#"name="confirm" value="yes""#),
        "{}",
        r.body
    );
    assert_eq!(
        app.dir.get_number_by_e164(&live.e164).await.unwrap().route,
        RouteTarget::Extension(e.id)
    );

    // Confirmed: unrouted, and the list says so.
    let r = adm
        .post(&route, &[("extension", ""), ("confirm", "yes")])
        .await;
    r.assert(StatusCode::SEE_OTHER);
    assert_eq!(
        app.dir.get_number_by_e164(&live.e164).await.unwrap().route,
        RouteTarget::None
    );
    let r = adm.get(r.location()).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body.contains(r#"role="status""#)
            && r.body
                .contains("020 7946 0018 is not routed now: calls to it do not ring anywhere."),
        "{}",
        r.body
    );

    // Routing it again needs no confirmation and is reported too.
    let r = adm.post(&route, &[("extension", "201")]).await;
    r.assert(StatusCode::SEE_OTHER);
    let r = adm.get(r.location()).await;
    assert!(
        r.body
            .contains("Calls to 020 7946 0018 now go to extension 201 (Reception)."),
        "{}",
        r.body
    );

    // A number that rings nowhere already is "unrouted" without a question.
    adm.post(
        &format!("{base}/numbers/{}/route", spare.id),
        &[("extension", "")],
    )
    .await
    .assert(StatusCode::SEE_OTHER);
}

async fn operator_returns_a_routed_number(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let e = ext(&app, t.id, "201", "Reception").await;
    let live = app
        .dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    let idle = app
        .dir
        .add_number(&"020 7946 0019".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    app.dir
        .set_number_route(t.id, live.id, RouteTarget::Extension(e.id))
        .await
        .unwrap();
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    op.get("/operator/numbers").await.assert(StatusCode::OK);
    let assign = format!("/operator/numbers/{}/assign", live.id);

    // Back to the inventory: a warning that it is in use, nothing changed yet.
    let r = op.post(&assign, &[("tenant", "")]).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body
            .contains("Take 020 7946 0018 from acme Ltd back to the inventory?")
            && r.body.contains("extension 201 (Reception)")
            && r.body.contains(r#"name="confirm" value="yes""#),
        "{}",
        r.body
    );
    let n = app.dir.get_number_by_e164(&live.e164).await.unwrap();
    assert_eq!(
        (n.tenant_id, n.route),
        (Some(t.id), RouteTarget::Extension(e.id))
    );

    // The same business again changes nothing (assigning would clear the route).
    let r = op.post(&assign, &[("tenant", "acme.pbx.test")]).await;
    r.assert(StatusCode::SEE_OTHER);
    let n = app.dir.get_number_by_e164(&live.e164).await.unwrap();
    assert_eq!(
        (n.tenant_id, n.route),
        (Some(t.id), RouteTarget::Extension(e.id))
    );
    let r = op.get(r.location()).await;
    assert!(
        r.body.contains(
            "020 7946 0018 belongs to acme Ltd; its calls go to extension 201 (Reception)."
        ),
        "{}",
        r.body
    );

    // Confirmed: in the inventory, and the page says so.
    let r = op
        .post(&assign, &[("tenant", ""), ("confirm", "yes")])
        .await;
    r.assert(StatusCode::SEE_OTHER);
    let n = app.dir.get_number_by_e164(&live.e164).await.unwrap();
    assert_eq!((n.tenant_id, n.route), (None, RouteTarget::None));
    let r = op.get(r.location()).await;
    assert!(
        r.body
            .contains("020 7946 0018 is in the inventory: calls to it do not ring anywhere."),
        "{}",
        r.body
    );

    // A number that rings nowhere goes back without a question.
    op.post(
        &format!("/operator/numbers/{}/assign", idle.id),
        &[("tenant", "")],
    )
    .await
    .assert(StatusCode::SEE_OTHER);
    assert_eq!(
        app.dir
            .get_number_by_e164(&idle.e164)
            .await
            .unwrap()
            .tenant_id,
        None
    );
}

both_backends!(business_numbers_page, operator_returns_a_routed_number);
