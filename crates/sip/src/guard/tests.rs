use super::*;
use std::net::Ipv4Addr;

const R: &str = "acme.example";

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn bans(events: &[GuardEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, GuardEvent::Banned { .. }))
        .count()
}

#[test]
fn ten_failures_in_a_minute_ban_for_fifteen_minutes() {
    let mut g = Guard::new(GuardConfig::default());
    let a = ip(1);
    // Ten different usernames, so no pair lock interferes.
    for i in 0..9 {
        let ev = g.record_failure(a, &format!("u{i}"), R, s(100 + i));
        assert!(ev.is_empty(), "{ev:?}");
    }
    assert_eq!(g.check_request(a, s(109)), Admission::Allow);
    let ev = g.record_failure(a, "u9", R, s(109));
    assert_eq!(
        ev,
        vec![GuardEvent::Banned {
            ip: a,
            until: s(109 + 900),
            reason: BanReason::AuthFailures {
                failures: 10,
                window: s(60)
            }
        }]
    );
    assert_eq!(
        g.check_request(a, s(110)),
        Admission::Banned { until: s(1009) }
    );
    assert_eq!(
        g.check_auth(a, "anyone", R, s(110)),
        AuthGate::IpBanned { until: s(1009) }
    );
    assert_eq!(g.banned_until(a, s(1008)), Some(s(1009)));
    // Expiry.
    assert_eq!(g.check_request(a, s(1009)), Admission::Allow);
    assert_eq!(g.check_auth(a, "anyone", R, s(1009)), AuthGate::Allow);
    // Other IPs were never affected.
    assert_eq!(g.check_request(ip(2), s(110)), Admission::Allow);
}

#[test]
fn failures_spread_beyond_the_window_do_not_ban() {
    let mut g = Guard::new(GuardConfig::default());
    for i in 0..30u64 {
        // One failure every 7 s: at most 9 in any 60 s window.
        let ev = g.record_failure(ip(1), &format!("u{i}"), R, s(i * 7));
        assert_eq!(bans(&ev), 0, "at {i}");
    }
}

#[test]
fn pair_locks_after_five_and_unlocks() {
    let mut g = Guard::new(GuardConfig::default());
    let a = ip(1);
    for t in 0..4 {
        assert!(g.record_failure(a, "1001", R, s(t)).is_empty());
    }
    let ev = g.record_failure(a, "1001", R, s(4));
    assert!(
        matches!(&ev[..], [GuardEvent::UserLocked { username, until, .. }]
        if username == "1001" && *until == s(904))
    );
    assert_eq!(
        g.check_auth(a, "1001", R, s(5)),
        AuthGate::UserLocked { until: s(904) }
    );
    // Same username in another realm, or from another IP: unaffected.
    assert_eq!(
        g.check_auth(a, "1001", "other.example", s(5)),
        AuthGate::Allow
    );
    assert_eq!(g.check_auth(ip(2), "1001", R, s(5)), AuthGate::Allow);
    assert_eq!(g.check_auth(a, "1001", R, s(904)), AuthGate::Allow);
}

#[test]
fn nat_office_one_bad_phone_does_not_lock_out_the_others() {
    let mut g = Guard::new(GuardConfig::default());
    let office = ip(7);
    g.record_success(office, "1002", R, s(0));
    // A misconfigured phone retries forever, every 2 s, for 10 minutes.
    let mut all = Vec::new();
    for t in 0..300u64 {
        let now = s(1 + 2 * t);
        match g.check_auth(office, "1001", R, now) {
            AuthGate::Allow => all.extend(g.record_failure(office, "1001", R, now)),
            AuthGate::UserLocked { .. } => {}
            AuthGate::IpBanned { .. } => panic!("office banned at {t}"),
        }
        // The good phone keeps authenticating.
        assert_eq!(g.check_auth(office, "1002", R, now), AuthGate::Allow);
    }
    assert_eq!(bans(&all), 0);
    assert_eq!(g.check_request(office, s(700)), Admission::Allow);
}

#[test]
fn nat_untrusted_ip_still_tolerates_one_bad_phone() {
    // No success seen yet from the office (e.g. just after a restart).
    let mut g = Guard::new(GuardConfig::default());
    let office = ip(7);
    let mut all = Vec::new();
    for t in 0..100u64 {
        if g.check_auth(office, "1001", R, s(t)) == AuthGate::Allow {
            all.extend(g.record_failure(office, "1001", R, s(t)));
        }
    }
    assert_eq!(bans(&all), 0);
    assert_eq!(g.check_auth(office, "1002", R, s(100)), AuthGate::Allow);
}

#[test]
fn spraying_usernames_bans_the_ip() {
    let mut g = Guard::new(GuardConfig::default());
    let attacker = ip(66);
    let mut all = Vec::new();
    for i in 0..10u64 {
        all.extend(g.record_failure(attacker, &format!("{}", 1000 + i), R, s(i)));
    }
    assert_eq!(bans(&all), 1);
    assert!(matches!(
        g.check_request(attacker, s(11)),
        Admission::Banned { .. }
    ));
    // Further failures while banned are ignored (no duplicate events).
    assert!(g.record_failure(attacker, "x", R, s(12)).is_empty());
}

#[test]
fn trusted_ip_gets_a_higher_threshold() {
    let mut g = Guard::new(GuardConfig::default());
    let office = ip(8);
    g.record_success(office, "1002", R, s(0));
    let mut all = Vec::new();
    for i in 0..49u64 {
        all.extend(g.record_failure(office, &format!("u{i}"), R, s(1)));
    }
    assert_eq!(bans(&all), 0);
    assert_eq!(bans(&g.record_failure(office, "u49", R, s(1))), 1);
    // Trust lapses after an hour.
    let mut g = Guard::new(GuardConfig::default());
    g.record_success(office, "1002", R, s(0));
    let mut all = Vec::new();
    for i in 0..10u64 {
        all.extend(g.record_failure(office, &format!("u{i}"), R, s(3600)));
    }
    assert_eq!(bans(&all), 1);
}

#[test]
fn success_resets_the_username_counter() {
    let mut g = Guard::new(GuardConfig::default());
    let a = ip(1);
    for round in 0..5u64 {
        for t in 0..4 {
            assert!(g.record_failure(a, "1001", R, s(round * 10 + t)).is_empty());
        }
        g.record_success(a, "1001", R, s(round * 10 + 5));
    }
    assert_eq!(g.check_auth(a, "1001", R, s(60)), AuthGate::Allow);
}

#[test]
fn distributed_attack_on_one_username_alerts_but_locks_nobody() {
    let mut g = Guard::new(GuardConfig::default());
    let mut all = Vec::new();
    for i in 0..120u32 {
        all.extend(g.record_failure(ip(1000 + i), "1001", R, s(u64::from(i) / 4)));
    }
    let targeted: Vec<_> = all
        .iter()
        .filter(|e| matches!(e, GuardEvent::UsernameTargeted { .. }))
        .collect();
    assert_eq!(targeted.len(), 1, "{all:?}");
    assert!(matches!(
        targeted[0],
        GuardEvent::UsernameTargeted { failures: 50, .. }
    ));
    assert_eq!(bans(&all), 0);
    assert_eq!(g.check_auth(ip(1), "1001", R, s(31)), AuthGate::Allow);
}

#[test]
fn rate_limit_burst_and_refill() {
    let cfg = GuardConfig {
        rate_per_sec: 10,
        burst: 20,
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg);
    let a = ip(1);
    let t0 = s(1000);
    for i in 0..20 {
        assert_eq!(g.check_request(a, t0), Admission::Allow, "req {i}");
    }
    assert_eq!(g.check_request(a, t0), Admission::RateLimited);
    // 10/s: one token per 100 ms.
    assert_eq!(
        g.check_request(a, t0 + Duration::from_millis(99)),
        Admission::RateLimited
    );
    assert_eq!(
        g.check_request(a, t0 + Duration::from_millis(100)),
        Admission::Allow
    );
    assert_eq!(
        g.check_request(a, t0 + Duration::from_millis(150)),
        Admission::RateLimited
    );
    // After a long pause, only a full burst, not more.
    let later = t0 + s(60);
    let allowed = (0..100)
        .filter(|_| g.check_request(a, later) == Admission::Allow)
        .count();
    assert_eq!(allowed, 20);
    // Another source has its own bucket.
    assert_eq!(g.check_request(ip(2), t0), Admission::Allow);
    // A clock going backwards does not mint tokens.
    assert_eq!(g.check_request(a, t0), Admission::RateLimited);
}

#[test]
fn exempt_ips_are_never_banned_or_limited() {
    let cfg = GuardConfig {
        burst: 2,
        exempt: vec![IpNet::host(ip(5))],
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg);
    for _ in 0..10 {
        assert_eq!(g.check_request(ip(5), s(0)), Admission::Allow);
    }
    let mut all = Vec::new();
    for i in 0..30u64 {
        all.extend(g.record_failure(ip(5), &format!("u{i}"), R, s(1)));
    }
    assert_eq!(bans(&all), 0);
    // Pair locks still apply.
    for _ in 0..5 {
        g.record_failure(ip(5), "1001", R, s(2));
    }
    assert!(matches!(
        g.check_auth(ip(5), "1001", R, s(2)),
        AuthGate::UserLocked { .. }
    ));
}

#[test]
fn tables_are_capped_against_many_sources() {
    let cfg = GuardConfig {
        max_ips: 64,
        max_pairs: 64,
        max_users: 64,
        max_bans: 64,
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg);
    for i in 0..10_000u32 {
        let now = Duration::from_millis(u64::from(i));
        g.check_request(ip(i), now);
        g.record_failure(ip(i), &format!("user{i}"), R, now);
        g.record_success(ip(i + 20_000), "ok", R, now);
    }
    let st = g.stats();
    assert!(st.rate_buckets <= 64, "{st:?}");
    assert!(st.ip_failure_logs <= 64, "{st:?}");
    assert!(st.pairs <= 64, "{st:?}");
    assert!(st.users <= 64, "{st:?}");
    // Bans: many IPs each earning a ban.
    for i in 0..1000u32 {
        for k in 0..10 {
            g.record_failure(ip(50_000 + i), &format!("k{k}"), R, s(20 + u64::from(i)));
        }
    }
    let st = g.stats();
    assert!(st.bans <= 64 && st.bans > 0, "{st:?}");
    // The most recent ban survives eviction.
    assert!(g.banned_until(ip(50_999), s(1100)).is_some());
}

#[test]
fn sweep_drops_idle_entries() {
    let mut g = Guard::new(GuardConfig::default());
    for i in 0..10 {
        g.check_request(ip(i), s(0));
        for k in 0..10 {
            g.record_failure(ip(i), &format!("k{k}"), R, s(0));
        }
    }
    let st = g.stats();
    assert_eq!(st.bans, 10);
    assert!(st.pairs > 0 && st.users > 0 && st.rate_buckets > 0);
    g.sweep(s(899));
    assert_eq!(g.stats().bans, 10);
    g.sweep(s(900));
    assert_eq!(g.stats(), GuardStats::default());
}

#[test]
fn unban_lifts_a_ban() {
    let mut g = Guard::new(GuardConfig::default());
    for k in 0..10 {
        g.record_failure(ip(1), &format!("k{k}"), R, s(0));
    }
    assert!(g.banned_until(ip(1), s(1)).is_some());
    assert!(g.unban(ip(1)));
    assert_eq!(g.check_request(ip(1), s(1)), Admission::Allow);
    assert!(!g.unban(ip(1)));
}

#[test]
fn extreme_inputs_do_not_panic() {
    let cfg = GuardConfig {
        ip_failures: 0,
        user_failures: 0,
        trusted_ip_factor: 0,
        rate_per_sec: u32::MAX,
        burst: u32::MAX,
        max_ips: 0,
        max_pairs: 0,
        max_users: 0,
        max_bans: 0,
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg);
    let far = Duration::MAX;
    g.check_request(ip(1), far);
    g.check_request(ip(1), Duration::ZERO);
    g.record_failure(ip(1), &"x".repeat(10_000), "", far);
    g.record_success(ip(1), "", "", Duration::ZERO);
    g.sweep(far);
    let _ = g.check_auth(ip(2), "", "", far);
}

#[test]
fn exempt_blocks_and_trunk_sources_are_never_banned_or_limited() {
    let cfg = GuardConfig {
        burst: 2,
        exempt: vec!["10.9.0.0/16".parse().unwrap()],
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg);
    let sbc: IpAddr = "10.9.200.1".parse().unwrap();
    let carrier: IpAddr = "192.0.2.40".parse().unwrap();
    // The carrier is banned before it is known as a trunk...
    for i in 0..10u64 {
        g.record_failure(carrier, &format!("u{i}"), R, s(1));
    }
    assert!(matches!(
        g.check_request(carrier, s(2)),
        Admission::Banned { .. }
    ));
    // ... and the trunk list lifts the ban and keeps it off.
    g.set_trunk_sources(vec![
        IpNet::host(carrier),
        "198.51.100.0/24".parse().unwrap(),
    ]);
    assert!(g.is_exempt(carrier) && g.is_exempt("198.51.100.9".parse().unwrap()));
    for who in [sbc, carrier, "198.51.100.9".parse().unwrap()] {
        let mut all = Vec::new();
        for i in 0..30u64 {
            assert_eq!(g.check_request(who, s(3)), Admission::Allow);
            all.extend(g.record_failure(who, &format!("v{i}"), R, s(3)));
            g.record_bad_nonce(who, s(3));
        }
        assert_eq!(bans(&all), 0, "{who}");
        assert_eq!(g.check_request(who, s(4)), Admission::Allow);
    }
    // Outside the blocks, the burst of 2 applies.
    let other: IpAddr = "10.10.0.1".parse().unwrap();
    assert_eq!(g.check_request(other, s(5)), Admission::Allow);
    assert_eq!(g.check_request(other, s(5)), Admission::Allow);
    assert_eq!(g.check_request(other, s(5)), Admission::RateLimited);
}

#[test]
fn ipv6_sources_are_grouped_by_64() {
    let mut g = Guard::new(GuardConfig::default());
    // An attacker rotating through its /64 is one source.
    for i in 0..10u64 {
        let a: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
        g.record_failure(a, &format!("u{i}"), R, s(1));
    }
    let same: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
    assert!(matches!(
        g.check_request(same, s(2)),
        Admission::Banned { .. }
    ));
    let next: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(g.check_request(next, s(2)), Admission::Allow);
    assert!(g.unban("2001:db8:1:2::99".parse().unwrap()));
    assert_eq!(g.check_request(same, s(2)), Admission::Allow);
    // Rates too.
    let cfg = GuardConfig {
        burst: 3,
        rate_per_sec: 1,
        ..GuardConfig::default()
    };
    let mut g = Guard::new(cfg);
    for i in 0..3u64 {
        let a: IpAddr = format!("2001:db8::{:x}", i + 1).parse().unwrap();
        assert_eq!(g.check_request(a, s(0)), Admission::Allow);
    }
    let a: IpAddr = "2001:db8::ff".parse().unwrap();
    assert_eq!(g.check_request(a, s(0)), Admission::RateLimited);
    // IPv4-mapped IPv6 is the IPv4 source.
    assert_eq!(
        source_group("::ffff:192.0.2.1".parse().unwrap()),
        "192.0.2.1".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn bad_nonces_cost_rate_tokens_and_never_ban() {
    let mut g = Guard::new(GuardConfig::default());
    let a = ip(7);
    let mut allowed = 0;
    for _ in 0..100 {
        if g.check_request(a, s(0)) == Admission::Allow {
            allowed += 1;
            g.record_bad_nonce(a, s(0));
        }
    }
    // Burst 400, 20 per bad nonce, 1 per request: 400 / 21 → 20 get through.
    assert!((19..=20).contains(&allowed), "{allowed}");
    assert_eq!(g.banned_until(a, s(0)), None);
    // The bucket refills: a second later 200 tokens are back.
    assert_eq!(g.check_request(a, s(1)), Admission::Allow);
}

#[test]
fn ip_nets_parse_and_contain() {
    let n: IpNet = "192.0.2.0/24".parse().unwrap();
    assert!(n.contains("192.0.2.200".parse().unwrap()));
    assert!(n.contains("::ffff:192.0.2.1".parse().unwrap()));
    assert!(!n.contains("192.0.3.1".parse().unwrap()));
    assert_eq!(n.to_string(), "192.0.2.0/24");
    let h: IpNet = " 2001:db8::1 ".parse().unwrap();
    assert_eq!(h.prefix(), 128);
    assert!(h.contains("2001:db8::1".parse().unwrap()));
    for bad in ["192.0.2.0/33", "carrier.example", "10.0.0.0/x", ""] {
        let e = bad.parse::<IpNet>().unwrap_err();
        assert!(e.contains("expected e.g. 192.0.2.0/24"), "{e}");
    }
}
