//! Contract tests: lifecycle, tenants and users.

use store::*;

use super::support::Backend;
use super::{HASH, e164, field, new_tenant, tenant};

// ------------------------------------------------------------------ lifecycle

pub async fn health_before_and_after_migrate(b: Backend) {
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

pub async fn tenants_and_users(b: Backend) {
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
    assert_eq!(s.time_zone, "Europe/London", "the default zone");
    s.time_zone = "America/New_York".into();
    let updated = d.update_tenant(a.id, &s).await.unwrap();
    assert_eq!(updated.settings, s);
    assert_eq!(
        d.get_tenant(a.id).await.unwrap().settings.time_zone,
        "America/New_York"
    );
    // A name the tz database does not know, or a bare abbreviation, is refused by field.
    for bad in ["Europe/Londres", "BST", ""] {
        let mut z = s.clone();
        z.time_zone = bad.into();
        assert_eq!(
            field(d.update_tenant(a.id, &z).await),
            ("invalid", Some("time_zone")),
            "{bad}"
        );
    }
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
