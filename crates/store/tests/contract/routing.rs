//! Contract tests: public numbers, routes, ring groups, trunks.

use store::*;

use super::support::Backend;
use super::{e164, ext, field, tenant};

pub async fn numbers_and_routes(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let ea = ext(d, a.id, "201").await;
    let eb = ext(d, bt.id, "201").await;

    let n = d.add_number(&e164("020 7946 0018"), None).await.unwrap();
    assert_eq!(
        (n.number_type, n.tenant_id, n.route),
        (NumberType::Geographic, None, RouteTarget::None)
    );
    assert_eq!(
        field(d.add_number(&e164("+442079460018"), Some(a.id)).await),
        ("conflict", Some("e164"))
    );
    let m = d
        .add_number(&e164("07400 123456"), Some(a.id))
        .await
        .unwrap();
    assert_eq!(m.number_type, NumberType::Mobile);

    // Routing needs an owner, and the target must be the owner's.
    assert!(
        d.set_number_route(a.id, n.id, RouteTarget::Extension(ea.id))
            .await
            .unwrap_err()
            .is_not_found()
    );
    let n = d.assign_number(n.id, Some(a.id)).await.unwrap();
    assert_eq!(n.tenant_id, Some(a.id));
    assert_eq!(
        field(
            d.set_number_route(a.id, n.id, RouteTarget::Extension(eb.id))
                .await
        ),
        ("invalid", Some("route"))
    );
    assert!(
        d.set_number_route(bt.id, n.id, RouteTarget::Extension(eb.id))
            .await
            .unwrap_err()
            .is_not_found()
    );
    let routed = d
        .set_number_route(a.id, n.id, RouteTarget::Extension(ea.id))
        .await
        .unwrap();
    assert_eq!(routed.route, RouteTarget::Extension(ea.id));

    assert_eq!(
        d.get_number(NumberScope::Tenant(a.id), n.id).await.unwrap(),
        routed
    );
    assert_eq!(d.get_number(NumberScope::All, n.id).await.unwrap(), routed);
    assert!(
        d.get_number(NumberScope::Tenant(bt.id), n.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.get_number(NumberScope::Unassigned, n.id)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // Inbound lookup is platform-wide.
    let found = d
        .get_number_by_e164(&e164("+44 20 7946 0018"))
        .await
        .unwrap();
    assert_eq!(
        (found.tenant_id, found.route),
        (Some(a.id), RouteTarget::Extension(ea.id))
    );
    assert!(
        d.get_number_by_e164(&e164("020 7946 0019"))
            .await
            .unwrap_err()
            .is_not_found()
    );

    // A routed-to extension cannot be deleted; an owned number cannot be deleted.
    assert_eq!(
        field(d.delete_extension(a.id, ea.id).await),
        ("conflict", Some("route"))
    );
    assert_eq!(
        field(d.delete_number(n.id).await),
        ("conflict", Some("tenant_id"))
    );
    // Giving it to the business it already has keeps its route.
    let same = d.assign_number(n.id, Some(a.id)).await.unwrap();
    assert_eq!(same.tenant_id, Some(a.id));
    assert_ne!(same.route, RouteTarget::None, "still routed");
    // Reassigning elsewhere resets the route; then the extension can go.
    let back = d.assign_number(n.id, None).await.unwrap();
    assert_eq!((back.tenant_id, back.route), (None, RouteTarget::None));
    d.delete_extension(a.id, ea.id).await.unwrap();
    d.delete_number(n.id).await.unwrap();

    // Adding a number with its route is one step: a foreign target leaves nothing behind.
    let direct = e164("020 7946 0999");
    assert_eq!(
        field(
            d.add_number_routed(&direct, a.id, RouteTarget::Extension(eb.id))
                .await
        ),
        ("invalid", Some("route"))
    );
    assert!(
        d.get_number_by_e164(&direct)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let e202 = ext(d, a.id, "202").await;
    let routed = d
        .add_number_routed(&direct, a.id, RouteTarget::Extension(e202.id))
        .await
        .unwrap();
    assert_eq!(d.get_number_by_e164(&direct).await.unwrap(), routed);
    d.set_number_route(a.id, routed.id, RouteTarget::None)
        .await
        .unwrap();
    d.assign_number(routed.id, None).await.unwrap();
    d.delete_number(routed.id).await.unwrap();

    // Ranges: all or nothing.
    let first = e164("0113 496 0000");
    d.add_number(&e164("0113 496 0005"), None).await.unwrap();
    let err = d
        .add_number_range(&first, 10, Some(a.id))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Row { index: 5, .. }), "{err:?}");
    assert_eq!(err.field(), Some("e164"));
    assert_eq!(
        d.list_numbers(NumberScope::Tenant(a.id), Page::default())
            .await
            .unwrap()
            .total,
        1
    );
    let range = d
        .add_number_range(&e164("0113 496 0100"), 50, Some(a.id))
        .await
        .unwrap();
    assert_eq!(range.len(), 50);
    assert_eq!(range[49].e164.as_str(), "+441134960149");
    assert_eq!(
        field(d.add_number_range(&first, 0, None).await),
        ("invalid", Some("count"))
    );

    assert_eq!(
        d.list_numbers(NumberScope::Tenant(a.id), Page::default())
            .await
            .unwrap()
            .total,
        51
    );
    assert_eq!(
        d.list_numbers(NumberScope::Tenant(bt.id), Page::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        d.list_numbers(NumberScope::Unassigned, Page::default())
            .await
            .unwrap()
            .total,
        1
    );
    let all = d
        .list_numbers(NumberScope::All, Page::new(10, 0))
        .await
        .unwrap();
    assert_eq!((all.total, all.items.len()), (52, 10));
    assert!(all.items.windows(2).all(|w| w[0].e164 < w[1].e164));
}

pub async fn ring_groups(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let a = tenant(d, "acme").await;
    let bt = tenant(d, "bravo").await;
    let e1 = ext(d, a.id, "201").await;
    let e2 = ext(d, a.id, "202").await;
    let foreign = ext(d, bt.id, "201").await;
    let num = |s: &str| s.parse::<ExtensionNumber>().unwrap();

    let mut s = RingGroupSettings::new("Sales", RingStrategy::Sequential);
    s.fallback = RouteTarget::Extension(foreign.id);
    assert_eq!(
        field(d.create_ring_group(a.id, &num("600"), &s).await),
        ("invalid", Some("fallback"))
    );
    // Nothing half-written: the number is still free.
    assert!(
        d.resolve_dialable(a.id, &num("600"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    s.fallback = RouteTarget::Extension(e2.id);
    let g = d.create_ring_group(a.id, &num("600"), &s).await.unwrap();
    assert_eq!(d.get_ring_group(a.id, g.id).await.unwrap(), g);

    let members = vec![
        RingGroupMember::Extension(e1.id),
        RingGroupMember::External(e164("07400 123456")),
    ];
    let g = d
        .set_ring_group_members(a.id, g.id, &members)
        .await
        .unwrap();
    assert_eq!(g.members, members);
    let bad = vec![RingGroupMember::Extension(foreign.id)];
    assert_eq!(
        field(d.set_ring_group_members(a.id, g.id, &bad).await),
        ("invalid", Some("members"))
    );
    assert_eq!(
        d.get_ring_group(a.id, g.id).await.unwrap().members,
        members,
        "a failed replace changes nothing"
    );
    let twice = vec![
        RingGroupMember::Extension(e1.id),
        RingGroupMember::Extension(e1.id),
    ];
    assert_eq!(
        field(d.set_ring_group_members(a.id, g.id, &twice).await),
        ("invalid", Some("members"))
    );
    assert!(
        d.set_ring_group_members(bt.id, g.id, &[])
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        d.get_ring_group(bt.id, g.id)
            .await
            .unwrap_err()
            .is_not_found()
    );

    d.set_ring_group_last_answered(a.id, g.id, Some(1))
        .await
        .unwrap();
    assert_eq!(
        d.get_ring_group(a.id, g.id)
            .await
            .unwrap()
            .last_answered_member,
        Some(1)
    );

    let mut s2 = g.settings.clone();
    s2.strategy = RingStrategy::RoundRobin;
    s2.fallback = RouteTarget::RingGroup(g.id);
    assert_eq!(
        field(d.update_ring_group(a.id, g.id, &s2).await),
        ("invalid", Some("fallback"))
    );
    s2.fallback = RouteTarget::None;
    s2.member_timeout_secs = 20;
    assert_eq!(
        d.update_ring_group(a.id, g.id, &s2).await.unwrap().settings,
        s2
    );

    // The fallback extension is protected; a member extension is removed from the group.
    let mut s3 = s2.clone();
    s3.fallback = RouteTarget::Extension(e2.id);
    d.update_ring_group(a.id, g.id, &s3).await.unwrap();
    assert_eq!(
        field(d.delete_extension(a.id, e2.id).await),
        ("conflict", Some("route"))
    );
    d.set_ring_group_last_answered(a.id, g.id, Some(1))
        .await
        .unwrap();
    d.delete_extension(a.id, e1.id).await.unwrap();
    let listed = d.list_ring_groups(a.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].last_answered_member, None,
        "the member list changed"
    );
    assert_eq!(
        listed[0].members,
        vec![RingGroupMember::External(e164("07400 123456"))]
    );

    // A number routed to the group protects it.
    let n = d
        .add_number(&e164("020 7946 0018"), Some(a.id))
        .await
        .unwrap();
    d.set_number_route(a.id, n.id, RouteTarget::RingGroup(g.id))
        .await
        .unwrap();
    assert_eq!(
        field(d.delete_ring_group(a.id, g.id).await),
        ("conflict", Some("route"))
    );
    d.set_number_route(a.id, n.id, RouteTarget::None)
        .await
        .unwrap();
    assert!(
        d.delete_ring_group(bt.id, g.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    d.delete_ring_group(a.id, g.id).await.unwrap();
    assert!(d.list_ring_groups(a.id).await.unwrap().is_empty());
}

fn trunk(name: &str, priority: i32, emergency: Option<i32>) -> TrunkSettings {
    TrunkSettings {
        name: name.into(),
        host: "sip.carrier.test".into(),
        port: 5060,
        transport: Transport::Udp,
        username: Some("acct".into()),
        password: Some(Secret::new("s3cret-password")),
        from_domain: None,
        priority,
        emergency_priority: emergency,
        enabled: true,
        inbound_source: Some("192.0.2.0/24".into()),
        force_wide_source: false,
        inbound_auth: false,
        calls_per_second: TrunkSettings::DEFAULT_CALLS_PER_SECOND,
        register: false,
        registrar: None,
        register_expires: TrunkSettings::DEFAULT_REGISTER_EXPIRES,
    }
}

pub async fn trunks(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let main = d.create_trunk(&trunk("main", 10, Some(2))).await.unwrap();
    assert!(
        !format!("{main:?}").contains("s3cret"),
        "the password must not be printed"
    );
    assert_eq!(d.get_trunk(main.id).await.unwrap(), main);
    let backup = d.create_trunk(&trunk("backup", 20, Some(1))).await.unwrap();
    let mut off = trunk("off", 5, Some(0));
    off.enabled = false;
    let off = d.create_trunk(&off).await.unwrap();
    let no_999 = d.create_trunk(&trunk("cheap", 1, None)).await.unwrap();
    assert_eq!(
        field(d.create_trunk(&trunk("main", 1, None)).await),
        ("conflict", Some("name"))
    );
    let mut ws = trunk("ws", 1, None);
    ws.transport = Transport::Ws;
    assert_eq!(
        field(d.create_trunk(&ws).await),
        ("invalid", Some("transport"))
    );
    let mut src = trunk("src", 1, None);
    src.inbound_source = Some("not-an-ip".into());
    assert_eq!(
        field(d.create_trunk(&src).await),
        ("invalid", Some("inbound_source"))
    );

    let ids = |v: Vec<Trunk>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(
        ids(d.list_trunks().await.unwrap()),
        vec![no_999.id, off.id, main.id, backup.id]
    );
    assert_eq!(
        ids(d.list_outbound_trunks().await.unwrap()),
        vec![no_999.id, main.id, backup.id]
    );
    assert_eq!(
        ids(d.list_emergency_trunks().await.unwrap()),
        vec![backup.id, main.id]
    );

    let mut s = main.settings.clone();
    s.password = None;
    s.port = 5061;
    s.transport = Transport::Tls;
    assert_eq!(d.update_trunk(main.id, &s).await.unwrap().settings, s);
    d.delete_trunk(off.id).await.unwrap();
    assert!(d.get_trunk(off.id).await.unwrap_err().is_not_found());
}

/// Issue #10: a trunk recognised by a source block as wide as 0.0.0.0/0 would
/// let anyone on the internet call in as the carrier. Prefixes wider than /24
/// (IPv4) or /48 (IPv6) are refused, naming the field, unless forced.
pub async fn cidr_slash_zero_trunk_is_refused(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    for wide in [
        "0.0.0.0/0",
        "10.0.0.0/8",
        "192.0.0.0/23",
        "::/0",
        "2001:db8::/47",
    ] {
        let mut t = trunk("wide", 1, None);
        t.inbound_source = Some(wide.into());
        let err = d.create_trunk(&t).await.unwrap_err();
        assert!(err.to_string().contains("wider than"), "{wide}: {err}");
        assert_eq!(
            field(Err::<(), _>(err)),
            ("invalid", Some("inbound_source")),
            "{wide}"
        );
    }
    let mut narrow = trunk("narrow", 1, None);
    for ok in [
        "192.0.2.0/24",
        "192.0.2.7",
        "2001:db8:1::/48",
        "2001:db8::1",
    ] {
        narrow.inbound_source = Some(ok.into());
        narrow.name = format!("narrow {ok}");
        d.create_trunk(&narrow).await.unwrap();
    }
    // forced by the operator: accepted, and kept
    let mut forced = trunk("forced", 1, None);
    forced.inbound_source = Some("198.51.0.0/16".into());
    forced.force_wide_source = true;
    let created = d.create_trunk(&forced).await.unwrap();
    assert!(created.settings.force_wide_source);
    // un-forcing an existing wide trunk is refused too
    let mut s = created.settings.clone();
    s.force_wide_source = false;
    assert_eq!(
        field(d.update_trunk(created.id, &s).await),
        ("invalid", Some("inbound_source"))
    );
}

/// The interop settings round-trip and are checked: inbound digest and
/// registration need credentials; the call rate and expiry have bounds.
pub async fn trunk_interop_settings(b: Backend) {
    let db = b.open().await;
    let d = &*db.dir;
    let mut t = trunk("carrier", 1, None);
    t.inbound_auth = true;
    t.calls_per_second = 3;
    t.register = true;
    t.registrar = Some(" reg.carrier.test:5080 ".into());
    t.register_expires = 600;
    let created = d.create_trunk(&t).await.unwrap();
    assert_eq!(
        created.settings.registrar.as_deref(),
        Some("reg.carrier.test:5080")
    );
    let got = d.get_trunk(created.id).await.unwrap();
    assert_eq!(got, created);
    assert!(got.settings.inbound_auth && got.settings.register);
    assert_eq!(
        (got.settings.calls_per_second, got.settings.register_expires),
        (3, 600)
    );
    let defaults = d.create_trunk(&trunk("plain", 2, None)).await.unwrap();
    assert_eq!(
        defaults.settings.calls_per_second,
        TrunkSettings::DEFAULT_CALLS_PER_SECOND
    );
    for (bad, name) in [
        (
            TrunkSettings {
                calls_per_second: 0,
                ..t.clone()
            },
            "calls_per_second",
        ),
        (
            TrunkSettings {
                calls_per_second: 1001,
                ..t.clone()
            },
            "calls_per_second",
        ),
        (
            TrunkSettings {
                register_expires: 59,
                ..t.clone()
            },
            "register_expires",
        ),
        (
            TrunkSettings {
                registrar: Some("a b".into()),
                ..t.clone()
            },
            "registrar",
        ),
        (
            TrunkSettings {
                password: None,
                register: false,
                ..t.clone()
            },
            "inbound_auth",
        ),
        (
            TrunkSettings {
                password: None,
                inbound_auth: false,
                ..t.clone()
            },
            "register",
        ),
    ] {
        assert_eq!(
            field(d.update_trunk(created.id, &bad).await),
            ("invalid", Some(name)),
            "{bad:?}"
        );
    }
}
