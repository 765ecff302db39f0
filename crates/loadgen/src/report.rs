//! Counters every scenario keeps, and the end-of-run report (human text or
//! one JSON object).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::cpu::CpuTimes;
use crate::histogram::Histogram;

/// Why an operation failed. Status codes are reported by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// No final response before Timer F (64*T1 = 32 s).
    Timeout,
    /// Still in flight when the drain grace period ended.
    Unfinished,
    /// Not started: the in-flight bound (`--concurrency`) was reached.
    Concurrency,
    /// Not started: this user's previous operation was still in flight.
    UserBusy,
    /// A final non-2xx response.
    Status(u16),
    /// A 401/407 whose challenge could not be parsed or answered.
    BadChallenge,
    /// The connection broke or a send failed on a reliable transport.
    Transport,
    /// A call failed for a reason named by the call scenario
    /// (`invite_timeout`, `no_ack`, `peer_bye_missing`, ...).
    Call(&'static str),
    /// A call's BYE got this final non-2xx response.
    ByeStatus(u16),
}

impl Failure {
    pub fn key(&self) -> String {
        match self {
            Failure::Timeout => "timeout".into(),
            Failure::Unfinished => "unfinished".into(),
            Failure::Concurrency => "concurrency_limit".into(),
            Failure::UserBusy => "user_busy".into(),
            Failure::Status(c) => c.to_string(),
            Failure::BadChallenge => "bad_challenge".into(),
            Failure::Transport => "transport".into(),
            Failure::Call(why) => (*why).into(),
            Failure::ByeStatus(c) => format!("bye_{c}"),
        }
    }
}

/// Counters and the latency histogram of one run.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    /// Operations the pacer tried to start (completed + failed + in flight).
    pub attempted: u64,
    pub completed: u64,
    pub failures: BTreeMap<Failure, u64>,
    /// Requests sent again by Timer E (UDP only).
    pub retransmissions: u64,
    /// Responses that matched no live transaction (late or duplicate).
    pub stray: u64,
    /// Inbound bytes that did not parse as SIP.
    pub malformed: u64,
    /// Sends the OS refused (UDP: the retransmission timer covers them).
    pub send_errors: u64,
    /// Latency of completed operations, microseconds.
    pub latency: Histogram,
    pub first_start: Option<Instant>,
    pub last_completion: Option<Instant>,
    /// Per-second counts, second 0 starting at `first_start`.
    pub timeline: Vec<Second>,
}

/// What happened during one second of the run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Second {
    pub completed: u64,
    pub failed: u64,
    pub retransmissions: u64,
    /// Highest latency among the completions of this second, µs.
    pub max_latency_us: u64,
}

/// The timeline stops growing after this many seconds (a day).
const MAX_TIMELINE: usize = 86_400;

impl Metrics {
    /// The timeline bucket of `now` (none before the first start).
    fn second(&mut self, now: Instant) -> Option<&mut Second> {
        let i = now.checked_duration_since(self.first_start?)?.as_secs() as usize;
        if i >= MAX_TIMELINE {
            return None;
        }
        if self.timeline.len() <= i {
            self.timeline.resize(i + 1, Second::default());
        }
        self.timeline.get_mut(i)
    }

    pub fn fail(&mut self, why: Failure, now: Instant) {
        *self.failures.entry(why).or_default() += 1;
        if let Some(s) = self.second(now) {
            s.failed += 1;
        }
    }

    pub fn retransmitted(&mut self, now: Instant) {
        self.retransmissions += 1;
        if let Some(s) = self.second(now) {
            s.retransmissions += 1;
        }
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn complete(&mut self, latency: Duration, now: Instant) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.completed += 1;
        self.latency.record(us);
        self.last_completion = Some(now);
        if let Some(s) = self.second(now) {
            s.completed += 1;
            s.max_latency_us = s.max_latency_us.max(us);
        }
    }
}

/// Everything printed at the end of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: &'static str,
    pub transport: &'static str,
    pub server: String,
    pub target_rate: f64,
    pub users: usize,
    pub sources: usize,
    /// The configured sending window.
    pub duration: Duration,
    /// Wall time from the first start to the end of the run (drain included).
    pub wall: Duration,
    /// How far behind schedule the pacer ever was when starting an operation.
    pub max_pacing_lag: Duration,
    pub metrics: Metrics,
    pub generator_cpu: Option<CpuTimes>,
    pub server_cpu: Option<CpuTimes>,
    /// Server resident memory (bytes) before and after the run.
    pub server_rss: Option<(u64, u64)>,
}

pub(crate) fn ms(us: Option<u64>) -> f64 {
    us.map_or(0.0, |u| u as f64 / 1000.0)
}

pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{}", (x * 1000.0).round() / 1000.0)
    } else {
        "null".into()
    }
}

impl Report {
    /// Time over which completions are counted: first start to last
    /// completion, and never less than the sending window.
    pub fn active(&self) -> Duration {
        let m = &self.metrics;
        let span = match (m.first_start, m.last_completion) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        span.max(self.duration.min(self.wall))
    }

    /// Completed operations per second over [`Report::active`].
    pub fn achieved_rate(&self) -> f64 {
        let s = self.active().as_secs_f64();
        if s > 0.0 {
            self.metrics.completed as f64 / s
        } else {
            0.0
        }
    }

    /// Percentage of one core the generator used over the wall time.
    pub fn generator_core_percent(&self) -> Option<f64> {
        let cpu = self.generator_cpu?;
        let w = self.wall.as_secs_f64();
        (w > 0.0).then(|| 100.0 * cpu.total().as_secs_f64() / w)
    }

    fn per_op_us(&self, cpu: Option<CpuTimes>) -> Option<f64> {
        let cpu = cpu?;
        (self.metrics.completed > 0)
            .then(|| cpu.total().as_secs_f64() * 1e6 / self.metrics.completed as f64)
    }

    /// Server memory growth per registered user (the distinct users that
    /// completed at least once: at most `users`), in bytes.
    pub fn server_bytes_per_user(&self) -> Option<f64> {
        let (before, after) = self.server_rss?;
        let n = self.metrics.completed.min(self.users as u64);
        (n > 0).then(|| after.saturating_sub(before) as f64 / n as f64)
    }

    pub fn success(&self) -> bool {
        self.metrics.failed() == 0 && self.metrics.attempted == self.metrics.completed
    }

    pub fn to_json(&self) -> String {
        let m = &self.metrics;
        let h = &m.latency;
        let failures: Vec<String> = m
            .failures
            .iter()
            .map(|(k, v)| format!("{}:{v}", json_str(&k.key())))
            .collect();
        let cpu = |c: Option<CpuTimes>, per: Option<f64>| match c {
            None => "null".to_owned(),
            Some(c) => format!(
                "{{\"user_s\":{},\"system_s\":{},\"us_per_op\":{}}}",
                json_num(c.user.as_secs_f64()),
                json_num(c.system.as_secs_f64()),
                per.map_or("null".into(), json_num)
            ),
        };
        format!(
            "{{\"scenario\":{},\"transport\":{},\"server\":{},\"target_rate\":{},\"users\":{},\
             \"sources\":{},\"duration_s\":{},\"wall_s\":{},\"attempted\":{},\"completed\":{},\
             \"failed\":{},\"failures\":{{{}}},\"retransmissions\":{},\"stray_responses\":{},\
             \"malformed\":{},\"send_errors\":{},\"achieved_rate\":{},\
             \"latency_ms\":{{\"p50\":{},\"p95\":{},\"p99\":{},\"max\":{},\"mean\":{}}},\
             \"max_pacing_lag_ms\":{},\"generator_cpu\":{},\"generator_core_percent\":{},\
             \"server_cpu\":{},\"server_rss_bytes\":{},\"server_rss_growth_per_user_bytes\":{},\"timeline\":[{}]}}",
            json_str(self.scenario),
            json_str(self.transport),
            json_str(&self.server),
            json_num(self.target_rate),
            self.users,
            self.sources,
            json_num(self.duration.as_secs_f64()),
            json_num(self.wall.as_secs_f64()),
            m.attempted,
            m.completed,
            m.failed(),
            failures.join(","),
            m.retransmissions,
            m.stray,
            m.malformed,
            m.send_errors,
            json_num(self.achieved_rate()),
            json_num(ms(h.quantile(0.50))),
            json_num(ms(h.quantile(0.95))),
            json_num(ms(h.quantile(0.99))),
            json_num(ms(h.min().map(|_| h.max()))),
            json_num(h.mean().unwrap_or(0.0) / 1000.0),
            json_num(self.max_pacing_lag.as_secs_f64() * 1000.0),
            cpu(self.generator_cpu, self.per_op_us(self.generator_cpu)),
            self.generator_core_percent()
                .map_or("null".into(), json_num),
            cpu(self.server_cpu, self.per_op_us(self.server_cpu)),
            self.server_rss.map_or("null".into(), |(a, b)| format!(
                "{{\"before\":{a},\"after\":{b}}}"
            )),
            self.server_bytes_per_user().map_or("null".into(), json_num),
            m.timeline
                .iter()
                .enumerate()
                .map(|(i, t)| format!(
                    "{{\"second\":{i},\"completed\":{},\"failed\":{},\"retransmissions\":{},\"max_latency_ms\":{}}}",
                    t.completed,
                    t.failed,
                    t.retransmissions,
                    json_num(t.max_latency_us as f64 / 1000.0)
                ))
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    /// The per-second table (for `--timeline`).
    pub fn timeline_table(&self) -> String {
        let mut s = String::from("  second  completed  failed  retrans  max ms\n");
        for (i, t) in self.metrics.timeline.iter().enumerate() {
            let _ = writeln!(
                s,
                "  {i:>6}  {:>9}  {:>6}  {:>7}  {:>6.1}",
                t.completed,
                t.failed,
                t.retransmissions,
                t.max_latency_us as f64 / 1000.0
            );
        }
        s
    }

    pub fn to_human(&self) -> String {
        let m = &self.metrics;
        let h = &m.latency;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} over {} to {}: {} users on {} source address{}, target {}/s for {:.1} s",
            self.scenario,
            self.transport.to_uppercase(),
            self.server,
            self.users,
            self.sources,
            if self.sources == 1 { "" } else { "es" },
            self.target_rate,
            self.duration.as_secs_f64()
        );
        let _ = writeln!(s, "  attempted        {}", m.attempted);
        let _ = writeln!(s, "  completed        {}", m.completed);
        let _ = writeln!(s, "  failed           {}", m.failed());
        for (k, v) in &m.failures {
            let _ = writeln!(s, "    {:<14} {v}", k.key());
        }
        let _ = writeln!(s, "  retransmissions  {}", m.retransmissions);
        if m.stray + m.malformed + m.send_errors > 0 {
            let _ = writeln!(
                s,
                "  stray responses  {}   malformed {}   send errors {}",
                m.stray, m.malformed, m.send_errors
            );
        }
        let _ = writeln!(
            s,
            "  achieved rate    {:.1}/s over {:.2} s (wall {:.2} s)",
            self.achieved_rate(),
            self.active().as_secs_f64(),
            self.wall.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  latency ms       p50 {:.3}  p95 {:.3}  p99 {:.3}  max {:.3}",
            ms(h.quantile(0.50)),
            ms(h.quantile(0.95)),
            ms(h.quantile(0.99)),
            ms(h.min().map(|_| h.max()))
        );
        let _ = writeln!(
            s,
            "  max pacing lag   {:.1} ms",
            self.max_pacing_lag.as_secs_f64() * 1000.0
        );
        if let Some(c) = self.generator_cpu {
            let _ = writeln!(
                s,
                "  generator CPU    {:.2} s user + {:.2} s sys = {:.1}% of a core, {:.1} µs/op",
                c.user.as_secs_f64(),
                c.system.as_secs_f64(),
                self.generator_core_percent().unwrap_or(0.0),
                self.per_op_us(Some(c)).unwrap_or(0.0)
            );
        }
        if let Some(c) = self.server_cpu {
            let _ = writeln!(
                s,
                "  server CPU       {:.2} s user + {:.2} s sys, {:.1} µs/op",
                c.user.as_secs_f64(),
                c.system.as_secs_f64(),
                self.per_op_us(Some(c)).unwrap_or(0.0)
            );
        }
        if let Some((a, b)) = self.server_rss {
            let _ = writeln!(
                s,
                "  server RSS       {:.1} MiB -> {:.1} MiB, {:.0} bytes per registered user",
                a as f64 / 1048576.0,
                b as f64 / 1048576.0,
                self.server_bytes_per_user().unwrap_or(0.0)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let t0 = Instant::now();
        let mut m = Metrics {
            first_start: Some(t0),
            attempted: 10,
            ..Metrics::default()
        };
        for i in 1..=7u64 {
            m.complete(
                Duration::from_micros(i * 1000),
                t0 + Duration::from_millis(1000),
            );
        }
        let later = t0 + Duration::from_millis(1500);
        m.fail(Failure::Timeout, later);
        m.fail(Failure::Status(403), later);
        m.fail(Failure::Status(403), later);
        for _ in 0..4 {
            m.retransmitted(t0);
        }
        Report {
            scenario: "register",
            transport: "udp",
            server: "127.0.0.1:5060".into(),
            target_rate: 10.0,
            users: 5,
            sources: 1,
            duration: Duration::from_secs(2),
            wall: Duration::from_secs(3),
            max_pacing_lag: Duration::from_micros(1500),
            metrics: m,
            generator_cpu: Some(CpuTimes {
                user: Duration::from_millis(300),
                system: Duration::from_millis(150),
            }),
            server_cpu: None,
            server_rss: Some((10 << 20, (10 << 20) + 5 * 1500)),
        }
    }

    #[test]
    fn counters_add_up_and_gate_success() {
        let r = sample();
        assert_eq!(r.metrics.failed(), 3);
        assert!(!r.success());
        // 7 completions over the 2 s window (last completion was at 1 s)
        assert_eq!(r.achieved_rate(), 3.5);
        assert_eq!(r.generator_core_percent(), Some(15.0));
        let mut ok = sample();
        ok.metrics.failures.clear();
        ok.metrics.attempted = 7;
        assert!(ok.success());
        ok.metrics.attempted = 8; // one never finished nor failed: not a success
        assert!(!ok.success());
    }

    #[test]
    fn json_has_every_field() {
        let j = sample().to_json();
        for want in [
            "\"attempted\":10",
            "\"completed\":7",
            "\"failed\":3",
            "\"failures\":{\"timeout\":1,\"403\":2}",
            "\"retransmissions\":4",
            "\"achieved_rate\":3.5",
            "\"p50\":4.031,",
            "\"p99\":7,",
            "\"max\":7,",
            "\"generator_cpu\":{\"user_s\":0.3,\"system_s\":0.15,\"us_per_op\":64285.714}",
            "\"server_cpu\":null",
            "\"server_rss_bytes\":{\"before\":10485760,\"after\":10493260}",
            "\"server_rss_growth_per_user_bytes\":1500,",
        ] {
            assert!(j.contains(want), "{want} missing from {j}");
        }
        assert!(j.contains(
            "\"timeline\":[{\"second\":0,\"completed\":0,\"failed\":0,\"retransmissions\":4,\"max_latency_ms\":0},\
             {\"second\":1,\"completed\":7,\"failed\":3,\"retransmissions\":0,\"max_latency_ms\":7}]"
        ), "{j}");
        assert!(j.starts_with('{') && j.ends_with('}'));
        assert_eq!(json_str("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }

    #[test]
    fn human_report_lists_reasons() {
        let h = sample().to_human();
        assert!(h.contains("failed           3"), "{h}");
        assert!(h.contains("    403            2"), "{h}");
        assert!(h.contains("p50 4.031"), "{h}");
        assert!(h.contains("15.0% of a core"), "{h}");
        let t = sample().timeline_table();
        assert!(
            t.contains("\n       1          7       3        0     7.0\n"),
            "{t}"
        );
    }
}
