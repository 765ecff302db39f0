//! Contract tests: registration bindings and call detail records.

use std::net::SocketAddr;

use store::*;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::support::Backend;
use super::{ext, field, new_cred, new_ext, tenant};

pub(crate) fn binding(e: &Extension, c: &SipCredential, contact: &str, expires_in: i64) -> Binding {
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

/// "Last registered" comes from the bindings' own `updated_at`, and outlives them: the expiry
/// sweep and the removal of a credential's bindings carry it into `last_seen_at`.
pub async fn last_registered_outlives_bindings(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let (e1, c1) = d
        .create_extension(a.id, &new_ext("201"), Some(&new_cred("201")))
        .await
        .unwrap();
    let (e2, c2) = d
        .create_extension(a.id, &new_ext("202"), Some(&new_cred("202")))
        .await
        .unwrap();
    let (c1, c2) = (c1.unwrap(), c2.unwrap());
    d.create_extension(a.id, &new_ext("203"), Some(&new_cred("203")))
        .await
        .unwrap();
    assert!(d.list_last_registered(a.id).await.unwrap().is_empty());

    let gone = d
        .upsert_registration(a.id, &binding(&e1, &c1, "sip:201@10.0.0.1", -5))
        .await
        .unwrap();
    let live = d
        .upsert_registration(a.id, &binding(&e2, &c2, "sip:202@10.0.0.2", 60))
        .await
        .unwrap();
    let mut last = d.list_last_registered(a.id).await.unwrap();
    last.sort_by_key(|(e, _)| *e == e2.id);
    assert_eq!(last, [(e1.id, gone.updated_at), (e2.id, live.updated_at)]);
    assert!(d.list_last_registered(bt.id).await.unwrap().is_empty());
    assert_eq!(
        d.get_credential(a.id, c1.id).await.unwrap().last_seen_at,
        None
    );

    assert_eq!(
        d.delete_expired_registrations(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        d.get_credential(a.id, c1.id).await.unwrap().last_seen_at,
        Some(gone.updated_at),
        "the sweep keeps when it last registered"
    );
    assert_eq!(
        d.get_credential(a.id, c2.id).await.unwrap().last_seen_at,
        None
    );
    let mut last = d.list_last_registered(a.id).await.unwrap();
    last.sort_by_key(|(e, _)| *e == e2.id);
    assert_eq!(last, [(e1.id, gone.updated_at), (e2.id, live.updated_at)]);

    assert_eq!(
        d.remove_registrations_for_credential(a.id, c2.id)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        d.get_credential(a.id, c2.id).await.unwrap().last_seen_at,
        Some(live.updated_at)
    );
    // Removing nothing leaves it as it was.
    d.remove_registrations_for_credential(a.id, c2.id)
        .await
        .unwrap();
    assert_eq!(
        d.get_credential(a.id, c2.id).await.unwrap().last_seen_at,
        Some(live.updated_at)
    );
}

pub async fn registrations(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let (e, c) = d
        .create_extension(a.id, &new_ext("201"), Some(&new_cred("201")))
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

    let (e2, c2) = d
        .create_extension(a.id, &new_ext("200"), Some(&new_cred("200")))
        .await
        .unwrap();
    d.upsert_registration(
        a.id,
        &binding(&e2, &c2.unwrap(), "sip:200@127.0.0.1:5070", 60),
    )
    .await
    .unwrap();
    let live = d
        .list_tenant_registrations(a.id, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let numbers: Vec<_> = live
        .iter()
        .map(|(n, r)| (n.as_str(), r.binding.contact_uri.as_str()))
        .collect();
    assert_eq!(
        numbers,
        [
            ("200", "sip:200@127.0.0.1:5070"),
            ("201", "sip:201@127.0.0.1:5062")
        ]
    );
    assert!(
        d.list_tenant_registrations(bt.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .is_empty()
    );

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

pub(crate) fn cdr(
    t: TenantId,
    caller: &str,
    callee: &str,
    started: OffsetDateTime,
    answered: bool,
) -> NewCdr {
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
            force_wide_source: false,
            inbound_auth: false,
            calls_per_second: TrunkSettings::DEFAULT_CALLS_PER_SECOND,
            register: false,
            registrar: None,
            register_expires: TrunkSettings::DEFAULT_REGISTER_EXPIRES,
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
    assert_eq!(
        got.trunk_name.as_deref(),
        Some("main"),
        "the record names the trunk that carried the call"
    );
    assert!(
        all.items
            .iter()
            .filter(|c| c.record.id != out.id)
            .all(|c| c.trunk_name.is_none()),
        "internal calls name no trunk"
    );
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
    assert_eq!(again.items[0].trunk_name, None);
}

fn store_micros(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
}

/// The registrar's group commit: a batch applies in order, all or none.
pub async fn registration_batches(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let (e, c) = d
        .create_extension(a.id, &new_ext("201"), Some(&new_cred("201")))
        .await
        .unwrap();
    let c = c.unwrap();
    let (eb, cb) = d
        .create_extension(bt.id, &new_ext("201"), Some(&new_cred("201")))
        .await
        .unwrap();
    let cb = cb.unwrap();
    let up = |tenant: TenantId, e: &Extension, c: &SipCredential, contact: &str| {
        RegistrationChange::Upsert {
            tenant,
            binding: binding(e, c, contact, 60),
        }
    };
    let batch = vec![
        up(a.id, &e, &c, "sip:201@10.0.0.1"),
        up(a.id, &e, &c, "sip:201@10.0.0.2"),
        up(bt.id, &eb, &cb, "sip:201@10.0.1.1"),
        RegistrationChange::Remove {
            tenant: a.id,
            credential: c.id,
            contact_uri: "sip:201@10.0.0.1".into(),
        },
        up(a.id, &e, &c, "sip:201@10.0.0.2"),
    ];
    d.apply_registration_batch(&batch).await.unwrap();
    let contacts = |v: Vec<Registration>| {
        v.into_iter()
            .map(|r| r.binding.contact_uri)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        contacts(d.list_registrations(a.id, e.id).await.unwrap()),
        ["sip:201@10.0.0.2"]
    );
    assert_eq!(
        contacts(d.list_registrations(bt.id, eb.id).await.unwrap()),
        ["sip:201@10.0.1.1"]
    );
    d.apply_registration_batch(&[]).await.unwrap();

    // A change naming another tenant's credential fails the batch and nothing of it is written.
    let bad = vec![
        up(a.id, &e, &c, "sip:201@10.0.0.3"),
        up(a.id, &eb, &cb, "sip:201@10.0.0.4"),
    ];
    assert!(
        d.apply_registration_batch(&bad)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(
        contacts(d.list_registrations(a.id, e.id).await.unwrap()),
        ["sip:201@10.0.0.2"]
    );
}

pub async fn cdr_batches(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let t0 = OffsetDateTime::now_utc() - Duration::days(1);
    let batch: Vec<NewCdr> = (0..50)
        .map(|i| cdr(a.id, "201", "202", t0 + Duration::seconds(i), true))
        .collect();
    assert_eq!(d.insert_cdrs(&batch).await.unwrap(), 50);
    assert_eq!(
        d.insert_cdrs(&batch[40..]).await.unwrap(),
        0,
        "a retried batch is a no-op"
    );
    // All or none: one invalid record keeps the whole batch out.
    let mut mixed: Vec<NewCdr> = (0..3)
        .map(|i| cdr(a.id, "301", "302", t0 + Duration::seconds(i), true))
        .collect();
    mixed[1].tenant_id = TenantId::new();
    assert_eq!(
        field(d.insert_cdrs(&mixed).await),
        ("invalid", Some("tenant_id"))
    );
    let q = CdrQuery {
        party: Some("301".into()),
        ..Default::default()
    };
    assert_eq!(d.list_cdrs(a.id, &q).await.unwrap().total, 0);
    assert_eq!(
        d.list_cdrs(a.id, &CdrQuery::default()).await.unwrap().total,
        50
    );
}

/// The dashboard's figures: calls in a range, missed ones (inbound or internal, unanswered;
/// an unanswered outbound call is not missed by anyone here), the busiest extensions, and the
/// missed-calls filter of the call list, all inside one tenant.
pub async fn call_summary_and_missed_calls(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    for n in ["201", "202", "203", "204"] {
        ext(d, a.id, n).await;
    }
    let b201 = ext(d, bt.id, "201").await;
    let day = time::macros::datetime!(2026-12-08 00:00 UTC);
    let at = |h: i64| day + Duration::hours(h);
    let mut calls = vec![
        cdr(a.id, "201", "202", at(9), true),
        cdr(a.id, "201", "203", at(10), false),
        cdr(a.id, "202", "201", at(11), true),
        cdr(a.id, "203", "204", at(12), true),
        // Yesterday: outside the range.
        cdr(a.id, "204", "203", at(-2), false),
    ];
    let mut inbound = cdr(a.id, "+442079460018", "204", at(13), false);
    inbound.direction = Direction::Inbound;
    let mut outbound = cdr(a.id, "203", "+442079460019", at(14), false);
    outbound.direction = Direction::Outbound;
    calls.extend([inbound, outbound]);
    // Another business's calls, on the same extension numbers, count for nobody here.
    for h in 0..5 {
        calls.push(cdr(bt.id, "201", "202", at(h), false));
    }
    d.insert_cdrs(&calls).await.unwrap();

    let s = d.call_summary(a.id, day, at(24), 5).await.unwrap();
    assert_eq!((s.calls, s.missed), (6, 2), "{s:?}");
    let busiest: Vec<_> = s
        .busiest
        .iter()
        .map(|e| (e.number.to_string(), e.calls))
        .collect();
    let want: Vec<(String, u64)> = [("201", 3), ("203", 3), ("202", 2), ("204", 2)]
        .into_iter()
        .map(|(n, c)| (n.to_owned(), c))
        .collect();
    assert_eq!(busiest, want, "most calls first, ties by number");
    assert_eq!(s.busiest[0].display_name, "Desk 201");
    let top = d.call_summary(a.id, day, at(24), 1).await.unwrap();
    assert_eq!(top.busiest.len(), 1);

    let other = d.call_summary(bt.id, day, at(24), 5).await.unwrap();
    assert_eq!((other.calls, other.missed), (5, 5));
    assert_eq!(other.busiest[0].id, b201.id);
    assert_eq!(other.busiest[0].calls, 5);

    let empty = d.call_summary(a.id, at(24), at(48), 5).await.unwrap();
    assert_eq!(empty, CallSummary::default());

    let q = CdrQuery {
        missed: true,
        from: Some(day),
        ..Default::default()
    };
    let missed = d.list_cdrs(a.id, &q).await.unwrap();
    assert_eq!(missed.total, 2);
    let callers: Vec<_> = missed
        .items
        .iter()
        .map(|c| c.record.caller.as_str())
        .collect();
    assert_eq!(callers, ["+442079460018", "201"], "newest first");
    let all_missed = CdrQuery {
        missed: true,
        ..Default::default()
    };
    assert_eq!(d.list_cdrs(a.id, &all_missed).await.unwrap().total, 3);

    // The charts' rows: the range only, oldest first, this tenant's, at most `limit`.
    let starts = d.list_call_starts(a.id, day, at(24), 100).await.unwrap();
    let hours: Vec<_> = starts
        .iter()
        .map(|s| (s.started_at - day).whole_hours())
        .collect();
    assert_eq!(hours, [9, 10, 11, 12, 13, 14]);
    let missed: Vec<_> = starts.iter().map(CallStart::missed).collect();
    assert_eq!(missed, [false, true, false, false, true, false]);
    assert!(starts[0].answered && !starts[5].answered);
    assert_eq!(starts[4].direction, Direction::Inbound);
    assert_eq!(
        d.list_call_starts(a.id, day, at(24), 2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        d.list_call_starts(bt.id, day, at(24), 100)
            .await
            .unwrap()
            .len(),
        5
    );

    // The operator's count spans tenants, within the range.
    assert_eq!(d.count_all_calls(day, at(24)).await.unwrap(), 11);
    assert_eq!(d.count_all_calls(at(-24), day).await.unwrap(), 1);
    assert_eq!(d.count_all_calls(at(24), at(48)).await.unwrap(), 0);
}
