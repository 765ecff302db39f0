//! Nothing silently stops a number ringing (issue #12): the business Numbers page shows each
//! number's current route, unrouting a live number is confirmed first and reported after, and
//! the operator is warned before taking a routed number back to the inventory.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend};

async fn business_numbers_page(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let e = app.extension(t.id, "201", "Reception").await;
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
    let e = app.extension(t.id, "201", "Reception").await;
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
    let assign = "/operator/numbers/assign";
    let live_id = live.id.to_string();

    // Back to the inventory: a warning that it is in use, nothing changed yet.
    let r = op
        .post(assign, &[("number", &live_id), ("tenant", "inventory")])
        .await;
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
    let r = op
        .post(
            assign,
            &[("number", &live_id), ("tenant", &t.id.to_string())],
        )
        .await;
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
        .post(
            assign,
            &[
                ("number", &live_id),
                ("tenant", "inventory"),
                ("confirm", "yes"),
            ],
        )
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
        assign,
        &[("number", &idle.id.to_string()), ("tenant", "inventory")],
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

/// The operator assigns numbers by picking the business from a list (name and SIP domain),
/// several at once; a mistake comes back inside the page, navigation and choices kept.
async fn assign_by_picking(b: Backend) {
    let app = App::new(b).await;
    let acme = app.tenant("acme").await;
    let beta = app.tenant("beta").await;
    let mut ns = Vec::new();
    for i in 0..3 {
        let e164: E164 = format!("020 7946 00{i}0").parse().unwrap();
        ns.push(app.dir.add_number(&e164, None).await.unwrap());
    }
    let ids: Vec<String> = ns.iter().map(|n| n.id.to_string()).collect();
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;

    // A list of businesses by name with the SIP domain beside it, and a tick per number.
    let r = op.get("/operator/numbers").await;
    r.assert(StatusCode::OK);
    for want in [
        format!(
            r#"<option value="{}">acme Ltd · acme.pbx.test</option>"#,
            acme.id
        ),
        format!(
            r#"<option value="{}">beta Ltd · beta.pbx.test</option>"#,
            beta.id
        ),
        r#"<option value="inventory">"#.to_owned(),
        format!(r#"name="number" value="{}""#, ids[0]),
    ] {
        assert!(r.body.contains(&want), "{want} missing: {}", r.body);
    }

    // Typing a domain or a name is not a choice: the page comes back with its navigation, the
    // message beside the list and the ticks kept; nothing is assigned.
    for typed in ["acme.pbx.test", "acme Ltd"] {
        let r = op
            .post(
                "/operator/numbers/assign",
                &[("number", &ids[0]), ("number", &ids[2]), ("tenant", typed)],
            )
            .await;
        r.assert(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            r.body.contains(r#"<nav aria-label="Main">"#)
                && r.body.contains("Choose a business from the list.")
                && r.body
                    .contains(&format!(r#"name="number" value="{}" checked"#, ids[0]))
                && r.body
                    .contains(&format!(r#"name="number" value="{}" checked"#, ids[2]))
                && !r
                    .body
                    .contains(&format!(r#"name="number" value="{}" checked"#, ids[1])),
            "{}",
            r.body
        );
    }
    // Nothing ticked: said so, the business chosen kept.
    let r = op
        .post(
            "/operator/numbers/assign",
            &[("tenant", &beta.id.to_string())],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("Tick the numbers to assign first.")
            && r.body
                .contains(&format!(r#"<option value="{}" selected>"#, beta.id))
            && r.body.contains(r#"<nav aria-label="Main">"#),
        "{}",
        r.body
    );
    let r = op
        .post("/operator/numbers/assign", &[("number", &ids[0])])
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose a business, or the inventory."));
    assert_eq!(
        app.dir
            .list_numbers(NumberScope::Unassigned, Page::first(10))
            .await
            .unwrap()
            .total,
        3
    );

    // Two picked at once, and the page says where they are now.
    let r = op
        .post(
            "/operator/numbers/assign",
            &[
                ("number", &ids[0]),
                ("number", &ids[2]),
                ("tenant", &acme.id.to_string()),
            ],
        )
        .await;
    r.assert(StatusCode::SEE_OTHER);
    let mine = app
        .dir
        .list_numbers(NumberScope::Tenant(acme.id), Page::first(10))
        .await
        .unwrap();
    assert_eq!(mine.total, 2);
    let r = op.get(r.location()).await;
    assert!(
        r.body
            .contains("2 numbers belong to acme Ltd. They are not routed yet"),
        "{}",
        r.body
    );

    // The add form keeps the layout and what was typed after an error too.
    let r = op
        .post(
            "/operator/numbers",
            &[("first", "020 7946 0100"), ("last", "nonsense")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains(r#"<nav aria-label="Main">"#) && r.body.contains(r#"value="nonsense""#),
        "{}",
        r.body
    );
}

both_backends!(
    business_numbers_page,
    operator_returns_a_routed_number,
    assign_by_picking
);
