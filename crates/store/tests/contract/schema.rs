//! Contract tests: the schema's own rules (raw SQL past the store), registrations, CDRs.

use std::net::SocketAddr;

use store::*;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::support::{Backend, V};
use super::{HASH, ext, field, new_cred, tenant};

/// Asserts the good statement is accepted and the bad one refused (so the refusal is the rule,
/// not a typo in the test).
async fn refuses(
    db: &super::support::TestDb,
    what: &str,
    sql: &str,
    good: &[V<'_>],
    bad: &[V<'_>],
) {
    if !good.is_empty() {
        db.raw(sql, good)
            .await
            .unwrap_or_else(|e| panic!("{what}: the good row was refused: {e}"));
    }
    let err = db.raw(sql, bad).await.expect_err(what);
    assert!(!err.is_empty(), "{what}");
}

pub async fn schema_refuses_bad_rows(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let (ea, ca) = d
        .create_extension(a.id, &super::new_ext("201"), Some(&new_cred("201")))
        .await
        .unwrap();
    let ca = ca.unwrap();
    let eb = ext(d, bt.id, "201").await;
    let (ta, tb) = (V::Id(a.id.as_uuid()), V::Id(bt.id.as_uuid()));
    let id = || V::Id(Uuid::now_v7());

    let users = "INSERT INTO users (id, tenant_id, email, display_name, role, password_hash, disabled, created_at) \
                 VALUES ($1, $2, $3, 'X', $4, $5, FALSE, $6)";
    refuses(
        &db,
        "operator with a tenant",
        users,
        &[
            id(),
            V::NullId,
            V::Text("op@x.test"),
            V::Text("operator"),
            V::Text(HASH),
            V::Now,
        ],
        &[
            id(),
            ta,
            V::Text("op2@x.test"),
            V::Text("operator"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "admin without a tenant",
        users,
        &[
            id(),
            ta,
            V::Text("ad@x.test"),
            V::Text("admin"),
            V::Text(HASH),
            V::Now,
        ],
        &[
            id(),
            V::NullId,
            V::Text("ad2@x.test"),
            V::Text("admin"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "upper-case e-mail",
        users,
        &[],
        &[
            id(),
            ta,
            V::Text("Ann@x.test"),
            V::Text("member"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "unknown role",
        users,
        &[],
        &[
            id(),
            ta,
            V::Text("r@x.test"),
            V::Text("root"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await;

    let tenants =
        "INSERT INTO tenants (id, slug, sip_domain, name, created_at) VALUES ($1, $2, $3, 'T', $4)";
    refuses(
        &db,
        "bad slug",
        tenants,
        &[id(), V::Text("ok-1"), V::Text("ok1.test"), V::Now],
        &[id(), V::Text("Bad"), V::Text("bad.test"), V::Now],
    )
    .await;
    refuses(
        &db,
        "upper-case domain",
        tenants,
        &[],
        &[id(), V::Text("ok-2"), V::Text("OK2.test"), V::Now],
    )
    .await;

    let dial = "INSERT INTO dialables (tenant_id, number, kind) VALUES ($1, $2, $3)";
    refuses(
        &db,
        "number with letters",
        dial,
        &[ta, V::Text("555"), V::Text("ring_group")],
        &[ta, V::Text("55a"), V::Text("extension")],
    )
    .await;
    refuses(
        &db,
        "seven digits",
        dial,
        &[],
        &[ta, V::Text("1234567"), V::Text("extension")],
    )
    .await;
    refuses(
        &db,
        "duplicate dialable",
        dial,
        &[],
        &[ta, V::Text("201"), V::Text("ivr")],
    )
    .await;

    let exts = "INSERT INTO extensions (id, tenant_id, number, display_name, created_at) VALUES ($1, $2, $3, 'X', $4)";
    refuses(
        &db,
        "extension whose number is a ring group's",
        exts,
        &[],
        &[id(), ta, V::Text("555"), V::Now],
    )
    .await;
    refuses(
        &db,
        "extension without a dialable row",
        exts,
        &[],
        &[id(), ta, V::Text("556"), V::Now],
    )
    .await;
    let timeout = "UPDATE extensions SET no_answer_timeout_secs = $1 WHERE id = $2";
    refuses(
        &db,
        "no-answer timeout",
        timeout,
        &[V::Int(300), V::Id(ea.id.as_uuid())],
        &[V::Int(301), V::Id(ea.id.as_uuid())],
    )
    .await;
    let owner = "UPDATE extensions SET user_id = $1 WHERE id = $2";
    let bob = Uuid::now_v7();
    db.raw(
        users,
        &[
            V::Id(bob),
            tb,
            V::Text("bob@x.test"),
            V::Text("member"),
            V::Text(HASH),
            V::Now,
        ],
    )
    .await
    .unwrap();
    refuses(
        &db,
        "owner from another tenant",
        owner,
        &[V::Id(bob), V::Id(eb.id.as_uuid())],
        &[V::Id(bob), V::Id(ea.id.as_uuid())],
    )
    .await;

    let creds = "INSERT INTO sip_credentials (id, tenant_id, extension_id, username, ha1_md5, ha1_sha256, mac_address, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let md5 = "0123456789abcdef0123456789abcdef";
    let sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let ext_a = V::Id(ea.id.as_uuid());
    refuses(
        &db,
        "bad HA1",
        creds,
        &[
            id(),
            ta,
            ext_a,
            V::Text("d1"),
            V::Text(md5),
            V::Text(sha),
            V::Text("0011223344ff"),
            V::Now,
        ],
        &[
            id(),
            ta,
            ext_a,
            V::Text("d2"),
            V::Text("XYZ"),
            V::Text(sha),
            V::NullText,
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "upper-case MAC",
        creds,
        &[],
        &[
            id(),
            ta,
            ext_a,
            V::Text("d3"),
            V::Text(md5),
            V::Text(sha),
            V::Text("0011223344FE"),
            V::Now,
        ],
    )
    .await;
    refuses(
        &db,
        "credential on another tenant's extension",
        creds,
        &[],
        &[
            id(),
            tb,
            ext_a,
            V::Text("d4"),
            V::Text(md5),
            V::Text(sha),
            V::NullText,
            V::Now,
        ],
    )
    .await;

    let route = "UPDATE numbers SET tenant_id = $1, route_kind = $2, route_extension_id = $3 WHERE e164 = '+442079460018'";
    d.add_number(&"020 7946 0018".parse().unwrap(), None)
        .await
        .unwrap();
    refuses(
        &db,
        "route to another tenant's extension",
        route,
        &[ta, V::Text("extension"), ext_a],
        &[ta, V::Text("extension"), V::Id(eb.id.as_uuid())],
    )
    .await;
    refuses(
        &db,
        "route kind without target",
        route,
        &[],
        &[ta, V::Text("extension"), V::NullId],
    )
    .await;
    refuses(
        &db,
        "target with kind none",
        route,
        &[],
        &[ta, V::Text("none"), ext_a],
    )
    .await;
    refuses(
        &db,
        "route on an unowned number",
        route,
        &[],
        &[V::NullId, V::Text("extension"), ext_a],
    )
    .await;
    let e164 = "INSERT INTO numbers (id, e164, number_type, created_at) VALUES ($1, $2, $3, $4)";
    refuses(
        &db,
        "not E.164",
        e164,
        &[
            id(),
            V::Text("+441134960000"),
            V::Text("geographic"),
            V::Now,
        ],
        &[id(), V::Text("01134960001"), V::Text("geographic"), V::Now],
    )
    .await;

    let g = d
        .create_ring_group(
            a.id,
            &"600".parse().unwrap(),
            &RingGroupSettings::new("G", RingStrategy::Simultaneous),
        )
        .await
        .unwrap();
    let member = "INSERT INTO ring_group_members (tenant_id, ring_group_id, position, member_kind, extension_id, external) \
                  VALUES ($1, $2, $3, $4, $5, $6)";
    let grp = V::Id(g.id.as_uuid());
    refuses(
        &db,
        "member with both targets",
        member,
        &[ta, grp, V::Int(0), V::Text("extension"), ext_a, V::NullText],
        &[
            ta,
            grp,
            V::Int(1),
            V::Text("extension"),
            ext_a,
            V::Text("+447400123456"),
        ],
    )
    .await;
    refuses(
        &db,
        "duplicate position",
        member,
        &[],
        &[
            ta,
            grp,
            V::Int(0),
            V::Text("external"),
            V::NullId,
            V::Text("+447400123456"),
        ],
    )
    .await;
    refuses(
        &db,
        "member from another tenant",
        member,
        &[],
        &[
            ta,
            grp,
            V::Int(2),
            V::Text("extension"),
            V::Id(eb.id.as_uuid()),
            V::NullText,
        ],
    )
    .await;

    let trunks = "INSERT INTO trunks (id, name, host, port, transport, created_at) VALUES ($1, $2, 'h', $3, $4, $5)";
    refuses(
        &db,
        "port 0",
        trunks,
        &[id(), V::Text("t1"), V::Int(5060), V::Text("tls"), V::Now],
        &[id(), V::Text("t2"), V::Int(0), V::Text("udp"), V::Now],
    )
    .await;
    refuses(
        &db,
        "ws trunk",
        trunks,
        &[],
        &[id(), V::Text("t3"), V::Int(5060), V::Text("ws"), V::Now],
    )
    .await;

    let regs = "INSERT INTO registrations (id, tenant_id, extension_id, credential_id, aor, contact_uri, call_id, cseq, expires_at, \
                source_addr, transport, created_at, updated_at) VALUES ($1, $2, $3, $4, 'a', $5, 'c', 1, $6, '127.0.0.1:5060', 'udp', $6, $6)";
    refuses(
        &db,
        "binding for a credential of another extension",
        regs,
        &[
            id(),
            ta,
            ext_a,
            V::Id(ca.id.as_uuid()),
            V::Text("sip:a@h"),
            V::Now,
        ],
        &[
            id(),
            tb,
            V::Id(eb.id.as_uuid()),
            V::Id(ca.id.as_uuid()),
            V::Text("sip:b@h"),
            V::Now,
        ],
    )
    .await;

    let cdrs = "INSERT INTO cdrs (id, tenant_id, call_id, direction, caller, callee, dialled, started_at, ended_at, duration_secs, \
                disposition, hangup_cause, hangup_by, created_at) VALUES ($1, $2, 'c', 'internal', '201', '202', '202', $3, $3, $4, $5, 'x', 'caller', $3)";
    refuses(
        &db,
        "negative duration",
        cdrs,
        &[id(), ta, V::Now, V::Int(0), V::Text("no_answer")],
        &[id(), ta, V::Now, V::Int(-1), V::Text("no_answer")],
    )
    .await;
    refuses(
        &db,
        "answered without answer time",
        cdrs,
        &[],
        &[id(), ta, V::Now, V::Int(0), V::Text("answered")],
    )
    .await;
}

fn binding(e: &Extension, c: &SipCredential, contact: &str, expires_in: i64) -> Binding {
    Binding {
        extension_id: e.id,
        credential_id: c.id,
        aor: format!("sip:{}@acme.pbx.test", e.number),
        contact_uri: contact.into(),
        call_id: "abc@host".into(),
        cseq: 1,
        q: Some(0.5),
        expires_at: OffsetDateTime::now_utc() + Duration::seconds(expires_in),
        instance_id: Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".into()),
        reg_id: Some(1),
        source_addr: "127.0.0.1:5062".parse::<SocketAddr>().unwrap(),
        transport: Transport::Tcp,
        local_addr: Some("127.0.0.1:5060".parse().unwrap()),
        user_agent: Some("Test Phone 1.0".into()),
        path: None,
    }
}

pub async fn registrations(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let (e, c) = d
        .create_extension(a.id, &super::new_ext("201"), Some(&new_cred("201")))
        .await
        .unwrap();
    let c = c.unwrap();

    let first = d
        .upsert_registration(a.id, &binding(&e, &c, "sip:201@127.0.0.1:5062", 3600))
        .await
        .unwrap();
    let mut again = binding(&e, &c, "sip:201@127.0.0.1:5062", 7200);
    again.cseq = 2;
    let refreshed = d.upsert_registration(a.id, &again).await.unwrap();
    assert_eq!(
        refreshed.id, first.id,
        "same (credential, contact) is the same binding"
    );
    let listed = d.list_registrations(a.id, e.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].binding, refreshed.binding);
    assert_eq!(listed[0].created_at, first.created_at);
    assert!(
        d.upsert_registration(bt.id, &again)
            .await
            .unwrap_err()
            .is_not_found(),
        "cross-tenant upsert"
    );
    assert!(d.list_registrations(bt.id, e.id).await.unwrap().is_empty());

    d.upsert_registration(a.id, &binding(&e, &c, "sip:201@127.0.0.1:5999", -5))
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    assert_eq!(d.list_unexpired_registrations(now).await.unwrap().len(), 1);
    assert_eq!(d.delete_expired_registrations(now).await.unwrap(), 1);
    assert_eq!(d.list_registrations(a.id, e.id).await.unwrap().len(), 1);

    assert!(
        !d.remove_registration(bt.id, c.id, "sip:201@127.0.0.1:5062")
            .await
            .unwrap()
    );
    assert!(
        d.remove_registration(a.id, c.id, "sip:201@127.0.0.1:5062")
            .await
            .unwrap()
    );
    assert!(
        !d.remove_registration(a.id, c.id, "sip:201@127.0.0.1:5062")
            .await
            .unwrap()
    );
    for port in [1, 2, 3] {
        d.upsert_registration(
            a.id,
            &binding(&e, &c, &format!("sip:201@10.0.0.{port}"), 60),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        d.remove_registrations_for_credential(a.id, c.id)
            .await
            .unwrap(),
        3
    );
    d.upsert_registration(a.id, &binding(&e, &c, "sip:201@10.0.0.9", 60))
        .await
        .unwrap();
    d.delete_credential(a.id, c.id).await.unwrap();
    assert!(
        d.list_registrations(a.id, e.id).await.unwrap().is_empty(),
        "bindings go with their credential"
    );
}

fn cdr(t: TenantId, caller: &str, callee: &str, started: OffsetDateTime, answered: bool) -> NewCdr {
    NewCdr {
        id: CdrId::new(),
        tenant_id: t,
        call_id: format!("{}@pbx", Uuid::now_v7().simple()),
        direction: Direction::Internal,
        caller: caller.into(),
        callee: callee.into(),
        dialled: callee.into(),
        trunk_id: None,
        started_at: started,
        answered_at: answered.then(|| started + Duration::seconds(3)),
        ended_at: started + Duration::seconds(63),
        duration_secs: if answered { 60 } else { 0 },
        disposition: if answered {
            Disposition::Answered
        } else {
            Disposition::NoAnswer
        },
        hangup_cause: "normal".into(),
        hangup_by: HangupBy::Caller,
        transferred_by: None,
        transferred_to: None,
    }
}

pub async fn cdrs(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let t0 = OffsetDateTime::now_utc() - Duration::days(1);
    let trunk = d
        .create_trunk(&TrunkSettings {
            name: "main".into(),
            host: "sip.carrier.test".into(),
            port: 5060,
            transport: Transport::Udp,
            username: None,
            password: None,
            from_domain: None,
            priority: 1,
            emergency_priority: Some(1),
            enabled: true,
            inbound_source: None,
        })
        .await
        .unwrap();
    let mut out = cdr(a.id, "201", "+447400123456", t0, true);
    out.direction = Direction::Outbound;
    out.trunk_id = Some(trunk.id);
    assert!(d.insert_cdr(&out).await.unwrap());
    assert!(
        !d.insert_cdr(&out).await.unwrap(),
        "a retried write is a no-op"
    );
    for i in 1..=5 {
        d.insert_cdr(&cdr(
            a.id,
            "202",
            "203",
            t0 + Duration::hours(i),
            i % 2 == 0,
        ))
        .await
        .unwrap();
    }
    d.insert_cdr(&cdr(bt.id, "201", "202", t0, true))
        .await
        .unwrap();
    let mut bad = cdr(a.id, "201", "202", t0, false);
    bad.disposition = Disposition::Answered;
    assert_eq!(
        field(d.insert_cdr(&bad).await),
        ("invalid", Some("answered_at"))
    );
    assert_eq!(
        field(
            d.insert_cdr(&cdr(TenantId::new(), "1", "2", t0, false))
                .await
        ),
        ("invalid", Some("tenant_id"))
    );

    let all = d.list_cdrs(a.id, &CdrQuery::default()).await.unwrap();
    assert_eq!(all.total, 6);
    assert!(
        all.items
            .windows(2)
            .all(|w| w[0].record.started_at >= w[1].record.started_at),
        "newest first"
    );
    let got = all.items.iter().find(|c| c.record.id == out.id).unwrap();
    assert_eq!(got.record.trunk_id, Some(trunk.id));
    assert_eq!(got.record.started_at, store_micros(out.started_at));

    let q = CdrQuery {
        party: Some("7400".into()),
        ..Default::default()
    };
    assert_eq!(d.list_cdrs(a.id, &q).await.unwrap().total, 1);
    let q = CdrQuery {
        from: Some(t0 + Duration::minutes(90)),
        to: Some(t0 + Duration::hours(4)),
        ..Default::default()
    };
    assert_eq!(
        d.list_cdrs(a.id, &q).await.unwrap().total,
        2,
        "hours 2 and 3"
    );
    let q = CdrQuery {
        page: Page::new(4, 4),
        ..Default::default()
    };
    let p = d.list_cdrs(a.id, &q).await.unwrap();
    assert_eq!((p.total, p.items.len()), (6, 2));
    assert_eq!(
        d.list_cdrs(bt.id, &CdrQuery::default())
            .await
            .unwrap()
            .total,
        1
    );

    // Deleting the trunk keeps the record and forgets the trunk.
    d.delete_trunk(trunk.id).await.unwrap();
    let again = d
        .list_cdrs(
            a.id,
            &CdrQuery {
                party: Some("7400".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(again.items[0].record.trunk_id, None);
}

fn store_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
}
