//! The registrar under cheap attacks: what a forged request costs the directory.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sip::auth::{Challenge, VerifierConfig};
use sip::guard::{Guard, GuardConfig};
use sip::{Limits, Message, Request};
use store::{Directory, NewTenant, TenantSettings};

use super::cache::CredCache;
use super::*;

const DOMAIN: &str = "acme.example.com";

struct Fixture {
    registrar: Registrar,
    cache: Arc<CredCache>,
    guard: Arc<Mutex<Guard>>,
    failures: Arc<RegistrationFailures>,
    dir: Arc<dyn Directory>,
    _tmp: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", tmp.path().join("sb.db").display());
    let dir: Arc<dyn Directory> = store::connect(&url).await.unwrap();
    dir.migrate().await.unwrap();
    dir.create_tenant(&NewTenant {
        slug: "acme".parse().unwrap(),
        sip_domain: DOMAIN.parse().unwrap(),
        settings: TenantSettings::new("Acme"),
    })
    .await
    .unwrap();
    let cache = Arc::new(CredCache::new(
        Arc::clone(&dir),
        Duration::from_secs(30),
        1000,
    ));
    let guard = Arc::new(Mutex::new(Guard::new(GuardConfig::default())));
    let failures = Arc::new(RegistrationFailures::default());
    let registrar = Registrar::new(
        RegistrarConfig {
            challenges: ChallengeAlgorithms::Md5Only,
            ..RegistrarConfig::default()
        },
        Arc::clone(&cache),
        Arc::new(LocationService::new()),
        Verifier::new(&[7u8; 32], VerifierConfig::default()),
        Arc::clone(&guard),
        Arc::clone(&failures),
    );
    Fixture {
        registrar,
        cache,
        guard,
        failures,
        dir,
        _tmp: tmp,
    }
}

fn now() -> Now {
    Now {
        wall: SystemTime::now(),
        mono: Instant::now(),
        guard: Duration::from_secs(100),
    }
}

fn register(user: &str, authorization: Option<&str>) -> Request {
    let mut text = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{user}\r\n\
Max-Forwards: 70\r\nTo: <sip:{user}@{DOMAIN}>\r\nFrom: <sip:{user}@{DOMAIN}>;tag=t\r\n\
Call-ID: c-{user}\r\nCSeq: 2 REGISTER\r\nContact: <sip:{user}@192.0.2.10:5060>\r\n"
    );
    if let Some(a) = authorization {
        text.push_str(&format!("Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match sip::parse_datagram(text.as_bytes(), &Limits::default()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn flow(remote: &str) -> Flow {
    Flow::udp(
        "127.0.0.1:5060".parse().unwrap(),
        remote.parse::<SocketAddr>().unwrap(),
    )
}

fn status(step: &Step) -> u16 {
    match step {
        Step::Reply(r) | Step::Commit(_, r) => r.status.as_u16(),
        Step::Drop => 0,
        Step::Lookup => 1,
    }
}

/// The Authorization a client would send after `challenge`, for `user`.
fn answer(challenge: &Step, user: &str) -> String {
    let Step::Reply(r) = challenge else {
        panic!("expected a 401")
    };
    let ch = Challenge::parse(r.headers.get("WWW-Authenticate").unwrap()).unwrap();
    ch.answer(user, "guess", "REGISTER", &format!("sip:{DOMAIN}"), 1, "cn")
        .to_header_value()
}

#[tokio::test]
async fn garbage_nonces_cost_no_directory_query() {
    let f = fixture().await;
    let attacker = flow("192.0.2.66:5060");
    let unix = now().wall.duration_since(UNIX_EPOCH).unwrap().as_secs();
    for i in 0..50u32 {
        let user = format!("{}", 2000 + i);
        // A made-up nonce of the right shape, one of another length, one with a fake MAC.
        let nonce = match i % 3 {
            0 => "A".repeat(sip::auth::NONCE_LEN),
            1 => format!("{unix:x}"),
            _ => "x".repeat(60),
        };
        let auth = format!(
            "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", \
uri=\"sip:{DOMAIN}\", response=\"0123456789abcdef0123456789abcdef\", qop=auth, nc=00000001, cnonce=\"c\""
        );
        let step = f
            .registrar
            .handle_fast(&register(&user, Some(&auth)), &attacker, now());
        assert_eq!(status(&step), 401, "garbage nonce {i} is re-challenged");
    }
    // A real nonce, issued to the victim's address, replayed from the attacker's.
    let victim = flow("192.0.2.10:5060");
    let challenge = f
        .registrar
        .handle_fast(&register("1001", None), &victim, now());
    let stolen = answer(&challenge, "1001");
    let step = f
        .registrar
        .handle_fast(&register("1001", Some(&stolen)), &attacker, now());
    assert_eq!(status(&step), 401);
    assert_eq!(f.cache.queries(), 0, "no directory query for a bad nonce");
    // None of it counts toward a ban: it cannot be pinned on the source.
    let (banned, logs) = {
        let g = f.guard.lock().unwrap();
        let ip = "192.0.2.66".parse().unwrap();
        (g.banned_until(ip, now().guard), g.stats().ip_failure_logs)
    };
    assert_eq!((banned, logs), (None, 0));
    // The counter does count: a nonce issued to the attacker's own address does cost
    // a lookup (and, being a wrong password for an unknown user, a failure).
    let own = f
        .registrar
        .handle_fast(&register("2999", None), &attacker, now());
    let req = register("2999", Some(&answer(&own, "2999")));
    assert_eq!(status(&f.registrar.handle_fast(&req, &attacker, now())), 1);
    let step = f.registrar.handle_slow(&req, &attacker, now()).await;
    assert_eq!(status(&step), 403);
    assert!(f.cache.queries() > 0);
}

#[tokio::test]
async fn expired_nonce_is_rechallenged_stale_without_a_lookup() {
    let f = fixture().await;
    let phone = flow("192.0.2.10:5060");
    let mut old = now();
    old.wall -= Duration::from_secs(600);
    let challenge = f
        .registrar
        .handle_fast(&register("1001", None), &phone, old);
    let req = register("1001", Some(&answer(&challenge, "1001")));
    let step = f.registrar.handle_fast(&req, &phone, now());
    let Step::Reply(r) = &step else {
        panic!("expected a 401")
    };
    assert_eq!(r.status.as_u16(), 401);
    assert!(
        r.headers
            .get("WWW-Authenticate")
            .unwrap()
            .contains("stale=true")
    );
    assert_eq!(f.cache.queries(), 0);
}

#[tokio::test]
async fn a_flood_of_unknown_names_evicts_only_the_coldest_cache_entries() {
    let f = fixture().await;
    let cache = CredCache::new(
        Arc::clone(&f.cache.dir_for_tests()),
        Duration::from_secs(30),
        16,
    );
    cache.fetch(DOMAIN, "1001").await.unwrap();
    for i in 0..200u32 {
        // the busy phone keeps being read between the scanner's names
        assert!(
            cache.get(DOMAIN, "1001", Instant::now()).is_some(),
            "evicted at {i}"
        );
        cache.fetch(DOMAIN, &format!("{}", 5000 + i)).await.unwrap();
        let (_, creds) = cache.sizes();
        assert!(creds <= 16, "{creds}");
    }
    assert_eq!(
        cache.sizes().1,
        16,
        "one entry evicted per insertion, never all"
    );
}

#[tokio::test]
async fn refused_registrations_are_noted_against_the_credential() {
    use failures::FailureReason;
    let f = fixture().await;
    let t = f
        .dir
        .get_tenant_by_domain(&DOMAIN.parse().unwrap())
        .await
        .unwrap();
    let (_, cred) = f
        .dir
        .create_extension(
            t.id,
            &store::NewExtension {
                number: "1001".parse().unwrap(),
                settings: store::ExtensionSettings::new("Desk"),
            },
            Some(&store::NewCredential {
                username: "1001".parse().unwrap(),
                // not the HA1 of "guess", the password `answer` uses
                ha1_md5: "5f4dcc3b5aa765d61d8327deb882cf99".parse().unwrap(),
                ha1_sha256: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
                    .parse()
                    .unwrap(),
                mac_address: None,
                model: None,
            }),
        )
        .await
        .unwrap();
    let cred = cred.unwrap();
    let phone = flow("192.0.2.10:5060");
    let mut banned = false;
    for _ in 0..50 {
        let challenge = f
            .registrar
            .handle_fast(&register("1001", None), &phone, now());
        if matches!(challenge, Step::Drop) {
            banned = true;
            break;
        }
        let req = register("1001", Some(&answer(&challenge, "1001")));
        let step = match f.registrar.handle_fast(&req, &phone, now()) {
            Step::Lookup => f.registrar.handle_slow(&req, &phone, now()).await,
            s => s,
        };
        if status(&step) == 0 {
            banned = true;
            break;
        }
        assert_eq!(status(&step), 403);
    }
    let got = f.failures.recent(t.id, cred.id);
    assert!(!got.is_empty());
    let oldest = got.last().unwrap();
    assert_eq!(oldest.reason, FailureReason::WrongPassword);
    assert_eq!(
        oldest.source,
        "192.0.2.10".parse::<std::net::IpAddr>().unwrap()
    );
    assert!(oldest.count >= 1);
    // Repeated failures pile up in one entry, then the guard's verdict shows.
    assert!(got.len() <= 3, "{got:?}");
    let locked_or_banned = got.iter().any(|e| {
        matches!(
            e.reason,
            FailureReason::SourceBanned | FailureReason::UsernameLocked
        )
    });
    assert!(locked_or_banned, "{got:?} (banned while trying: {banned})");
    // Another business's view of the same id is empty.
    assert!(
        f.failures
            .recent(store::TenantId::from_uuid(uuid::Uuid::now_v7()), cred.id)
            .is_empty()
    );
}
