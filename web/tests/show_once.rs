//! New SIP passwords are shown once, by POST/redirect/GET: reloading the page that shows one
//! never posts the form again, and never shows the password again.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend, Resp, between};

const SHOWN_ONCE: &str = "This password was shown once; regenerate it if you lost it.";

fn assert_shown_once(r: &Resp, password: &str) {
    r.assert(StatusCode::GONE);
    assert!(r.body.contains(SHOWN_ONCE), "{}", r.body);
    assert!(!r.body.contains(password), "the password again: {}", r.body);
    assert!(!r.body.contains("already in use"), "{}", r.body);
    assert!(!r.body.contains(r#"id="sip-password""#));
}

async fn reload_never_reposts_nor_reshows(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let other = app.tenant("bravo").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);

    let r = adm
        .post(
            &format!("{base}/extensions"),
            &[("number", "201"), ("display_name", "Reception")],
        )
        .await;
    r.assert(StatusCode::SEE_OTHER);
    let view = r.location().to_owned();
    assert!(view.starts_with(&format!("{base}/credentials/")), "{view}");
    let token = view.rsplit('/').next().unwrap().to_owned();
    assert_eq!(token.len(), 43, "a 256-bit token");

    // Another session of the same admin, and another business's admin, get nothing.
    let mut again = app.browser();
    again
        .login("ann@acme.test", support::PASSWORD)
        .await
        .assert(StatusCode::SEE_OTHER);
    let r = again.get(&view).await;
    r.assert(StatusCode::GONE);
    assert!(!r.body.contains(r#"id="sip-password""#));
    let mut bravo = app
        .signed_in(Some(other.id), Role::Admin, "bob@bravo.test")
        .await;
    let r = bravo
        .get(&format!("/t/{}/credentials/{token}", other.id))
        .await;
    r.assert(StatusCode::GONE);
    assert!(!r.body.contains(r#"id="sip-password""#));

    // Its own session sees it once.
    let r = adm.get(&view).await;
    r.assert(StatusCode::OK);
    let pw = between(&r.body, r#"id="sip-password">"#, "<").to_owned();
    assert!(!view.contains(&pw));
    let ext = app
        .dir
        .get_extension_by_number(t.id, &"201".parse().unwrap())
        .await
        .unwrap();

    // A reload: the clear message and a way to the extension, nothing created.
    let r = adm.get(&view).await;
    assert_shown_once(&r, &pw);
    assert!(
        r.body
            .contains(&format!(r#"href="{base}/extensions/{}""#, ext.id))
    );
    assert_eq!(
        app.dir
            .list_extensions(t.id, None, Page::first(10))
            .await
            .unwrap()
            .total,
        1
    );

    // The same for a new password.
    let cred = app
        .dir
        .get_credential_by_username(t.id, &"201".parse().unwrap())
        .await
        .unwrap();
    let regen = format!(
        "{base}/extensions/{}/credentials/{}/regenerate",
        ext.id, cred.id
    );
    let r = adm.post(&regen, &[("confirm", "yes")]).await;
    r.assert(StatusCode::SEE_OTHER);
    let view = r.location().to_owned();
    let r = adm.get(&view).await;
    r.assert(StatusCode::OK);
    let pw2 = between(&r.body, r#"id="sip-password">"#, "<").to_owned();
    assert_ne!(pw, pw2);
    let after = app.dir.get_credential(t.id, cred.id).await.unwrap();
    assert_shown_once(&adm.get(&view).await, &pw2);
    assert_eq!(
        app.dir.get_credential(t.id, cred.id).await.unwrap().ha1_md5,
        after.ha1_md5,
        "the reload did not regenerate again"
    );

    // A made-up token: the same message.
    assert_shown_once(&adm.get(&format!("{base}/credentials/nope")).await, &pw2);
}

both_backends!(reload_never_reposts_nor_reshows);
