//! Contract tests: extensions, credentials, short numbers, bulk import.

use std::time::Instant;

use store::*;

use super::support::Backend;
use super::{HASH, ext, field, new_cred, new_ext, tenant};

// ------------------------------------------------------------------ extensions and credentials

pub async fn extensions_and_credentials(b: Backend) {
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
    s.no_answer_timeout_secs = 15;
    // The per-extension concurrent-call limit: 8 by default, 1..=1000.
    assert_eq!(
        e201.settings.max_concurrent_calls,
        ExtensionSettings::DEFAULT_CALL_LIMIT
    );
    s.max_concurrent_calls = 60;
    let up = d.update_extension(a.id, e201.id, &s).await.unwrap();
    assert_eq!(up.settings.max_concurrent_calls, 60);
    assert_eq!(
        d.get_extension(a.id, e201.id)
            .await
            .unwrap()
            .settings
            .max_concurrent_calls,
        60
    );
    for bad in [0, 1001] {
        s.max_concurrent_calls = bad;
        assert_eq!(
            field(d.update_extension(a.id, e201.id, &s).await),
            ("invalid", Some("max_concurrent_calls"))
        );
    }
    s.max_concurrent_calls = 60;
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

    // Credentials: second device, regenerate, delete.
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

pub async fn list_search_and_pagination(b: Backend) {
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

pub async fn one_number_one_target(b: Backend) {
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

pub async fn import_is_all_or_nothing(b: Backend) {
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

pub async fn import_a_thousand_rows(b: Backend) {
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

/// Listing stays an indexed, paginated query at 10,000 extensions (timings printed, not asserted).
pub async fn list_ten_thousand(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let rows: Vec<ImportExtension> = (0..10_000)
        .map(|i| ImportExtension {
            extension: new_ext(&format!("{}", 10_000 + i)),
            credential: None,
        })
        .collect();
    let started = Instant::now();
    d.import_extensions(a.id, &rows).await.unwrap();
    let import = started.elapsed();

    let started = Instant::now();
    let first = d
        .list_extensions(a.id, None, Page::new(50, 0))
        .await
        .unwrap();
    let first_page = started.elapsed();
    assert_eq!(
        (first.total, first.items[0].number.as_str()),
        (10_000, "10000")
    );

    let started = Instant::now();
    let deep = d
        .list_extensions(a.id, None, Page::new(50, 9_950))
        .await
        .unwrap();
    let last_page = started.elapsed();
    assert_eq!(deep.items.last().unwrap().number.as_str(), "19999");

    let started = Instant::now();
    let hits = d
        .list_extensions(a.id, Some("1234"), Page::new(50, 0))
        .await
        .unwrap();
    let search = started.elapsed();
    // 11234 and 12340..=12349
    assert_eq!(hits.total, 11);

    let started = Instant::now();
    d.get_extension_by_number(a.id, &"15000".parse().unwrap())
        .await
        .unwrap();
    let by_number = started.elapsed();
    println!(
        "{b:?}: 10,000 extensions: import {import:?}, first page {first_page:?}, last page {last_page:?}, \
         search {search:?}, by number {by_number:?}"
    );
}

/// Concurrent writers queue (SQLite: BEGIN IMMEDIATE + busy timeout) instead of failing.
pub async fn concurrent_writers(b: Backend) {
    let db = b.open().await;
    let a = tenant(&*db.dir, "acme").await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let dir = db.dir.clone();
        tasks.push(tokio::spawn(async move {
            let number = format!("{}", 300 + i);
            let cred = new_cred(&format!("u{number}"));
            dir.create_extension(a.id, &new_ext(&number), Some(&cred))
                .await
                .map(|_| ())?;
            dir.list_extensions(a.id, None, Page::default())
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let all = db
        .dir
        .list_extensions(a.id, None, Page::default())
        .await
        .unwrap();
    assert_eq!(all.total, 24);
}
