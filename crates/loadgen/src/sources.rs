//! Source addresses: the server rate-limits per source IP, so load is spread
//! over many loopback addresses. Linux routes all of 127.0.0.0/8 to `lo`, so
//! binding to 127.0.0.2, 127.0.0.3, ... needs no configuration.

use std::net::{IpAddr, Ipv4Addr};

/// Requests per second one source IP is allowed to carry by default (half
/// the server's default per-IP limit of 200/s).
pub const DEFAULT_REQS_PER_SOURCE: f64 = 100.0;

/// Parses `--sources`: `A-B` (inclusive IPv4 range), a comma-separated list
/// of addresses and ranges, or one address.
pub fn parse_sources(spec: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: Ipv4Addr = a
                .trim()
                .parse()
                .map_err(|_| format!("`{a}` in `{part}` is not an IPv4 address"))?;
            let b: Ipv4Addr = b
                .trim()
                .parse()
                .map_err(|_| format!("`{b}` in `{part}` is not an IPv4 address"))?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a {
                return Err(format!("range `{part}` ends before it starts"));
            }
            if b - a >= 65_536 {
                return Err(format!("range `{part}` has more than 65536 addresses"));
            }
            out.extend((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
        } else {
            let ip: IpAddr = part
                .parse()
                .map_err(|_| format!("`{part}` is not an IP address or A-B range"))?;
            out.push(ip);
        }
    }
    if out.is_empty() {
        return Err("--sources is empty".into());
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = out.iter().find(|ip| !seen.insert(**ip)) {
        return Err(format!("{dup} is listed twice in --sources"));
    }
    Ok(out)
}

/// How many source IPs a run at `rate` operations/s needs when each
/// operation sends `reqs_per_op` requests, at most `per_source` requests/s
/// per IP; never more than `users` (a user keeps its source).
pub fn sources_needed(rate: f64, reqs_per_op: u32, per_source: f64, users: usize) -> usize {
    let want = (rate * f64::from(reqs_per_op) / per_source).ceil();
    let want = if want.is_finite() && want >= 1.0 {
        want as usize
    } else {
        1
    };
    want.min(users.max(1))
}

/// `n` loopback addresses from 127.0.0.2 upwards, skipping `avoid` (the
/// server's own address) and addresses ending in .0 or .255.
pub fn default_loopback(n: usize, avoid: IpAddr) -> Vec<IpAddr> {
    let mut out = Vec::with_capacity(n);
    let mut next = u32::from(Ipv4Addr::new(127, 0, 0, 2));
    let last = u32::from(Ipv4Addr::new(127, 255, 255, 254));
    while out.len() < n && next <= last {
        let ip = IpAddr::V4(Ipv4Addr::from(next));
        let low = next & 0xff;
        if low != 0 && low != 255 && ip != avoid {
            out.push(ip);
        }
        next += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_ranges_lists_and_single_addresses() {
        let r = parse_sources("127.0.0.2-127.0.0.200").unwrap();
        assert_eq!(r.len(), 199);
        assert_eq!(r[0], v4("127.0.0.2"));
        assert_eq!(r[198], v4("127.0.0.200"));
        let r = parse_sources("127.0.0.9, 127.0.1.1-127.0.1.2").unwrap();
        assert_eq!(r, [v4("127.0.0.9"), v4("127.0.1.1"), v4("127.0.1.2")]);
        assert_eq!(parse_sources("::1").unwrap(), [v4("::1")]);
    }

    #[test]
    fn rejects_bad_specs_clearly() {
        assert!(
            parse_sources("127.0.0.9-127.0.0.2")
                .unwrap_err()
                .contains("ends before")
        );
        assert!(
            parse_sources("127.0.0.x")
                .unwrap_err()
                .contains("not an IP")
        );
        assert!(parse_sources("").unwrap_err().contains("empty"));
        assert!(
            parse_sources("127.0.0.2,127.0.0.2")
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            parse_sources("10.0.0.0-10.2.0.0")
                .unwrap_err()
                .contains("65536")
        );
    }

    #[test]
    fn default_count_keeps_each_source_under_its_share() {
        // 10k registrations/s, two requests each, 100 req/s per IP
        assert_eq!(sources_needed(10_000.0, 2, 100.0, 10_000), 200);
        assert_eq!(sources_needed(10.0, 2, 100.0, 10_000), 1);
        assert_eq!(sources_needed(10_000.0, 2, 100.0, 50), 50);
        assert_eq!(sources_needed(0.0, 2, 100.0, 5), 1);
    }

    #[test]
    fn default_loopback_skips_server_and_edges() {
        let ips = default_loopback(300, v4("127.0.0.5"));
        assert_eq!(ips.len(), 300);
        assert_eq!(ips[0], v4("127.0.0.2"));
        assert!(!ips.contains(&v4("127.0.0.5")));
        assert!(!ips.contains(&v4("127.0.0.255")));
        assert!(!ips.contains(&v4("127.0.1.0")));
        assert_eq!(ips[252], v4("127.0.1.1"));
    }
}
