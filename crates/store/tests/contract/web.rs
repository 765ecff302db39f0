//! Contract tests: the web app's sessions, API tokens and setup tokens.

use store::*;
use time::{Duration, OffsetDateTime};

use super::support::Backend;
use super::{HASH, field, tenant};

fn hash(c: char) -> TokenHash {
    c.to_string().repeat(64).parse().unwrap()
}

async fn user(d: &dyn Directory, t: Option<TenantId>, email: &str) -> User {
    d.create_user(&NewUser {
        tenant_id: t,
        email: email.parse().unwrap(),
        display_name: "Someone".into(),
        role: if t.is_some() {
            Role::Admin
        } else {
            Role::Operator
        },
        password_hash: HASH.parse().unwrap(),
    })
    .await
    .unwrap()
}

fn session(id: char, u: UserId, expires_at: OffsetDateTime) -> NewWebSession {
    NewWebSession {
        id_hash: hash(id),
        user_id: u,
        csrf_token: "c".repeat(43),
        expires_at,
        ip: Some("192.0.2.1".into()),
        user_agent: Some("x".repeat(600)),
    }
}

pub async fn web_sessions(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let alice = user(d, Some(a.id), "alice@acme.test").await;
    let now = OffsetDateTime::now_utc();

    let s = d
        .create_web_session(&session('a', alice.id, now + Duration::hours(8)))
        .await
        .unwrap();
    assert_eq!(s.user_agent.as_ref().map(|u| u.len()), Some(512));
    let (got, who) = d.get_web_session(&hash('a'), now).await.unwrap();
    assert_eq!(
        (got, who.id, who.tenant_id),
        (s.clone(), alice.id, Some(a.id))
    );

    // Expired sessions are not found; touching slides the expiry.
    assert!(
        d.get_web_session(&hash('a'), now + Duration::hours(9))
            .await
            .unwrap_err()
            .is_not_found()
    );
    d.touch_web_session(
        &hash('a'),
        now + Duration::hours(1),
        now + Duration::hours(10),
    )
    .await
    .unwrap();
    assert!(
        d.get_web_session(&hash('a'), now + Duration::hours(9))
            .await
            .is_ok()
    );
    assert!(
        d.get_web_session(&hash('b'), now)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // Sign out everywhere but here; expired clean-up; single sign-out.
    d.create_web_session(&session('b', alice.id, now + Duration::hours(8)))
        .await
        .unwrap();
    d.create_web_session(&session('c', alice.id, now - Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(d.delete_expired_web_sessions(now).await.unwrap(), 1);
    assert_eq!(
        d.delete_user_web_sessions(alice.id, Some(&hash('a')))
            .await
            .unwrap(),
        1
    );
    assert!(d.get_web_session(&hash('b'), now).await.is_err());
    assert!(d.delete_web_session(&hash('a')).await.unwrap());
    assert!(!d.delete_web_session(&hash('a')).await.unwrap());

    assert_eq!(
        field(
            d.create_web_session(&session('d', UserId::new(), now + Duration::hours(1)))
                .await
        ),
        ("invalid", Some("user_id"))
    );
}

pub async fn web_api_tokens(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let alice = user(d, Some(a.id), "alice@acme.test").await;
    let new = |t: Option<TenantId>, h: char, name: &str| NewApiToken {
        tenant_id: t,
        name: name.into(),
        token_hash: hash(h),
        prefix: "sbt_abcd".into(),
        created_by: None,
        expires_at: None,
    };
    let ta = d
        .create_api_token(&NewApiToken {
            created_by: Some(alice.id),
            ..new(Some(a.id), 'a', " CRM sync ")
        })
        .await
        .unwrap();
    assert_eq!(ta.name, "CRM sync");
    let tb = d
        .create_api_token(&new(Some(bt.id), 'b', "bravo"))
        .await
        .unwrap();
    let op = d
        .create_api_token(&new(None, 'c', "billing"))
        .await
        .unwrap();
    assert_eq!(
        field(d.create_api_token(&new(Some(a.id), 'd', "  ")).await),
        ("invalid", Some("name"))
    );

    assert_eq!(d.get_api_token_by_hash(&hash('a')).await.unwrap(), ta);
    assert_eq!(
        ta.creator,
        Some(TokenCreator {
            id: alice.id,
            tenant_id: Some(a.id),
            role: Role::Admin,
            disabled: false,
        })
    );
    assert_eq!(tb.creator, None, "no creator recorded");
    assert_eq!(ta.expires_at, None);
    let ids = |v: Vec<ApiToken>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(d.list_api_tokens(Some(a.id)).await.unwrap()),
        vec![ta.id]
    );
    assert_eq!(ids(d.list_api_tokens(None).await.unwrap()), vec![op.id]);

    // Revoking is scoped: another tenant's token, or an operator token from a tenant, is NotFound.
    let now = OffsetDateTime::now_utc();
    assert!(
        d.revoke_api_token(Some(a.id), tb.id, now)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.revoke_api_token(Some(a.id), op.id, now)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.revoke_api_token(None, ta.id, now)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.get_api_token_by_hash(&hash('b'))
            .await
            .unwrap()
            .revoked_at
            .is_none()
    );
    let r = d.revoke_api_token(Some(a.id), ta.id, now).await.unwrap();
    assert!(r.revoked_at.is_some());
    let again = d
        .revoke_api_token(Some(a.id), ta.id, now + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        again.revoked_at, r.revoked_at,
        "revoking twice keeps the first time"
    );

    // Expiry is stored; the creator is read as they are now.
    let until = OffsetDateTime::now_utc() + Duration::days(30);
    let te = d
        .create_api_token(&NewApiToken {
            created_by: Some(alice.id),
            expires_at: Some(until),
            ..new(Some(a.id), 'e', "expiring")
        })
        .await
        .unwrap();
    let micros = |t: OffsetDateTime| t.unix_timestamp_nanos() / 1000;
    assert_eq!(te.expires_at.map(micros), Some(micros(until)));
    d.set_user_role(a.id, alice.id, Role::Member).await.unwrap();
    let demoted = d.get_api_token_by_hash(&hash('e')).await.unwrap();
    assert_eq!(demoted.creator.map(|c| c.role), Some(Role::Member));
    d.set_user_disabled(Some(a.id), alice.id, true)
        .await
        .unwrap();
    let disabled = d.get_api_token_by_hash(&hash('e')).await.unwrap();
    assert!(disabled.creator.is_some_and(|c| c.disabled));
    assert_eq!(d.list_api_tokens(Some(a.id)).await.unwrap().len(), 2);

    d.touch_api_token(tb.id, now).await.unwrap();
    assert!(
        d.get_api_token_by_hash(&hash('b'))
            .await
            .unwrap()
            .last_used_at
            .is_some()
    );
}

pub async fn web_setup_tokens(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let now = OffsetDateTime::now_utc();
    d.create_setup_token(&hash('a'), now + Duration::hours(1))
        .await
        .unwrap();
    d.create_setup_token(&hash('b'), now - Duration::minutes(1))
        .await
        .unwrap();
    assert!(d.setup_token_valid(&hash('a'), now).await.unwrap());
    assert!(!d.setup_token_valid(&hash('b'), now).await.unwrap());
    assert!(!d.setup_token_valid(&hash('c'), now).await.unwrap());

    let op = |email: &str| NewUser {
        tenant_id: None,
        email: email.parse().unwrap(),
        display_name: "Olga".into(),
        role: Role::Operator,
        password_hash: HASH.parse().unwrap(),
    };
    assert!(
        d.redeem_setup_token(&hash('b'), now, &op("o@x.test"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    let olga = d
        .redeem_setup_token(&hash('a'), now, &op("o@x.test"))
        .await
        .unwrap();
    assert_eq!((olga.role, olga.tenant_id), (Role::Operator, None));
    assert_eq!(d.list_operators().await.unwrap().len(), 1);
    // Used once; a second valid token cannot make a second operator.
    assert!(!d.setup_token_valid(&hash('a'), now).await.unwrap());
    assert!(
        d.redeem_setup_token(&hash('a'), now, &op("p@x.test"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    d.create_setup_token(&hash('d'), now + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        field(d.redeem_setup_token(&hash('d'), now, &op("p@x.test")).await),
        ("conflict", Some("setup"))
    );
    assert!(
        d.setup_token_valid(&hash('d'), now).await.unwrap(),
        "a refused redeem is rolled back"
    );
    assert_eq!(d.list_operators().await.unwrap().len(), 1);
}

pub async fn web_user_extension(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let mia = user(d, Some(a.id), "mia@acme.test").await;
    assert_eq!(d.find_user_extension(a.id, mia.id).await.unwrap(), None);
    let mut settings = ExtensionSettings::new("Mia");
    settings.user_id = Some(mia.id);
    let (e, _) = d
        .create_extension(
            a.id,
            &NewExtension {
                number: "205".parse().unwrap(),
                settings,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        d.find_user_extension(a.id, mia.id).await.unwrap(),
        Some(e.id)
    );
    // Scoped by tenant: the same user id asked about in another tenant finds nothing.
    assert_eq!(d.find_user_extension(bt.id, mia.id).await.unwrap(), None);
}

pub async fn web_user_roles(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let ann = user(d, Some(a.id), "ann@acme.test").await;
    assert_eq!(ann.role, Role::Admin);
    let m = d.set_user_role(a.id, ann.id, Role::Member).await.unwrap();
    assert_eq!(m.role, Role::Member);
    assert_eq!(d.get_user(a.id, ann.id).await.unwrap().role, Role::Member);
    assert_eq!(
        field(d.set_user_role(a.id, ann.id, Role::Operator).await),
        ("invalid", Some("role"))
    );
    // Another tenant's id: not found, and unchanged.
    assert!(
        d.set_user_role(bt.id, ann.id, Role::Admin)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(d.get_user(a.id, ann.id).await.unwrap().role, Role::Member);
}

pub async fn web_login_attempts(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let t0 = OffsetDateTime::now_utc();
    let window = Duration::minutes(15);
    let keys = [("pair:192.0.2.1 x", 3), ("addr:192.0.2.1", 5)];
    for i in 0..3 {
        assert_eq!(
            d.count_login_attempt(&keys, window, t0 + Duration::seconds(i))
                .await
                .unwrap(),
            None,
            "attempt {i} within the limit"
        );
    }
    let retry = d
        .count_login_attempt(&keys, window, t0 + Duration::seconds(10))
        .await
        .unwrap()
        .expect("the pair is over its limit");
    assert!(
        (retry - (t0 + window)).abs() < Duration::milliseconds(1),
        "{retry} is the end of the first window"
    );
    // Another pair from the same address is still allowed (the address has 4 of 5)...
    let other = [("pair:192.0.2.1 y", 3), ("addr:192.0.2.1", 5)];
    assert_eq!(
        d.count_login_attempt(&other, window, t0).await.unwrap(),
        None
    );
    // ...and a success clears its pair and gives the address its attempt back.
    d.login_succeeded("pair:192.0.2.1 y", "addr:192.0.2.1")
        .await
        .unwrap();
    assert_eq!(
        d.count_login_attempt(&other, window, t0).await.unwrap(),
        None
    );
    assert!(
        d.count_login_attempt(&other, window, t0)
            .await
            .unwrap()
            .is_some(),
        "now the address has had 6"
    );
    // After the window a count starts again.
    let later = t0 + window + Duration::seconds(1);
    assert_eq!(
        d.count_login_attempt(&keys, window, later).await.unwrap(),
        None
    );

    // Parallel increments are never lost: exactly the limit's worth get through.
    let fresh = [("pair:198.51.100.1 z", 5)];
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let dir = db.dir.clone();
            tokio::spawn(async move {
                dir.count_login_attempt(&fresh, window, t0)
                    .await
                    .unwrap()
                    .is_none()
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += u32::from(t.await.unwrap());
    }
    assert_eq!(allowed, 5);

    assert_eq!(
        field(
            d.count_login_attempt(&[(&"k".repeat(201), 1)], window, t0)
                .await
        ),
        ("invalid", Some("key"))
    );
    assert!(d.delete_stale_login_attempts(later).await.unwrap() >= 2);
    assert_eq!(
        d.count_login_attempt(&fresh, window, later).await.unwrap(),
        None,
        "stale counts are gone"
    );
}

pub async fn web_audit_log(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let o = tenant(d, "other").await;
    let entry = |t: Option<TenantId>, action: &str, subject: &str| NewAuditEntry {
        tenant_id: t,
        actor: "ann@acme.test".into(),
        action: action.into(),
        subject: subject.into(),
        detail: "routed to extension 201; was not routed".into(),
    };
    let first = d
        .append_audit(&entry(Some(a.id), "number.route", "+44 20 7946 0018"))
        .await
        .unwrap();
    assert_eq!(first.actor, "ann@acme.test");
    assert_eq!(first.tenant_id, Some(a.id));
    d.append_audit(&entry(Some(o.id), "extension.delete", "extension 202"))
        .await
        .unwrap();
    d.append_audit(&entry(None, "trunk.delete", "BT SIP"))
        .await
        .unwrap();
    let last = d
        .append_audit(&entry(Some(a.id), "user.role", "bob@acme.test"))
        .await
        .unwrap();

    // A business sees its own entries, newest first; the operator sees all of them.
    let mine = d.list_audit(Some(a.id), Page::first(10)).await.unwrap();
    assert_eq!(mine.total, 2);
    assert_eq!(mine.items, vec![last.clone(), first.clone()]);
    let all = d.list_audit(None, Page::first(10)).await.unwrap();
    assert_eq!(all.total, 4);
    assert_eq!(all.items.first(), Some(&last));
    assert_eq!(all.items.last(), Some(&first));
    let page2 = d.list_audit(None, Page::new(2, 2)).await.unwrap();
    assert_eq!((page2.total, page2.items.len()), (4, 2));
    assert_eq!(page2.items[1], first);
    assert!(
        d.list_audit(Some(TenantId::new()), Page::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Over-long texts are capped, not refused; a change must always be recorded.
    let long = d
        .append_audit(&NewAuditEntry {
            subject: "s".repeat(400),
            detail: "d".repeat(2000),
            ..entry(Some(a.id), "number.route", "")
        })
        .await
        .unwrap();
    assert_eq!(
        (long.subject.chars().count(), long.detail.chars().count()),
        (300, 1000)
    );
    assert_eq!(
        d.list_audit(Some(a.id), Page::first(1))
            .await
            .unwrap()
            .items,
        vec![long]
    );
    // Who and what are required; an unknown business is refused by field.
    let nobody = NewAuditEntry {
        actor: "  ".into(),
        ..entry(Some(a.id), "number.route", "x")
    };
    assert_eq!(
        field(d.append_audit(&nobody).await),
        ("invalid", Some("actor"))
    );
    assert_eq!(
        field(d.append_audit(&entry(Some(a.id), "", "x")).await),
        ("invalid", Some("action"))
    );
    assert_eq!(
        field(
            d.append_audit(&entry(Some(TenantId::new()), "number.route", "x"))
                .await
        ),
        ("invalid", Some("tenant_id"))
    );
}
