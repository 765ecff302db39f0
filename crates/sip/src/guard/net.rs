//! Address blocks and the grouping of sources (IPv6 by /64).

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// An address block: `net/prefix`, e.g. `192.0.2.0/24` or `2001:db8::/48`.
/// A bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    net: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `None` when `prefix` is longer than the address (32 or 128 bits).
    pub fn new(net: IpAddr, prefix: u8) -> Option<IpNet> {
        let net = plain(net);
        let max = if net.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { net, prefix })
    }

    /// The block of exactly one address.
    pub fn host(ip: IpAddr) -> IpNet {
        let ip = plain(ip);
        IpNet {
            net: ip,
            prefix: if ip.is_ipv4() { 32 } else { 128 },
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.net
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` (IPv4-mapped IPv6 read as IPv4) is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (plain(ip), self.net) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(a) & mask == u32::from(n) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(a) & mask == u128::from(n) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || {
            format!(
                "`{s}` is not an address block; expected e.g. 192.0.2.0/24, 2001:db8::/48 or 203.0.113.7"
            )
        };
        match s.split_once('/') {
            Some((ip, len)) => {
                let ip: IpAddr = ip.trim().parse().map_err(|_| bad())?;
                let len: u8 = len.trim().parse().map_err(|_| bad())?;
                IpNet::new(ip, len).ok_or_else(bad)
            }
            None => s.parse::<IpAddr>().map(IpNet::host).map_err(|_| bad()),
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as IPv4; others unchanged.
pub(super) fn plain(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key a source is counted under: IPv4 as is, IPv6 by its /64.
pub fn source_group(ip: IpAddr) -> IpAddr {
    match plain(ip) {
        IpAddr::V6(v6) => {
            let masked = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(masked))
        }
        v4 => v4,
    }
}
