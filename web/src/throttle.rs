//! Login rate limits per (client address, account) and per client address, counted in the
//! directory so every process on the same database shares them: a fixed window counts
//! attempts, and a key over its limit is refused until its window ends.
//!
//! - Keyed by the pair, not by the account alone, so failures from one address never lock the
//!   account out for everyone else (an attacker cannot lock an admin out from elsewhere).
//! - The per-address count spans accounts, so one address cannot spray many accounts.
//! - IPv6 clients are grouped by their /64 (one subscriber usually holds a whole /64).
//! - The account is keyed by a hash of what was typed (people type passwords into the e-mail
//!   box), and the key length is bounded.
//! - An attempt is counted with [`begin`] *before* the password is checked, in one atomic
//!   statement per key, so parallel requests cannot all pass the check while the first ones
//!   are still hashing. It stays counted unless [`Attempt::succeeded`] is called.
//!
//! The client address is the socket peer, or what a trusted proxy says (see
//! [`crate::WebConfig::trusted_proxies`]).

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use store::{Directory, StoreError};
use time::OffsetDateTime;

/// Attempts allowed per (address, account) within [`WINDOW`].
pub const ACCOUNT_LIMIT: u32 = 5;
/// Attempts allowed per client address within [`WINDOW`], across accounts.
pub const ADDRESS_LIMIT: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// The address as counted: IPv6 by its /64, anything unparsable as itself (at most 64
/// characters).
fn address_key(address: &str) -> String {
    match address.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let net = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(net))
        }
        Ok(ip) => ip.to_string(),
        Err(_) => address.chars().take(64).collect(),
    }
}

/// `(pair key, address key)`.
fn keys(address: &str, account: &str) -> (String, String) {
    let addr = address_key(address);
    let account = Sha256::digest(account.trim().to_lowercase().as_bytes());
    (
        format!("pair:{addr} {}", hex::encode(&account[..16])),
        format!("addr:{addr}"),
    )
}

/// One counted sign-in attempt; it stays a failure unless [`Attempt::succeeded`] is called.
#[must_use = "an attempt counts as failed unless `succeeded` is called"]
pub struct Attempt {
    pair: String,
    address: String,
}

impl Attempt {
    /// The password was right: the (address, account) count is cleared and this attempt is
    /// taken off the address's count.
    pub async fn succeeded(self, directory: &dyn Directory) -> Result<(), StoreError> {
        directory.login_succeeded(&self.pair, &self.address).await
    }
}

/// Counts an attempt for `account` from `address`: `Ok(Ok(attempt))` to go ahead, or
/// `Ok(Err(wait))` (how long until it may try again) if the pair or the address is over its
/// limit.
pub async fn begin(
    directory: &dyn Directory,
    address: &str,
    account: &str,
) -> Result<Result<Attempt, Duration>, StoreError> {
    let (pair, addr) = keys(address, account);
    let now = OffsetDateTime::now_utc();
    let window = time::Duration::try_from(WINDOW).unwrap_or(time::Duration::minutes(15));
    let limits = [
        (pair.as_str(), ACCOUNT_LIMIT),
        (addr.as_str(), ADDRESS_LIMIT),
    ];
    match directory.count_login_attempt(&limits, window, now).await? {
        Some(retry_at) => {
            let wait = (retry_at - now).max(time::Duration::ZERO);
            Ok(Err(Duration::try_from(wait).unwrap_or(WINDOW)))
        }
        None => Ok(Ok(Attempt {
            pair,
            address: addr,
        })),
    }
}

/// Deletes counts whose window has ended (housekeeping).
pub async fn sweep(directory: &dyn Directory) -> Result<u64, StoreError> {
    let window = time::Duration::try_from(WINDOW).unwrap_or(time::Duration::minutes(15));
    directory
        .delete_stale_login_attempts(OffsetDateTime::now_utc() - window)
        .await
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

    #[test]
    fn keys_group_ipv6_by_64_and_hash_the_account() {
        let (pair, addr) = keys("2001:db8:1:2:aaaa::1", " Ann@Acme.test ");
        assert_eq!(addr, "addr:2001:db8:1:2::/64");
        assert_eq!(keys("2001:db8:1:2:ffff::9", "ann@acme.test").0, pair);
        assert_ne!(keys("2001:db8:1:3::1", "ann@acme.test").0, pair);
        assert!(
            !pair.contains("ann"),
            "the typed account is not stored: {pair}"
        );
        assert_eq!(keys("::ffff:192.0.2.1", "a").1, "addr:192.0.2.1");
        let long = "x".repeat(10_000);
        let (pair, addr) = keys(&long, &long);
        assert!(pair.len() <= 200 && addr.len() <= 200);
    }

    #[test]
    fn wait_messages() {
        assert!(wait_message(WINDOW).contains("15 minutes"));
        assert!(wait_message(Duration::from_secs(5)).contains("1 minute."));
    }
}
