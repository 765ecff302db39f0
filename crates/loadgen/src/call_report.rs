//! The end-of-run report of `calls`: text or one JSON object.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cpu::CpuTimes;
use crate::histogram::Histogram;
use crate::report::{Metrics, json_num, json_str, ms};
use crate::rtp::RtpStats;
use crate::scenario::call::CallStats;

#[derive(Debug, Clone)]
pub struct CallReport {
    pub transport: &'static str,
    pub server: String,
    /// `rate` or `concurrent`.
    pub mode: &'static str,
    pub target_rate: f64,
    pub target_concurrent: Option<usize>,
    pub hold: Duration,
    pub duration: Duration,
    pub sources: usize,
    /// Registration phase: callees attempted, registered, failures.
    pub register: Metrics,
    /// Call phase.
    pub metrics: Metrics,
    pub stats: CallStats,
    pub rtp: Option<RtpStats>,
    pub wall: Duration,
    pub max_pacing_lag: Duration,
    pub generator_cpu: Option<CpuTimes>,
    pub server_cpu: Option<CpuTimes>,
    pub server_rss: Option<(u64, u64)>,
}

fn hist_json(h: &Histogram) -> String {
    format!(
        "{{\"count\":{},\"p50\":{},\"p95\":{},\"p99\":{},\"max\":{}}}",
        h.count(),
        json_num(ms(h.quantile(0.50))),
        json_num(ms(h.quantile(0.95))),
        json_num(ms(h.quantile(0.99))),
        json_num(ms(h.min().map(|_| h.max())))
    )
}

fn hist_text(h: &Histogram) -> String {
    if h.count() == 0 {
        return "-".into();
    }
    format!(
        "p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2} ms",
        ms(h.quantile(0.50)),
        ms(h.quantile(0.95)),
        ms(h.quantile(0.99)),
        ms(Some(h.max()))
    )
}

impl CallReport {
    /// Completed calls per second: over the time from the first start to
    /// the last end less one hold time (the calls' own length), never less
    /// than the sending window; in `--concurrent` mode over the ramp-up.
    pub fn achieved_rate(&self) -> f64 {
        let m = &self.metrics;
        let span = match (m.first_start, m.last_completion) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        let span = match self.target_concurrent {
            None => span
                .saturating_sub(self.hold)
                .max(self.duration.min(self.wall)),
            Some(n) => Duration::from_secs_f64(n as f64 / self.target_rate.max(1e-9)),
        };
        let s = span.as_secs_f64();
        if s > 0.0 { m.completed as f64 / s } else { 0.0 }
    }

    /// Server CPU per completed call, µs.
    pub fn server_us_per_call(&self) -> Option<f64> {
        let c = self.server_cpu?;
        (self.metrics.completed > 0)
            .then(|| c.total().as_secs_f64() * 1e6 / self.metrics.completed as f64)
    }

    /// Server CPU over the call phase, as a percentage of one core.
    pub fn server_core_percent(&self) -> Option<f64> {
        let c = self.server_cpu?;
        let w = self.wall.as_secs_f64();
        (w > 0.0).then(|| 100.0 * c.total().as_secs_f64() / w)
    }

    pub fn generator_core_percent(&self) -> Option<f64> {
        let c = self.generator_cpu?;
        let w = self.wall.as_secs_f64();
        (w > 0.0).then(|| 100.0 * c.total().as_secs_f64() / w)
    }

    /// Every call that was started completed.
    pub fn success(&self) -> bool {
        self.metrics.failed() == 0 && self.metrics.attempted == self.metrics.completed
    }

    pub fn to_json(&self) -> String {
        let m = &self.metrics;
        let s = &self.stats;
        let failures = |m: &Metrics| {
            m.failures
                .iter()
                .map(|(k, v)| format!("{}:{v}", json_str(&k.key())))
                .collect::<Vec<_>>()
                .join(",")
        };
        let cpu = |c: Option<CpuTimes>, pct: Option<f64>| match c {
            None => "null".to_owned(),
            Some(c) => format!(
                "{{\"user_s\":{},\"system_s\":{},\"core_percent\":{}}}",
                json_num(c.user.as_secs_f64()),
                json_num(c.system.as_secs_f64()),
                pct.map_or("null".into(), json_num)
            ),
        };
        let rtp = match &self.rtp {
            None => "null".to_owned(),
            Some(r) => format!(
                "{{\"streams\":{},\"sent\":{},\"received\":{},\"lost\":{},\"loss_percent\":{:.6},\
                 \"duplicates\":{},\"misrouted\":{},\"reordered_late\":{},\"foreign\":{},\
                 \"send_errors\":{},\"local_drops\":{},\"latency_ms\":{{\"p50\":{},\"p99\":{},\
                 \"p999\":{},\"max\":{}}},\"user_timestamps\":{},\"max_send_lag_ms\":{},\
                 \"skipped\":{},\"sockets\":{},\"rcvbuf_bytes\":{}}}",
                r.streams,
                r.sent,
                r.received,
                r.lost(),
                r.loss_percent(),
                r.duplicates,
                r.misrouted,
                r.reordered_late,
                r.foreign,
                r.send_errors,
                r.local_drops,
                json_num(ms(r.latency.quantile(0.50))),
                json_num(ms(r.latency.quantile(0.99))),
                json_num(ms(r.latency.quantile(0.999))),
                json_num(ms(r.latency.min().map(|_| r.latency.max()))),
                r.user_timestamps,
                json_num(r.max_send_lag_us as f64 / 1000.0),
                r.skipped,
                r.sockets,
                r.rcvbuf
            ),
        };
        let timeline: Vec<String> = m
            .timeline
            .iter()
            .map(|t| {
                format!(
                    "[{},{},{},{}]",
                    t.completed, t.failed, t.retransmissions, t.max_latency_us
                )
            })
            .collect();
        format!(
            "{{\"scenario\":\"calls\",\"mode\":{},\"transport\":{},\"server\":{},\
             \"target_rate\":{},\"target_concurrent\":{},\"hold_s\":{},\"duration_s\":{},\
             \"wall_s\":{},\"sources\":{},\"callers\":{},\
             \"registration\":{{\"attempted\":{},\"registered\":{},\"failures\":{{{}}}}},\
             \"attempted\":{},\"completed\":{},\"failed\":{},\"failures\":{{{}}},\
             \"answered\":{},\"achieved_rate\":{},\"peak_in_flight\":{},\"peak_active\":{},\
             \"setup_latency_ms\":{},\"teardown_latency_ms\":{},\"invite_relay_ms\":{},\
             \"bye_relay_ms\":{},\"retransmissions\":{},\"stray\":{},\"malformed\":{},\
             \"send_errors\":{},\"unmatched_requests\":{},\"caller_id_mismatch\":{},\
             \"reacks\":{},\"bye_repeats\":{},\"max_pacing_lag_ms\":{},\"rtp\":{},\"generator_cpu\":{},\
             \"server_cpu\":{},\"server_us_per_call\":{},\"server_rss_bytes\":{},\
             \"timeline\":[{}]}}",
            json_str(self.mode),
            json_str(self.transport),
            json_str(&self.server),
            json_num(self.target_rate),
            self.target_concurrent
                .map_or("null".into(), |n| n.to_string()),
            json_num(self.hold.as_secs_f64()),
            json_num(self.duration.as_secs_f64()),
            json_num(self.wall.as_secs_f64()),
            self.sources,
            s.callers,
            self.register.attempted,
            s.callees_registered,
            failures(&self.register),
            m.attempted,
            m.completed,
            m.failed(),
            failures(m),
            s.answered,
            json_num(self.achieved_rate()),
            s.peak_in_flight,
            s.peak_active,
            hist_json(&s.setup),
            hist_json(&s.teardown),
            hist_json(&s.invite_relay),
            hist_json(&s.bye_relay),
            m.retransmissions,
            m.stray,
            m.malformed,
            m.send_errors,
            s.unmatched_requests,
            s.caller_id_mismatch,
            s.reacks,
            s.bye_repeats,
            json_num(self.max_pacing_lag.as_secs_f64() * 1000.0),
            rtp,
            cpu(self.generator_cpu, self.generator_core_percent()),
            cpu(self.server_cpu, self.server_core_percent()),
            self.server_us_per_call().map_or("null".into(), json_num),
            self.server_rss
                .map_or("null".into(), |(a, b)| format!("[{a},{b}]")),
            timeline.join(",")
        )
    }

    pub fn to_human(&self) -> String {
        let m = &self.metrics;
        let s = &self.stats;
        let mut o = String::new();
        // writes to a String cannot fail
        let what = match self.target_concurrent {
            Some(n) => format!(
                "ramp to {n} calls at {}/s, hold all {:.1} s",
                self.target_rate,
                self.duration.as_secs_f64()
            ),
            None => format!(
                "{} calls/s for {:.1} s, hold {:.1} s",
                self.target_rate,
                self.duration.as_secs_f64(),
                self.hold.as_secs_f64()
            ),
        };
        let _ = writeln!(
            o,
            "sb-loadgen calls -> {} ({}), {what}, {} sources",
            self.server, self.transport, self.sources
        );
        let reg_fail = self.register.failed();
        let _ = writeln!(
            o,
            "  callees registered {}/{}{}; callers {}",
            s.callees_registered,
            self.register.attempted,
            if reg_fail > 0 {
                format!(" ({reg_fail} failed)")
            } else {
                String::new()
            },
            s.callers
        );
        let _ = writeln!(
            o,
            "  calls     attempted {}  completed {}  failed {}  answered {}",
            m.attempted,
            m.completed,
            m.failed(),
            s.answered
        );
        for (k, v) in &m.failures {
            let _ = writeln!(o, "            {:<20} {v}", k.key());
        }
        let _ = writeln!(
            o,
            "  rate      {:.1} calls/s completed; peak {} in flight, {} answered at once",
            self.achieved_rate(),
            s.peak_in_flight,
            s.peak_active
        );
        let _ = writeln!(
            o,
            "  setup     {}  (INVITE -> 200, 407 round included)",
            hist_text(&s.setup)
        );
        let _ = writeln!(o, "  teardown  {}  (BYE -> 200)", hist_text(&s.teardown));
        let _ = writeln!(
            o,
            "  to callee {}  (first INVITE -> callee's INVITE)",
            hist_text(&s.invite_relay)
        );
        let _ = writeln!(
            o,
            "  BYE relay {}  (BYE sent -> other side's BYE)",
            hist_text(&s.bye_relay)
        );
        let _ = writeln!(
            o,
            "  sip       retransmissions {}  stray {}  malformed {}  send errors {}  unmatched requests {}  re-ACKs {}  repeated BYEs {}",
            m.retransmissions,
            m.stray,
            m.malformed,
            m.send_errors,
            s.unmatched_requests,
            s.reacks,
            s.bye_repeats
        );
        if s.caller_id_mismatch > 0 {
            let _ = writeln!(
                o,
                "  caller id mismatches at the callee: {}",
                s.caller_id_mismatch
            );
        }
        if let Some(r) = &self.rtp {
            let _ = writeln!(
                o,
                "  rtp       {} streams  sent {}  received {}  lost {} ({:.4} %)  dup {}  misrouted {}  late {}",
                r.streams,
                r.sent,
                r.received,
                r.lost(),
                r.loss_percent(),
                r.duplicates,
                r.misrouted,
                r.reordered_late
            );
            let _ = writeln!(
                o,
                "            latency through the relay: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms",
                ms(r.latency.quantile(0.50)),
                ms(r.latency.quantile(0.99)),
                ms(r.latency.quantile(0.999)),
                ms(r.latency.min().map(|_| r.latency.max()))
            );
            let _ = writeln!(
                o,
                "            our side: local drops {}  send errors {}  max send lag {:.2} ms  skipped {}  foreign {}  ({} sockets, rcvbuf {} KiB{})",
                r.local_drops,
                r.send_errors,
                r.max_send_lag_us as f64 / 1000.0,
                r.skipped,
                r.foreign,
                r.sockets,
                r.rcvbuf / 1024,
                if r.user_timestamps > 0 {
                    format!(", {} user-space timestamps", r.user_timestamps)
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(
            o,
            "  pacing    max lag {:.2} ms; wall {:.1} s",
            self.max_pacing_lag.as_secs_f64() * 1000.0,
            self.wall.as_secs_f64()
        );
        if let (Some(c), Some(p)) = (self.generator_cpu, self.generator_core_percent()) {
            let _ = writeln!(
                o,
                "  generator cpu {:.2} s user + {:.2} s sys ({p:.0} % of a core)",
                c.user.as_secs_f64(),
                c.system.as_secs_f64()
            );
        }
        if let (Some(c), Some(p)) = (self.server_cpu, self.server_core_percent()) {
            let _ = writeln!(
                o,
                "  server cpu    {:.2} s user + {:.2} s sys ({p:.0} % of a core){}",
                c.user.as_secs_f64(),
                c.system.as_secs_f64(),
                self.server_us_per_call()
                    .map_or(String::new(), |u| format!(", {u:.0} µs per completed call"))
            );
        }
        if let Some((a, b)) = self.server_rss {
            let _ = writeln!(
                o,
                "  server rss    {:.1} MiB -> {:.1} MiB",
                a as f64 / 1048576.0,
                b as f64 / 1048576.0
            );
        }
        o
    }

    /// Per second: completed, failed, retransmissions, slowest setup.
    pub fn timeline_table(&self) -> String {
        let mut o = String::from("  second  completed  failed  retrans  max setup ms\n");
        for (i, t) in self.metrics.timeline.iter().enumerate() {
            let _ = writeln!(
                o,
                "  {i:>6}  {:>9}  {:>6}  {:>7}  {:>12.2}",
                t.completed,
                t.failed,
                t.retransmissions,
                t.max_latency_us as f64 / 1000.0
            );
        }
        o
    }
}
