//! Extension numbers must not start with 0 (it begins UK national and international numbers;
//! issue #12), 999 and 112 stay refused, and the rules are explained next to the field and in
//! every error, the same through the pages, the API and the store (which the CLI and CSV
//! import go through).

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use store::*;
use support::{App, Backend};

/// As askama escapes it into a page.
fn escaped(s: &str) -> String {
    s.replace('&', "&#38;").replace('\'', "&#39;")
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

async fn no_leading_zero(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let base = format!("/t/{}", t.id);
    let rules = escaped(ExtensionNumber::RULES);

    // The rules are next to the number field, for extensions and ring groups.
    for form in ["extensions/new", "ring-groups/new"] {
        let r = adm.get(&format!("{base}/{form}")).await;
        r.assert(StatusCode::OK);
        assert!(
            r.body.contains(&format!(
                r#"<small id="h-number" class="hint">{rules}</small>"#
            )),
            "{form}: {}",
            r.body
        );
    }

    // 0201: refused beside the field, saying why, what was typed kept.
    let r = adm
        .post(
            &format!("{base}/extensions"),
            &[("number", "0201"), ("display_name", "Reception")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains(&format!(
            r#"<p class="field-error" id="e-number">0201 starts with 0. {rules}</p>"#
        )) && r.body.contains(r#"value="Reception""#),
        "{}",
        r.body
    );
    // 999 is still refused, with the same rules.
    let r = adm
        .post(
            &format!("{base}/extensions"),
            &[("number", "999"), ("display_name", "X")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("reserved for emergency calls") && r.body.contains(&rules),
        "{}",
        r.body
    );
    // A ring group cannot take a 0 number either.
    let r = adm
        .post(
            &format!("{base}/ring-groups"),
            &[
                ("number", "020"),
                ("name", "Sales"),
                ("strategy", "simultaneous"),
                ("ring_timeout_secs", "30"),
                ("member_timeout_secs", "15"),
                ("members", ""),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("020 starts with 0."), "{}", r.body);

    // The API says the same, on the same field.
    let tok = token(&app, t.id).await;
    let req = Request::post(format!("/api/v1/tenants/{}/extensions", t.id))
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"number": "0201", "display_name": "Reception"}).to_string(),
        ))
        .unwrap();
    let r = app.send(req).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    let e = &r.json()["error"];
    assert_eq!(e["field"], "number", "{}", r.body);
    assert_eq!(
        e["message"],
        format!("0201 starts with 0. {}", ExtensionNumber::RULES)
    );

    // The store refuses it for every caller (the CLI's add and CSV import go through it): one
    // rule, one message; a CSV import names the row.
    let zero: ExtensionNumber = "0201".parse().unwrap();
    let new = NewExtension {
        number: zero.clone(),
        settings: ExtensionSettings::new("Reception"),
    };
    match app.dir.create_extension(t.id, &new, None).await {
        Err(StoreError::Invalid { field, message }) => {
            assert_eq!(field, "number");
            assert!(message.ends_with(ExtensionNumber::RULES), "{message}");
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    let rows = [
        ImportExtension {
            extension: NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Fine"),
            },
            credential: None,
        },
        ImportExtension {
            extension: new,
            credential: None,
        },
    ];
    match app.dir.import_extensions(t.id, &rows).await {
        Err(StoreError::Row { index, error }) => {
            assert_eq!(index, 1);
            assert!(error.to_string().contains("0201 starts with 0."), "{error}");
        }
        other => panic!("expected a row error, got {other:?}"),
    }
    assert_eq!(
        app.dir
            .list_extensions(t.id, None, Page::first(10))
            .await
            .unwrap()
            .total,
        0,
        "all or nothing"
    );
}

both_backends!(no_leading_zero);
