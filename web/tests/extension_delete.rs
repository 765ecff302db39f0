//! Deleting an extension (issue #12): when something still sends calls to it the page names
//! each number and ring group, linked; other extensions forwarding to it block the delete too,
//! named and linked, with a confirmed "clear those forwards and delete", so no extension is
//! left forwarding to one that is gone.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend};

async fn ext(app: &App, t: TenantId, number: &str, name: &str, fwd: Forwarding) -> Extension {
    let mut settings = ExtensionSettings::new(name);
    settings.forwarding = fwd;
    app.dir
        .create_extension(
            t,
            &NewExtension {
                number: number.parse().unwrap(),
                settings,
            },
            None,
        )
        .await
        .unwrap()
        .0
}

async fn blocked_and_forwarded(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let none = Forwarding::default;
    let reception = ext(&app, t.id, "201", "Reception", none()).await;
    let to_201: ForwardTarget = "201".parse().unwrap();
    let outside: ForwardTarget = "07400 123456".parse().unwrap();
    let bob = ext(
        &app,
        t.id,
        "202",
        "Bob",
        Forwarding {
            always: None,
            busy: Some(to_201.clone()),
            no_answer: Some(to_201.clone()),
        },
    )
    .await;
    let carol = ext(
        &app,
        t.id,
        "203",
        "Carol",
        Forwarding {
            always: Some(outside.clone()),
            busy: None,
            no_answer: None,
        },
    )
    .await;
    let n = app
        .dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    app.dir
        .set_number_route(t.id, n.id, RouteTarget::Extension(reception.id))
        .await
        .unwrap();
    let mut sales = RingGroupSettings::new("Sales", RingStrategy::Simultaneous);
    sales.fallback = RouteTarget::Extension(reception.id);
    let g = app
        .dir
        .create_ring_group(t.id, &"20".parse().unwrap(), &sales)
        .await
        .unwrap();
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);
    let del = format!("{base}/extensions/{}/delete", reception.id);
    let number_link = format!(
        r#"<a href="{base}/numbers?page=1#n-{}">020 7946 0018</a>"#,
        n.id
    );
    let group_link = format!(
        r#"<a href="{base}/ring-groups/{}">ring group 20 (Sales)</a>"#,
        g.id
    );
    let bob_link = format!(
        r#"<a href="{base}/extensions/{}">extension 202 (Bob)</a>"#,
        bob.id
    );

    // Blocked: the page names and links the number, the ring group and the forwarding
    // extension, and offers no delete button.
    let r = adm.get(&del).await;
    r.assert(StatusCode::OK);
    for want in [
        "Extension 201 (Reception) cannot be deleted yet",
        number_link.as_str(),
        group_link.as_str(),
        bob_link.as_str(),
        "forwards when busy and on no answer",
    ] {
        assert!(r.body.contains(want), "{want:?} missing: {}", r.body);
    }
    assert!(!r.body.contains("extension 203"), "Carol forwards outside");
    assert!(!r.body.contains(r#"name="confirm""#), "{}", r.body);
    // Posting anyway: refused, the reason names each, the links are there.
    let r = adm.post(&del, &[("confirm", "yes")]).await;
    r.assert(StatusCode::CONFLICT);
    assert!(
        r.body.contains("error-banner")
            && r.body.contains("number 020 7946 0018 routes to it")
            && r.body.contains("ring group 20 (Sales) falls back to it")
            && r.body.contains(&number_link)
            && r.body.contains(&group_link),
        "{}",
        r.body
    );

    // Route the number and the group elsewhere: the forwards still block a plain delete.
    app.dir
        .set_number_route(t.id, n.id, RouteTarget::None)
        .await
        .unwrap();
    app.dir.delete_ring_group(t.id, g.id).await.unwrap();
    let r = adm.get(&del).await;
    assert!(
        r.body.contains("Delete extension 201 (Reception)?")
            && r.body.contains(&bob_link)
            && r.body.contains(r#"name="clear_forwards" value="yes""#)
            && r.body.contains("Clear those forwards and delete"),
        "{}",
        r.body
    );
    let r = adm.post(&del, &[("confirm", "yes")]).await;
    r.assert(StatusCode::CONFLICT);
    assert!(
        r.body
            .contains("extension 202 (Bob) forwards to it when busy and on no answer"),
        "{}",
        r.body
    );
    assert!(app.dir.get_extension(t.id, reception.id).await.is_ok());
    // Without the confirmation nothing happens.
    adm.post(&del, &[("clear_forwards", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert!(app.dir.get_extension(t.id, reception.id).await.is_ok());

    // Clear and delete: gone, Bob forwards nowhere, Carol's outside forward is untouched.
    adm.post(&del, &[("confirm", "yes"), ("clear_forwards", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert!(
        app.dir
            .get_extension(t.id, reception.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let bob = app.dir.get_extension(t.id, bob.id).await.unwrap();
    assert_eq!(bob.settings.forwarding, Forwarding::default());
    let carol = app.dir.get_extension(t.id, carol.id).await.unwrap();
    assert_eq!(carol.settings.forwarding.always, Some(outside));
}

both_backends!(blocked_and_forwarded);
