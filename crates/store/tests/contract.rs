//! The store contract: the same tests against PostgreSQL and SQLite.

#[macro_use]
mod support;

use std::time::Instant;

use store::*;
use support::Backend;
use time::{Duration, OffsetDateTime};

// ------------------------------------------------------------------ fixtures

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn new_tenant(slug: &str) -> NewTenant {
    NewTenant {
        slug: slug.parse().unwrap(),
        sip_domain: format!("{slug}.pbx.test").parse().unwrap(),
        settings: TenantSettings::new(format!("{slug} Ltd")),
    }
}

async fn tenant(d: &dyn Directory, slug: &str) -> Tenant {
    d.create_tenant(&new_tenant(slug)).await.unwrap()
}

fn new_ext(number: &str) -> NewExtension {
    NewExtension {
        number: number.parse().unwrap(),
        settings: ExtensionSettings::new(format!("Desk {number}")),
    }
}

fn new_cred(username: &str) -> NewCredential {
    NewCredential {
        username: username.parse().unwrap(),
        ha1_md5: "5f4dcc3b5aa765d61d8327deb882cf99".parse().unwrap(),
        ha1_sha256: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
            .parse()
            .unwrap(),
        mac_address: None,
        model: None,
    }
}

async fn ext(d: &dyn Directory, t: TenantId, number: &str) -> Extension {
    d.create_extension(t, &new_ext(number), None)
        .await
        .unwrap()
        .0
}

fn e164(s: &str) -> E164 {
    s.parse().unwrap()
}

fn field(r: Result<impl std::fmt::Debug, StoreError>) -> (&'static str, Option<&'static str>) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e @ StoreError::Conflict { .. }) => ("conflict", e.field()),
        Err(e @ StoreError::Invalid { .. }) => ("invalid", e.field()),
        Err(StoreError::NotFound { .. }) => ("not_found", None),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

// ------------------------------------------------------------------ lifecycle

async fn health_before_and_after_migrate(b: Backend) {
    let db = b.open_unmigrated().await;
    let h = db.dir.health().await;
    assert!(h.reachable, "{h:?}");
    assert!(
        h.applied.is_empty() && !h.pending.is_empty() && !h.is_ok(),
        "{h:?}"
    );
    db.dir.migrate().await.unwrap();
    let h = db.dir.health().await;
    assert!(h.is_ok(), "{h:?}");
    assert!(h.pending.is_empty() && !h.applied.is_empty());
    // Migrating again is a no-op.
    db.dir.migrate().await.unwrap();
    assert!(db.dir.health().await.is_ok());
}

// ------------------------------------------------------------------ tenants and users

async fn tenants_and_users(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    assert_eq!(d.get_tenant(a.id).await.unwrap(), a);
    assert_eq!(
        d.get_tenant_by_domain(&"ACME.pbx.test".parse().unwrap())
            .await
            .unwrap()
            .id,
        a.id
    );
    let mut same_slug = new_tenant("acme");
    same_slug.sip_domain = "elsewhere.test".parse().unwrap();
    assert_eq!(
        field(d.create_tenant(&same_slug).await),
        ("conflict", Some("slug"))
    );
    let mut same_domain = new_tenant("other");
    same_domain.sip_domain = a.sip_domain.clone();
    assert_eq!(
        field(d.create_tenant(&same_domain).await),
        ("conflict", Some("sip_domain"))
    );
    for slug in ["b1", "b2", "b3"] {
        tenant(d, slug).await;
    }
    let page = d.list_tenants(Page::new(2, 1)).await.unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(page.items.len(), 2);

    let mut s = a.settings.clone();
    s.max_outside_calls = 3;
    s.allow_international = true;
    s.main_number = Some(e164("020 7946 0018"));
    let updated = d.update_tenant(a.id, &s).await.unwrap();
    assert_eq!(updated.settings, s);
    assert!(d.set_tenant_suspended(a.id, true).await.unwrap().suspended);
    assert!(
        d.get_tenant(TenantId::new())
            .await
            .unwrap_err()
            .is_not_found()
    );

    // Users: operators have no tenant, admins and members have one.
    let op = NewUser {
        tenant_id: None,
        email: "Root@Example.com".parse().unwrap(),
        display_name: "Root".into(),
        role: Role::Operator,
        password_hash: HASH.parse().unwrap(),
    };
    let op = d.create_user(&op).await.unwrap();
    assert_eq!(
        d.get_user_by_email(&"root@example.com".parse().unwrap())
            .await
            .unwrap(),
        op
    );
    let bad = NewUser {
        tenant_id: Some(a.id),
        email: "x@example.com".parse().unwrap(),
        ..new_user_of(&op)
    };
    assert_eq!(
        field(d.create_user(&bad).await),
        ("invalid", Some("tenant_id"))
    );
    let member = NewUser {
        tenant_id: Some(a.id),
        email: "ann@acme.test".parse().unwrap(),
        display_name: "Ann".into(),
        role: Role::Member,
        password_hash: HASH.parse().unwrap(),
    };
    let ann = d.create_user(&member).await.unwrap();
    assert_eq!(
        field(d.create_user(&member).await),
        ("conflict", Some("email"))
    );
    assert_eq!(d.list_users(a.id).await.unwrap(), vec![ann.clone()]);
    assert_eq!(d.list_operators().await.unwrap().len(), 1);
    d.set_user_disabled(Some(a.id), ann.id, true).await.unwrap();
    d.set_user_password_hash(None, op.id, &"$argon2id$v=19$new".parse().unwrap())
        .await
        .unwrap();
    assert!(d.get_user(a.id, ann.id).await.unwrap().disabled);
    // Scoped: the operator is not a user of tenant A; Ann is not an operator.
    assert!(d.get_user(a.id, op.id).await.unwrap_err().is_not_found());
    assert!(
        d.set_user_disabled(None, ann.id, false)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

fn new_user_of(u: &User) -> NewUser {
    NewUser {
        tenant_id: u.tenant_id,
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        role: u.role,
        password_hash: u.password_hash.clone(),
    }
}

// ------------------------------------------------------------------ extensions and credentials

async fn extensions_and_credentials(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let mut cred = new_cred("201");
    cred.mac_address = Some("00:11:22:AA:BB:CC".parse().unwrap());
    let (e201, c201) = d
        .create_extension(a.id, &new_ext("201"), Some(&cred))
        .await
        .unwrap();
    let c201 = c201.unwrap();
    assert_eq!(c201.extension_number.as_str(), "201");
    assert_eq!(
        field(d.create_extension(a.id, &new_ext("201"), None).await),
        ("conflict", Some("number"))
    );
    // The same number in another tenant is fine; the same username too (per-tenant domain).
    let (e201b, _) = d
        .create_extension(bt.id, &new_ext("201"), Some(&new_cred("201")))
        .await
        .unwrap();
    // A failed credential rolls the extension back.
    assert_eq!(
        field(
            d.create_extension(a.id, &new_ext("202"), Some(&new_cred("201")))
                .await
        ),
        ("conflict", Some("username"))
    );
    assert!(
        d.get_extension_by_number(a.id, &"202".parse().unwrap())
            .await
            .unwrap_err()
            .is_not_found()
    );
    // MAC addresses are unique platform-wide.
    let mut dup_mac = new_cred("b-202");
    dup_mac.mac_address = cred.mac_address.clone();
    assert_eq!(
        field(
            d.create_extension(bt.id, &new_ext("202"), Some(&dup_mac))
                .await
        ),
        ("conflict", Some("mac_address"))
    );

    assert_eq!(d.get_extension(a.id, e201.id).await.unwrap(), e201);
    assert_eq!(
        d.get_extension_by_number(a.id, &"201".parse().unwrap())
            .await
            .unwrap(),
        e201
    );
    assert_eq!(
        d.get_credential_by_username(a.id, &"201".parse().unwrap())
            .await
            .unwrap(),
        c201
    );
    assert_eq!(
        d.get_credential_by_mac(&"001122aabbcc".parse().unwrap())
            .await
            .unwrap()
            .id,
        c201.id
    );
    assert_eq!(
        d.list_credentials(a.id, e201.id).await.unwrap(),
        vec![c201.clone()]
    );

    // Tenant scoping: B cannot see, change or delete A's extension or credential.
    assert!(
        d.get_extension(bt.id, e201.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let s = ExtensionSettings::new("hijacked");
    assert!(
        d.update_extension(bt.id, e201.id, &s)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.delete_extension(bt.id, e201.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.get_credential(bt.id, c201.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.create_credential(bt.id, e201.id, &new_cred("sneaky"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.touch_credential(bt.id, c201.id, OffsetDateTime::now_utc())
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(d.list_credentials(bt.id, e201.id).await.unwrap().is_empty());

    // Update forwarding and DND.
    let mut s = e201.settings.clone();
    s.dnd = true;
    s.forwarding.busy = Some("07400 123456".parse().unwrap());
    s.forwarding.no_answer = Some("300".parse().unwrap());
    s.no_answer_timeout_secs = 15;
    let up = d.update_extension(a.id, e201.id, &s).await.unwrap();
    assert_eq!(d.get_extension(a.id, e201.id).await.unwrap(), up);
    s.forwarding.always = Some("201".parse().unwrap());
    assert_eq!(
        field(d.update_extension(a.id, e201.id, &s).await),
        ("invalid", Some("forward_always"))
    );
    s.forwarding.always = None;
    s.no_answer_timeout_secs = 4;
    assert_eq!(
        field(d.update_extension(a.id, e201.id, &s).await),
        ("invalid", Some("no_answer_timeout_secs"))
    );
    // A user of another tenant cannot own this extension.
    let bob = d
        .create_user(&NewUser {
            tenant_id: Some(bt.id),
            email: "bob@bravo.test".parse().unwrap(),
            display_name: "Bob".into(),
            role: Role::Admin,
            password_hash: HASH.parse().unwrap(),
        })
        .await
        .unwrap();
    let mut s = up.settings.clone();
    s.user_id = Some(bob.id);
    assert_eq!(
        field(d.update_extension(a.id, e201.id, &s).await),
        ("invalid", Some("user_id"))
    );
    assert!(d.update_extension(bt.id, e201b.id, &s).await.is_ok());

    // Credentials: second device, regenerate, touch, delete.
    let c2 = d
        .create_credential(a.id, e201.id, &new_cred("201-desk"))
        .await
        .unwrap();
    assert_eq!(d.list_credentials(a.id, e201.id).await.unwrap().len(), 2);
    let md5: Ha1Md5 = "00000000000000000000000000000001".parse().unwrap();
    let sha: Ha1Sha256 = "1".repeat(64).parse().unwrap();
    let re = d
        .regenerate_credential(a.id, c2.id, &md5, &sha)
        .await
        .unwrap();
    assert_eq!((re.ha1_md5, re.ha1_sha256), (md5, sha));
    let seen = OffsetDateTime::now_utc();
    d.touch_credential(a.id, c2.id, seen).await.unwrap();
    let got = d
        .get_credential(a.id, c2.id)
        .await
        .unwrap()
        .last_seen_at
        .unwrap();
    assert!((got - seen).abs() < Duration::milliseconds(1));
    d.delete_credential(a.id, c2.id).await.unwrap();

    // Delete frees the number (and cascades the credentials).
    d.delete_extension(a.id, e201.id).await.unwrap();
    assert!(
        d.get_credential(a.id, c201.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    ext(d, a.id, "201").await;
}

async fn list_search_and_pagination(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    for n in ["305", "101", "2001", "204"] {
        ext(d, a.id, n).await;
    }
    let mut s = ExtensionSettings::new("Reception Desk");
    s.no_answer_timeout_secs = 30;
    d.create_extension(
        a.id,
        &NewExtension {
            number: "99".parse().unwrap(),
            settings: s,
        },
        None,
    )
    .await
    .unwrap();
    let all = d
        .list_extensions(a.id, None, Page::default())
        .await
        .unwrap();
    let numbers: Vec<_> = all.items.iter().map(|e| e.number.as_str()).collect();
    assert_eq!(numbers, ["101", "2001", "204", "305", "99"]);
    assert_eq!(all.total, 5);
    let p = d
        .list_extensions(a.id, None, Page::new(2, 2))
        .await
        .unwrap();
    assert_eq!(
        p.items
            .iter()
            .map(|e| e.number.as_str())
            .collect::<Vec<_>>(),
        ["204", "305"]
    );
    assert_eq!(p.total, 5);
    let hit = d
        .list_extensions(a.id, Some("recep"), Page::default())
        .await
        .unwrap();
    assert_eq!((hit.total, hit.items[0].number.as_str()), (1, "99"));
    let hit = d
        .list_extensions(a.id, Some("20"), Page::default())
        .await
        .unwrap();
    assert_eq!(hit.total, 2);
    // LIKE wildcards in the search are literal.
    assert_eq!(
        d.list_extensions(a.id, Some("%"), Page::default())
            .await
            .unwrap()
            .total,
        0
    );
    let other = tenant(d, "bravo").await;
    assert_eq!(
        d.list_extensions(other.id, None, Page::default())
            .await
            .unwrap()
            .total,
        0
    );
}

async fn one_number_one_target(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let e = ext(d, a.id, "200").await;
    let n = |s: &str| s.parse::<ExtensionNumber>().unwrap();
    let rg = RingGroupSettings::new("Sales", RingStrategy::Simultaneous);
    assert_eq!(
        field(d.create_ring_group(a.id, &n("200"), &rg).await),
        ("conflict", Some("number"))
    );
    assert_eq!(
        field(d.create_ivr_menu(a.id, &n("200"), "Main").await),
        ("conflict", Some("number"))
    );
    assert_eq!(
        field(
            d.create_conference_room(a.id, &n("200"), "Room", None)
                .await
        ),
        ("conflict", Some("number"))
    );
    let g = d.create_ring_group(a.id, &n("600"), &rg).await.unwrap();
    assert_eq!(
        field(d.create_extension(a.id, &new_ext("600"), None).await),
        ("conflict", Some("number"))
    );
    let ivr = d
        .create_ivr_menu(a.id, &n("700"), "Main menu")
        .await
        .unwrap();
    let room = d
        .create_conference_room(a.id, &n("800"), "Board", Some(&"1234".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        d.resolve_dialable(a.id, &n("200")).await.unwrap(),
        RouteTarget::Extension(e.id)
    );
    assert_eq!(
        d.resolve_dialable(a.id, &n("600")).await.unwrap(),
        RouteTarget::RingGroup(g.id)
    );
    assert_eq!(
        d.resolve_dialable(a.id, &n("700")).await.unwrap(),
        RouteTarget::Ivr(ivr.id)
    );
    assert_eq!(
        d.resolve_dialable(a.id, &n("800")).await.unwrap(),
        RouteTarget::Conference(room.id)
    );
    assert!(
        d.resolve_dialable(a.id, &n("900"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(d.list_ivr_menus(a.id).await.unwrap(), vec![ivr]);
    assert_eq!(d.list_conference_rooms(a.id).await.unwrap(), vec![room]);
    // Deleting the ring group frees its number for an extension.
    d.delete_ring_group(a.id, g.id).await.unwrap();
    ext(d, a.id, "600").await;
}

// ------------------------------------------------------------------ bulk import

fn import_rows(n: usize) -> Vec<ImportExtension> {
    (0..n)
        .map(|i| {
            let number = format!("{}", 1000 + i);
            ImportExtension {
                extension: new_ext(&number),
                credential: Some(new_cred(&format!("u{number}"))),
            }
        })
        .collect()
}

async fn import_is_all_or_nothing(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    ext(d, a.id, "1007").await;
    let rows = import_rows(20);
    match d.import_extensions(a.id, &rows).await {
        Err(StoreError::Row { index, error }) => {
            assert_eq!(index, 7);
            assert_eq!(error.field(), Some("number"), "{error}");
            assert!(matches!(*error, StoreError::Conflict { .. }));
        }
        other => panic!("expected a row error, got {other:?}"),
    }
    assert_eq!(
        d.list_extensions(a.id, None, Page::default())
            .await
            .unwrap()
            .total,
        1
    );
    // A duplicate inside the batch (username this time) is reported at its second occurrence.
    let mut rows = import_rows(10);
    rows[6].credential = Some(new_cred("u1002"));
    let err = d.import_extensions(a.id, &rows[..]).await.unwrap_err();
    assert!(matches!(err, StoreError::Row { index: 6, .. }), "{err:?}");
    assert_eq!(err.field(), Some("username"));
    assert!(err.to_string().starts_with("row 7"), "{err}");
    assert_eq!(
        d.list_extensions(a.id, None, Page::default())
            .await
            .unwrap()
            .total,
        1
    );
}

async fn import_a_thousand_rows(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let rows = import_rows(1000);
    let started = Instant::now();
    let out = d.import_extensions(a.id, &rows).await.unwrap();
    let elapsed = started.elapsed();
    println!("{b:?}: imported 1,000 extensions with credentials in {elapsed:?}");
    assert_eq!(out.len(), 1000);
    let page = d
        .list_extensions(a.id, None, Page::new(1000, 0))
        .await
        .unwrap();
    assert_eq!(page.total, 1000);
    assert_eq!(page.items.first().unwrap().number.as_str(), "1000");
    assert_eq!(page.items.last().unwrap().number.as_str(), "1999");
    let c = d
        .get_credential_by_username(a.id, &"u1500".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(c.extension_number.as_str(), "1500");
}

#[path = "contract/routing.rs"]
mod routing;
#[path = "contract/schema.rs"]
mod schema;
#[path = "contract/web.rs"]
mod web;
use routing::*;
use schema::*;
use web::*;

contract_tests!(
    health_before_and_after_migrate,
    tenants_and_users,
    extensions_and_credentials,
    list_search_and_pagination,
    one_number_one_target,
    import_is_all_or_nothing,
    import_a_thousand_rows,
    numbers_and_routes,
    ring_groups,
    trunks,
    schema_refuses_bad_rows,
    registrations,
    cdrs,
    web_sessions,
    web_api_tokens,
    web_setup_tokens,
);

/// With nothing listening, the store says `Unavailable` (what the engine buffers CDRs on) and
/// `health()` says unreachable, instead of failing in some other way.
#[tokio::test]
async fn postgres_down_is_unavailable() {
    let d = store::connect("postgres://postgres@127.0.0.1:1/nothing")
        .await
        .unwrap();
    let h = d.health().await;
    assert!(!h.reachable && !h.is_ok(), "{h:?}");
    let err = d.get_tenant(TenantId::new()).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}
