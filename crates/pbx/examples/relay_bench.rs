//! Load on the media driver: N anchored calls over loopback, each with two
//! simulated phones sending 50 G.711 packets a second toward each other
//! through the relay. Measures loss and the latency from a phone's send to
//! the other phone's receive (generator, relay and receiver share the
//! machine, so the figure includes their scheduling).
//!
//! ```text
//! cargo run --release -p pbx --example relay_bench -- CALLS SECONDS [WORKERS] [direct]
//! ```
//!
//! `direct` sends phone to phone without the relay (the calls are still
//! opened): the baseline to subtract for the relay's added latency.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use media::{LegConfig, PortPool, Side, rtp};
use pbx::call::{MediaCommand, StreamPorts};
use pbx::media_driver::{MediaDriver, MediaDriverConfig};
use tokio::net::UdpSocket;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Latency histogram: 1 µs buckets up to 50 ms, then one overflow bucket.
const BUCKETS: usize = 50_000;

struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, d: Duration) {
        let us = (d.as_micros() as usize).min(BUCKETS);
        self.buckets[us].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn quantile(&self, q: f64) -> usize {
        let total = self.count();
        let target = ((total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (us, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target.max(1) {
                return us;
            }
        }
        BUCKETS
    }
}

fn leg_to(addr: SocketAddr) -> LegConfig {
    LegConfig {
        remote_rtp: Some(addr),
        remote_rtcp: Some(SocketAddr::new(addr.ip(), addr.port() + 1)),
        clock_rates: vec![(0, 8000)],
        ..LegConfig::default()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let direct = args.next().is_some_and(|a| a == "direct");
    // The relay and the simulated phones run on separate runtimes so the
    // relay's own CPU time can be read from its threads.
    let runtime = |name: &str, workers: usize| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap()
    };
    let relay = runtime("relay", workers);
    let phones = runtime("phones", 2);
    let handle = relay.handle().clone();
    phones.block_on(run(calls, Duration::from_secs(seconds), direct, handle));
}

/// CPU time (user + system) of this process's threads named `name`.
fn thread_cpu(name: &str) -> Duration {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised command: state is the 3rd field,
        // utime and stime the 14th and 15th.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

async fn run(calls: usize, duration: Duration, direct: bool, relay: tokio::runtime::Handle) {
    // Below the kernel's ephemeral range (32768 on), where the phones bind.
    let pool = PortPool::new("20000-32767".parse().unwrap());
    let (mut driver, _events) = MediaDriver::new(MediaDriverConfig {
        bind_ip: LOOPBACK,
        ..MediaDriverConfig::default()
    });
    // Per call: phone A, phone B, and the relay port each sends to.
    let mut phones: Vec<(Arc<UdpSocket>, SocketAddr)> = Vec::with_capacity(2 * calls);
    for call in 0..calls as u64 {
        let s = StreamPorts {
            a: pool.allocate().expect("enough ports"),
            b: pool.allocate().expect("enough ports"),
        };
        let relay_a = SocketAddr::new(LOOPBACK, s.a.rtp());
        let relay_b = SocketAddr::new(LOOPBACK, s.b.rtp());
        let a = Arc::new(UdpSocket::bind((LOOPBACK, 0)).await.unwrap());
        let b = Arc::new(UdpSocket::bind((LOOPBACK, 0)).await.unwrap());
        // The call's task and sockets belong to the relay runtime.
        let _relay = relay.enter();
        driver
            .execute(MediaCommand::Open {
                call,
                streams: vec![s],
            })
            .expect("bind relay ports");
        for (side, sock) in [(Side::A, &a), (Side::B, &b)] {
            let config = leg_to(sock.local_addr().unwrap());
            driver
                .execute(MediaCommand::Leg {
                    call,
                    side,
                    index: 0,
                    config,
                })
                .unwrap();
        }
        driver.execute(MediaCommand::Connected { call }).unwrap();
        let (to_a, to_b) = match direct {
            true => (b.local_addr().unwrap(), a.local_addr().unwrap()),
            false => (relay_a, relay_b),
        };
        phones.push((a, to_a));
        phones.push((b, to_b));
    }

    let base = Instant::now();
    let hist = Arc::new(Histogram::new());
    let received = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::with_capacity(phones.len());
    for (sock, _) in &phones {
        let (sock, hist, received) = (sock.clone(), hist.clone(), received.clone());
        receivers.push(tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            loop {
                let Ok((n, _)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                if n < 20 {
                    continue;
                }
                let sent = u64::from_be_bytes(buf[12..20].try_into().unwrap());
                let now = base.elapsed().as_nanos() as u64;
                hist.record(Duration::from_nanos(now.saturating_sub(sent)));
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // The generator: every phone sends every 20 ms, spread over 1 ms slots.
    let mut sent = 0u64;
    let mut send_errors = 0u64;
    let mut packet = rtp::build_rtp(0, 0, 0, 0, false, &[0xff; 160]);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let (relay_cpu, phones_cpu) = (thread_cpu("relay"), thread_cpu("phones"));
    let ticks = duration.as_millis() as u64;
    let started = Instant::now();
    for t in 0..ticks {
        tick.tick().await;
        let slot = (t % 20) as usize;
        let frame = t / 20;
        for (i, (sock, relay)) in phones.iter().enumerate().skip(slot).step_by(20) {
            rtp::set_sequence(&mut packet, frame as u16);
            rtp::set_timestamp(&mut packet, (frame as u32).wrapping_mul(160));
            rtp::set_ssrc(&mut packet, i as u32 + 1);
            let now = base.elapsed().as_nanos() as u64;
            packet[12..20].copy_from_slice(&now.to_be_bytes());
            match sock.try_send_to(&packet, *relay) {
                Ok(_) => sent += 1,
                Err(_) => send_errors += 1,
            }
        }
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let relay_cpu = thread_cpu("relay") - relay_cpu;
    let phones_cpu = thread_cpu("phones") - phones_cpu;
    let got = received.load(Ordering::Relaxed);
    let stats = driver.stats().all();
    let relay_errors: u64 = stats.iter().map(|s| s.send_errors).sum();
    let dropped: u64 = stats
        .iter()
        .flat_map(|s| &s.streams)
        .map(|s| s.a.counters.dropped + s.b.counters.dropped)
        .sum();
    let lost = sent.saturating_sub(got);
    let mode = if direct {
        "phone to phone"
    } else {
        "through the relay"
    };
    println!(
        "calls {calls}, {:.1} s, offered {:.0} pkt/s {mode}",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!(
        "sent {sent} (generator send errors {send_errors}), received {got}, lost {lost} ({:.4}%), relay drops {dropped}, relay send errors {relay_errors}",
        100.0 * lost as f64 / sent.max(1) as f64
    );
    println!(
        "latency send→receive µs: p50 {} p90 {} p99 {} p99.9 {} max {}",
        hist.quantile(0.5),
        hist.quantile(0.9),
        hist.quantile(0.99),
        hist.quantile(0.999),
        hist.quantile(1.0),
    );
    let busy = elapsed + Duration::from_millis(300);
    println!(
        "CPU: relay threads {:.0}% of one core, phone simulator {:.0}%",
        100.0 * relay_cpu.as_secs_f64() / busy.as_secs_f64(),
        100.0 * phones_cpu.as_secs_f64() / busy.as_secs_f64(),
    );
    for r in receivers {
        r.abort();
    }
    for call in 0..calls as u64 {
        driver.execute(MediaCommand::Close { call }).unwrap();
    }
    let wait = Instant::now();
    while pool.available() != pool.capacity() && wait.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "ports back in the pool: {}/{}",
        pool.available(),
        pool.capacity()
    );
}
