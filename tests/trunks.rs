//! Trunks end to end: the real binary, a scripted carrier on loopback and a
//! scripted phone (no baresip needed).
//!
//! * A record-routing carrier in front of a far-end phone: the far end's
//!   hang-up of an inbound call reaches Switchboard through the carrier and
//!   ends the call at once, with the right duration in its record.
//! * A carrier authenticating its calls with the trunk's digest credentials.
//! * A trunk's calls-per-second limit.
//! * An outbound trunk over TCP connects.
//! * Failover skips a trunk the OPTIONS keepalive found down, and a TCP
//!   trunk whose connection is refused.
//! * Registration to the provider, answered with digest and refreshed.
//!
//! * The same with Kamailio as the carrier's proxy (skipped without it).
//!
//! Relay ports: 29800-30399 and 30600-30799 (below the ephemeral range).
//! The keepalive is on (1 s) only where a test says so.

mod clients;
mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use clients::carrier::answering::{
    TcpCarrier, UdpCarrier, ack_non_2xx, final_response, inbound_invite,
};
use clients::carrier::{FarEnd, RecordRoutingProxy, header};
use clients::pbx::{DOMAIN, pbx_with, pbx_with_env};
use clients::sipua::SipUa;
use common::block_on;
use store::{Direction, Disposition, Transport, TrunkSettings};

/// A trunk at `host:port` with no credentials, enabled.
fn trunk(name: &str, port: u16) -> TrunkSettings {
    TrunkSettings {
        name: name.into(),
        host: "127.0.0.1".into(),
        port,
        transport: Transport::Udp,
        username: None,
        password: None,
        from_domain: None,
        priority: 1,
        emergency_priority: None,
        enabled: true,
        inbound_source: None,
        force_wide_source: false,
        inbound_auth: false,
        calls_per_second: TrunkSettings::DEFAULT_CALLS_PER_SECOND,
        register: false,
        registrar: None,
        register_expires: TrunkSettings::DEFAULT_REGISTER_EXPIRES,
    }
}

/// Routes +44 20 7946 0018 to extension `ext` of the business.
fn route_number(dir: &dyn store::Directory, tenant: store::TenantId, ext: &str) {
    block_on(async {
        let ext = dir
            .get_extension_by_number(tenant, &ext.parse().unwrap())
            .await
            .unwrap();
        dir.add_number_routed(
            &"+442079460018".parse().unwrap(),
            tenant,
            store::RouteTarget::Extension(ext.id),
        )
        .await
        .unwrap();
    });
}

#[test]
fn far_end_hangup_through_a_record_routing_carrier_ends_the_call_at_once() {
    // The carrier's address is the trunk's; its proxy starts once
    // Switchboard's address is known.
    let proxy_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let proxy_port = proxy_sock.local_addr().unwrap().port();
    let pbx = pbx_with(&["101", "102"], "30000-30099", |dir, tenant| {
        route_number(dir, tenant, "102");
        block_on(dir.create_trunk(&trunk("carrier", proxy_port))).unwrap();
    });
    let proxy = RecordRoutingProxy::start(proxy_sock, pbx.sip, clients::OTHER_IP);
    let route =
        far_end_hangs_up_through(&pbx, proxy.addr, || proxy.saw("far->pbx", "BYE").is_some());
    assert_eq!(route, [format!("<sip:{};lr>", proxy.addr)]);
}

/// The same through Kamailio (Debian's 5.6) as the carrier's proxy, with
/// the configuration in tests/kamailio/carrier.cfg.
#[test]
fn far_end_hangup_through_kamailio_ends_the_call_at_once() {
    if !clients::clients_available("trunk_kamailio", &["kamailio"]) {
        return;
    }
    let port = clients::free_udp_port("127.0.0.1");
    let pbx = pbx_with(&["101", "102"], "29900-29999", |dir, tenant| {
        route_number(dir, tenant, "102");
        block_on(dir.create_trunk(&trunk("kamailio", port))).unwrap();
    });
    let carrier = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let kamailio = clients::carrier::answering::kamailio(carrier, pbx.sip);
    let route = far_end_hangs_up_through(&pbx, carrier, || true);
    assert_eq!(route.len(), 1, "{route:?}");
    assert!(
        route[0].contains(&carrier.to_string()),
        "the route set names {route:?}, not Kamailio"
    );
    drop(kamailio);
}

/// An inbound call from a far end behind `carrier` (its only way out),
/// answered by extension 102, hung up by the far end after 3 s: the BYE must
/// reach Switchboard through the carrier (`bye_seen` says the carrier saw
/// it) and end the call at once, with the right duration in the record.
/// Returns the far end's route set.
fn far_end_hangs_up_through(
    pbx: &clients::pbx::Pbx,
    carrier: std::net::SocketAddr,
    bye_seen: impl Fn() -> bool,
) -> Vec<String> {
    let b = pbx.account("102");
    let mut bob = SipUa::new(
        clients::PHONE_IP,
        pbx.sip,
        &b.user,
        &b.password,
        DOMAIN,
        880.0,
    );
    bob.register();

    let far_rtp = UdpSocket::bind((clients::OTHER_IP, 0)).unwrap();
    let mut far = FarEnd::new(clients::OTHER_IP, carrier);
    far.invite("+442079460018", pbx.sip, far_rtp.local_addr().unwrap());
    let dialog = bob.answer(&[]);
    let ok = far
        .wait_final("INVITE", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no answer at the far end\n{}", pbx.server.log()));
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let answered = Instant::now();
    // The 200 names the carrier's Record-Route, so the far end's requests
    // go back through the carrier.
    assert!(
        !far.route_set().is_empty(),
        "no Record-Route in the 200 the far end got: {ok}"
    );
    far.in_dialog("ACK");
    bob.run(Duration::from_secs(3), &[&dialog]);

    let hangup = Instant::now();
    far.in_dialog("BYE");
    let bye_ok = far.wait_final("BYE", Duration::from_secs(2));
    bob.run(Duration::from_millis(500), &[&dialog]);
    assert!(
        far.undeliverable.is_empty(),
        "the far end had to reach Switchboard directly: {:?}",
        far.undeliverable
    );
    assert!(bye_seen(), "the BYE did not go through the carrier");
    assert!(
        bye_ok
            .as_deref()
            .is_some_and(|r| r.starts_with("SIP/2.0 200")),
        "no 200 to the far end's BYE: {bye_ok:?}\n{}",
        pbx.server.log()
    );
    assert!(
        bob.byes.contains(&dialog.call_id),
        "the extension's leg was not hung up: {:?}",
        bob.byes
    );
    let rows = pbx.cdr_rows(1);
    let rec = &rows[0].record;
    assert_eq!(rec.direction, Direction::Inbound);
    assert_eq!(rec.disposition, Disposition::Answered);
    assert!(rec.trunk_id.is_some());
    let talked = hangup.duration_since(answered).as_secs_f64();
    let ended_after = (rec.ended_at - rec.answered_at.unwrap()).as_seconds_f64();
    assert!(
        (ended_after - talked).abs() < 1.0,
        "the record says the call lasted {ended_after:.1} s, it lasted {talked:.1} s"
    );
    assert!(
        (f64::from(rec.duration_secs) - talked).abs() <= 1.0,
        "duration {} s for a {talked:.1} s call",
        rec.duration_secs
    );
    far.route_set().to_vec()
}

/// Issue #10: a carrier whose source address is not fixed authenticates its
/// calls with the trunk's credentials. Its INVITE is challenged (even from
/// the trunk's own address: for such a trunk the address alone proves
/// nothing), a wrong password gets 403, the right one reaches the extension.
#[test]
fn digest_authenticated_carrier_calls_in() {
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = carrier.local_addr().unwrap();
    let pbx = pbx_with(&["101", "102"], "30100-30199", |dir, tenant| {
        route_number(dir, tenant, "102");
        let mut t = trunk("carrier", me.port());
        t.username = Some("acme-in".into());
        t.password = Some(store::Secret::new("trunk-pass-1"));
        t.inbound_auth = true;
        t.inbound_source = Some("127.0.0.1".into());
        block_on(dir.create_trunk(&t)).unwrap();
    });
    let b = pbx.account("102");
    let mut bob = SipUa::new(
        clients::PHONE_IP,
        pbx.sip,
        &b.user,
        &b.password,
        DOMAIN,
        880.0,
    );
    bob.register();

    let uri = format!("sip:+442079460018@{}", pbx.sip);
    let challenge = |call_id: &str| {
        carrier
            .send_to(
                inbound_invite(me, pbx.sip, "+442079460018", call_id, 1, "").as_bytes(),
                pbx.sip,
            )
            .unwrap();
        let r = final_response(&carrier, call_id, 1, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no answer to the carrier\n{}", pbx.server.log()));
        assert!(r.starts_with("SIP/2.0 407"), "not challenged: {r}");
        ack_non_2xx(&carrier, &r, &uri, pbx.sip);
        sip::auth::Challenge::parse(header(&r, "Proxy-Authenticate").unwrap())
            .unwrap()
            .answer(
                "acme-in",
                if call_id == "wrong" {
                    "guess"
                } else {
                    "trunk-pass-1"
                },
                "INVITE",
                &uri,
                1,
                "c0ffee",
            )
            .to_header_value()
    };
    // a wrong password
    let bad = challenge("wrong");
    let extra = format!("Proxy-Authorization: {bad}\r\n");
    carrier
        .send_to(
            inbound_invite(me, pbx.sip, "+442079460018", "wrong", 2, &extra).as_bytes(),
            pbx.sip,
        )
        .unwrap();
    let r = final_response(&carrier, "wrong", 2, Duration::from_secs(5)).unwrap();
    assert!(r.starts_with("SIP/2.0 403"), "a wrong trunk password: {r}");
    ack_non_2xx(&carrier, &r, &uri, pbx.sip);

    // the trunk's credentials
    let good = challenge("right");
    let extra = format!("Proxy-Authorization: {good}\r\n");
    carrier
        .send_to(
            inbound_invite(me, pbx.sip, "+442079460018", "right", 2, &extra).as_bytes(),
            pbx.sip,
        )
        .unwrap();
    let _dialog = bob.answer(&[]);
    let r = final_response(&carrier, "right", 2, Duration::from_secs(5)).unwrap();
    assert!(r.starts_with("SIP/2.0 200"), "{r}\n{}", pbx.server.log());
}

/// Each trunk's calls per second: a burst of inbound calls beyond the
/// trunk's rate gets 503 with Retry-After, the ones within it go through.
#[test]
fn trunk_call_rate_is_enforced() {
    let carrier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = carrier.local_addr().unwrap();
    let pbx = pbx_with(&["101", "102"], "30200-30299", |dir, tenant| {
        route_number(dir, tenant, "102");
        let mut t = trunk("carrier", me.port());
        t.calls_per_second = 2;
        block_on(dir.create_trunk(&t)).unwrap();
    });
    for i in 0..6 {
        let invite = inbound_invite(me, pbx.sip, "+442079460018", &format!("burst{i}"), 1, "");
        carrier.send_to(invite.as_bytes(), pbx.sip).unwrap();
    }
    let mut limited = 0;
    let mut passed = 0;
    for i in 0..6 {
        let r = final_response(&carrier, &format!("burst{i}"), 1, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no answer to burst{i}\n{}", pbx.server.log()));
        if r.starts_with("SIP/2.0 503") && r.contains("call rate") {
            assert_eq!(header(&r, "Retry-After"), Some("1"), "{r}");
            limited += 1;
        } else {
            passed += 1;
        }
    }
    assert!(
        (1..=3).contains(&passed),
        "{passed} of 6 passed the rate of 2/s"
    );
    assert!(limited >= 3, "only {limited} refused");
}

/// Issue #10: an outbound trunk over TCP really connects (before, a send
/// with no open connection to the carrier failed silently).
#[test]
fn outbound_tcp_trunk_connects() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pbx = pbx_with(&["101"], "30600-30699", |dir, tenant| {
        route_number(dir, tenant, "101");
        block_on(async {
            let mut s = dir.get_tenant(tenant).await.unwrap().settings;
            s.main_number = Some("+442079460018".parse().unwrap());
            dir.update_tenant(tenant, &s).await.unwrap();
        });
        let mut t = trunk("tcp carrier", port);
        t.transport = Transport::Tcp;
        block_on(dir.create_trunk(&t)).unwrap();
    });
    let carrier = TcpCarrier::start(listener);
    let mut alice = registered_101(&pbx);
    let mut d = alice
        .call("07400123456", "", &[])
        .unwrap_or_else(|s| panic!("the call over TCP failed with {s}\n{}", pbx.server.log()));
    assert!(carrier.saw("INVITE"));
    assert_eq!(*carrier.connections.lock().unwrap(), 1);
    alice.run(Duration::from_millis(300), &[&d]);
    assert_eq!(alice.request(&mut d, "BYE", "", "", &[]), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !carrier.saw("BYE") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(carrier.saw("BYE"), "{:?}", carrier.methods.lock().unwrap());
    assert!(carrier.saw("ACK"), "{:?}", carrier.methods.lock().unwrap());
    assert_eq!(
        *carrier.connections.lock().unwrap(),
        1,
        "the call's requests share one connection"
    );
}

/// Extension 101 as a scripted phone on `clients::PHONE_IP`, registered.
fn registered_101(pbx: &clients::pbx::Pbx) -> SipUa {
    let a = pbx.account("101");
    let mut ua = SipUa::new(
        clients::PHONE_IP,
        pbx.sip,
        &a.user,
        &a.password,
        DOMAIN,
        440.0,
    );
    ua.register();
    ua
}

/// Sets the business's main number (what outside calls present).
fn present_main_number(dir: &dyn store::Directory, tenant: store::TenantId) {
    block_on(async {
        let mut s = dir.get_tenant(tenant).await.unwrap().settings;
        s.main_number = Some("+442079460018".parse().unwrap());
        dir.update_tenant(tenant, &s).await.unwrap();
    });
}

/// Issue #17: once the keepalive has found a trunk down, an outside call
/// goes straight to the next trunk instead of waiting out the dead one's
/// set-up timeout (4 s); the dead trunk gets OPTIONS, never the INVITE.
#[test]
fn failover_skips_a_trunk_known_to_be_down() {
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let live = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (dead_port, live_port) = (
        dead.local_addr().unwrap().port(),
        live.local_addr().unwrap().port(),
    );
    let pbx = pbx_with_env(
        &["101"],
        "30300-30399",
        &[("SWITCHBOARD_TRUNK_KEEPALIVE", "1")],
        |dir, tenant| {
            route_number(dir, tenant, "101");
            present_main_number(dir, tenant);
            let mut d = trunk("dead", dead_port);
            d.priority = 1;
            block_on(dir.create_trunk(&d)).unwrap();
            let mut l = trunk("live", live_port);
            l.priority = 2;
            block_on(dir.create_trunk(&l)).unwrap();
        },
    );
    let carrier = UdpCarrier::start(live, 3600);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pbx.server.log().contains("trunk down") {
        assert!(
            Instant::now() < deadline,
            "the dead trunk was never found down\n{}",
            pbx.server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !carrier.received("OPTIONS").is_empty(),
        "the live trunk got no OPTIONS"
    );
    let mut alice = registered_101(&pbx);
    let started = Instant::now();
    let mut d = alice
        .call("07400123456", "", &[])
        .unwrap_or_else(|s| panic!("the call failed with {s}\n{}", pbx.server.log()));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the call waited {took:?}: the dead trunk was tried first"
    );
    assert_eq!(carrier.received("INVITE").len(), 1);
    let _ = alice.request(&mut d, "BYE", "", "", &[]);
    dead.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65_536];
    let mut got = Vec::new();
    while let Ok((n, _)) = dead.recv_from(&mut buf) {
        got.push(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert!(!got.is_empty(), "the dead trunk was never probed");
    assert!(
        got.iter().all(|l| l.starts_with("OPTIONS ")),
        "the dead trunk got more than OPTIONS: {got:?}"
    );
}

/// Issue #17: a TCP trunk whose connection is refused fails over to the
/// next trunk at once (the refused connect fails its INVITE transaction),
/// instead of waiting out the dead trunk's set-up timeout (4 s).
#[test]
fn failover_from_a_refused_tcp_trunk_is_immediate() {
    // A port nothing listens on: the connect is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let live = UdpSocket::bind("127.0.0.1:0").unwrap();
    let live_port = live.local_addr().unwrap().port();
    let pbx = pbx_with(&["101"], "29800-29899", |dir, tenant| {
        route_number(dir, tenant, "101");
        present_main_number(dir, tenant);
        let mut d = trunk("refusing tcp", dead_port);
        d.transport = Transport::Tcp;
        d.priority = 1;
        block_on(dir.create_trunk(&d)).unwrap();
        let mut l = trunk("live", live_port);
        l.priority = 2;
        block_on(dir.create_trunk(&l)).unwrap();
    });
    let carrier = UdpCarrier::start(live, 3600);
    let mut alice = registered_101(&pbx);
    let started = Instant::now();
    let mut d = alice
        .call("07400123456", "", &[])
        .unwrap_or_else(|s| panic!("the call failed with {s}\n{}", pbx.server.log()));
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the call waited {took:?} for the refused trunk\n{}",
        pbx.server.log()
    );
    assert_eq!(carrier.received("INVITE").len(), 1);
    assert!(
        pbx.server.log().contains("outbound TCP connection failed"),
        "{}",
        pbx.server.log()
    );
    let _ = alice.request(&mut d, "BYE", "", "", &[]);
}

/// Issue #17: a trunk set to register does so with its credentials
/// (answering the provider's 401), and refreshes before the granted expiry
/// runs out.
#[test]
fn trunk_registers_to_the_provider_and_refreshes() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let carrier = UdpCarrier::start(sock, 2);
    let pbx = pbx_with_env(
        &["101"],
        "30700-30799",
        &[("SWITCHBOARD_TRUNK_KEEPALIVE", "0")],
        |dir, _| {
            let mut t = trunk("uk carrier", port);
            t.username = Some("acme-reg".into());
            t.password = Some(store::Secret::new("reg-pass-1"));
            t.register = true;
            t.register_expires = 120;
            block_on(dir.create_trunk(&t)).unwrap();
        },
    );
    // granted 2 s: refreshed at 80 %, so at least three authorised
    // REGISTERs within 5 s
    let deadline = Instant::now() + Duration::from_secs(8);
    let authorised = || {
        carrier
            .received("REGISTER")
            .into_iter()
            .filter(|(a, _)| a.is_some())
            .collect::<Vec<_>>()
    };
    while authorised().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let regs = authorised();
    assert!(
        regs.len() >= 3,
        "{} authorised REGISTERs: {:?}\n{}",
        regs.len(),
        carrier.received("REGISTER"),
        pbx.server.log()
    );
    let auth = regs[0].0.as_deref().unwrap();
    assert!(auth.contains("username=\"acme-reg\""), "{auth}");
    assert!(auth.contains("realm=\"carrier.example\""), "{auth}");
    let gap = regs[2].1.duration_since(regs[1].1);
    assert!(
        gap < Duration::from_millis(2000),
        "refreshed {gap:?} after the last one: past the 2 s expiry"
    );
    assert!(pbx.server.log().contains("registered to the provider"));
}

/// Issue #10: the CLI refuses an inbound source of 0.0.0.0/0 (or any block
/// wider than /24, /48 for IPv6) naming the flag and the reason, and takes
/// it with --force-wide-source.
#[test]
fn cidr_slash_zero_trunk_is_refused_by_the_cli() {
    let db = common::Db::sqlite();
    common::cli(&db, &["migrate"]).ok();
    let add = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "trunk",
            "add",
            "--name",
            "Any",
            "--host",
            "sip.carrier.test",
        ];
        args.extend_from_slice(extra);
        common::cli(&db, &args)
    };
    for wide in ["0.0.0.0/0", "::/0"] {
        let out = add(&["--inbound-source", wide]);
        assert!(!out.success(), "{out:#?}");
        assert!(
            out.stderr.contains("--inbound-source") && out.stderr.contains("wider than"),
            "{}",
            out.stderr
        );
    }
    let out = add(&["--inbound-source", "0.0.0.0/0", "--force-wide-source"]);
    let v = out.json();
    assert_eq!(v["inbound_source"], "0.0.0.0/0");
    assert_eq!(v["force_wide_source"], true);
    let listed = common::cli(&db, &["--json", "trunk", "list"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
}
