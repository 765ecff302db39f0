//! End to end over real loopback sockets: the real client path (runner,
//! transports, register scenario) against the fake registrar, which
//! challenges with `sip::auth::Verifier`. Short and bounded.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use loadgen::commands::{RegisterPlan, run_register};
use loadgen::fake_registrar::{self, FakeRegistrar};
use loadgen::report::{Failure, Report};
use loadgen::scenario::register::Timers;
use loadgen::transport::Transport;
use loadgen::users::User;

fn users(n: usize, password: &str) -> Vec<User> {
    (0..n)
        .map(|i| User {
            username: (300_000 + i).to_string(),
            password: password.to_owned(),
            domain: "e2e.example".to_owned(),
        })
        .collect()
}

async fn start_fake(reg: FakeRegistrar, transport: Transport) -> (SocketAddr, Arc<FakeRegistrar>) {
    let reg = Arc::new(reg);
    let addr = match transport {
        Transport::Udp => {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = sock.local_addr().unwrap();
            tokio::spawn(fake_registrar::serve_udp(sock, Arc::clone(&reg)));
            addr
        }
        Transport::Tcp => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(fake_registrar::serve_tcp(l, Arc::clone(&reg)));
            addr
        }
    };
    (addr, reg)
}

fn plan(server: SocketAddr, users: Vec<User>, transport: Transport) -> RegisterPlan {
    RegisterPlan {
        server,
        users,
        rate: 400.0,
        duration: Duration::from_millis(500),
        transport,
        sources: ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
            .iter()
            .map(|s| s.parse::<IpAddr>().unwrap())
            .collect(),
        expires: 60,
        max_in_flight: 1000,
        grace: Duration::from_secs(2),
        timers: Timers {
            // short enough for a quick test, long enough that a busy
            // debug build does not retransmit spuriously
            t1: Duration::from_millis(250),
            t2: Duration::from_secs(1),
        },
        server_pid: None,
    }
}

async fn run(plan: RegisterPlan) -> Report {
    let local = tokio::task::LocalSet::new();
    tokio::time::timeout(Duration::from_secs(20), local.run_until(run_register(plan)))
        .await
        .expect("the run is bounded")
        .expect("the run starts")
}

#[tokio::test(flavor = "current_thread")]
async fn udp_registrations_all_complete() {
    let (addr, fake) = start_fake(
        FakeRegistrar::new(&users(50, "pw-e2e-12345")),
        Transport::Udp,
    )
    .await;
    let r = run(plan(addr, users(50, "pw-e2e-12345"), Transport::Udp)).await;
    let m = &r.metrics;
    assert_eq!(m.attempted, 200, "{}", r.to_human());
    assert_eq!(m.completed, 200, "{}", r.to_human());
    assert_eq!(m.failed(), 0);
    // (a retransmission is possible on a very busy machine; not asserted)
    assert!(r.success());
    assert_eq!(fake.stats.registered.load(Ordering::Relaxed), 200);
    assert_eq!(fake.stats.challenged.load(Ordering::Relaxed), 200);
    assert!(m.latency.quantile(0.99).unwrap() < 1_000_000);
    assert!(r.generator_cpu.is_some());
    assert!(r.to_json().contains("\"completed\":200"));
    // the per-second timeline accounts for every completion
    assert_eq!(m.timeline.iter().map(|s| s.completed).sum::<u64>(), 200);
    assert!(m.timeline.len() <= 2, "{}", r.timeline_table());
}

#[tokio::test(flavor = "current_thread")]
async fn tcp_registrations_all_complete() {
    let (addr, fake) = start_fake(
        FakeRegistrar::new(&users(30, "pw-e2e-12345")),
        Transport::Tcp,
    )
    .await;
    let r = run(plan(addr, users(30, "pw-e2e-12345"), Transport::Tcp)).await;
    let m = &r.metrics;
    assert_eq!(
        (m.attempted, m.completed, m.failed()),
        (200, 200, 0),
        "{}",
        r.to_human()
    );
    assert_eq!(fake.stats.registered.load(Ordering::Relaxed), 200);
    // no timer is due for 32 s, yet the run ends as soon as all are done
    // (waiting for the grace would take 0.5 + 2 s)
    assert!(r.wall < Duration::from_millis(2200), "{}", r.to_human());
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_first_request_is_retransmitted() {
    let fake = FakeRegistrar::new(&users(10, "pw-e2e-12345")).drop_first(1);
    let (addr, fake) = start_fake(fake, Transport::Udp).await;
    let mut p = plan(addr, users(10, "pw-e2e-12345"), Transport::Udp);
    p.rate = 20.0;
    let r = run(p).await;
    let m = &r.metrics;
    assert_eq!(
        (m.attempted, m.completed, m.failed()),
        (10, 10, 0),
        "{}",
        r.to_human()
    );
    assert!(m.retransmissions >= 1, "{}", r.to_human());
    assert_eq!(fake.stats.dropped.load(Ordering::Relaxed), 1);
    // the one that waited for Timer E took at least T1
    assert!(m.latency.max() >= 250_000, "{}", r.to_human());
}

#[tokio::test(flavor = "current_thread")]
async fn wrong_passwords_fail_with_403_and_no_server_means_timeouts() {
    let (addr, _fake) = start_fake(
        FakeRegistrar::new(&users(10, "the-right-one")),
        Transport::Udp,
    )
    .await;
    let mut p = plan(addr, users(10, "not-the-right-one"), Transport::Udp);
    p.rate = 20.0;
    let r = run(p).await;
    assert_eq!(
        r.metrics.failures.get(&Failure::Status(403)),
        Some(&10),
        "{}",
        r.to_human()
    );
    assert!(!r.success());

    // nobody listening: Timer F (64*T1 = 320 ms here) fails each one
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut p = plan(
        silent.local_addr().unwrap(),
        users(10, "x-password"),
        Transport::Udp,
    );
    p.rate = 20.0;
    p.timers.t1 = Duration::from_millis(5);
    p.timers.t2 = Duration::from_millis(40);
    let r = run(p).await;
    let m = &r.metrics;
    assert_eq!(
        m.failures.get(&Failure::Timeout),
        Some(&10),
        "{}",
        r.to_human()
    );
    assert!(m.retransmissions >= 10 * 6, "{}", r.to_human());
    assert_eq!(m.timeline.iter().map(|s| s.failed).sum::<u64>(), 10);
    assert_eq!(
        m.timeline.iter().map(|s| s.retransmissions).sum::<u64>(),
        m.retransmissions
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_grace_period_bounds_the_run() {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut p = plan(
        silent.local_addr().unwrap(),
        users(10, "x-password"),
        Transport::Udp,
    );
    p.rate = 20.0;
    p.grace = Duration::from_millis(200);
    p.timers = Timers::default(); // Timer F at 32 s, far beyond the grace
    let t0 = std::time::Instant::now();
    let r = run(p).await;
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(
        r.metrics.failures.get(&Failure::Unfinished),
        Some(&10),
        "{}",
        r.to_human()
    );
}
