//! Devices of an extension: extra SIP credentials with a MAC address and model.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend, between};

async fn devices(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let other = app.tenant("other").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);
    adm.post(
        &format!("{base}/extensions"),
        &[("number", "201"), ("display_name", "Reception")],
    )
    .await
    .assert(StatusCode::SEE_OTHER);
    let ext = app
        .dir
        .get_extension_by_number(t.id, &"201".parse().unwrap())
        .await
        .unwrap();
    let url = format!("{base}/extensions/{}/devices", ext.id);

    let r = adm
        .post(
            &url,
            &[("mac_address", "00:11:22"), ("model", "Yealink T54W")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-mac_address""#) && r.body.contains(r#"value="Yealink T54W""#));

    let r = adm
        .post(
            &url,
            &[
                ("mac_address", "00-11-22-AA-BB-CC"),
                ("model", "Yealink T54W"),
            ],
        )
        .await;
    r.assert(StatusCode::SEE_OTHER);
    let r = adm.get(r.location()).await;
    r.assert(StatusCode::OK);
    let pw = between(&r.body, r#"id="sip-password">"#, "<").to_owned();
    let c = app
        .dir
        .get_credential_by_username(t.id, &"201-2".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        c.mac_address.as_ref().map(|m| m.as_str()),
        Some("001122aabbcc")
    );
    assert_eq!(c.model.as_deref(), Some("Yealink T54W"));
    assert_eq!(
        c.ha1_md5,
        web::crypto::sip_ha1("201-2", "acme.pbx.test", &pw).0
    );
    assert_eq!(
        app.dir
            .get_credential_by_mac(&"001122aabbcc".parse().unwrap())
            .await
            .unwrap()
            .id,
        c.id
    );

    // A MAC address belongs to one device on the whole platform.
    let r = adm.post(&url, &[("mac_address", "0011.22aa.bbcc")]).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-mac_address""#), "{}", r.body);
    let r = adm.post(&url, &[]).await;
    r.assert(StatusCode::SEE_OTHER);
    let r = adm.get(r.location()).await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("201-3"));

    // Another business cannot add to or delete from this extension.
    let mut intruder = app
        .signed_in(Some(other.id), Role::Admin, "eve@other.test")
        .await;
    let del = format!("{base}/extensions/{}/credentials/{}/delete", ext.id, c.id);
    for u in [
        format!("/t/{}/extensions/{}/devices", other.id, ext.id),
        url.clone(),
        del.clone(),
        format!(
            "/t/{}/extensions/{}/credentials/{}/delete",
            other.id, ext.id, c.id
        ),
    ] {
        let r = intruder
            .post(
                &u,
                &[("confirm", "yes"), ("mac_address", "aa:aa:aa:aa:aa:aa")],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{u}");
        assert!(!r.body.contains("201"));
    }
    assert_eq!(
        app.dir.list_credentials(t.id, ext.id).await.unwrap().len(),
        3
    );

    // Delete goes through a confirm page.
    adm.get(&del).await.assert(StatusCode::OK);
    adm.post(&del, &[]).await.assert(StatusCode::SEE_OTHER);
    assert_eq!(
        app.dir.list_credentials(t.id, ext.id).await.unwrap().len(),
        3
    );
    adm.post(&del, &[("confirm", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert!(
        app.dir
            .get_credential(t.id, c.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

async fn delete_extension(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let n = app
        .dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);
    adm.post(
        &format!("{base}/extensions"),
        &[("number", "201"), ("display_name", "Reception")],
    )
    .await
    .assert(StatusCode::SEE_OTHER);
    let ext = app
        .dir
        .get_extension_by_number(t.id, &"201".parse().unwrap())
        .await
        .unwrap();
    app.dir
        .set_number_route(t.id, n.id, RouteTarget::Extension(ext.id))
        .await
        .unwrap();
    let del = format!("{base}/extensions/{}/delete", ext.id);
    let r = adm.get(&del).await;
    assert!(
        r.body
            .contains("Extension 201 (Reception) cannot be deleted yet")
    );
    // Routed to by a number: refused with the reason, on the delete page.
    let r = adm.post(&del, &[("confirm", "yes")]).await;
    r.assert(StatusCode::CONFLICT);
    assert!(
        r.body.contains("error-banner") && r.body.contains("Extension 201"),
        "{}",
        r.body
    );
    app.dir
        .set_number_route(t.id, n.id, RouteTarget::None)
        .await
        .unwrap();
    let r = adm.get(&del).await;
    assert!(r.body.contains("Delete extension 201 (Reception)?"));
    adm.post(&del, &[]).await.assert(StatusCode::SEE_OTHER);
    assert!(
        app.dir.get_extension(t.id, ext.id).await.is_ok(),
        "no confirm, no delete"
    );
    adm.post(&del, &[("confirm", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert!(
        app.dir
            .get_extension(t.id, ext.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    // Another business's admin: not found.
    let other = app.tenant("other").await;
    let (e2, _) = app
        .dir
        .create_extension(
            other.id,
            &NewExtension {
                number: "301".parse().unwrap(),
                settings: ExtensionSettings::new("Theirs"),
            },
            None,
        )
        .await
        .unwrap();
    let r = adm
        .post(
            &format!("{base}/extensions/{}/delete", e2.id),
            &[("confirm", "yes")],
        )
        .await;
    r.assert(StatusCode::NOT_FOUND);
    assert!(app.dir.get_extension(other.id, e2.id).await.is_ok());
}

both_backends!(devices, delete_extension);
