//! Registration end to end with real SIP clients against the real binary:
//! baresip registers (UDP and TCP) with the credentials the CLI printed and
//! is refused with a wrong password; sipsak gets OPTIONS answered, registers
//! and unregisters over UDP and TCP, and cannot tell a known username from an
//! unknown one; svwar finds no extension; svcrack never cracks, locks only
//! the username it attacks from its address, and ends banned once it moves
//! on to a second one, while the real phone still registers; a binding
//! survives a restart (SQLite and Postgres). Each test runs its own server on
//! ephemeral loopback ports with its own database.

mod clients;
mod common;

use std::time::Duration;

use clients::{
    Account, OTHER_IP, PHONE_IP, SipAddrs, Transport, baresip, bindings, clients_available,
    is_refused_line, is_registered_line, options_probe, provision, sip_addrs, sipsak_register,
    svcrack, svwar, wait_for_bindings,
};
use common::{Db, Server};

const DOMAIN: &str = "acme.pbx.example.com";
const REGISTER_WITHIN: Duration = Duration::from_secs(20);

fn start(db: &Db) -> (Server, SipAddrs) {
    let server = Server::start(db, &[]);
    let sip = sip_addrs(&server);
    (server, sip)
}

fn contacts(rows: &[serde_json::Value]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r["contact"].as_str().map(str::to_owned))
        .collect()
}

/// Status lines and challenges in sipsak's `-vvv` output, nonces blanked.
fn responses_seen(sipsak_stdout: &str) -> Vec<String> {
    sipsak_stdout
        .lines()
        .filter(|l| l.starts_with("SIP/2.0 ") || l.starts_with("WWW-Authenticate:"))
        .map(|l| match l.find("nonce=\"") {
            Some(i) => {
                let rest = &l[i + 7..];
                let end = rest.find('"').map_or(l.len(), |j| i + 7 + j);
                format!("{}nonce=\"*\"{}", &l[..i], &l[(end + 1).min(l.len())..])
            }
            None => l.to_owned(),
        })
        .collect()
}

fn baresip_binding(rows: &[serde_json::Value], user: &str) -> Option<serde_json::Value> {
    rows.iter()
        .find(|r| {
            r["extension"] == user
                && r["user_agent"]
                    .as_str()
                    .is_some_and(|ua| ua.contains("baresip"))
        })
        .cloned()
}

#[test]
fn baresip_registers_with_the_printed_password_and_unregisters_on_exit() {
    if !clients_available("baresip_registers", &["baresip"]) {
        return;
    }
    let db = Db::sqlite();
    let (server, sip) = start(&db);
    let acct = &provision(&db, DOMAIN, &["101"])[0];
    assert!(bindings(&db, DOMAIN).is_empty());

    for transport in [Transport::Udp, Transport::Tcp] {
        let registrar = match transport {
            Transport::Udp => sip.udp,
            Transport::Tcp => sip.tcp,
        };
        let mut phone = baresip(acct, &acct.password, PHONE_IP, registrar, transport);
        let line = phone.wait_for_line(REGISTER_WITHIN, is_registered_line);
        assert!(
            line.is_some(),
            "baresip ({transport:?}) did not register; its log:\n{}\nserver log:\n{}",
            phone.log(),
            server.log()
        );
        let rows = wait_for_bindings(&db, DOMAIN, REGISTER_WITHIN, "baresip binding", |rows| {
            baresip_binding(rows, "101").is_some()
        });
        let b = baresip_binding(&rows, "101").expect("binding");
        assert_eq!(rows.len(), 1, "exactly one binding: {rows:#?}");
        let contact = b["contact"].as_str().expect("contact");
        assert!(contact.contains(&format!("@{PHONE_IP}:")), "{b:#}");
        // Over UDP the flow is the phone's own address; over TCP libre
        // connects from the default source address, so only loopback is sure.
        let source: std::net::SocketAddr = b["source"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("the binding remembers its flow: {b:#}"));
        match transport {
            Transport::Udp => assert_eq!(source.ip().to_string(), PHONE_IP, "{b:#}"),
            Transport::Tcp => assert!(source.ip().is_loopback(), "{b:#}"),
        }
        let want = match transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        assert_eq!(b["transport"], want, "{b:#}");
        // The operator's view: the text table, and the per-extension filter.
        let text = common::cli(&db, &["registration", "list", "--tenant", DOMAIN]);
        let text = text.ok();
        assert!(
            text.contains(contact) && text.contains("baresip") && text.contains(want),
            "{text}"
        );
        let only = common::cli(
            &db,
            &[
                "--json",
                "registration",
                "list",
                "--tenant",
                DOMAIN,
                "--extension",
                "101",
            ],
        );
        assert_eq!(only.json().as_array().map(Vec::len), Some(1));
        let none = common::cli(
            &db,
            &[
                "registration",
                "list",
                "--tenant",
                DOMAIN,
                "--extension",
                "102",
            ],
        );
        assert!(
            !none.success() && none.stderr.contains("no extension 102"),
            "{none:#?}"
        );

        // A clean exit unregisters (Expires: 0): the binding goes away.
        let status = phone.terminate(Duration::from_secs(20));
        assert!(status.is_some(), "baresip did not exit on SIGTERM");
        wait_for_bindings(&db, DOMAIN, REGISTER_WITHIN, "unregistration", |rows| {
            rows.is_empty()
        });
    }
    drop(server);
}

#[test]
fn baresip_with_a_wrong_password_is_refused_and_not_bound() {
    if !clients_available("baresip_wrong_password", &["baresip"]) {
        return;
    }
    let db = Db::sqlite();
    let (server, sip) = start(&db);
    let acct = &provision(&db, DOMAIN, &["101"])[0];
    let wrong = format!("{}x", acct.password);
    let mut phone = baresip(acct, &wrong, PHONE_IP, sip.udp, Transport::Udp);
    let refused = phone.wait_for_line(REGISTER_WITHIN, is_refused_line);
    assert!(
        refused.is_some(),
        "baresip logged no 401/403 refusal; its log:\n{}\nserver log:\n{}",
        phone.log(),
        server.log()
    );
    let log = phone.log();
    assert!(
        !log.lines().any(is_registered_line),
        "a wrong password registered:\n{log}"
    );
    assert!(bindings(&db, DOMAIN).is_empty(), "no binding may exist");
}

#[test]
fn sipsak_usrloc_registers_and_unregisters_over_udp_and_tcp() {
    if !clients_available("sipsak_usrloc", &["sipsak"]) {
        return;
    }
    let db = Db::sqlite();
    let (server, sip) = start(&db);
    let acct = &provision(&db, DOMAIN, &["101"])[0];

    // OPTIONS to the server: 200 with what it allows.
    let out = clients::sipsak_options(PHONE_IP, sip.udp, DOMAIN);
    assert!(out.success(), "sipsak OPTIONS: {out:#?}");
    assert!(
        out.stdout.contains("SIP/2.0 200 OK") && out.stdout.contains("REGISTER"),
        "OPTIONS answer lacks 200 / Allow: REGISTER:\n{}",
        out.stdout
    );

    let udp_contact = format!("sip:101@{PHONE_IP}:15061");
    let tcp_contact = format!("sip:101@{PHONE_IP}:15062");
    let out = sipsak_register(
        acct,
        &acct.password,
        PHONE_IP,
        sip.udp,
        Transport::Udp,
        &udp_contact,
        300,
    );
    assert!(
        out.success(),
        "sipsak UDP register: {out:#?}\nserver log:\n{}",
        server.log()
    );
    let out = sipsak_register(
        acct,
        &acct.password,
        PHONE_IP,
        sip.tcp,
        Transport::Tcp,
        &tcp_contact,
        300,
    );
    assert!(
        out.success(),
        "sipsak TCP register: {out:#?}\nserver log:\n{}",
        server.log()
    );
    // The 200 to the second REGISTER lists every current binding of 101.
    assert!(
        out.stdout.contains(&udp_contact),
        "200 OK lists both contacts: {}",
        out.stdout
    );
    let rows = wait_for_bindings(&db, DOMAIN, REGISTER_WITHIN, "two bindings", |r| {
        r.len() == 2
    });
    let listed = contacts(&rows);
    assert!(
        listed.iter().any(|c| c == &udp_contact) && listed.iter().any(|c| c == &tcp_contact),
        "{rows:#?}"
    );

    // Wrong password: refused, nothing added.
    let out = sipsak_register(
        acct,
        "not-the-password",
        PHONE_IP,
        sip.udp,
        Transport::Udp,
        &format!("sip:101@{PHONE_IP}:15063"),
        300,
    );
    assert!(!out.success(), "a wrong password registered: {out:#?}");
    assert_eq!(bindings(&db, DOMAIN).len(), 2);

    // Expires 0 removes exactly that contact.
    let out = sipsak_register(
        acct,
        &acct.password,
        PHONE_IP,
        sip.udp,
        Transport::Udp,
        &udp_contact,
        0,
    );
    assert!(out.success(), "sipsak unregister: {out:#?}");
    let rows = wait_for_bindings(&db, DOMAIN, REGISTER_WITHIN, "UDP contact removed", |r| {
        r.len() == 1
    });
    assert_eq!(contacts(&rows), vec![tcp_contact.clone()]);
    let out = sipsak_register(
        acct,
        &acct.password,
        PHONE_IP,
        sip.tcp,
        Transport::Tcp,
        &tcp_contact,
        0,
    );
    assert!(out.success(), "sipsak TCP unregister: {out:#?}");
    wait_for_bindings(&db, DOMAIN, REGISTER_WITHIN, "all removed", |r| {
        r.is_empty()
    });
}

#[test]
fn svwar_finds_no_extension() {
    if !clients_available("svwar_finds_no_extension", &["svwar"]) {
        return;
    }
    let db = Db::sqlite();
    let (server, sip) = start(&db);
    // Extensions 101 and 105 exist; svwar scans 100-110.
    let provisioned = provision(&db, DOMAIN, &["101", "105"]);
    for method in ["REGISTER", "OPTIONS"] {
        let out = svwar(sip.udp, DOMAIN, method);
        let all = format!("{}{}", out.stdout, out.stderr);
        println!("svwar -m {method}:\n{all}");
        assert!(out.success(), "svwar -m {method} failed: {out:#?}");
        assert!(
            all.contains("found nothing"),
            "svwar -m {method} found something:\n{all}\nserver log:\n{}",
            server.log()
        );
        assert!(!all.contains("exists"), "svwar -m {method}:\n{all}");
        // Its result table would have a row `| 101 | reqauth |`.
        assert!(
            !all.contains("| 101 ") && !all.contains("| 105 "),
            "svwar -m {method} named a real extension:\n{all}"
        );
    }
    // Beyond svwar: a known and an unknown username with a wrong password
    // see the same responses, challenge included (nonce aside).
    let known = &provisioned[0];
    let unknown = Account {
        user: "199".to_owned(),
        ..known.clone()
    };
    let answers = |acct: &Account| {
        let out = sipsak_register(
            acct,
            "wrong-password",
            OTHER_IP,
            sip.udp,
            Transport::Udp,
            &format!("sip:{}@{OTHER_IP}:15090", acct.user),
            300,
        );
        assert!(!out.success(), "a wrong password registered: {out:#?}");
        responses_seen(&out.stdout)
    };
    let (k, u) = (answers(known), answers(&unknown));
    assert!(
        k.iter().any(|l| l.starts_with("SIP/2.0 401")),
        "no challenge seen: {k:#?}"
    );
    assert_eq!(k, u, "known and unknown usernames are told apart");

    // A scan is not an attack on a password: the server still answers.
    assert!(
        options_probe("127.0.0.1", sip.udp, DOMAIN, Duration::from_secs(3)).is_some(),
        "the scanner's address should not be banned by a scan that sent no credentials"
    );
}

/// The office-NAT trade-off: guesses at one username lock that username
/// from that address only; below the address threshold the address is not
/// banned, so a correctly configured phone behind it registers.
#[test]
fn svcrack_on_one_extension_does_not_lock_out_a_phone_behind_the_same_address() {
    if !clients_available("svcrack_same_address", &["svcrack", "baresip"]) {
        return;
    }
    let db = Db::sqlite();
    let (server, sip) = start(&db);
    let accounts = provision(&db, DOMAIN, &["101", "102"]);
    let (phone_acct, target) = (&accounts[0], &accounts[1]);
    let mut dictionary: Vec<String> = (1..=20).map(|i| format!("guess{i:02}")).collect();
    dictionary.push(target.password.clone());
    let out = svcrack(sip.udp, DOMAIN, &target.user, &dictionary);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        !all.contains(&target.password),
        "svcrack cracked 102:\n{all}"
    );
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("locked") && l.contains("ip=127.0.0.1") && l.contains("102")),
        "102 is not locked for 127.0.0.1; server log:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.contains("banned")),
        "one locked username must not ban the address; server log:\n{log}"
    );

    let mut phone = baresip(
        phone_acct,
        &phone_acct.password,
        "127.0.0.1",
        sip.udp,
        Transport::Udp,
    );
    assert!(
        phone
            .wait_for_line(REGISTER_WITHIN, is_registered_line)
            .is_some(),
        "101 behind the attacker's address was locked out; baresip log:\n{}\nserver log:\n{}",
        phone.log(),
        server.log()
    );
    wait_for_bindings(&db, DOMAIN, REGISTER_WITHIN, "101 bound", |rows| {
        baresip_binding(rows, "101").is_some()
    });
}

/// What sipvicious users do: crack one extension, then the next. The
/// registrar locks each username-from-that-address after a few failures
/// (refusing even the right password from there) and bans the address once
/// its failures on all usernames pass the threshold; from then on it gets no
/// answer at all. The real phone, elsewhere, is not locked out.
#[test]
fn svcrack_is_banned_without_cracking_while_the_phone_still_registers() {
    if !clients_available("svcrack_is_banned", &["svcrack", "baresip"]) {
        return;
    }
    let db = Db::sqlite();
    let (server, sip) = start(&db);
    let accounts = provision(&db, DOMAIN, &["101", "102"]);
    assert!(options_probe("127.0.0.1", sip.udp, DOMAIN, Duration::from_secs(3)).is_some());

    for acct in &accounts {
        // The right password is in the dictionary, after 30 wrong guesses:
        // only the registrar's defences keep svcrack from reaching it.
        let mut dictionary: Vec<String> = (1..=30).map(|i| format!("guess{i:02}")).collect();
        dictionary.push(acct.password.clone());
        dictionary.extend((31..=40).map(|i| format!("guess{i:02}")));
        let out = svcrack(sip.udp, DOMAIN, &acct.user, &dictionary);
        let all = format!("{}{}", out.stdout, out.stderr);
        println!("svcrack -u{}:\n{all}", acct.user);
        assert!(
            !all.contains(&acct.password),
            "svcrack cracked {}'s password:\n{all}",
            acct.user
        );
    }
    let log = server.log();
    let banned = log
        .lines()
        .find(|l| l.contains("banned") && l.contains("ip=127.0.0.1"));
    assert!(
        banned.is_some(),
        "no ban logged for 127.0.0.1; server log:\n{log}"
    );
    println!("ban: {}", banned.unwrap_or_default());
    // Banned: the attacker's address gets no answer at all, even to OPTIONS,
    // while another address does.
    assert_eq!(
        options_probe("127.0.0.1", sip.udp, DOMAIN, Duration::from_secs(2)),
        None,
        "the banned address still gets answers"
    );
    assert!(
        options_probe(OTHER_IP, sip.udp, DOMAIN, Duration::from_secs(3)).is_some(),
        "another address must still be served"
    );

    // The real phone of 101, on its own address, registers meanwhile.
    let acct = &accounts[0];
    let mut phone = baresip(acct, &acct.password, PHONE_IP, sip.udp, Transport::Udp);
    assert!(
        phone
            .wait_for_line(REGISTER_WITHIN, is_registered_line)
            .is_some(),
        "the phone was locked out by the attack; baresip log:\n{}\nserver log:\n{}",
        phone.log(),
        server.log()
    );
    wait_for_bindings(&db, DOMAIN, REGISTER_WITHIN, "phone binding", |rows| {
        baresip_binding(rows, "101").is_some()
    });
}

fn a_binding_survives_a_server_restart(db: Db) {
    if !clients_available("binding_survives_restart", &["baresip", "sipsak"]) {
        return;
    }
    let (server, sip) = start(&db);
    let acct: Account = provision(&db, DOMAIN, &["101"]).remove(0);
    let mut phone = baresip(&acct, &acct.password, PHONE_IP, sip.udp, Transport::Udp);
    assert!(
        phone
            .wait_for_line(REGISTER_WITHIN, is_registered_line)
            .is_some(),
        "baresip did not register; log:\n{}",
        phone.log()
    );
    let rows = wait_for_bindings(&db, DOMAIN, REGISTER_WITHIN, "binding", |rows| {
        baresip_binding(rows, "101").is_some()
    });
    let before = baresip_binding(&rows, "101").expect("binding");
    // The phone loses power (no unregister), then the server restarts.
    phone.kill();
    let log = server.log();
    assert_eq!(
        server.terminate().code(),
        Some(0),
        "clean exit; log:\n{log}"
    );

    let (server, sip) = start(&db);
    let rows = bindings(&db, DOMAIN);
    let after = baresip_binding(&rows, "101").unwrap_or_else(|| {
        panic!(
            "binding lost across the restart: {rows:#?}\nserver log:\n{}",
            server.log()
        )
    });
    assert_eq!(after["contact"], before["contact"]);
    assert_eq!(after["expires_at"], before["expires_at"]);
    // The restarted registrar knows the binding too: its 200 to another
    // device of 101 lists the phone's contact.
    let other = format!("sip:101@{OTHER_IP}:15070");
    let out = sipsak_register(
        &acct,
        &acct.password,
        OTHER_IP,
        sip.udp,
        Transport::Udp,
        &other,
        300,
    );
    assert!(out.success(), "{out:#?}\nserver log:\n{}", server.log());
    let phone_contact = before["contact"].as_str().expect("contact");
    assert!(
        out.stdout.contains(phone_contact),
        "the restarted server's 200 OK does not list {phone_contact}:\n{}",
        out.stdout
    );

    // A registration answered 200 just before SIGTERM is flushed to the
    // directory before the server exits (no waiting for it here).
    let last = format!("sip:101@{OTHER_IP}:15071");
    let out = sipsak_register(
        &acct,
        &acct.password,
        OTHER_IP,
        sip.udp,
        Transport::Udp,
        &last,
        300,
    );
    assert!(out.success(), "{out:#?}");
    let log = server.log();
    assert_eq!(
        server.terminate().code(),
        Some(0),
        "clean exit; log:\n{log}"
    );
    let listed = contacts(&bindings(&db, DOMAIN));
    for c in [phone_contact, other.as_str(), last.as_str()] {
        assert!(
            listed.iter().any(|l| l == c),
            "{c} missing after shutdown: {listed:#?}"
        );
    }
}

// Bindings live in the directory: the restart test runs on both backends.
crate::both_backends!(a_binding_survives_a_server_restart);
