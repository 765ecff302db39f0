//! `sb-loadgen calls` and `sb-loadgen fake-pbx`, wired from their parts.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::call_report::CallReport;
use crate::cli::{CallsArgs, FakePbxArgs};
use crate::commands::choose_sources;
use crate::cpu;
use crate::fake_pbx::{self, FakePbx, UdpRelay};
use crate::pacing::Pacer;
use crate::rtp::engine::MediaSockets;
use crate::runner::Session;
use crate::scenario::call::{CallConfig, Calls, MediaOut};
use crate::scenario::register::Timers;
use crate::scenario::{Rng, Scenario};
use crate::transport::Net;
use crate::users;

/// SIP messages one call puts on the sources at the server: the caller's
/// INVITE, ACK, INVITE, ACK, BYE and the callee's 180, 200, 200.
const MESSAGES_PER_CALL: u32 = 8;
/// Kernel buffers asked for per RTP socket.
const RTP_SOCKET_BUFFER: usize = 4 << 20;
/// How long the media thread keeps receiving after the last call.
const RTP_LINGER: Duration = Duration::from_millis(200);

/// Everything a `calls` run needs, resolved.
#[derive(Debug, Clone)]
pub struct CallsPlan {
    pub server: SocketAddr,
    pub users: Vec<users::User>,
    pub rate: f64,
    pub duration: Duration,
    pub concurrent: Option<usize>,
    pub register_rate: f64,
    pub sources: Vec<IpAddr>,
    pub rtp_ip: Option<IpAddr>,
    pub rtp_sockets: usize,
    pub rtp_threads: usize,
    pub grace: Duration,
    pub server_pid: Option<u32>,
    pub call: CallConfig,
}

impl CallsPlan {
    pub fn from_args(args: &CallsArgs) -> anyhow::Result<Self> {
        let users = users::read_users(&args.users, args.domain.as_deref())?;
        if !(args.rate.is_finite() && args.rate > 0.0) {
            anyhow::bail!("--rate must be a positive number");
        }
        if !(args.register_rate.is_finite() && args.register_rate > 0.0) {
            anyhow::bail!("--register-rate must be a positive number");
        }
        if users.len() < 2 {
            anyhow::bail!("calls need at least 2 users: half call, half answer");
        }
        let pairs = users.len() / 2;
        if let Some(n) = args.concurrent {
            if n == 0 || n > pairs {
                anyhow::bail!(
                    "--concurrent {n}: the users file has room for 1 to {pairs} calls at once \
                     (each call takes a caller and a callee)"
                );
            }
        }
        let msgs_per_s = args.rate.max(args.register_rate / 4.0);
        let sources = choose_sources(
            args.sources.as_deref(),
            args.server.ip(),
            msgs_per_s,
            MESSAGES_PER_CALL,
            pairs,
        )?;
        Ok(CallsPlan {
            server: args.server,
            users,
            rate: args.rate,
            duration: args.duration,
            concurrent: args.concurrent,
            register_rate: args.register_rate,
            sources,
            rtp_ip: args.rtp_ip,
            rtp_sockets: args.rtp_sockets.max(1),
            rtp_threads: args.rtp_threads.max(1),
            grace: args.grace,
            server_pid: args.server_pid,
            call: CallConfig {
                transport: args.transport,
                timers: Timers::default(),
                expires: 3600,
                hold: if args.concurrent.is_some() {
                    Duration::ZERO
                } else {
                    args.hold
                },
                answer_delay: args.answer_delay,
                hangup: args.hangup,
                rtp: args.rtp,
                media_drain: if args.rtp {
                    args.media_drain
                } else {
                    Duration::ZERO
                },
                max_concurrent: args.max_concurrent.unwrap_or(pairs),
            },
        })
    }
}

/// Runs a `calls` plan to its report. Must run inside a `LocalSet`.
pub async fn run_calls(plan: CallsPlan) -> anyhow::Result<CallReport> {
    let transport = plan.call.transport;
    let net = Net::open(transport, &plan.sources, plan.server)
        .await
        .context("opening the source sockets")?;
    let local = net.local.clone();
    let rtp_ip = plan
        .rtp_ip
        .or_else(|| local.first().map(SocketAddr::ip))
        .context("no source address for RTP")?;
    let n_rtp = if plan.call.rtp { plan.rtp_sockets } else { 1 };
    let media_sockets =
        MediaSockets::bind(rtp_ip, n_rtp, RTP_SOCKET_BUFFER).context("binding the RTP sockets")?;
    let rtp_local = media_sockets.local.clone();
    let media = if plan.call.rtp {
        Some(
            media_sockets
                .spawn(plan.rtp_threads)
                .context("starting the media threads")?,
        )
    } else {
        None
    };
    let media_out: Option<Box<dyn MediaOut>> = media
        .as_ref()
        .map(|m| Box::new(m.clone_sender()) as Box<dyn MediaOut>);
    let scenario = Calls::new(
        plan.call.clone(),
        plan.users.clone(),
        local,
        rtp_local,
        media_out,
        Rng::from_os(),
    )
    .map_err(anyhow::Error::msg)?;
    let n_callees = scenario.callees();
    let session = Session::start(scenario, net);

    // phase 1: the callees register
    let reg_pacer = Pacer::new(
        plan.register_rate,
        Duration::from_secs_f64(n_callees as f64 / plan.register_rate),
    );
    session.drive(reg_pacer, Duration::from_secs(35)).await;
    let registered = session.with(Calls::begin_calls);
    if registered == 0 {
        let m = session.with(|s| s.register_metrics().clone());
        let why: Vec<String> = m
            .failures
            .iter()
            .map(|(k, v)| format!("{} {v}", k.key()))
            .collect();
        anyhow::bail!(
            "no callee could register with {} ({})",
            plan.server,
            why.join(", ")
        );
    }

    // phase 2: the calls
    let (pacer, grace) = match plan.concurrent {
        Some(n) => {
            let ramp = Duration::from_secs_f64(n as f64 / plan.rate);
            let hang_up = Instant::now() + ramp + plan.duration;
            session.with(|s| s.set_hangup_at(hang_up));
            (
                Pacer::new(plan.rate, ramp),
                plan.duration + plan.call.media_drain + plan.grace,
            )
        }
        None => (
            Pacer::new(plan.rate, plan.duration),
            plan.call.hold + plan.call.media_drain + plan.grace,
        ),
    };
    let cpu0 = cpu::own();
    let server0 = plan.server_pid.and_then(cpu::of_pid);
    let rss0 = plan.server_pid.and_then(cpu::rss_bytes);
    let stats = session.drive(pacer, grace).await;
    let cpu1 = cpu::own();
    let server1 = plan.server_pid.and_then(cpu::of_pid);
    let rss1 = plan.server_pid.and_then(cpu::rss_bytes);
    let scenario = session.close();
    let rtp = match media {
        Some(m) => Some(m.finish(RTP_LINGER).context("the media thread")?),
        None => None,
    };
    let s = scenario.borrow();
    Ok(CallReport {
        transport: transport.param(),
        server: plan.server.to_string(),
        mode: if plan.concurrent.is_some() {
            "concurrent"
        } else {
            "rate"
        },
        target_rate: plan.rate,
        target_concurrent: plan.concurrent,
        hold: plan.call.hold,
        duration: plan.duration,
        sources: plan.sources.len(),
        register: s.register_metrics().clone(),
        metrics: s.metrics().clone(),
        stats: s.stats.clone(),
        rtp,
        wall: stats.wall,
        max_pacing_lag: stats.max_pacing_lag,
        generator_cpu: cpu0.zip(cpu1).map(|(a, b)| b.since(&a)),
        server_cpu: server0.zip(server1).map(|(a, b)| b.since(&a)),
        server_rss: rss0.zip(rss1),
    })
}

/// `sb-loadgen calls`: the report goes to stdout. Ok(false) when a call failed.
pub async fn calls(args: CallsArgs) -> anyhow::Result<bool> {
    let plan = CallsPlan::from_args(&args)?;
    let report = run_calls(plan).await?;
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

/// `sb-loadgen fake-pbx`.
pub async fn fake_pbx(args: FakePbxArgs) -> anyhow::Result<()> {
    let list = users::read_users(&args.users, args.domain.as_deref())?;
    let sock = tokio::net::UdpSocket::bind(args.listen)
        .await
        .with_context(|| format!("binding UDP {}", args.listen))?;
    let addr = sock.local_addr()?;
    let pbx = Arc::new(Mutex::new(FakePbx::new(
        addr,
        &list,
        UdpRelay::new(addr.ip()),
    )));
    eprintln!("fake pbx on {addr} (udp) for {} users", list.len());
    let task = tokio::spawn(fake_pbx::serve_udp(sock, Arc::clone(&pbx)));
    let limit = args.duration.unwrap_or(Duration::from_secs(u64::MAX / 4));
    tokio::select! {
        _ = tokio::time::sleep(limit) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    task.abort();
    let s = pbx.lock().unwrap_or_else(|e| e.into_inner()).stats;
    eprintln!(
        "fake pbx: registered {} challenged {} calls {} answered {} ended {} refused {}",
        s.registered, s.challenged, s.calls, s.answered, s.ended, s.refused
    );
    Ok(())
}
