//! The dial plan against a real SQLite directory: a tenant with extensions,
//! a ring group, public numbers and platform trunks created through the store.

use std::sync::Arc;
use std::time::Duration;

use pbx::call::{Destination, DialPlan, MemberTarget, OutsideCall};
use pbx::dialplan::{OutsideCalls, PreparedPlan, Resolver};
use store::*;

struct Env {
    dir: Arc<dyn Directory>,
    tenant: Tenant,
    /// Outbound order: b (5), a (10), c (20); d is disabled.
    trunks: Vec<TrunkId>,
    resolver: Resolver,
    calls: Arc<OutsideCalls>,
    _tmp: tempfile::TempDir,
}

const ALICE_DDI: &str = "+442079460018";
const MAIN: &str = "+442079460000";
const SPARE: &str = "+442079460001";

fn n(s: &str) -> ExtensionNumber {
    s.parse().unwrap()
}

fn e(s: &str) -> E164 {
    s.parse().unwrap()
}

async fn trunk(
    dir: &dyn Directory,
    name: &str,
    prio: i32,
    emergency: Option<i32>,
    enabled: bool,
) -> TrunkId {
    dir.create_trunk(&TrunkSettings {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 5070 + u16::try_from(prio).unwrap(),
        transport: Transport::Udp,
        username: Some(format!("user-{name}")),
        password: Some(Secret::new("s3cret")),
        from_domain: None,
        priority: prio,
        emergency_priority: emergency,
        enabled,
        inbound_source: None,
        force_wide_source: false,
        inbound_auth: false,
        calls_per_second: TrunkSettings::DEFAULT_CALLS_PER_SECOND,
        register: false,
        registrar: None,
        register_expires: TrunkSettings::DEFAULT_REGISTER_EXPIRES,
    })
    .await
    .unwrap()
    .id
}

async fn tenant(dir: &dyn Directory, slug: &str, settings: TenantSettings) -> Tenant {
    dir.create_tenant(&NewTenant {
        slug: slug.parse().unwrap(),
        sip_domain: format!("{slug}.example.com").parse().unwrap(),
        settings,
    })
    .await
    .unwrap()
}

async fn extension(
    dir: &dyn Directory,
    t: TenantId,
    number: &str,
    settings: ExtensionSettings,
) -> Extension {
    dir.create_extension(
        t,
        &NewExtension {
            number: n(number),
            settings,
        },
        None,
    )
    .await
    .unwrap()
    .0
}

async fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("sb.db").display());
    let dir = store::connect(&url).await.unwrap();
    dir.migrate().await.unwrap();
    let t = tenant(&*dir, "acme", TenantSettings::new("Acme")).await;
    let alice = extension(&*dir, t.id, "1001", ExtensionSettings::new("Alice")).await;
    let mut bob = ExtensionSettings::new("Bob");
    bob.dnd = true;
    bob.no_answer_timeout_secs = 40;
    bob.forwarding.no_answer = Some(ForwardTarget::Extension(n("1001")));
    bob.forwarding.busy = Some(ForwardTarget::External(e("07400123456")));
    extension(&*dir, t.id, "1002", bob).await;
    dir.create_ring_group(
        t.id,
        &n("20"),
        &RingGroupSettings::new("Sales", RingStrategy::Simultaneous),
    )
    .await
    .unwrap();
    dir.add_number_routed(&e(ALICE_DDI), t.id, RouteTarget::Extension(alice.id))
        .await
        .unwrap();
    dir.add_number(&e(MAIN), Some(t.id)).await.unwrap();
    dir.add_number(&e(SPARE), Some(t.id)).await.unwrap();
    let mut settings = t.settings.clone();
    settings.main_number = Some(e(MAIN));
    settings.max_outside_calls = 2;
    let t = dir.update_tenant(t.id, &settings).await.unwrap();
    let a = trunk(&*dir, "a", 10, Some(2), true).await;
    let b = trunk(&*dir, "b", 5, None, true).await;
    let c = trunk(&*dir, "c", 20, Some(1), true).await;
    trunk(&*dir, "d", 1, Some(0), false).await;
    Env {
        resolver: Resolver::new(dir.clone()),
        dir,
        tenant: t,
        trunks: vec![b, a, c],
        calls: OutsideCalls::new(),
        _tmp: tmp,
    }
}

impl Env {
    async fn dial(&self, caller: Option<&str>, dialled: &str) -> Destination {
        let caller = caller.map(n);
        self.resolver
            .resolve(self.tenant.id, caller.as_ref(), dialled, &self.calls)
            .await
            .unwrap()
    }

    async fn settings(&mut self, f: impl FnOnce(&mut TenantSettings)) {
        let mut s = self.tenant.settings.clone();
        f(&mut s);
        self.tenant = self.dir.update_tenant(self.tenant.id, &s).await.unwrap();
    }
}

fn outside(d: Destination) -> OutsideCall {
    match d {
        Destination::Outside(o) => o,
        other => panic!("expected an outside call, got {other:?}"),
    }
}

fn refused(d: &Destination) -> u16 {
    match d {
        Destination::Refused { status, .. } => *status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn every_uk_form_normalises_to_one_e164_through_the_trunks_in_order() {
    let env = env().await;
    for form in [
        "07400123456",
        "07400 123456",
        "+447400123456",
        "00447400123456",
        "+44 (0)7400 123456",
    ] {
        let o = outside(env.dial(Some("1001"), form).await);
        assert_eq!(o.number, "+447400123456", "{form}");
        assert!(!o.emergency);
        let ids: Vec<TrunkId> = o.routes.iter().map(|r| r.trunk).collect();
        assert_eq!(
            ids, env.trunks,
            "{form}: by priority, disabled trunk left out"
        );
        let r = &o.routes[0];
        assert_eq!(
            r.request_uri.to_string(),
            "sip:+447400123456@127.0.0.1:5075"
        );
        assert_eq!(r.dest.addr, "127.0.0.1:5075".parse().unwrap());
        assert_eq!(r.credentials.as_ref().unwrap().username, "user-b");
        assert_eq!(r.credentials.as_ref().unwrap().password, "s3cret");
    }
    for form in [
        "020 7946 0999",
        "02079460999",
        "+44 20 7946 0999",
        "0044 20 7946 0999",
    ] {
        assert_eq!(
            outside(env.dial(Some("1001"), form).await).number,
            "+442079460999"
        );
    }
}

#[tokio::test]
async fn caller_id_is_the_extensions_number_else_main_else_first_held() {
    let mut env = env().await;
    let from = |o: OutsideCall| o.routes[0].from.clone();
    // Alice has a number routed to her.
    assert_eq!(
        from(outside(env.dial(Some("1001"), "07400123456").await)),
        format!("<sip:{ALICE_DDI}@127.0.0.1>")
    );
    // Bob has none: the main number.
    assert_eq!(
        from(outside(env.dial(Some("1002"), "07400123456").await)),
        format!("<sip:{MAIN}@127.0.0.1>")
    );
    // No main number: the first number held (E.164 order).
    env.settings(|s| s.main_number = None).await;
    let main = env.dir.get_number_by_e164(&e(MAIN)).await.unwrap();
    env.dir.assign_number(main.id, None).await.unwrap();
    assert_eq!(
        from(outside(env.dial(Some("1002"), "07400123456").await)),
        format!("<sip:{SPARE}@127.0.0.1>")
    );
    // A tenant holding nothing cannot call out, but 999 still goes.
    let bare = tenant(&*env.dir, "bare", TenantSettings::new("Bare")).await;
    let r = Resolver::new(env.dir.clone());
    let d = r
        .resolve(bare.id, None, "07400123456", &env.calls)
        .await
        .unwrap();
    assert_eq!(refused(&d), 403);
    let o = outside(r.resolve(bare.id, None, "999", &env.calls).await.unwrap());
    assert!(o.emergency);
    assert!(o.routes[0].from.contains("anonymous"));
}

#[tokio::test]
async fn premium_and_international_need_the_tenants_permission() {
    let mut env = env().await;
    let premium = "09098790000";
    assert_eq!(e(premium).number_type(), NumberType::Premium);
    for dialled in [premium, "+1 212 555 0123", "0012125550123"] {
        let d = env.dial(Some("1001"), dialled).await;
        assert_eq!(refused(&d), 403, "{dialled}");
        let Destination::Refused { reason, .. } = d else {
            unreachable!()
        };
        assert!(reason.contains("not allowed"), "{reason}");
    }
    env.settings(|s| {
        s.allow_premium = true;
        s.allow_international = true;
    })
    .await;
    assert_eq!(
        outside(env.dial(Some("1001"), premium).await).number,
        "+449098790000"
    );
    assert_eq!(
        outside(env.dial(Some("1001"), "0012125550123").await).number,
        "+12125550123"
    );
}

#[tokio::test]
async fn outside_call_limit_refuses_with_503_but_never_emergency() {
    let mut env = env().await;
    let g1 = env.calls.guard(env.tenant.id);
    outside(env.dial(Some("1001"), "07400123456").await);
    let g2 = env.calls.guard(env.tenant.id);
    assert_eq!(refused(&env.dial(Some("1001"), "07400123456").await), 503);
    // Emergency: own trunk order (c then a), at the limit, suspended, no permissions.
    env.dir
        .set_tenant_suspended(env.tenant.id, true)
        .await
        .unwrap();
    env.settings(|s| s.allow_international = false).await;
    for code in ["999", "112"] {
        let o = outside(env.dial(Some("1001"), code).await);
        assert!(o.emergency);
        assert_eq!(o.number, code);
        let ids: Vec<TrunkId> = o.routes.iter().map(|r| r.trunk).collect();
        assert_eq!(ids, vec![env.trunks[2], env.trunks[1]]);
        assert_eq!(
            o.routes[0].from,
            format!("<sip:{ALICE_DDI}@127.0.0.1>"),
            "caller's number"
        );
        assert_eq!(
            o.routes[0].request_uri.to_string(),
            format!("sip:{code}@127.0.0.1:5090")
        );
    }
    env.dir
        .set_tenant_suspended(env.tenant.id, false)
        .await
        .unwrap();
    drop(g2);
    outside(env.dial(Some("1001"), "07400123456").await);
    drop(g1);
    assert_eq!(env.calls.live(env.tenant.id), 0);
}

#[tokio::test]
async fn short_numbers_resolve_inside_the_tenant() {
    let env = env().await;
    let Destination::Extension(p) = env.dial(Some("1001"), "1002").await else {
        panic!()
    };
    assert_eq!(p.number, n("1002"));
    assert_eq!(p.display_name, "Bob");
    assert!(p.dnd);
    assert_eq!(p.no_answer_timeout, Duration::from_secs(40));
    assert_eq!(
        p.forwarding.no_answer,
        Some(ForwardTarget::Extension(n("1001")))
    );
    let Destination::RingGroup(g) = env.dial(Some("1001"), "20").await else {
        panic!("a ring group")
    };
    assert_eq!((g.number.as_str(), g.name.as_str()), ("20", "Sales"));
    assert_eq!(env.dial(Some("1001"), "4444").await, Destination::Unknown);
    assert_eq!(env.dial(Some("1001"), "alice").await, Destination::Unknown);
    // Dialling one of the tenant's own numbers rings its target, no trunk.
    let Destination::Extension(p) = env.dial(Some("1002"), "020 7946 0018").await else {
        panic!()
    };
    assert_eq!(p.number, n("1001"));
    // Another tenant does not see these extensions.
    let other = tenant(&*env.dir, "other", TenantSettings::new("Other")).await;
    let d = env
        .resolver
        .resolve(other.id, None, "1001", &env.calls)
        .await
        .unwrap();
    assert_eq!(d, Destination::Unknown);
}

#[tokio::test]
async fn suspended_tenant_is_refused() {
    let env = env().await;
    env.dir
        .set_tenant_suspended(env.tenant.id, true)
        .await
        .unwrap();
    for dialled in ["1002", "07400123456", "4444"] {
        assert_eq!(
            refused(&env.dial(Some("1001"), dialled).await),
            403,
            "{dialled}"
        );
    }
    let inbound = env.resolver.resolve_inbound(ALICE_DDI).await.unwrap();
    assert_eq!(refused(&inbound.destination), 403);
}

#[tokio::test]
async fn inbound_numbers_find_their_tenant_and_target() {
    let env = env().await;
    for form in [ALICE_DDI, "442079460018"] {
        let i = env.resolver.resolve_inbound(form).await.unwrap();
        assert_eq!(i.tenant, Some(env.tenant.id), "{form}");
        let Destination::Extension(p) = i.destination else {
            panic!("{form}")
        };
        assert_eq!(p.number, n("1001"));
    }
    // Held but not routed; in the operator's inventory; not on the platform.
    env.dir.add_number(&e("+442079460050"), None).await.unwrap();
    for (number, tenant) in [
        (MAIN, Some(env.tenant.id)),
        ("+442079460050", None),
        ("+442079460099", None),
    ] {
        let i = env.resolver.resolve_inbound(number).await.unwrap();
        assert_eq!(i.destination, Destination::Unknown, "{number}");
        assert_eq!(i.tenant, tenant, "{number}");
    }
    // A number routed to a ring group rings the group.
    let rg = env
        .dir
        .list_ring_groups(env.tenant.id)
        .await
        .unwrap()
        .remove(0);
    env.dir
        .add_number_routed(
            &e("+442079460060"),
            env.tenant.id,
            RouteTarget::RingGroup(rg.id),
        )
        .await
        .unwrap();
    let i = env.resolver.resolve_inbound("+442079460060").await.unwrap();
    let Destination::RingGroup(g) = i.destination else {
        panic!("{:?}", i.destination)
    };
    assert_eq!(g.id, rg.id);
}

#[tokio::test]
async fn ring_groups_resolve_with_members_in_order_and_their_fallback() {
    let env = env().await;
    let t = env.tenant.id;
    let alice = env
        .dir
        .get_extension_by_number(t, &n("1001"))
        .await
        .unwrap();
    let bob = env
        .dir
        .get_extension_by_number(t, &n("1002"))
        .await
        .unwrap();
    let sales = env.dir.list_ring_groups(t).await.unwrap().remove(0);
    let mut settings = RingGroupSettings::new("Support", RingStrategy::RoundRobin);
    settings.ring_timeout_secs = 45;
    settings.member_timeout_secs = 12;
    settings.fallback = RouteTarget::RingGroup(sales.id);
    let support = env
        .dir
        .create_ring_group(t, &n("21"), &settings)
        .await
        .unwrap();
    env.dir
        .set_ring_group_members(
            t,
            support.id,
            &[
                RingGroupMember::Extension(bob.id),
                RingGroupMember::External(e("07400123456")),
                RingGroupMember::Extension(alice.id),
            ],
        )
        .await
        .unwrap();
    env.dir
        .set_ring_group_last_answered(t, support.id, Some(2))
        .await
        .unwrap();
    let mut s = sales.settings.clone();
    s.fallback = RouteTarget::Extension(alice.id);
    env.dir.update_ring_group(t, sales.id, &s).await.unwrap();

    let plan = PreparedPlan::new(env.calls.clone(), PreparedPlan::DEFAULT_TTL);
    let d = env
        .resolver
        .prepare(&plan, t, Some(&n("1001")), "21")
        .await
        .unwrap();
    let Destination::RingGroup(g) = d else {
        panic!("{d:?}")
    };
    assert_eq!(g.strategy, RingStrategy::RoundRobin);
    assert_eq!(g.ring_timeout, Duration::from_secs(45));
    assert_eq!(g.member_timeout, Duration::from_secs(12));
    assert_eq!(g.last_answered, Some(2));
    assert_eq!(g.fallback.as_deref(), Some("20"));
    let members: Vec<(u32, String)> = g
        .members
        .iter()
        .map(|m| {
            let who = match &m.target {
                MemberTarget::Extension(p) => {
                    assert_eq!(p.dnd, p.number == n("1002"), "the profile comes along");
                    p.number.to_string()
                }
                MemberTarget::External(x) => x.clone(),
            };
            (m.position, who)
        })
        .collect();
    assert_eq!(
        members,
        [
            (0, "1002".to_owned()),
            (1, "+447400123456".to_owned()),
            (2, "1001".to_owned())
        ]
    );
    // Prepared for the engine: the external member as this caller's outside
    // call, the fallback group and, one hop further, its own fallback.
    let out = outside(plan.resolve(t, Some("1001"), "+447400123456"));
    assert_eq!(out.routes.len(), 3);
    let Destination::RingGroup(fb) = plan.resolve(t, Some("1001"), "20") else {
        panic!()
    };
    assert_eq!(fb.fallback.as_deref(), Some("1001"));
    assert!(matches!(
        plan.resolve(t, None, "1001"),
        Destination::Extension(_)
    ));
}

#[tokio::test]
async fn prepared_plan_answers_the_engine_synchronously() {
    let env = env().await;
    let plan = PreparedPlan::new(env.calls.clone(), PreparedPlan::DEFAULT_TTL);
    let t = env.tenant.id;
    assert_eq!(
        refused(&plan.resolve(t, None, "1002")),
        503,
        "nothing prepared yet"
    );
    let d = env
        .resolver
        .prepare(&plan, t, Some(&n("1001")), "1002")
        .await
        .unwrap();
    assert!(matches!(d, Destination::Extension(_)));
    assert_eq!(plan.resolve(t, None, "1002"), d);
    // The caller's own extension and Bob's forwarding targets are there too.
    assert!(matches!(
        plan.resolve(t, None, "1001"),
        Destination::Extension(_)
    ));
    let fwd = outside(plan.resolve(t, Some("1001"), "+447400123456"));
    assert_eq!(fwd.routes.len(), 3);
    // An outside destination carries the caller's own caller ID: it is kept
    // for the caller it was prepared for, never handed to another.
    assert_eq!(
        refused(&plan.resolve(t, Some("1003"), "+447400123456")),
        503
    );
    // The limit is applied when the engine asks, not when prepared.
    let _g1 = env.calls.guard(t);
    let _g2 = env.calls.guard(t);
    assert_eq!(
        refused(&plan.resolve(t, Some("1001"), "+447400123456")),
        503
    );
    // Inbound: stored under the dialled string as the trunk sent it.
    let i = env
        .resolver
        .prepare_inbound(&plan, "442079460018")
        .await
        .unwrap();
    assert_eq!(plan.resolve(t, None, "442079460018"), i.destination);
    plan.invalidate(t);
    assert!(plan.is_empty());
    assert_eq!(plan.call_limit(t), None, "invalidate forgets the limit");
}

/// Clearing the whole plan (a change spanning tenants, or a resync after
/// missed changes) forgets each tenant's call limit too: a limit changed
/// meanwhile is read again, not enforced from the old value.
#[tokio::test]
async fn clearing_the_plan_forgets_call_limits() {
    let env = env().await;
    let plan = PreparedPlan::new(env.calls.clone(), PreparedPlan::DEFAULT_TTL);
    let t = env.tenant.id;
    env.resolver
        .prepare(&plan, t, Some(&n("1001")), "1002")
        .await
        .unwrap();
    assert_eq!(
        plan.call_limit(t),
        Some(env.tenant.settings.max_concurrent_calls)
    );
    plan.clear();
    assert!(plan.is_empty());
    assert_eq!(plan.call_limit(t), None);
}

/// A preparation is reused for a second (bursts, retried INVITEs); a change
/// in the directory is seen once it is older.
#[tokio::test]
async fn a_preparation_is_reused_for_a_second_then_refreshed() {
    let env = env().await;
    let plan = PreparedPlan::new(env.calls.clone(), PreparedPlan::DEFAULT_TTL);
    let t = env.tenant.id;
    let dnd = |d: &Destination| match d {
        Destination::Extension(p) => p.dnd,
        other => panic!("expected an extension, got {other:?}"),
    };
    let first = env
        .resolver
        .prepare(&plan, t, Some(&n("1001")), "1002")
        .await
        .unwrap();
    assert!(dnd(&first), "Bob starts on do-not-disturb");
    let bob = env
        .dir
        .get_extension_by_number(t, &n("1002"))
        .await
        .unwrap();
    let mut s = bob.settings.clone();
    s.dnd = false;
    env.dir.update_extension(t, bob.id, &s).await.unwrap();
    let again = env
        .resolver
        .prepare(&plan, t, Some(&n("1001")), "1002")
        .await
        .unwrap();
    assert!(dnd(&again), "within a second: the same preparation");
    tokio::time::sleep(PreparedPlan::FRESH + std::time::Duration::from_millis(50)).await;
    let later = env
        .resolver
        .prepare(&plan, t, Some(&n("1001")), "1002")
        .await
        .unwrap();
    assert!(!dnd(&later), "a second later: read again");
}

/// Guernsey (+44 1481), Jersey (+44 1534), the Isle of Man (+44 1624) and
/// Guernsey mobiles (+44 7781) share +44 but are not UK numbers: a tenant
/// without international calls cannot reach them (toll fraud to the Crown
/// Dependencies' expensive ranges).
#[tokio::test]
async fn plus_44_1481_is_not_uk() {
    let mut env = env().await;
    for dialled in [
        "+44 1481 256789",
        "01481 256789",
        "+44 1534 456789",
        "+44 1624 756789",
        "+44 7781 123456",
    ] {
        let d = env.dial(Some("1001"), dialled).await;
        assert_eq!(refused(&d), 403, "{dialled}");
        let Destination::Refused { reason, .. } = d else {
            unreachable!()
        };
        assert!(reason.contains("international"), "{reason}");
    }
    // A London number is still domestic.
    outside(env.dial(Some("1001"), "020 7946 0999").await);
    env.settings(|s| s.allow_international = true).await;
    assert_eq!(
        outside(env.dial(Some("1001"), "01481 256789").await).number,
        "+441481256789"
    );
}

/// Personal numbers (070) and pagers (076) look like mobiles but are
/// special-rate: refused unless the operator allows premium and
/// special-rate calls for the tenant. A forward to one is refused too.
#[tokio::test]
async fn personal_number_070_is_denied_by_default() {
    let mut env = env().await;
    for dialled in ["070 1234 5678", "+44 76 4012 3456"] {
        let d = env.dial(Some("1001"), dialled).await;
        assert_eq!(refused(&d), 403, "{dialled}");
        let Destination::Refused { reason, .. } = d else {
            unreachable!()
        };
        assert!(reason.contains("not allowed"), "{reason}");
    }
    env.settings(|s| s.allow_premium = true).await;
    assert_eq!(
        outside(env.dial(Some("1001"), "070 1234 5678").await).number,
        "+447012345678"
    );
}
