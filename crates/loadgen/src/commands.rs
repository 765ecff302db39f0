//! The subcommands, wired from their parts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::{FakeArgs, RegisterArgs, UsersArgs};
use crate::cpu;
use crate::fake_registrar::{self, FakeRegistrar};
use crate::pacing::Pacer;
use crate::report::Report;
use crate::runner;
use crate::scenario::Rng;
use crate::scenario::register::{Register, RegisterConfig, Timers};
use crate::sources;
use crate::transport::{Net, Transport};
use crate::users;

/// Source IPs for a run: `--sources`, else loopback addresses enough for
/// the rate when the server is on loopback, else the unspecified address.
pub fn choose_sources(
    spec: Option<&str>,
    server: IpAddr,
    rate: f64,
    reqs_per_op: u32,
    users: usize,
) -> anyhow::Result<Vec<IpAddr>> {
    if let Some(spec) = spec {
        return sources::parse_sources(spec).map_err(anyhow::Error::msg);
    }
    if server.is_loopback() && server.is_ipv4() {
        let n = sources::sources_needed(rate, reqs_per_op, sources::DEFAULT_REQS_PER_SOURCE, users);
        return Ok(sources::default_loopback(n, server));
    }
    Ok(vec![match server {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }])
}

/// Everything a `register` run needs, resolved.
#[derive(Debug, Clone)]
pub struct RegisterPlan {
    pub server: SocketAddr,
    pub users: Vec<users::User>,
    pub rate: f64,
    pub duration: Duration,
    pub transport: Transport,
    pub sources: Vec<IpAddr>,
    pub expires: u32,
    pub max_in_flight: usize,
    pub grace: Duration,
    pub timers: Timers,
    pub server_pid: Option<u32>,
}

impl RegisterPlan {
    /// Resolves the command line (reads the users file, picks sources).
    pub fn from_args(args: &RegisterArgs) -> anyhow::Result<Self> {
        let users = users::read_users(&args.users, args.domain.as_deref())?;
        if !(args.rate.is_finite() && args.rate > 0.0) {
            anyhow::bail!("--rate must be a positive number");
        }
        let sources = choose_sources(
            args.sources.as_deref(),
            args.server.ip(),
            args.rate,
            2,
            users.len(),
        )?;
        Ok(RegisterPlan {
            server: args.server,
            users,
            rate: args.rate,
            duration: args.duration,
            transport: args.transport,
            sources,
            expires: args.expires,
            max_in_flight: args
                .concurrency
                .unwrap_or_else(|| (args.rate.ceil() as usize).max(100)),
            grace: args.grace,
            timers: Timers::default(),
            server_pid: args.server_pid,
        })
    }
}

/// Runs a `register` plan to its report. Must run inside a `LocalSet`.
pub async fn run_register(plan: RegisterPlan) -> anyhow::Result<Report> {
    let net = Net::open(plan.transport, &plan.sources, plan.server)
        .await
        .context("opening the source sockets")?;
    let local = net.local.clone();
    let cfg = RegisterConfig {
        transport: plan.transport,
        expires: plan.expires,
        max_in_flight: plan.max_in_flight,
        timers: plan.timers,
    };
    let n_users = plan.users.len();
    let scenario = Register::new(cfg, plan.users, local, Rng::from_os());
    let pacer = Pacer::new(plan.rate, plan.duration);
    let cpu0 = cpu::own();
    let server0 = plan.server_pid.and_then(cpu::of_pid);
    let rss0 = plan.server_pid.and_then(cpu::rss_bytes);
    let (metrics, stats) = runner::run(scenario, net, pacer, plan.grace).await;
    let cpu1 = cpu::own();
    let server1 = plan.server_pid.and_then(cpu::of_pid);
    let rss1 = plan.server_pid.and_then(cpu::rss_bytes);
    Ok(Report {
        scenario: "register",
        transport: plan.transport.param(),
        server: plan.server.to_string(),
        target_rate: plan.rate,
        users: n_users,
        sources: plan.sources.len(),
        duration: plan.duration,
        wall: stats.wall,
        max_pacing_lag: stats.max_pacing_lag,
        metrics,
        generator_cpu: cpu0.zip(cpu1).map(|(a, b)| b.since(&a)),
        server_cpu: server0.zip(server1).map(|(a, b)| b.since(&a)),
        server_rss: rss0.zip(rss1),
    })
}

/// `sb-loadgen register`: the report goes to stdout. Ok(false) when any
/// registration failed.
pub async fn register(args: RegisterArgs) -> anyhow::Result<bool> {
    let plan = RegisterPlan::from_args(&args)?;
    let report = run_register(plan).await?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_human());
        if args.timeline {
            print!("{}", report.timeline_table());
        }
    }
    Ok(report.success())
}

pub fn users(args: UsersArgs) -> anyhow::Result<()> {
    let list = users::generate(args.count, args.start, &args.domain, args.password_len)?;
    let out = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let import = match &args.import_csv {
        Some(p) => {
            Some(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => None,
    };
    users::write_users(
        &list,
        std::io::BufWriter::new(out),
        import.map(std::io::BufWriter::new),
    )?;
    let first = list.first().map_or("", |u| u.username.as_str());
    let last = list.last().map_or("", |u| u.username.as_str());
    eprintln!(
        "wrote {} users ({first}..{last}@{}) to {}",
        list.len(),
        args.domain,
        args.out.display()
    );
    if let Some(p) = &args.import_csv {
        eprintln!(
            "import them with: switchboard extension import --tenant {} {}",
            args.domain,
            p.display()
        );
    }
    Ok(())
}

pub async fn fake_registrar(args: FakeArgs) -> anyhow::Result<()> {
    let list = users::read_users(&args.users, args.domain.as_deref())?;
    let mut reg = FakeRegistrar::new(&list);
    if args.md5_only {
        reg = reg.md5_only();
    }
    let reg = Arc::new(reg);
    let (udp, tcp) = match args.transport.as_str() {
        "udp" => (true, false),
        "tcp" => (false, true),
        "both" => (true, true),
        other => anyhow::bail!("--transport `{other}`: expected udp, tcp or both"),
    };
    let mut tasks = Vec::new();
    if udp {
        let sock = tokio::net::UdpSocket::bind(args.listen)
            .await
            .with_context(|| format!("binding UDP {}", args.listen))?;
        tasks.push(tokio::spawn(fake_registrar::serve_udp(
            sock,
            Arc::clone(&reg),
        )));
    }
    if tcp {
        let l = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding TCP {}", args.listen))?;
        tasks.push(tokio::spawn(fake_registrar::serve_tcp(l, Arc::clone(&reg))));
    }
    eprintln!(
        "fake registrar on {} ({}) for {} users",
        args.listen,
        args.transport,
        list.len()
    );
    let limit = args.duration.unwrap_or(Duration::from_secs(u64::MAX / 4));
    tokio::select! {
        _ = tokio::time::sleep(limit) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    for t in tasks {
        t.abort();
    }
    let s = &reg.stats;
    use std::sync::atomic::Ordering::Relaxed;
    eprintln!(
        "fake registrar: received {} challenged {} registered {} refused {}",
        s.received.load(Relaxed),
        s.challenged.load(Relaxed),
        s.registered.load(Relaxed),
        s.refused.load(Relaxed)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_default_to_enough_loopback_addresses() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let s = choose_sources(None, lo, 10_000.0, 2, 10_000).unwrap();
        assert_eq!(s.len(), 200);
        assert_eq!(s[0], "127.0.0.2".parse::<IpAddr>().unwrap());
        let s = choose_sources(Some("127.0.0.9-127.0.0.10"), lo, 10_000.0, 2, 10_000).unwrap();
        assert_eq!(s.len(), 2);
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            choose_sources(None, remote, 10_000.0, 2, 10_000).unwrap(),
            [IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
        );
        assert!(choose_sources(Some("nope"), lo, 1.0, 2, 1).is_err());
    }
}
