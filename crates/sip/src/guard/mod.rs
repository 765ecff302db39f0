//! Edge security, sans-IO: per-source rate limiting, brute-force accounting
//! and bans. Every method takes `now` as a [`Duration`] since any fixed epoch
//! the caller chooses (a monotonic clock is best); results carry instants in
//! that same epoch. Nothing here panics, and every table is capped.
//!
//! # How failures are counted
//!
//! The caller reports each failed authentication (wrong response, or unknown
//! username) with [`Guard::record_failure`] and each success with
//! [`Guard::record_success`]. Three counters see a failure:
//!
//! 1. **username-from-IP** (key: source IP, realm, claimed username): by
//!    default 5 failures in 60 s lock that username *from that IP only* for
//!    15 minutes. While locked, [`Guard::check_auth`] answers
//!    [`AuthGate::UserLocked`]; the caller refuses without verifying and does
//!    not report further failures, so a locked pair stops feeding the IP
//!    counter. A success clears the pair's counter.
//! 2. **IP** (key: source IP): by default 10 failures in 60 s, on any
//!    usernames, ban the IP for 15 minutes ([`GuardEvent::Banned`]). An IP
//!    that authenticated successfully within the last hour is *trusted*: its
//!    threshold is multiplied by `trusted_ip_factor` (default 5). Successes
//!    never erase IP failures (else one valid account would launder guesses).
//! 3. **username across IPs** (key: realm, username): never locks (an attacker
//!    could then lock any user out at will); it raises
//!    [`GuardEvent::UsernameTargeted`] once per window past 50 failures, for
//!    alerting.
//!
//! What the scenarios see with the defaults:
//! * *Office NAT, 50 phones, one misconfigured*: the bad phone locks its own
//!   username-from-IP after 5 failures and is then refused without counting,
//!   so the IP stays at 5 < 10 and the other 49 keep registering. The office
//!   IP is also trusted (its phones succeed), so it takes 50 failures in a
//!   minute, i.e. ten simultaneously misconfigured phones, to ban it. The
//!   operator can also list the office IP in `exempt`.
//! * *Attacker spraying usernames from one IP*: 10 guesses at 10 usernames in
//!   a minute ban the IP; at 5 per username the pairs lock first, so per
//!   minute the attacker gets at most ~10 guesses in all. Being behind the
//!   same trusted NAT as real phones buys 50; that is the price of not
//!   banning offices.
//! * *Distributed attacker on one username*: each IP stays under both
//!   thresholds; no lock happens (that would be a lock-out weapon), an alert
//!   event fires, and the defence is the rate limit plus strong generated
//!   SIP passwords. This is the deliberate trade-off.
//!
//! # Who is never banned
//!
//! Sources in [`GuardConfig::exempt`] (CIDR blocks set by the operator: an
//! SBC, a proxy, an office) and in the trunk list
//! ([`Guard::set_trunk_sources`], kept in step with the directory's trunks)
//! are never banned nor rate limited; pair locks still apply to them. This
//! matters over UDP, where anyone can forge a carrier's source address.
//!
//! # IPv6
//!
//! An IPv6 source is counted by its /64 (one host usually holds a whole
//! /64, so per-address counters would be trivial to dodge); IPv4-mapped
//! IPv6 addresses count as their IPv4 form. Events name the /64's network
//! address.
//!
//! # Memory
//!
//! Each table (rate buckets, IP failure logs, pairs, usernames, bans) has a
//! cap. When a new key meets a full table, idle entries are dropped first;
//! if that frees less than an eighth of the table, the least recently used
//! eighth is evicted (bans: the soonest-ending), so the cost is amortised
//! O(1). Usernames are held as a keyed 64-bit hash, not as strings.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::time::Duration;

mod net;
pub use net::{IpNet, source_group};

/// Settings for a [`Guard`]. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Failures from one IP within `ip_window` that ban it. Default 10.
    pub ip_failures: u32,
    pub ip_window: Duration,
    /// Ban length. Default 15 minutes.
    pub ip_ban: Duration,
    /// Failures for one username from one IP within `user_window` that lock
    /// that pair. Default 5.
    pub user_failures: u32,
    pub user_window: Duration,
    /// Pair lock length. Default 15 minutes.
    pub user_lock: Duration,
    /// Threshold multiplier for an IP with a recent success. Default 5.
    pub trusted_ip_factor: u32,
    /// How long a success keeps an IP trusted. Default 1 hour.
    pub trust_ttl: Duration,
    /// Failures on one username across all IPs within `user_window` that
    /// raise [`GuardEvent::UsernameTargeted`]. Default 50.
    pub target_alert_failures: u32,
    /// Sustained requests per second per source IP. Default 200.
    pub rate_per_sec: u32,
    /// Bucket size (burst) per source IP. Default 400.
    pub burst: u32,
    /// Cap on tracked IPs, for each of rate buckets and failure logs.
    pub max_ips: usize,
    /// Cap on tracked username-from-IP pairs.
    pub max_pairs: usize,
    /// Cap on tracked usernames (cross-IP counters).
    pub max_users: usize,
    /// Cap on simultaneous bans.
    pub max_bans: usize,
    /// Rate tokens a request with a forged, garbage or foreign nonce costs
    /// ([`Guard::record_bad_nonce`]). Default 20: a source sending only bad
    /// nonces gets 20 through its burst and then 10 a second.
    pub bad_nonce_cost: u32,
    /// Source blocks never banned nor rate limited (pair locks still apply).
    pub exempt: Vec<IpNet>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            ip_failures: 10,
            ip_window: Duration::from_secs(60),
            ip_ban: Duration::from_secs(15 * 60),
            user_failures: 5,
            user_window: Duration::from_secs(60),
            user_lock: Duration::from_secs(15 * 60),
            trusted_ip_factor: 5,
            trust_ttl: Duration::from_secs(3600),
            target_alert_failures: 50,
            rate_per_sec: 200,
            burst: 400,
            max_ips: 100_000,
            max_pairs: 100_000,
            max_users: 100_000,
            max_bans: 100_000,
            bad_nonce_cost: 20,
            exempt: Vec::new(),
        }
    }
}

/// Verdict of [`Guard::check_request`], for every inbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allow,
    /// Over the per-IP rate: drop (UDP) or answer 503 with Retry-After.
    RateLimited,
    /// The IP is banned until then: drop silently.
    Banned {
        until: Duration,
    },
}

/// Verdict of [`Guard::check_auth`], before verifying credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthGate {
    Allow,
    IpBanned {
        until: Duration,
    },
    /// This username is locked from this IP: answer 403 without verifying.
    UserLocked {
        until: Duration,
    },
}

/// Why an IP was banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    /// `failures` authentication failures within `window`.
    AuthFailures { failures: u32, window: Duration },
}

impl std::fmt::Display for BanReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BanReason::AuthFailures { failures, window } => write!(
                f,
                "{failures} authentication failures in {}s",
                window.as_secs()
            ),
        }
    }
}

/// Something worth a log line and a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardEvent {
    Banned {
        ip: IpAddr,
        until: Duration,
        reason: BanReason,
    },
    UserLocked {
        ip: IpAddr,
        realm: String,
        /// The claimed username, truncated to 64 characters for logging.
        username: String,
        until: Duration,
    },
    UsernameTargeted {
        realm: String,
        username: String,
        failures: u32,
    },
}

/// Table sizes, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardStats {
    pub rate_buckets: usize,
    pub ip_failure_logs: usize,
    pub pairs: usize,
    pub users: usize,
    pub bans: usize,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// An entry that can say when it is useless and how precious it is.
trait Aging {
    /// Nothing would change if this entry were dropped at `now`.
    fn idle(&self, now: u64, cfg: &GuardConfig) -> bool;
    /// Lower ranks are evicted first when the table is full of live entries.
    fn rank(&self) -> u64;
}

#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, V>,
    cap: usize,
}

impl<K: Hash + Eq + Copy, V: Aging> Bounded<K, V> {
    fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            cap: cap.max(1),
        }
    }

    fn get_or_insert(
        &mut self,
        key: K,
        now: u64,
        cfg: &GuardConfig,
        make: impl FnOnce() -> V,
    ) -> &mut V {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.make_room(now, cfg);
        }
        self.map.entry(key).or_insert_with(make)
    }

    fn make_room(&mut self, now: u64, cfg: &GuardConfig) {
        self.map.retain(|_, v| !v.idle(now, cfg));
        let target = self.cap - self.cap.div_ceil(8);
        if self.map.len() <= target {
            return;
        }
        let excess = self.map.len() - target;
        let mut ranks: Vec<u64> = self.map.values().map(Aging::rank).collect();
        let (_, &mut cutoff, _) = ranks.select_nth_unstable(excess - 1);
        let mut to_drop = excess;
        self.map.retain(|_, v| {
            if to_drop > 0 && v.rank() <= cutoff {
                to_drop -= 1;
                false
            } else {
                true
            }
        });
    }

    fn sweep(&mut self, now: u64, cfg: &GuardConfig) {
        self.map.retain(|_, v| !v.idle(now, cfg));
    }
}

#[derive(Debug)]
struct Bucket {
    milli_tokens: u64,
    at: u64,
}

impl Bucket {
    fn refill(&mut self, now: u64, cfg: &GuardConfig) {
        let cap = u64::from(cfg.burst) * 1000;
        let add = now
            .saturating_sub(self.at)
            .saturating_mul(u64::from(cfg.rate_per_sec));
        self.milli_tokens = self.milli_tokens.saturating_add(add).min(cap);
        self.at = self.at.max(now);
    }
}

impl Aging for Bucket {
    fn idle(&self, now: u64, cfg: &GuardConfig) -> bool {
        let cap = u64::from(cfg.burst) * 1000;
        let add = now
            .saturating_sub(self.at)
            .saturating_mul(u64::from(cfg.rate_per_sec));
        self.milli_tokens.saturating_add(add) >= cap
    }
    fn rank(&self) -> u64 {
        self.at
    }
}

/// The times of the most recent failures, newest at the back.
#[derive(Debug, Default)]
struct FailLog {
    times: VecDeque<u64>,
}

impl FailLog {
    /// Records a failure at `now` and returns how many fall within `window`.
    fn push(&mut self, now: u64, window: u64, keep: usize) -> u32 {
        while self
            .times
            .front()
            .is_some_and(|&t| t.saturating_add(window) <= now)
        {
            self.times.pop_front();
        }
        if self.times.len() >= keep.max(1) {
            self.times.pop_front();
        }
        self.times.push_back(now);
        u32::try_from(self.times.len()).unwrap_or(u32::MAX)
    }

    fn last(&self) -> u64 {
        self.times.back().copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct IpFail {
    log: FailLog,
    last_success: Option<u64>,
}

impl IpFail {
    fn trusted(&self, now: u64, cfg: &GuardConfig) -> bool {
        self.last_success
            .is_some_and(|t| t.saturating_add(ms(cfg.trust_ttl)) > now)
    }
}

impl Aging for IpFail {
    fn idle(&self, now: u64, cfg: &GuardConfig) -> bool {
        self.log.last().saturating_add(ms(cfg.ip_window)) <= now && !self.trusted(now, cfg)
    }
    fn rank(&self) -> u64 {
        self.log.last().max(self.last_success.unwrap_or(0))
    }
}

#[derive(Debug, Default)]
struct Pair {
    log: FailLog,
    locked_until: Option<u64>,
}

impl Aging for Pair {
    fn idle(&self, now: u64, cfg: &GuardConfig) -> bool {
        self.locked_until.is_none_or(|u| u <= now)
            && self.log.last().saturating_add(ms(cfg.user_window)) <= now
    }
    fn rank(&self) -> u64 {
        // Locked pairs are kept over merely counting ones.
        self.locked_until.unwrap_or(self.log.last())
    }
}

#[derive(Debug)]
struct UserWindow {
    start: u64,
    count: u32,
    alerted: bool,
}

impl Aging for UserWindow {
    fn idle(&self, now: u64, cfg: &GuardConfig) -> bool {
        self.start.saturating_add(ms(cfg.user_window)) <= now
    }
    fn rank(&self) -> u64 {
        self.start
    }
}

#[derive(Debug)]
struct Ban {
    until: u64,
}

impl Aging for Ban {
    fn idle(&self, now: u64, _: &GuardConfig) -> bool {
        self.until <= now
    }
    fn rank(&self) -> u64 {
        self.until
    }
}

/// Rate limits, failure accounting and bans for one SIP edge.
#[derive(Debug)]
pub struct Guard {
    cfg: GuardConfig,
    hasher: RandomState,
    buckets: Bounded<IpAddr, Bucket>,
    ip_fail: Bounded<IpAddr, IpFail>,
    pairs: Bounded<(IpAddr, u64), Pair>,
    users: Bounded<u64, UserWindow>,
    bans: Bounded<IpAddr, Ban>,
    /// The trunks' sources (exempt like `cfg.exempt`).
    trunks: Vec<IpNet>,
}

fn log_name(s: &str) -> String {
    s.chars().take(64).collect()
}

impl Guard {
    pub fn new(cfg: GuardConfig) -> Self {
        Guard {
            hasher: RandomState::new(),
            buckets: Bounded::new(cfg.max_ips),
            ip_fail: Bounded::new(cfg.max_ips),
            pairs: Bounded::new(cfg.max_pairs),
            users: Bounded::new(cfg.max_users),
            bans: Bounded::new(cfg.max_bans),
            trunks: Vec::new(),
            cfg,
        }
    }

    pub fn config(&self) -> &GuardConfig {
        &self.cfg
    }

    fn user_key(&self, realm: &str, username: &str) -> u64 {
        self.hasher.hash_one((realm, username))
    }

    /// Whether `ip` is never banned nor rate limited: in the operator's
    /// exempt blocks or a trunk's source.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.cfg.exempt.iter().any(|n| n.contains(ip)) || self.trunks.iter().any(|n| n.contains(ip))
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.is_exempt(ip)
    }

    /// Replaces the trunk sources (exact addresses and `inbound_source`
    /// blocks of the directory's enabled trunks). A ban already held by one
    /// of them is lifted.
    pub fn set_trunk_sources(&mut self, sources: Vec<IpNet>) {
        self.trunks = sources;
        let trunks = &self.trunks;
        self.bans
            .map
            .retain(|ip, _| !trunks.iter().any(|n| n.contains(*ip)));
        self.ip_fail
            .map
            .retain(|ip, _| !trunks.iter().any(|n| n.contains(*ip)));
    }

    /// A request carried a nonce that is not ours for its source (garbage,
    /// forged, or issued to another address). It cannot be pinned on the
    /// source (over UDP the source may be forged), so it never counts toward
    /// a ban; it costs `bad_nonce_cost` rate tokens instead, so a flood of
    /// them is throttled like any flood.
    pub fn record_bad_nonce(&mut self, ip: IpAddr, now: Duration) {
        if self.exempt(ip) {
            return;
        }
        let key = source_group(ip);
        let now = ms(now);
        let full = u64::from(self.cfg.burst) * 1000;
        let cfg = &self.cfg;
        let b = self.buckets.get_or_insert(key, now, cfg, || Bucket {
            milli_tokens: full,
            at: now,
        });
        b.refill(now, cfg);
        let cost = u64::from(cfg.bad_nonce_cost).saturating_mul(1000);
        b.milli_tokens = b.milli_tokens.saturating_sub(cost);
    }

    /// The end of `ip`'s ban, if banned at `now`.
    pub fn banned_until(&self, ip: IpAddr, now: Duration) -> Option<Duration> {
        let now = ms(now);
        self.bans
            .map
            .get(&source_group(ip))
            .filter(|b| b.until > now)
            .map(|b| Duration::from_millis(b.until))
    }

    /// Lifts a ban (admin action). Returns whether there was one.
    pub fn unban(&mut self, ip: IpAddr) -> bool {
        let ip = source_group(ip);
        self.ip_fail.map.remove(&ip);
        self.bans.map.remove(&ip).is_some()
    }

    /// Call for every inbound request, before parsing more than needed:
    /// refuses banned sources and applies the per-IP token bucket.
    pub fn check_request(&mut self, ip: IpAddr, now: Duration) -> Admission {
        if self.exempt(ip) {
            return Admission::Allow;
        }
        if let Some(until) = self.banned_until(ip, now) {
            return Admission::Banned { until };
        }
        let ip = source_group(ip);
        let now = ms(now);
        let full = u64::from(self.cfg.burst) * 1000;
        let cfg = &self.cfg;
        let b = self.buckets.get_or_insert(ip, now, cfg, || Bucket {
            milli_tokens: full,
            at: now,
        });
        b.refill(now, cfg);
        if b.milli_tokens >= 1000 {
            b.milli_tokens -= 1000;
            Admission::Allow
        } else {
            Admission::RateLimited
        }
    }

    /// Call before verifying credentials for `username` in `realm`.
    pub fn check_auth(&self, ip: IpAddr, username: &str, realm: &str, now: Duration) -> AuthGate {
        if !self.exempt(ip) {
            if let Some(until) = self.banned_until(ip, now) {
                return AuthGate::IpBanned { until };
            }
        }
        let key = (source_group(ip), self.user_key(realm, username));
        let now_ms = ms(now);
        match self.pairs.map.get(&key).and_then(|p| p.locked_until) {
            Some(u) if u > now_ms => AuthGate::UserLocked {
                until: Duration::from_millis(u),
            },
            _ => AuthGate::Allow,
        }
    }

    /// Reports a failed authentication (wrong response or unknown username)
    /// and returns what it triggered. Failures on a pair that is already
    /// locked, or from a banned IP, are ignored.
    pub fn record_failure(
        &mut self,
        ip: IpAddr,
        username: &str,
        realm: &str,
        now_d: Duration,
    ) -> Vec<GuardEvent> {
        let mut events = Vec::new();
        if self.check_auth(ip, username, realm, now_d) != AuthGate::Allow {
            return events;
        }
        let exempt = self.exempt(ip);
        let ip = source_group(ip);
        let now = ms(now_d);
        let cfg = &self.cfg;
        let ukey = self.hasher.hash_one((realm, username));

        // 1. username-from-IP
        let pair = self
            .pairs
            .get_or_insert((ip, ukey), now, cfg, Pair::default);
        let n = pair
            .log
            .push(now, ms(cfg.user_window), cfg.user_failures as usize);
        if n >= cfg.user_failures {
            let until = now.saturating_add(ms(cfg.user_lock));
            pair.locked_until = Some(until);
            pair.log.times.clear();
            events.push(GuardEvent::UserLocked {
                ip,
                realm: log_name(realm),
                username: log_name(username),
                until: Duration::from_millis(until),
            });
        }

        // 2. username across IPs (alert only)
        let u = self.users.get_or_insert(ukey, now, cfg, || UserWindow {
            start: now,
            count: 0,
            alerted: false,
        });
        if u.start.saturating_add(ms(cfg.user_window)) <= now {
            *u = UserWindow {
                start: now,
                count: 0,
                alerted: false,
            };
        }
        u.count = u.count.saturating_add(1);
        if u.count >= cfg.target_alert_failures && !u.alerted {
            u.alerted = true;
            events.push(GuardEvent::UsernameTargeted {
                realm: log_name(realm),
                username: log_name(username),
                failures: u.count,
            });
        }

        // 3. IP
        if exempt {
            return events;
        }
        let cfg = &self.cfg;
        let factor = cfg.trusted_ip_factor.max(1);
        let keep = cfg.ip_failures.saturating_mul(factor) as usize;
        let f = self.ip_fail.get_or_insert(ip, now, cfg, IpFail::default);
        let n = f.log.push(now, ms(cfg.ip_window), keep);
        let threshold = if f.trusted(now, cfg) {
            cfg.ip_failures.saturating_mul(factor)
        } else {
            cfg.ip_failures
        };
        if n >= threshold {
            f.log.times.clear();
            let until = now.saturating_add(ms(cfg.ip_ban));
            let window = cfg.ip_window;
            let b = self.bans.get_or_insert(ip, now, cfg, || Ban { until });
            b.until = b.until.max(until);
            events.push(GuardEvent::Banned {
                ip,
                until: Duration::from_millis(until),
                reason: BanReason::AuthFailures {
                    failures: n,
                    window,
                },
            });
        }
        events
    }

    /// Reports a successful authentication: clears that username-from-IP's
    /// failures and marks the IP trusted for `trust_ttl`.
    pub fn record_success(&mut self, ip: IpAddr, username: &str, realm: &str, now: Duration) {
        let ip = source_group(ip);
        let now = ms(now);
        let key = (ip, self.user_key(realm, username));
        self.pairs.map.remove(&key);
        let cfg = &self.cfg;
        let f = self.ip_fail.get_or_insert(ip, now, cfg, IpFail::default);
        f.last_success = Some(now);
    }

    /// Drops every idle entry (expired bans and locks, full buckets, old
    /// counters). Call every few seconds; tables also clean themselves when
    /// full.
    pub fn sweep(&mut self, now: Duration) {
        let now = ms(now);
        let cfg = &self.cfg;
        self.buckets.sweep(now, cfg);
        self.ip_fail.sweep(now, cfg);
        self.pairs.sweep(now, cfg);
        self.users.sweep(now, cfg);
        self.bans.sweep(now, cfg);
    }

    pub fn stats(&self) -> GuardStats {
        GuardStats {
            rate_buckets: self.buckets.map.len(),
            ip_failure_logs: self.ip_fail.map.len(),
            pairs: self.pairs.map.len(),
            users: self.users.map.len(),
            bans: self.bans.map.len(),
        }
    }
}

#[cfg(test)]
mod tests;
