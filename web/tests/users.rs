//! Web users of a business and operator accounts: one-time passwords, reset, disable, and
//! isolation between businesses.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend, between};

async fn users_management(b: Backend) {
    let app = App::new(b).await;
    let a = app.tenant("alpha").await;
    let bt = app.tenant("bravo").await;
    let alice = app.user(Some(a.id), Role::Member, "alice@alpha.test").await;
    let mut adm = app
        .signed_in(Some(bt.id), Role::Admin, "bob@bravo.test")
        .await;
    let base = format!("/t/{}", bt.id);

    // Create a member: a one-time password that works.
    let r = adm
        .post(
            &format!("{base}/users"),
            &[("email", "not-an-email"), ("role", "member")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-email""#) && r.body.contains(r#"value="not-an-email""#));
    let r = adm
        .post(
            &format!("{base}/users"),
            &[
                ("email", "mia@bravo.test"),
                ("display_name", "Mia"),
                ("role", "member"),
            ],
        )
        .await;
    r.assert(StatusCode::OK);
    let pw = between(&r.body, r#"id="pw">"#, "<").to_owned();
    let mut mia = app.browser();
    mia.login("mia@bravo.test", &pw)
        .await
        .assert(StatusCode::SEE_OTHER);
    let mia_id = app
        .dir
        .get_user_by_email(&"mia@bravo.test".parse().unwrap())
        .await
        .unwrap()
        .id;
    let r = adm.get(&format!("{base}/users")).await;
    assert!(r.body.contains("mia@bravo.test") && !r.body.contains("alice@alpha.test"));

    // Reset: the old password stops working, the session ends, the new one works.
    let reset = format!("{base}/users/{mia_id}/reset");
    adm.get(&reset).await.assert(StatusCode::OK);
    let r = adm.post(&reset, &[("confirm", "yes")]).await;
    r.assert(StatusCode::OK);
    let pw2 = between(&r.body, r#"id="pw">"#, "<").to_owned();
    assert_eq!(mia.get("/account/password").await.location(), "/login");
    app.browser()
        .login("mia@bravo.test", &pw)
        .await
        .assert(StatusCode::UNAUTHORIZED);
    mia.login("mia@bravo.test", &pw2)
        .await
        .assert(StatusCode::SEE_OTHER);

    // Disable (after a confirm page) signs her out and keeps her out; enable lets her back.
    let disable = format!("{base}/users/{mia_id}/disable");
    adm.post(&disable, &[]).await.assert(StatusCode::SEE_OTHER);
    mia.get("/account/password").await.assert(StatusCode::OK);
    adm.post(&disable, &[("confirm", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert_eq!(mia.get("/account/password").await.location(), "/login");
    mia.login("mia@bravo.test", &pw2)
        .await
        .assert(StatusCode::UNAUTHORIZED);
    adm.post(&format!("{base}/users/{mia_id}/enable"), &[])
        .await
        .assert(StatusCode::SEE_OTHER);
    mia.login("mia@bravo.test", &pw2)
        .await
        .assert(StatusCode::SEE_OTHER);

    // Role: member -> admin and back, each confirmed first and reported after; not for
    // another business's user.
    let list = adm.get(&format!("{base}/users")).await;
    let make_admin = format!("{base}/users/{mia_id}/role?role=admin");
    assert!(
        list.body
            .contains(&format!("href=\"{make_admin}\">Make admin…</a>"))
    );
    let ask = adm.get(&make_admin).await;
    ask.assert(StatusCode::OK);
    assert!(
        ask.body.contains("Make mia@bravo.test an admin?"),
        "{}",
        ask.body
    );
    assert!(ask.body.contains(&format!("action=\"{make_admin}\"")));
    assert!(ask.body.contains(r#"name="confirm" value="yes""#));
    // Posting without the confirmation changes nothing and goes to the question.
    let r = adm
        .post(&format!("{base}/users/{mia_id}/role"), &[("role", "admin")])
        .await;
    r.assert(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), make_admin);
    assert_eq!(
        app.dir.get_user(bt.id, mia_id).await.unwrap().role,
        Role::Member
    );
    // The confirm page's form: the role is in its address.
    let r = adm.post(&make_admin, &[("confirm", "yes")]).await;
    r.assert(StatusCode::SEE_OTHER);
    assert_eq!(
        app.dir.get_user(bt.id, mia_id).await.unwrap().role,
        Role::Admin
    );
    let done = adm.get(r.location()).await;
    done.assert(StatusCode::OK);
    assert!(
        done.body
            .contains(r#"<p class="notice" role="status">mia@bravo.test is now an admin.</p>"#),
        "{}",
        done.body
    );
    assert!(done.body.contains("Make member…"));
    adm.post(
        &format!("{base}/users/{mia_id}/role"),
        &[("role", "operator")],
    )
    .await
    .assert(StatusCode::UNPROCESSABLE_ENTITY);
    adm.post(
        &format!("{base}/users/{mia_id}/role"),
        &[("role", "member"), ("confirm", "yes")],
    )
    .await
    .assert(StatusCode::SEE_OTHER);
    assert_eq!(
        app.dir.get_user(bt.id, mia_id).await.unwrap().role,
        Role::Member
    );
    let done = adm
        .get(&format!("{base}/users?role_changed={mia_id}"))
        .await;
    assert!(done.body.contains("mia@bravo.test is now a member."));
    adm.post(
        &format!("{base}/users/{}/role", alice.id),
        &[("role", "admin"), ("confirm", "yes")],
    )
    .await
    .assert(StatusCode::NOT_FOUND);
    adm.get(&format!("{base}/users/{}/role?role=admin", alice.id))
        .await
        .assert(StatusCode::NOT_FOUND);

    // Not yourself, and never another business's user.
    let me = app
        .dir
        .get_user_by_email(&"bob@bravo.test".parse().unwrap())
        .await
        .unwrap()
        .id;
    adm.get(&format!("{base}/users/{me}/reset"))
        .await
        .assert(StatusCode::BAD_REQUEST);
    for url in [
        format!("{base}/users/{}/reset", alice.id),
        format!("{base}/users/{}/disable", alice.id),
        format!("/t/{}/users", a.id),
        format!("/t/{}/users/{}/reset", a.id, alice.id),
    ] {
        let r = adm.get(&url).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{url}");
        assert!(!r.body.contains("alice"));
    }
    for url in [
        format!("{base}/users/{}/reset", alice.id),
        format!("{base}/users/{}/disable", alice.id),
        format!("{base}/users/{}/enable", alice.id),
        format!("/t/{}/users", a.id),
    ] {
        let r = adm
            .post(
                &url,
                &[
                    ("confirm", "yes"),
                    ("email", "x@alpha.test"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "POST {url}");
    }
    let after = app.dir.get_user(a.id, alice.id).await.unwrap();
    assert_eq!(
        (after.disabled, after.password_hash),
        (false, alice.password_hash)
    );
    assert!(
        app.dir
            .get_user_by_email(&"x@alpha.test".parse().unwrap())
            .await
            .is_err()
    );

    // Operators manage operator accounts the same way.
    let mut op = app.signed_in(None, Role::Operator, "op@example.test").await;
    let r = op
        .post("/operator/users", &[("email", "op2@example.test")])
        .await;
    r.assert(StatusCode::OK);
    let u = app
        .dir
        .get_user_by_email(&"op2@example.test".parse().unwrap())
        .await
        .unwrap();
    assert_eq!((u.role, u.tenant_id), (Role::Operator, None));
    adm.get("/operator/users")
        .await
        .assert(StatusCode::FORBIDDEN);
}

both_backends!(users_management);
