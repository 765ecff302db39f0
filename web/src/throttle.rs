//! Login rate limits, per client address and per account, kept in memory: a fixed window counts
//! failed attempts, and a key that reaches its limit is refused until the window ends. A
//! successful login clears the account's count (not the address's).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Failed attempts allowed per account within [`WINDOW`].
pub const ACCOUNT_LIMIT: u32 = 5;
/// Failed attempts allowed per client address within [`WINDOW`].
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

impl LoginThrottle {
    fn keys(address: &str, account: &str) -> [(String, u32); 2] {
        [
            (format!("addr:{address}"), ADDRESS_LIMIT),
            (
                format!("acct:{}", account.trim().to_lowercase()),
                ACCOUNT_LIMIT,
            ),
        ]
    }

    /// `Err(wait)` if either key is over its limit: how long until it may try again.
    pub fn check(&self, address: &str, account: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = Duration::ZERO;
        for (key, limit) in Self::keys(address, account) {
            if let Some(e) = map.get(&key) {
                let age = now.saturating_duration_since(e.since);
                if age < WINDOW && e.failures >= limit {
                    wait = wait.max(WINDOW - age);
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    pub fn record_failure(&self, address: &str, account: &str) {
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, e| now.saturating_duration_since(e.since) < WINDOW);
        }
        for (key, _) in Self::keys(address, account) {
            let e = map.entry(key).or_insert(Entry {
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
    }

    pub fn record_success(&self, account: &str) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("acct:{}", account.trim().to_lowercase()));
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

    #[tokio::test(start_paused = true)]
    async fn account_limit_then_window_expiry() {
        let t = LoginThrottle::default();
        for _ in 0..ACCOUNT_LIMIT {
            assert!(t.check("192.0.2.1", "a@x.test").is_ok());
            t.record_failure("192.0.2.1", "a@x.test");
        }
        let wait = t.check("192.0.2.9", "A@x.test").unwrap_err();
        assert!(wait <= WINDOW);
        assert!(wait_message(wait).contains("15 minutes"));
        // Another account from the same address is still allowed.
        assert!(t.check("192.0.2.1", "b@x.test").is_ok());
        tokio::time::advance(WINDOW).await;
        assert!(t.check("192.0.2.1", "a@x.test").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn address_limit_spans_accounts() {
        let t = LoginThrottle::default();
        for i in 0..ADDRESS_LIMIT {
            t.record_failure("192.0.2.1", &format!("u{i}@x.test"));
        }
        assert!(t.check("192.0.2.1", "fresh@x.test").is_err());
        assert!(t.check("192.0.2.2", "fresh@x.test").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn success_clears_the_account() {
        let t = LoginThrottle::default();
        for _ in 0..ACCOUNT_LIMIT {
            t.record_failure("192.0.2.1", "a@x.test");
        }
        t.record_success("a@x.test");
        assert!(t.check("192.0.2.3", "a@x.test").is_ok());
    }
}
