//! Login rate limits, kept in memory, per (client address, account) and per client address: a
//! fixed window counts failed attempts, and a key that reaches its limit is refused until the
//! window ends.
//!
//! - Keyed by the pair, not by the account alone, so failures from one address never lock the
//!   account out for everyone else (an attacker cannot lock an admin out from elsewhere).
//! - The per-address count spans accounts, so one address cannot spray many accounts.
//! - IPv6 clients are grouped by their /64 (one subscriber usually holds a whole /64).
//! - An attempt is reserved with [`LoginThrottle::begin`] *before* the password is checked:
//!   checking and counting are one step under the lock, so parallel requests cannot all pass
//!   the check while the first ones are still hashing. The reservation counts as a failure
//!   unless [`Attempt::succeeded`] is called.
//!
//! The client address is the socket peer, or what a trusted proxy says (see
//! [`crate::WebConfig::trusted_proxies`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Failed attempts allowed per (address, account) within [`WINDOW`].
pub const ACCOUNT_LIMIT: u32 = 5;
/// Failed attempts allowed per client address within [`WINDOW`], across accounts.
pub const ADDRESS_LIMIT: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries kept before old ones are swept, so a flood of addresses cannot grow memory forever.
const SWEEP_AT: usize = 10_000;

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    since: Instant,
}

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

/// The address as counted: IPv6 by its /64, anything unparsable as itself.
fn address_key(address: &str) -> String {
    match address.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
        Ok(ip) => ip.to_string(),
        Err(_) => address.to_owned(),
    }
}

fn keys(address: &str, account: &str) -> [(String, u32); 2] {
    let addr = address_key(address);
    let account = account.trim().to_lowercase();
    [
        (format!("pair:{addr} {account}"), ACCOUNT_LIMIT),
        (format!("addr:{addr}"), ADDRESS_LIMIT),
    ]
}

/// One reserved sign-in attempt; it counts as a failure unless [`Attempt::succeeded`] is called.
#[must_use = "an attempt counts as failed unless `succeeded` is called"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: [(String, u32); 2],
}

impl Attempt<'_> {
    /// The password was right: the (address, account) count is cleared and this attempt is
    /// taken off the address's count.
    pub fn succeeded(self) {
        let mut map = self.throttle.lock();
        let [(pair, _), (addr, _)] = &self.keys;
        map.remove(pair);
        if let Some(e) = map.get_mut(addr) {
            e.failures = e.failures.saturating_sub(1);
        }
    }
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves an attempt for `account` from `address`, or `Err(wait)` (how long until it may
    /// try again) if the pair or the address has used up its attempts. Checking and counting
    /// happen under one lock.
    pub fn begin(&self, address: &str, account: &str) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        let keys = keys(address, account);
        let mut map = self.lock();
        if map.len() >= SWEEP_AT {
            map.retain(|_, e| now.saturating_duration_since(e.since) < WINDOW);
        }
        let mut wait = Duration::ZERO;
        for (key, limit) in &keys {
            if let Some(e) = map.get(key) {
                let age = now.saturating_duration_since(e.since);
                if age < WINDOW && e.failures >= *limit {
                    wait = wait.max(WINDOW - age);
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (key, _) in &keys {
            let e = map.entry(key.clone()).or_insert(Entry {
                failures: 0,
                since: now,
            });
            if now.saturating_duration_since(e.since) >= WINDOW {
                *e = Entry {
                    failures: 0,
                    since: now,
                };
            }
            e.failures += 1;
        }
        drop(map);
        Ok(Attempt {
            throttle: self,
            keys,
        })
    }
}

/// "Try again in 3 minutes."
pub fn wait_message(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Too many failed sign-in attempts. Try again in {minutes} {unit}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(t: &LoginThrottle, address: &str, account: &str) {
        drop(t.begin(address, account).expect("allowed"));
    }

    #[tokio::test(start_paused = true)]
    async fn pair_limit_then_window_expiry() {
        let t = LoginThrottle::default();
        for _ in 0..ACCOUNT_LIMIT {
            fail(&t, "192.0.2.1", "a@x.test");
        }
        let wait = t.begin("192.0.2.1", "A@x.test").err().expect("throttled");
        assert!(wait <= WINDOW);
        assert!(wait_message(wait).contains("15 minutes"));
        // Another account from the same address is still allowed.
        assert!(t.begin("192.0.2.1", "b@x.test").is_ok());
        tokio::time::advance(WINDOW).await;
        assert!(t.begin("192.0.2.1", "a@x.test").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_from_one_address_do_not_lock_the_account_elsewhere() {
        let t = LoginThrottle::default();
        for _ in 0..ACCOUNT_LIMIT {
            fail(&t, "192.0.2.1", "admin@x.test");
        }
        assert!(t.begin("192.0.2.1", "admin@x.test").is_err());
        t.begin("198.51.100.7", "admin@x.test")
            .expect("another address may still sign in")
            .succeeded();
    }

    #[tokio::test(start_paused = true)]
    async fn address_limit_spans_accounts() {
        let t = LoginThrottle::default();
        for i in 0..ADDRESS_LIMIT {
            fail(&t, "192.0.2.1", &format!("u{i}@x.test"));
        }
        assert!(t.begin("192.0.2.1", "fresh@x.test").is_err());
        assert!(t.begin("192.0.2.2", "fresh@x.test").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_is_counted_by_its_64() {
        let t = LoginThrottle::default();
        for i in 0..ADDRESS_LIMIT {
            fail(&t, &format!("2001:db8:1:2::{i:x}"), &format!("u{i}@x.test"));
        }
        assert!(t.begin("2001:db8:1:2:ffff::1", "fresh@x.test").is_err());
        assert!(t.begin("2001:db8:1:3::1", "fresh@x.test").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn success_clears_the_pair_and_refunds_the_address() {
        let t = LoginThrottle::default();
        for _ in 0..ACCOUNT_LIMIT - 1 {
            fail(&t, "192.0.2.1", "a@x.test");
        }
        t.begin("192.0.2.1", "a@x.test").unwrap().succeeded();
        for _ in 0..ACCOUNT_LIMIT {
            fail(&t, "192.0.2.1", "a@x.test");
        }
        assert!(t.begin("192.0.2.1", "a@x.test").is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_are_counted_before_the_outcome() {
        let t = LoginThrottle::default();
        // Attempts still being checked (e.g. hashing in parallel) hold their place.
        let held: Vec<_> = (0..ACCOUNT_LIMIT)
            .map(|_| t.begin("192.0.2.1", "a@x.test").unwrap())
            .collect();
        assert!(t.begin("192.0.2.1", "a@x.test").is_err());
        drop(held);
    }
}
