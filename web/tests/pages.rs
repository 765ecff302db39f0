//! The business admin's pages end to end in process: extensions, numbers, tokens, users, a
//! member's own extension, and the tenant-isolation matrix for every page route with an id.

mod support;

use axum::http::StatusCode;
use store::*;
use support::{App, Backend, Browser, PASSWORD, between};

async fn admin_flow(b: Backend) {
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

    // Create 201: the password is shown once with a softphone block, and matches the HA1.
    let r = adm
        .post(
            &format!("{base}/extensions"),
            &[("number", "201"), ("display_name", "Reception")],
        )
        .await;
    r.assert(StatusCode::SEE_OTHER);
    let r = adm.get(r.location()).await;
    r.assert(StatusCode::OK);
    let pw = between(&r.body, r#"id="sip-password">"#, "<").to_owned();
    assert_eq!(pw.len(), web::crypto::SIP_PASSWORD_LEN);
    assert!(
        r.body
            .contains("Registrar/proxy: sip.switchboard.test:5060")
    );
    assert!(r.body.contains("sip:201@acme.pbx.test"));
    let cred = app
        .dir
        .get_credential_by_username(t.id, &"201".parse().unwrap())
        .await
        .unwrap();
    let (md5, sha) = web::crypto::sip_ha1("201", "acme.pbx.test", &pw);
    assert_eq!((cred.ha1_md5.clone(), cred.ha1_sha256.clone()), (md5, sha));

    // Again: a conflict beside the number, the name kept.
    let r = adm
        .post(
            &format!("{base}/extensions"),
            &[("number", "201"), ("display_name", "Second desk")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains(r#"id="e-number""#) && r.body.contains(r#"value="Second desk""#),
        "{}",
        r.body
    );
    let r = adm
        .post(
            &format!("{base}/extensions"),
            &[("number", "999"), ("display_name", "X")],
        )
        .await;
    assert!(r.body.contains("reserved for emergency calls"));

    for i in 0..60 {
        let n = format!("{}", 300 + i);
        app.dir
            .create_extension(
                t.id,
                &NewExtension {
                    number: n.parse().unwrap(),
                    settings: ExtensionSettings::new(format!("Desk {n}")),
                },
                None,
            )
            .await
            .unwrap();
    }
    let r = adm.get(&format!("{base}/extensions")).await;
    assert!(
        r.body.contains("61 extensions") && r.body.contains("Page 1 of 2"),
        "{}",
        r.body
    );
    let r = adm.get(&format!("{base}/extensions?q=recep")).await;
    assert!(
        r.body.contains("Reception")
            && r.body.contains("1 extension")
            && !r.body.contains("Desk 300")
    );

    // Edit: a bad forward keeps what was typed; a good one saves.
    let ext = app
        .dir
        .get_extension_by_number(t.id, &"201".parse().unwrap())
        .await
        .unwrap();
    let url = format!("{base}/extensions/{}", ext.id);
    let r = adm
        .post(
            &url,
            &[
                ("display_name", "Front desk"),
                ("forward_busy", "not a number"),
                ("no_answer_timeout_secs", "20"),
                ("dnd", "on"),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-forward_busy""#) && r.body.contains(r#"value="Front desk""#));
    let r = adm
        .post(
            &url,
            &[
                ("display_name", "Front desk"),
                ("forward_busy", "07400 123456"),
                ("no_answer_timeout_secs", "20"),
                ("dnd", "on"),
            ],
        )
        .await;
    r.assert(StatusCode::OK);
    let e = app.dir.get_extension(t.id, ext.id).await.unwrap();
    assert!(e.settings.dnd);
    assert_eq!(
        e.settings.forwarding.busy.unwrap().to_string(),
        "+447400123456"
    );
    // The extension's concurrent-call limit: 8 unless the admin sets it.
    assert_eq!(e.settings.max_concurrent_calls, 8);
    for (value, code) in [
        ("0", StatusCode::UNPROCESSABLE_ENTITY),
        ("12", StatusCode::OK),
    ] {
        let r = adm
            .post(
                &url,
                &[
                    ("display_name", "Front desk"),
                    ("no_answer_timeout_secs", "20"),
                    ("max_concurrent_calls", value),
                ],
            )
            .await;
        r.assert(code);
    }
    let e = app.dir.get_extension(t.id, ext.id).await.unwrap();
    assert_eq!(e.settings.max_concurrent_calls, 12);

    // The inline DND switch: htmx gets the row back, a plain post goes back to the list.
    let r = adm.post(&format!("{url}/dnd"), &[("dnd", "off")]).await;
    assert_eq!(r.location(), format!("{base}/extensions"));
    assert!(
        !app.dir
            .get_extension(t.id, ext.id)
            .await
            .unwrap()
            .settings
            .dnd
    );
    let req = axum::http::Request::post(format!("{url}/dnd"))
        .header(
            "cookie",
            format!("sb_session={}", adm.cookie.clone().unwrap()),
        )
        .header("x-csrf-token", adm.csrf.clone().unwrap())
        .header("hx-request", "true")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("dnd=on"))
        .unwrap();
    let r = app.send(req).await;
    r.assert(StatusCode::OK);
    assert!(
        r.body
            .trim_start()
            .starts_with(&format!(r#"<tr id="ext-{}">"#, ext.id)),
        "{}",
        r.body
    );
    assert!(r.body.contains(r#"value="off""#) && !r.body.contains("<html"));
    assert!(
        app.dir
            .get_extension(t.id, ext.id)
            .await
            .unwrap()
            .settings
            .dnd
    );

    // New password, through a confirm page; the old HA1 stops matching.
    let regen = format!("{url}/credentials/{}/regenerate", cred.id);
    adm.get(&regen).await.assert(StatusCode::OK);
    let r = adm.post(&regen, &[("confirm", "yes")]).await;
    r.assert(StatusCode::SEE_OTHER);
    let r = adm.get(r.location()).await;
    r.assert(StatusCode::OK);
    let pw2 = between(&r.body, r#"id="sip-password">"#, "<").to_owned();
    assert_ne!(pw, pw2);
    let c2 = app.dir.get_credential(t.id, cred.id).await.unwrap();
    assert_eq!(
        c2.ha1_md5,
        web::crypto::sip_ha1("201", "acme.pbx.test", &pw2).0
    );

    // Route the business's number to 201; an unknown extension is refused beside the row.
    let route = format!("{base}/numbers/{}/route", n.id);
    let r = adm.post(&route, &[("extension", "555")]).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("There is no extension or ring group 555.")
            && r.body.contains(r#"value="555""#)
    );
    adm.post(&route, &[("extension", "201")])
        .await
        .assert(StatusCode::SEE_OTHER);
    let r = adm.get(&format!("{base}/numbers")).await;
    assert!(r.body.contains("extension 201 (Front desk)"), "{}", r.body);
    assert_eq!(
        app.dir.get_number_by_e164(&n.e164).await.unwrap().route,
        RouteTarget::Extension(ext.id)
    );

    // API token: shown once, stored hashed, revoked through a confirm page.
    let r = adm
        .post(&format!("{base}/tokens"), &[("name", "CRM")])
        .await;
    r.assert(StatusCode::OK);
    let token = between(&r.body, r#"id="api-token">"#, "<").to_owned();
    assert!(token.starts_with("sbt_"));
    let stored = app
        .dir
        .get_api_token_by_hash(&web::crypto::token_hash(&token))
        .await
        .unwrap();
    assert_eq!(stored.tenant_id, Some(t.id));
    let r = adm.get(&format!("{base}/tokens")).await;
    assert!(!r.body.contains(&token), "shown only once");
    let revoke = format!("{base}/tokens/{}/revoke", stored.id);
    adm.get(&revoke).await.assert(StatusCode::OK);
    adm.post(&revoke, &[("confirm", "yes")])
        .await
        .assert(StatusCode::SEE_OTHER);
    assert!(
        app.dir
            .get_api_token_by_hash(&stored.token_hash)
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );
}

/// Business B's admin, with A's ids in every page route: 404, nothing of A in the body, and
/// nothing of A changed.
async fn tenant_isolation_pages(b: Backend) {
    let app = App::new(b).await;
    let a = app.tenant("alpha").await;
    let bt = app.tenant("bravo").await;
    let (ext, _) = app
        .dir
        .create_extension(
            a.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Alpha Secret Desk"),
            },
            Some(web::crypto::sip_ha1("201", "alpha.pbx.test", "pw"))
                .map(|(m, s)| NewCredential {
                    username: "201".parse().unwrap(),
                    ha1_md5: m,
                    ha1_sha256: s,
                    mac_address: None,
                    model: None,
                })
                .as_ref(),
        )
        .await
        .unwrap();
    let cred = app
        .dir
        .list_credentials(a.id, ext.id)
        .await
        .unwrap()
        .remove(0);
    let num = app
        .dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(a.id))
        .await
        .unwrap();
    let tok = app
        .dir
        .create_api_token(&NewApiToken {
            tenant_id: Some(a.id),
            name: "Alpha Secret Token".into(),
            token_hash: web::crypto::token_hash("x"),
            prefix: "sbt_x".into(),
            created_by: None,
            expires_at: None,
        })
        .await
        .unwrap();
    // A ring group of A's, ringing A's extension.
    let group = app
        .dir
        .create_ring_group(
            a.id,
            &"30".parse().unwrap(),
            &RingGroupSettings::new("Alpha Secret Group", RingStrategy::Sequential),
        )
        .await
        .unwrap();
    app.dir
        .set_ring_group_members(a.id, group.id, &[RingGroupMember::Extension(ext.id)])
        .await
        .unwrap();
    // B has an extension of its own with the same number, to catch id/number mix-ups.
    app.dir
        .create_extension(
            bt.id,
            &NewExtension {
                number: "201".parse().unwrap(),
                settings: ExtensionSettings::new("Bravo desk"),
            },
            None,
        )
        .await
        .unwrap();
    // A call of A's in progress, and a bridge that hands out every call whatever it is asked.
    app.live.set(vec![
        support::active_call(1, a.id, "Alpha Secret Caller", "+442079460018", Some(30)),
        support::active_call(2, bt.id, "201", "202", None),
    ]);
    app.live.set_leaky(true);
    let mut br: Browser<'_> = app
        .signed_in(Some(bt.id), Role::Admin, "bob@bravo.test")
        .await;

    let secrets = [
        a.id.to_string(),
        ext.id.to_string(),
        cred.id.to_string(),
        num.id.to_string(),
        tok.id.to_string(),
        group.id.to_string(),
        "Alpha Secret".into(),
        "alpha".into(),
        "020 7946 0018".into(),
        "+442079460018".into(),
    ];
    for tenant in [a.id, bt.id] {
        let t = format!("/t/{tenant}");
        let e = format!("{t}/extensions/{}", ext.id);
        let g = format!("{t}/ring-groups/{}", group.id);
        let gets = [
            t.clone(),
            format!("{t}/extensions"),
            format!("{t}/extensions/new"),
            format!("{t}/numbers"),
            format!("{t}/tokens"),
            format!("{t}/active-calls"),
            format!("{t}/registrations"),
            format!("{t}/calls"),
            e.clone(),
            format!("{e}/credentials/{}/regenerate", cred.id),
            format!("{t}/tokens/{}/revoke", tok.id),
            format!("{t}/ring-groups"),
            format!("{t}/ring-groups/new"),
            g.clone(),
            format!("{g}/delete"),
        ];
        let group_form = vec![
            ("number", "31"),
            ("name", "Intruder"),
            ("strategy", "simultaneous"),
            ("ring_timeout_secs", "30"),
            ("member_timeout_secs", "15"),
            ("members", "201"),
            ("fallback", "30"),
        ];
        let posts: [(String, Vec<(&str, &str)>); 11] = [
            (format!("{e}/dnd"), vec![("dnd", "on")]),
            (
                format!("{t}/extensions"),
                vec![("number", "777"), ("display_name", "Intruder")],
            ),
            (
                e.clone(),
                vec![
                    ("display_name", "Hacked"),
                    ("no_answer_timeout_secs", "20"),
                    ("dnd", "on"),
                ],
            ),
            (
                format!("{e}/credentials/{}/regenerate", cred.id),
                vec![("confirm", "yes")],
            ),
            (
                format!("{t}/numbers/{}/route", num.id),
                vec![("extension", "201")],
            ),
            (
                format!("{t}/tokens/{}/revoke", tok.id),
                vec![("confirm", "yes")],
            ),
            (format!("{t}/tokens"), vec![("name", "Intruder")]),
            (format!("{t}/ring-groups"), group_form.clone()),
            (g.clone(), group_form.clone()),
            (format!("{g}/delete"), vec![("confirm", "yes")]),
            (
                format!("{t}/numbers/{}/route", num.id),
                vec![("extension", "30")],
            ),
        ];
        for url in gets {
            let r = br.get(&url).await;
            if tenant == bt.id
                && !url.contains(&ext.id.to_string())
                && !url.contains(&tok.id.to_string())
                && !url.contains(&group.id.to_string())
            {
                // B's own pages answer, but show nothing of A.
                assert!(
                    r.status.is_success() || r.status.is_redirection(),
                    "{url}: {}",
                    r.status
                );
            } else {
                assert_eq!(r.status, StatusCode::NOT_FOUND, "GET {url}");
            }
            for s in &secrets {
                assert!(!r.body.contains(s.as_str()), "GET {url} leaks {s}");
            }
        }
        for (url, fields) in posts {
            let r = br.post(&url, &fields).await;
            let own_collection = tenant == bt.id
                && (url.ends_with("/extensions")
                    || url.ends_with("/tokens")
                    || url.ends_with("/ring-groups"));
            if !own_collection {
                assert_eq!(r.status, StatusCode::NOT_FOUND, "POST {url}: {}", r.body);
            }
            for s in &secrets {
                assert!(!r.body.contains(s.as_str()), "POST {url} leaks {s}");
            }
        }
    }
    // Operator pages are not reachable for a business admin either.
    for url in [
        format!("/operator/tenants/{}", a.id),
        format!("/operator/tenants/{}/suspend", a.id),
        "/operator/active-calls".into(),
        "/operator/registrations".into(),
    ] {
        assert_eq!(br.get(&url).await.status, StatusCode::FORBIDDEN);
    }
    br.post(
        "/operator/numbers/assign",
        &[
            ("number", &num.id.to_string()),
            ("tenant", &bt.id.to_string()),
        ],
    )
    .await
    .assert(StatusCode::FORBIDDEN);

    // Nothing of A changed.
    let after = app.dir.get_extension(a.id, ext.id).await.unwrap();
    assert_eq!(after.settings.display_name, "Alpha Secret Desk");
    assert!(!after.settings.dnd);
    assert_eq!(
        app.dir.get_credential(a.id, cred.id).await.unwrap().ha1_md5,
        cred.ha1_md5
    );
    let n = app.dir.get_number_by_e164(&num.e164).await.unwrap();
    assert_eq!((n.tenant_id, n.route), (Some(a.id), RouteTarget::None));
    let g = app.dir.get_ring_group(a.id, group.id).await.unwrap();
    assert_eq!(g.settings.name, "Alpha Secret Group");
    assert_eq!(g.members, [RingGroupMember::Extension(ext.id)]);
    // B's own group was refused: A's group number means nothing in B.
    assert!(app.dir.list_ring_groups(bt.id).await.unwrap().is_empty());
    assert!(
        app.dir
            .get_api_token_by_hash(&tok.token_hash)
            .await
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert!(
        app.dir
            .get_extension_by_number(a.id, &"777".parse().unwrap())
            .await
            .is_err()
    );
    let _ = PASSWORD;
}

async fn member_manages_own_extension(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let (ext, _) = app
        .dir
        .create_extension(
            t.id,
            &NewExtension {
                number: "205".parse().unwrap(),
                settings: ExtensionSettings::new("Mia's desk"),
            },
            None,
        )
        .await
        .unwrap();
    let mia = app.user(Some(t.id), Role::Member, "mia@acme.test").await;
    let mut m = app.browser();
    m.login("mia@acme.test", PASSWORD)
        .await
        .assert(StatusCode::SEE_OTHER);
    // Nothing linked yet: the account page.
    assert_eq!(
        m.get("/account/extension").await.location(),
        "/account/password"
    );

    // The admin links the extension to her.
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let url = format!("/t/{}/extensions/{}", t.id, ext.id);
    let r = adm.get(&url).await;
    assert!(r.body.contains("mia@acme.test"));
    let r = adm
        .post(
            &url,
            &[
                ("display_name", "Mia's desk"),
                ("no_answer_timeout_secs", "25"),
                ("user", &UserId::new().to_string()),
            ],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    adm.post(
        &url,
        &[
            ("display_name", "Mia's desk"),
            ("no_answer_timeout_secs", "25"),
            ("user", &mia.id.to_string()),
        ],
    )
    .await
    .assert(StatusCode::OK);

    assert_eq!(m.get("/").await.location(), "/account/extension");
    let r = m.get("/account/extension").await;
    r.assert(StatusCode::OK);
    assert!(r.body.contains("205") && r.body.contains("My extension"));
    let r = m
        .post("/account/extension", &[("forward_no_answer", "bogus")])
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains(r#"id="e-forward_no_answer""#) && r.body.contains(r#"value="bogus""#));
    // Forwarding outside is an outside call the business pays for: admins only.
    let r = m
        .post(
            "/account/extension",
            &[("forward_no_answer", "07400 123456")],
        )
        .await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains(r#"id="e-forward_no_answer""#)
            && r.body
                .contains("Only an admin of your business can forward calls to an outside number"),
        "{}",
        r.body
    );
    assert_eq!(
        app.dir
            .get_extension(t.id, ext.id)
            .await
            .unwrap()
            .settings
            .forwarding
            .no_answer,
        None
    );
    // An admin sets one; the member keeps it while changing the rest.
    adm.post(
        &url,
        &[
            ("display_name", "Mia's desk"),
            ("no_answer_timeout_secs", "25"),
            ("user", &mia.id.to_string()),
            ("forward_no_answer", "07400 123456"),
        ],
    )
    .await
    .assert(StatusCode::OK);
    m.post(
        "/account/extension",
        &[
            ("dnd", "on"),
            ("forward_no_answer", "+447400123456"),
            ("forward_busy", "206"),
            ("display_name", "Renamed"),
        ],
    )
    .await
    .assert(StatusCode::OK);
    let e = app.dir.get_extension(t.id, ext.id).await.unwrap();
    assert!(e.settings.dnd);
    assert_eq!(e.settings.forwarding.busy.unwrap().to_string(), "206");
    assert_eq!(
        e.settings.display_name, "Mia's desk",
        "a member cannot rename"
    );
    assert_eq!(e.settings.user_id, Some(mia.id));
    assert_eq!(
        e.settings.forwarding.no_answer.unwrap().to_string(),
        "+447400123456"
    );
    // Their recent calls: where the extension itself is a party, not every number containing it.
    for (caller, callee) in [("205", "+447400123456"), ("2050", "201")] {
        let now = time::OffsetDateTime::now_utc();
        app.dir
            .insert_cdr(&NewCdr {
                id: CdrId::new(),
                tenant_id: t.id,
                call_id: format!("c-{caller}"),
                direction: Direction::Outbound,
                caller: caller.into(),
                callee: callee.into(),
                dialled: callee.into(),
                trunk_id: None,
                started_at: now,
                answered_at: None,
                ended_at: now,
                duration_secs: 0,
                disposition: Disposition::NoAnswer,
                hangup_cause: "timeout".into(),
                hangup_by: HangupBy::System,
                transferred_by: None,
                transferred_to: None,
            })
            .await
            .unwrap();
    }
    let r = m.get("/account/extension").await;
    assert!(
        r.body.contains("+447400123456") && !r.body.contains("2050"),
        "{}",
        r.body
    );

    // Members do not reach the admin pages.
    m.get(&format!("/t/{}/extensions", t.id))
        .await
        .assert(StatusCode::NOT_FOUND);
    m.get(&url).await.assert(StatusCode::NOT_FOUND);
}

async fn caller_id_settings(b: Backend) {
    let app = App::new(b).await;
    let t = app.tenant("acme").await;
    let other = app.tenant("other").await;
    app.dir
        .add_number(&"020 7946 0018".parse().unwrap(), Some(t.id))
        .await
        .unwrap();
    app.dir
        .add_number(&"020 7946 0019".parse().unwrap(), Some(other.id))
        .await
        .unwrap();
    let mut adm = app
        .signed_in(Some(t.id), Role::Admin, "ann@acme.test")
        .await;
    let url = format!("/t/{}/settings", t.id);
    let r = adm.get(&url).await;
    assert!(r.body.contains("020 7946 0018") && !r.body.contains("020 7946 0019"));
    // Another business's number cannot be our caller ID.
    let r = adm.post(&url, &[("main_number", "+442079460019")]).await;
    r.assert(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose one of your numbers."));
    adm.post(&url, &[("main_number", "+442079460018")])
        .await
        .assert(StatusCode::OK);
    let saved = app.dir.get_tenant(t.id).await.unwrap();
    assert_eq!(
        saved.settings.main_number.map(|n| n.to_string()),
        Some("+442079460018".into())
    );
    assert_eq!(saved.settings.max_concurrent_calls, 10, "limits untouched");
    adm.post(&url, &[("main_number", "")])
        .await
        .assert(StatusCode::OK);
    assert_eq!(
        app.dir.get_tenant(t.id).await.unwrap().settings.main_number,
        None
    );
    adm.get(&format!("/t/{}/settings", other.id))
        .await
        .assert(StatusCode::NOT_FOUND);
    adm.post(&format!("/t/{}/settings", other.id), &[("main_number", "")])
        .await
        .assert(StatusCode::NOT_FOUND);
}

both_backends!(
    admin_flow,
    tenant_isolation_pages,
    member_manages_own_extension,
    caller_id_settings
);
