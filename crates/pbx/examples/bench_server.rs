//! A SipService for load tests: provisions the users of an `sb-loadgen users` CSV
//! (`username,password,domain`, usernames being extension numbers) into a fresh SQLite
//! directory, then serves until Ctrl-C and prints its CPU time.
//!
//! ```text
//! cargo run --release -p pbx --example bench_server -- USERS.csv DB_PATH [LISTEN]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use pbx::{SipConfig, SipService};
use sip::auth::{ha1_md5, ha1_sha256};
use store::{
    ExtensionSettings, ImportExtension, NewCredential, NewExtension, NewTenant, TenantSettings,
};

fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SB_WORKERS=0 runs a current-thread runtime
    let workers = env_usize("SB_WORKERS", 2);
    let rt = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    rt.block_on(serve())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(csv), Some(db)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bench_server USERS.csv DB_PATH [LISTEN]");
        std::process::exit(2);
    };
    let listen = args
        .get(3)
        .map_or("127.0.0.1:5060", String::as_str)
        .parse()?;
    let text = std::fs::read_to_string(csv)?;
    let mut users: Vec<(String, String, String)> = Vec::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if let [u, p, d] = cols[..] {
            users.push((u.to_owned(), p.to_owned(), d.to_owned()));
        }
    }
    let domain = users
        .first()
        .map(|u| u.2.clone())
        .ok_or("empty users CSV")?;
    let _ = std::fs::remove_file(db);
    let dir = store::connect(&format!("sqlite://{db}")).await?;
    dir.migrate().await?;
    let tenant = dir
        .create_tenant(&NewTenant {
            slug: "bench".parse()?,
            sip_domain: domain.parse()?,
            settings: TenantSettings::new("Bench"),
        })
        .await?;
    for chunk in users.chunks(1000) {
        let rows: Vec<ImportExtension> = chunk
            .iter()
            .map(|(u, p, _)| {
                Ok::<_, Box<dyn std::error::Error>>(ImportExtension {
                    extension: NewExtension {
                        number: u.parse()?,
                        settings: ExtensionSettings::new(u.clone()),
                    },
                    credential: Some(NewCredential {
                        username: u.parse()?,
                        ha1_md5: ha1_md5(u, &domain, p).parse()?,
                        ha1_sha256: ha1_sha256(u, &domain, p).parse()?,
                        mac_address: None,
                        model: None,
                    }),
                })
            })
            .collect::<Result<_, _>>()?;
        dir.import_extensions(tenant.id, &rows).await?;
    }
    eprintln!("provisioned {} users in {domain}", users.len());
    let mut cfg = SipConfig::new(listen);
    cfg.udp_sockets = env_usize("SB_UDP_SOCKETS", 2);
    // SB_CHALLENGES=1: MD5 then SHA-256; 2: MD5 only (sipsak, baresip 1.0)
    cfg.registrar.challenges = match env_usize("SB_CHALLENGES", 0) {
        1 => pbx::ChallengeAlgorithms::Md5ThenSha256,
        2 => pbx::ChallengeAlgorithms::Md5Only,
        _ => pbx::ChallengeAlgorithms::Sha256ThenMd5,
    };
    cfg.persist.linger = Duration::from_millis(env_usize("SB_LINGER_MS", 1) as u64);
    // the load generator spreads over many loopback sources; keep the default guard
    cfg.guard.rate_per_sec = 1000;
    cfg.guard.burst = 2000;
    let rss0 = rss_kb();
    let handle = SipService::start(cfg, Arc::clone(&dir), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    let loc = handle.location();
    eprintln!(
        "pid {} listening on {:?}",
        std::process::id(),
        handle.local_addrs()
    );
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let reporter = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let n = loc.count();
            let rss = rss_kb();
            eprintln!(
                "t={:.0}s bindings={} cpu={:.2}s rss={} kB ({} B/binding over start)",
                t0.elapsed().as_secs_f64(),
                n,
                cpu_secs() - cpu0,
                rss,
                if n > 0 {
                    (rss.saturating_sub(rss0)) * 1024 / n as u64
                } else {
                    0
                }
            );
        }
    });
    handle.join().await?;
    reporter.abort();
    eprintln!("cpu {:.2}s", cpu_secs() - cpu0);
    Ok(())
}
