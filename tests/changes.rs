//! Admin changes reach the running engine at once: the real binary, the web
//! API in the same process, the CLI as another process (SQLite: the change
//! log polled every 200 ms; PostgreSQL: LISTEN/NOTIFY), and scripted SIP
//! phones on loopback.
//!
//! Each test makes a call or a registration right after the change and
//! checks the engine already acts on it: before change events, a revoked
//! password kept working for the credential cache's lifetime (30 s and
//! more), a revoked phone kept getting calls until its registration expired
//! (up to an hour), a dial plan was reused for a second, and a new trunk was
//! recognised only at the next 10 s refresh.

mod clients;
mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clients::sipua::SipUa;
use clients::{provision, sip_addrs};
use common::{Db, Server, cli};
use store::{Directory, NewApiToken, NewUser, Role, TenantId};

const DOMAIN: &str = "acme.example";

/// A running server with a provisioned business and API tokens.
struct Pbx {
    db: Db,
    server: Server,
    sip: SocketAddr,
    dir: Arc<dyn Directory>,
    /// The runtime the directory's pool lives on (a pool must not outlive its runtime).
    rt: tokio::runtime::Runtime,
    tenant: TenantId,
    accounts: Vec<clients::Account>,
    /// A business admin's API token.
    admin: String,
    /// An operator's API token.
    operator: String,
}

fn start(db: Db, numbers: &[&str]) -> Pbx {
    let accounts = provision(&db, DOMAIN, numbers);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = rt.block_on(store::connect(&db.url)).expect("directory");
    let tenant = rt
        .block_on(dir.get_tenant_by_domain(&DOMAIN.parse().unwrap()))
        .unwrap()
        .id;
    let admin = rt.block_on(token(&*dir, Some(tenant), "boss@acme.example"));
    let operator = rt.block_on(token(&*dir, None, "ops@platform.example"));
    let server = Server::start(&db, &[("RUST_LOG", "info,pbx=debug")]);
    let sip = sip_addrs(&server).udp;
    Pbx {
        db,
        server,
        sip,
        dir,
        rt,
        tenant,
        accounts,
        admin,
        operator,
    }
}

/// A user (a business admin, or an operator when `tenant` is None) and an
/// API token of theirs.
async fn token(dir: &dyn Directory, tenant: Option<TenantId>, email: &str) -> String {
    let user = dir
        .create_user(&NewUser {
            tenant_id: tenant,
            email: email.parse().unwrap(),
            display_name: "Someone".into(),
            role: if tenant.is_some() {
                Role::Admin
            } else {
                Role::Operator
            },
            password_hash: web::crypto::hash_password("a long test password".into())
                .await
                .unwrap(),
        })
        .await
        .unwrap();
    let secret = format!(
        "{}{}",
        web::auth::api::TOKEN_PREFIX,
        web::crypto::random_token()
    );
    dir.create_api_token(&NewApiToken {
        tenant_id: tenant,
        name: "changes test".into(),
        token_hash: web::crypto::token_hash(&secret),
        prefix: secret[..8].to_owned(),
        created_by: Some(user.id),
        expires_at: None,
    })
    .await
    .unwrap();
    secret
}

impl Pbx {
    fn account(&self, number: &str) -> &clients::Account {
        self.accounts.iter().find(|a| a.user == number).unwrap()
    }

    fn phone(&self, ip: &str, number: &str) -> SipUa {
        let a = self.account(number);
        SipUa::new(ip, self.sip, &a.user, &a.password, DOMAIN, 440.0)
    }

    fn extension_id(&self, number: &str) -> String {
        self.rt
            .block_on(
                self.dir
                    .get_extension_by_number(self.tenant, &number.parse().unwrap()),
            )
            .unwrap()
            .id
            .to_string()
    }

    /// An API call with a JSON body; returns the status and the body.
    fn api(&self, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(self.server.http).expect("connect to the web app");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        let _ = s.read_to_string(&mut raw);
        let status = raw
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = raw
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn tenant_path(&self, rest: &str) -> String {
        format!("/api/v1/tenants/{}{rest}", self.tenant)
    }
}

/// A SIP INVITE from `sock` (a carrier) to `number` at the server; returns
/// the first final or provisional status other than 100.
fn invite_from(sock: &UdpSocket, server: SocketAddr, number: &str) -> u16 {
    let local = sock.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=c 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        ip = local.ip()
    );
    let req = format!(
        "INVITE sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKtrunk{n};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+441134960000@{ip}>;tag=c{n}\r\nTo: <sip:{number}@{server}>\r\n\
         Call-ID: trunk-{n}@{ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:carrier@{local}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
        n = rand_suffix(),
        ip = local.ip(),
        len = sdp.len()
    );
    sock.send_to(req.as_bytes(), server).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    while Instant::now() < until {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if text.starts_with("SIP/2.0") && status != 100 {
            return status;
        }
    }
    panic!("no answer to the carrier's INVITE");
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Retries `f` every 50 ms until it returns true or `within` has passed;
/// returns how long it took (None: never).
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------ tests

/// The web API deletes extension 102 while its phone is registered: its
/// phone can neither register nor call any more, and a call to 102 does not
/// reach it, all on the very next message.
#[test]
fn deleted_extension_stops_ringing_at_once() {
    let pbx = start(Db::sqlite(), &["101", "102"]);
    let mut alice = pbx.phone("127.0.0.21", "101");
    let mut bob = pbx.phone("127.0.0.22", "102");
    alice.register();
    bob.register();
    let path = pbx.tenant_path(&format!("/extensions/{}", pbx.extension_id("102")));
    let (status, body) = pbx.api(&pbx.admin, "DELETE", &path, "");
    assert_eq!(status, 204, "{body}");

    let again = bob.try_register();
    assert!(
        matches!(again, 401 | 403),
        "the deleted extension's phone was not refused as unknown: {again}"
    );
    let call = alice.call("102", "", &[]);
    assert!(
        call.is_err(),
        "a call to the deleted extension was answered"
    );
    assert!(
        !bob.invited_within(Duration::from_millis(500)),
        "the deleted extension's phone rang"
    );
    match bob.call("101", "", &[]) {
        Err(s) => assert!(s == 403 || s == 407, "status {s}"),
        Ok(_) => panic!("the deleted extension placed a call"),
    }
    assert!(
        !alice.invited_within(Duration::from_millis(300)),
        "the deleted extension's call rang alice"
    );
}

/// A new SIP password from the web API: the old one fails at once for
/// REGISTER and INVITE, the new one works, and the phone registered with
/// the old one gets no further call.
#[test]
fn regenerated_password_old_one_fails_at_once() {
    let pbx = start(Db::sqlite(), &["101", "102"]);
    let mut alice = pbx.phone("127.0.0.23", "101");
    let mut bob = pbx.phone("127.0.0.24", "102");
    alice.register();
    bob.register();
    let old = pbx.account("102").password.clone();
    let path = pbx.tenant_path(&format!("/extensions/{}/password", pbx.extension_id("102")));
    let (status, body) = pbx.api(&pbx.admin, "POST", &path, "");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let new = json["password"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    // the phone still holding the old password is signed off: no call reaches it
    assert_eq!(alice.call("102", "", &[]).err(), Some(480));
    assert!(!bob.invited_within(Duration::from_millis(300)));
    // REGISTER and INVITE with the old password fail
    let again = bob.try_register();
    assert!(
        matches!(again, 401 | 403),
        "REGISTER with the old password: {again}"
    );
    match bob.call("101", "", &[]) {
        Err(s) => assert!(s == 403 || s == 407, "status {s}"),
        Ok(_) => panic!("INVITE with the old password went through"),
    }
    assert!(!alice.invited_within(Duration::from_millis(300)));
    // the new one works
    bob.set_password(&new);
    assert_eq!(bob.try_register(), 200);
}

/// Suspending the business (the platform's way to disable its phones; an
/// extension has no disabled state of its own): none of its phones can
/// register from the next REGISTER on, and its registered phones are
/// signed off.
/// A phone with a wrong password is refused, and the business admin sees the refusal (time,
/// source address, reason) on the extension's page: the SIP service and the web app share it
/// in memory.
#[test]
fn wrong_password_shows_on_the_extension_page() {
    let pbx = start(Db::sqlite(), &["101"]);
    let a = pbx.account("101");
    let mut phone = SipUa::new(
        "127.0.0.31",
        pbx.sip,
        &a.user,
        "not-the-password",
        DOMAIN,
        440.0,
    );
    assert_eq!(phone.try_register(), 403);

    let (status, head, _) = web_request(
        pbx.server.http,
        "POST",
        "/login",
        None,
        "email=boss%40acme.example&password=a+long+test+password",
    );
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().split(';').next().unwrap_or("").to_owned())
        })
        .expect("a session cookie");
    let page = format!("/t/{}/extensions/{}", pbx.tenant, pbx.extension_id("101"));
    let (status, _, body) = web_request(pbx.server.http, "GET", &page, Some(&cookie), "");
    assert_eq!(status, 200, "{body}");
    let i = body
        .find("<h3>Failed registrations</h3>")
        .expect("the section");
    let section = &body[i..body[i..].find("</table>").map_or(body.len(), |j| i + j)];
    assert!(
        section.contains("wrong password") && section.contains("127.0.0.31"),
        "{section}"
    );
}

/// A plain HTTP/1.1 request to the web app; returns the status, the head and the body.
fn web_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the web app");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{cookie}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{form}",
        form.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (status, head.to_owned(), body.to_owned())
}

#[test]
fn suspended_business_cannot_register_at_once() {
    let pbx = start(Db::sqlite(), &["101"]);
    let mut alice = pbx.phone("127.0.0.25", "101");
    alice.register();
    assert_eq!(alice.try_register(), 200, "warm: registers twice");
    let (status, body) = pbx.api(
        &pbx.operator,
        "PATCH",
        &format!("/api/v1/tenants/{}", pbx.tenant),
        r#"{"suspended": true}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_ne!(
        alice.try_register(),
        200,
        "a suspended business's phone registered"
    );
    let bindings = clients::bindings(&pbx.db, DOMAIN);
    assert!(bindings.is_empty(), "bindings kept: {bindings:#?}");
    let (status, body) = pbx.api(
        &pbx.operator,
        "PATCH",
        &format!("/api/v1/tenants/{}", pbx.tenant),
        r#"{"suspended": false}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        alice.try_register(),
        200,
        "resumed business registers again"
    );
}

/// DND and forwarding set through the API apply to the very next call, not
/// to one a second later (a dial plan was reused for a second).
#[test]
fn forwarding_and_dnd_changes_apply_to_the_very_next_call() {
    let pbx = start(Db::sqlite(), &["101", "102", "103"]);
    let mut alice = pbx.phone("127.0.0.26", "101");
    let mut carol = pbx.phone("127.0.0.27", "103");
    alice.register();
    carol.register();
    let path = pbx.tenant_path(&format!("/extensions/{}", pbx.extension_id("102")));
    // 102 has no phone: the call fails "not registered"
    assert_eq!(alice.call("102", "", &[]).err(), Some(480));
    let (status, body) = pbx.api(&pbx.admin, "PATCH", &path, r#"{"dnd": true}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        alice.call("102", "", &[]).err(),
        Some(486),
        "DND not applied"
    );
    let (status, body) = pbx.api(
        &pbx.admin,
        "PATCH",
        &path,
        r#"{"dnd": false, "forward_always": "103"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (rang, result) = std::thread::scope(|s| {
        let carol = &mut carol;
        let ringing = s.spawn(move || {
            let rang = carol.invited_within(Duration::from_secs(5));
            if rang {
                carol.decline("486 Busy Here");
            }
            rang
        });
        let result = alice.call("102", "", &[]);
        (ringing.join().unwrap(), result)
    });
    assert!(rang, "forwarding to 103 not applied: 103 did not ring");
    assert!(result.is_err(), "103 declined, yet the call was answered");
}

/// A trunk added through the API: an INVITE from its address right after is
/// treated as the trunk's (routed by number), not challenged as a phone's.
#[test]
fn new_trunk_is_recognised_at_once() {
    let pbx = start(Db::sqlite(), &["101"]);
    let out = cli(
        &pbx.db,
        &[
            "number",
            "add",
            "+44 113 496 0123",
            "--tenant",
            DOMAIN,
            "--route",
            "ext:101",
        ],
    );
    assert!(out.success(), "{out:?}");
    let carrier = UdpSocket::bind("127.0.0.28:0").unwrap();
    let body = format!(
        r#"{{"name": "carrier", "host": "127.0.0.28", "port": {}, "inbound_source": "127.0.0.28"}}"#,
        carrier.local_addr().unwrap().port()
    );
    let (status, resp) = pbx.api(&pbx.operator, "POST", "/api/v1/trunks", &body);
    assert_eq!(status, 201, "{resp}");
    let status = invite_from(&carrier, pbx.sip, "+441134960123");
    assert_ne!(
        status, 407,
        "the new trunk's INVITE was challenged as a phone's"
    );
    // routed to 101, which has no phone registered
    assert_eq!(status, 480, "{}", pbx.server.log());
}

/// A trunk added with `switchboard trunk add` (another process) while the
/// server runs: its INVITEs are the trunk's within a poll of the change log
/// (SQLite, 200 ms) or at once (PostgreSQL NOTIFY), not at the next 10 s
/// reread of the trunk table. Before it, the same INVITE is challenged.
fn cli_trunk_reaches_running_server(db: Db) {
    let pbx = start(db, &["101"]);
    let ip = if pbx.db.is_postgres() {
        "127.0.0.35"
    } else {
        "127.0.0.36"
    };
    let out = cli(
        &pbx.db,
        &[
            "number",
            "add",
            "+44 113 496 0124",
            "--tenant",
            DOMAIN,
            "--route",
            "ext:101",
        ],
    );
    assert!(out.success(), "{out:?}");
    let carrier = UdpSocket::bind((ip, 0)).unwrap();
    assert_eq!(
        invite_from(&carrier, pbx.sip, "+441134960124"),
        407,
        "an INVITE from an unknown address is challenged"
    );
    let port = carrier.local_addr().unwrap().port().to_string();
    let out = cli(
        &pbx.db,
        &[
            "trunk",
            "add",
            "--name",
            "cli-carrier",
            "--host",
            ip,
            "--port",
            &port,
            "--inbound-source",
            ip,
        ],
    );
    assert!(out.success(), "{out:?}");
    // The time until the INVITE that was not challenged went out (its answer,
    // 480 after the engine tried 101, takes longer and is not the point).
    let added = Instant::now();
    let mut sent = added;
    let mut last = 0;
    let took = within(Duration::from_secs(3), || {
        sent = Instant::now();
        last = invite_from(&carrier, pbx.sip, "+441134960124");
        last != 407
    });
    assert!(
        took.is_some(),
        "the CLI's trunk still challenged 3 s after it was added"
    );
    let took = sent - added;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // routed to 101, which has no phone registered
    assert_eq!(last, 480, "{}", pbx.server.log());
}

/// The CLI (another process) gives 102 a new password while the server
/// runs: the old password stops working within a poll of the change log
/// (SQLite, 200 ms) or at once (PostgreSQL NOTIFY), and 102's phone gets no
/// further call. Then the CLI deletes 102.
fn cli_change_reaches_running_server(db: Db) {
    let pbx = start(db, &["101", "102"]);
    let ip = if pbx.db.is_postgres() {
        ("127.0.0.31", "127.0.0.32")
    } else {
        ("127.0.0.33", "127.0.0.34")
    };
    let mut alice = pbx.phone(ip.0, "101");
    let mut bob = pbx.phone(ip.1, "102");
    alice.register();
    bob.register();
    assert_eq!(bob.try_register(), 200, "warm: the old password works");
    let out = cli(
        &pbx.db,
        &[
            "extension",
            "password",
            "--tenant",
            DOMAIN,
            "--number",
            "102",
        ],
    );
    assert!(out.success(), "{out:?}");
    // refused as a bad password (401/403), not a transient 5xx under load
    let took = within(Duration::from_secs(2), || {
        matches!(bob.try_register(), 401 | 403)
    });
    let took = took.expect("the old password still works 2 s after the CLI changed it");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(alice.call("102", "", &[]).err(), Some(480));
    assert!(!bob.invited_within(Duration::from_millis(300)));

    let out = cli(
        &pbx.db,
        &["extension", "delete", "--tenant", DOMAIN, "--number", "102"],
    );
    assert!(out.success(), "{out:?}");
    let gone = within(Duration::from_secs(2), || {
        matches!(alice.call("102", "", &[]), Err(404))
    });
    assert!(
        gone.is_some(),
        "102 still reachable after the CLI deleted it"
    );
}

both_backends!(
    cli_change_reaches_running_server,
    cli_trunk_reaches_running_server
);
