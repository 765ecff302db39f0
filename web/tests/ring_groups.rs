//! Ring groups in the web admin and the REST API, on both backends: create with members and
//! fallback, edit members and their order, strategy, timeouts, route a number to a group, and
//! delete; every refusal shown beside its field.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use store::*;
use support::{App, Backend, Resp, between};

async fn admin_manages_ring_groups_in_the_web_admin(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let alice = app.extension(t.id, "201", "Alice").await;
    let bob = app.extension(t.id, "202", "Bob").await;
    let carol = app.extension(t.id, "203", "Carol").await;
    let num = app
        .dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);

    let r = adm.get(&format!("{base}/ring-groups")).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("No ring groups yet."));
    assert!(r.body.contains(r#"href="/t/"#) && r.body.contains("Ring groups"));
    let r = adm.get(&format!("{base}/ring-groups/new")).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains(r#"value="30""#) && r.body.contains(r#"value="15""#));

    // Without the CSRF token nothing is created.
    adm.post_raw(
        &format!("{base}/ring-groups"),
        &[("number", "20".into()), ("name", "Sales".into())],
    )
    .await
    .assert(StatusCode::BAD_REQUEST);
    assert!(app.dir.list_ring_groups(t.id).await.unwrap().is_empty());

    // Every mistake is shown beside its field, what was typed kept.
    let r = adm
        .post(
            &format!("{base}/ring-groups"),
            &[
                ("number", "201"),
                ("name", "Sales"),
                ("strategy", "sequential"),
                ("ring_timeout_secs", "3"),
                ("member_timeout_secs", "15"),
                ("fallback", "299"),
                ("members", "202\n299"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Enter a number of seconds from 5 to 600."));
    assert!(r.body.contains("There is no extension or ring group 299."));
    assert!(r.body.contains("Member 2: there is no extension 299."));
    assert!(r.body.contains("202\n299"), "the members as typed");
    // The number taken by an extension: refused by the directory, beside the number.
    let r = adm
        .post(
            &format!("{base}/ring-groups"),
            &[
                ("number", "201"),
                ("name", "Sales"),
                ("strategy", "sequential"),
                ("ring_timeout_secs", "30"),
                ("member_timeout_secs", "15"),
                ("members", "202"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-number""#), "{}", r.body);
    assert!(app.dir.list_ring_groups(t.id).await.unwrap().is_empty());

    // Created, with an outside number among the members and an extension as fallback.
    let r = adm
        .post(
            &format!("{base}/ring-groups"),
            &[
                ("number", "20"),
                ("name", "Sales"),
                ("strategy", "sequential"),
                ("ring_timeout_secs", "60"),
                ("member_timeout_secs", "12"),
                ("fallback", "203"),
                ("members", "202\n07400 123456\n201"),
            ],
        )
        .await;
    r.assert(StatusCode::SEE_OTHER);
    let g = app.dir.list_ring_groups(t.id).await.unwrap().remove(0);
    assert_eq!(r.location(), format!("{base}/ring-groups/{}", g.id));
    assert_eq!(g.number.as_str(), "20");
    assert_eq!(g.settings.strategy, RingStrategy::Sequential);
    assert_eq!(
        (g.settings.ring_timeout_secs, g.settings.member_timeout_secs),
        (60, 12)
    );
    assert_eq!(g.settings.fallback, RouteTarget::Extension(carol.id));
    assert_eq!(
        g.members,
        [
            RingGroupMember::Extension(bob.id),
            RingGroupMember::External("+447400123456".parse().unwrap()),
            RingGroupMember::Extension(alice.id),
        ]
    );
    let page = format!("{base}/ring-groups/{}", g.id);
    let r = adm.get(&page).await;
    r.assert(StatusCode::OK);
    let ordered = between(&r.body, "<ol>", "</ol>");
    let (b_at, m_at, a_at) = (
        ordered.find("202 Bob").unwrap(),
        ordered.find("07400 123456").unwrap(),
        ordered.find("201 Alice").unwrap(),
    );
    assert!(b_at < m_at && m_at < a_at, "{ordered}");
    assert!(r.body.contains(r#"value="203""#), "the fallback's number");
    let r = adm.get(&format!("{base}/ring-groups")).await;
    assert!(r.body.contains("One at a time, in order"));
    assert!(r.body.contains("extension 203 (Carol)"));

    // A second group, falling back to nobody.
    adm.post(
        &format!("{base}/ring-groups"),
        &[
            ("number", "21"),
            ("name", "Night"),
            ("strategy", "simultaneous"),
            ("ring_timeout_secs", "30"),
            ("member_timeout_secs", "15"),
            ("members", "203"),
        ],
    )
    .await
    .assert(StatusCode::SEE_OTHER);
    let night = app
        .dir
        .list_ring_groups(t.id)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.number.as_str() == "21")
        .unwrap();

    // Edited: round robin, members reordered (one dropped), falling back to the other group.
    app.dir
        .set_ring_group_last_answered(t.id, g.id, Some(1))
        .await
        .unwrap();
    let edit = |members: &'static str, fallback: &'static str| {
        vec![
            ("name", "Sales team"),
            ("strategy", "round_robin"),
            ("ring_timeout_secs", "45"),
            ("member_timeout_secs", "10"),
            ("fallback", fallback),
            ("members", members),
        ]
    };
    let r = adm.post(&page, &edit("201\n202", "21")).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("Saved."));
    let g2 = app.dir.get_ring_group(t.id, g.id).await.unwrap();
    assert_eq!(g2.settings.name, "Sales team");
    assert_eq!(g2.settings.strategy, RingStrategy::RoundRobin);
    assert_eq!(g2.settings.fallback, RouteTarget::RingGroup(night.id));
    assert_eq!(
        g2.members,
        [
            RingGroupMember::Extension(alice.id),
            RingGroupMember::Extension(bob.id)
        ]
    );
    assert_eq!(
        g2.last_answered_member, None,
        "a new list restarts the rotation"
    );
    // Saving the same members keeps the rotation where it is.
    app.dir
        .set_ring_group_last_answered(t.id, g.id, Some(0))
        .await
        .unwrap();
    let r = adm.post(&page, &edit("201\n202", "21")).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body.contains("Next call starts with 202 Bob."),
        "{}",
        r.body
    );
    assert_eq!(
        app.dir
            .get_ring_group(t.id, g.id)
            .await
            .unwrap()
            .last_answered_member,
        Some(0)
    );
    // Falling back to itself, or listing someone twice: refused, nothing changed.
    let r = adm.post(&page, &edit("201\n201", "20")).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Member 2: 201 is listed twice."));
    let r = adm.post(&page, &edit("201", "20")).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("cannot fall back to itself"), "{}", r.body);
    assert_eq!(
        app.dir
            .get_ring_group(t.id, g.id)
            .await
            .unwrap()
            .members
            .len(),
        2
    );

    // A public number routed to the group by typing its number.
    let route = format!("{base}/numbers/{}/route", num.id);
    adm.post(&route, &[("extension", "20")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert_eq!(
        app.dir.get_number_by_e164(&num.e164).await.unwrap().route,
        RouteTarget::RingGroup(g.id)
    );
    let r = adm.get(&format!("{base}/numbers")).await;
    assert!(r.body.contains("ring group 20 (Sales team)"), "{}", r.body);

    // Deleting a group something routes to is refused on its page; then allowed.
    let del = format!("{page}/delete");
    adm.get(&del).await.assert(StatusCode::OK);
    let r = adm.post(&del, &[("confirm", "yes")]).await;
    r.assert(StatusCode::CONFLICT);
    assert!(r.body.contains("routes to this ring group"), "{}", r.body);
    // (Unrouting the live number is confirmed.)
    adm.post(&route, &[("extension", ""), ("confirm", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    let r = adm.post(&del, &[("confirm", "yes")]).await;
    r.assert(StatusCode::SEE_OTHER);
    assert!(app.dir.get_ring_group(t.id, g.id).await.is_err());
    // The night group fell back to nobody and is still there.
    assert_eq!(app.dir.list_ring_groups(t.id).await.unwrap().len(), 1);
}

async fn call(app: &App, tok: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    let r = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {tok}"));
    let req = match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => r.body(Body::empty()),
    };
    app.send(req.unwrap()).await
}

async fn token(app: &App, tenant: TenantId) -> String {
    let t = format!("sbt_{}", web::crypto::random_token());
    app.dir
        .create_api_token(&NewApiToken {
            tenant_id: Some(tenant),
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

async fn ring_groups_through_the_api(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let alice = app.extension(t.id, "201", "Alice").await;
    app.extension(t.id, "202", "Bob").await;
    let num = app
        .dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    let tok = token(&app, t.id).await;
    let groups = format!("/api/v1/tenants/{}/ring-groups", t.id);

    let r = call(
        &app,
        &tok,
        Method::POST,
        &groups,
        Some(
            json!({"number": "20", "name": "Sales", "strategy": "sequential",
                    "member_timeout_secs": 10, "fallback": "201",
                    "members": ["202", "+44 7400 123456", "201"]}),
        ),
    )
    .await;
    r.assert(StatusCode::CREATED);
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["strategy"], "sequential");
    assert_eq!(
        (
            v["ring_timeout_secs"].as_u64(),
            v["member_timeout_secs"].as_u64()
        ),
        (Some(30), Some(10))
    );
    assert_eq!(v["fallback"]["kind"], "extension");
    assert_eq!(v["fallback"]["id"], alice.id.to_string());
    assert_eq!(v["fallback_number"], "201");
    let members: Vec<(&str, &str)> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["kind"].as_str().unwrap(), m["number"].as_str().unwrap()))
        .collect();
    assert_eq!(
        members,
        [
            ("extension", "202"),
            ("external", "+447400123456"),
            ("extension", "201")
        ]
    );
    assert_eq!(v["members"][0]["display_name"], "Bob");

    // Refusals name their field.
    for (body, field) in [
        (
            json!({"number": "21", "name": "X", "strategy": "loudly"}),
            "strategy",
        ),
        (
            json!({"number": "21", "name": "X", "members": ["299"]}),
            "members",
        ),
        (
            json!({"number": "21", "name": "X", "fallback": "299"}),
            "fallback",
        ),
        (
            json!({"number": "21", "name": "X", "ring_timeout_secs": 4}),
            "ring_timeout_secs",
        ),
        (json!({"number": "21", "name": " "}), "name"),
    ] {
        let r = call(&app, &tok, Method::POST, &groups, Some(body.clone())).await;
        r.assert(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["field"], field, "{body}: {}", r.body);
    }
    let r = call(
        &app,
        &tok,
        Method::POST,
        &groups,
        Some(json!({"number": "20", "name": "Again"})),
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(app.dir.list_ring_groups(t.id).await.unwrap().len(), 1);

    // Reorder and change strategy; absent fields stay.
    let one = format!("{groups}/{id}");
    let r = call(
        &app,
        &tok,
        Method::PATCH,
        &one,
        Some(json!({"strategy": "round_robin", "members": ["201", "202"], "fallback": ""})),
    )
    .await;
    r.assert(StatusCode::OK);
    let v = r.json();
    assert_eq!(v["strategy"], "round_robin");
    assert_eq!(v["name"], "Sales");
    assert_eq!(v["member_timeout_secs"], 10);
    assert_eq!(v["fallback"]["kind"], "none");
    assert_eq!(v["members"][0]["number"], "201");
    let r = call(&app, &tok, Method::GET, &groups, None).await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    call(&app, &tok, Method::GET, &one, None)
        .await
        .assert(StatusCode::OK);

    // A number routed to the group; a number routed at an extension through `ring_group` is
    // refused.
    let route = format!("/api/v1/tenants/{}/numbers/{}/route", t.id, num.id);
    let r = call(
        &app,
        &tok,
        Method::PUT,
        &route,
        Some(json!({"ring_group": "20"})),
    )
    .await;
    r.assert(StatusCode::OK);
    assert_eq!(r.json()["route"]["kind"], "ring_group");
    assert_eq!(r.json()["route"]["id"], id);
    let r = call(
        &app,
        &tok,
        Method::PUT,
        &route,
        Some(json!({"ring_group": "201"})),
    )
    .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["error"]["field"], "ring_group");
    let r = call(
        &app,
        &tok,
        Method::PUT,
        &route,
        Some(json!({"ring_group": "20", "extension": "201"})),
    )
    .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);

    // Delete: refused while routed to, then done.
    call(&app, &tok, Method::DELETE, &one, None)
        .await
        .assert(StatusCode::CONFLICT);
    call(
        &app,
        &tok,
        Method::PUT,
        &route,
        Some(json!({"extension": null})),
    )
    .await
    .assert(StatusCode::OK);
    call(&app, &tok, Method::DELETE, &one, None)
        .await
        .assert(StatusCode::NO_CONTENT);
    call(&app, &tok, Method::GET, &one, None)
        .await
        .assert(StatusCode::NOT_FOUND);
}

both_backends!(
    admin_manages_ring_groups_in_the_web_admin,
    ring_groups_through_the_api,
);
