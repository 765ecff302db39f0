//! Recognising a trunk's inbound calls: by source address (the trunk's
//! `inbound_source` block, or its own host and port), or by digest (the
//! carrier answers Switchboard's 407 with the trunk's username and
//! password), never both: a trunk set to digest is not trusted by address.

use std::net::{IpAddr, SocketAddr};

use sip::transaction::{Target, Transport};
use store::{Directory, Secret, StoreError, TrunkId};

/// Where a trunk's INVITEs come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TrunkSource {
    pub trunk: TrunkId,
    pub net: IpAddr,
    pub prefix: u8,
    /// Without `inbound_source`, the trunk's own address: exact port too.
    pub port: Option<u16>,
}

impl TrunkSource {
    pub(crate) fn matches(&self, addr: SocketAddr) -> bool {
        if self.port.is_some_and(|p| p != addr.port()) {
            return false;
        }
        in_net(addr.ip(), self.net, self.prefix)
    }
}

/// A trunk whose inbound calls authenticate with digest.
#[derive(Clone, Debug)]
pub(crate) struct DigestTrunk {
    pub trunk: TrunkId,
    pub username: String,
    pub password: Secret,
}

/// The enabled trunks as inbound matching needs them.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrunkTable {
    pub sources: Vec<TrunkSource>,
    pub digest: Vec<DigestTrunk>,
    /// Each enabled trunk's calls per second.
    pub rates: Vec<(TrunkId, u32)>,
    /// Where each enabled trunk is reached (its host resolved), for the
    /// keepalive and registration.
    pub targets: Vec<TrunkTarget>,
}

/// An enabled trunk's signalling address.
#[derive(Clone, Debug)]
pub(crate) struct TrunkTarget {
    pub trunk: TrunkId,
    /// The host as configured (for Request-URIs).
    pub host: String,
    pub port: u16,
    pub dest: Target,
    /// Registration to the provider, when the trunk asks for it.
    pub register: Option<RegisterSettings>,
}

/// What registering a trunk to its provider needs.
#[derive(Clone, Debug)]
pub(crate) struct RegisterSettings {
    pub username: String,
    pub password: Secret,
    /// The registrar's host (the trunk's when not set) and port.
    pub registrar_host: String,
    pub dest: Target,
    pub expires: u32,
    pub from_domain: Option<String>,
}

impl TrunkTable {
    /// The trunk recognised by `addr` (digest trunks never are).
    pub(crate) fn by_source(&self, addr: SocketAddr) -> Option<TrunkId> {
        self.sources
            .iter()
            .find(|t| t.matches(addr))
            .map(|t| t.trunk)
    }

    /// The digest trunk whose username is `username`.
    pub(crate) fn by_username(&self, username: &str) -> Option<&DigestTrunk> {
        self.digest.iter().find(|t| t.username == username)
    }

    /// Every address block a trunk's signalling may come from: its inbound
    /// sources and its resolved host (a digest trunk has no sources, and a
    /// trunk with an `inbound_source` block may still send from its host).
    /// The call engine accepts a trunk leg's in-dialog requests from these.
    pub(crate) fn networks(&self) -> impl Iterator<Item = (TrunkId, IpAddr, u8)> + '_ {
        let sources = self.sources.iter().map(|t| (t.trunk, t.net, t.prefix));
        let targets = self.targets.iter().map(|t| {
            let ip = t.dest.addr.ip();
            (t.trunk, ip, if ip.is_ipv4() { 32 } else { 128 })
        });
        sources.chain(targets)
    }
}

pub(crate) fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = u32::from(prefix.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = u32::from(prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Parses a trunk's `inbound_source`: an address or a CIDR block.
pub(crate) fn parse_source(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    match s.split_once('/') {
        Some((ip, len)) => {
            let ip: IpAddr = ip.trim().parse().ok()?;
            let len: u8 = len.trim().parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            (len <= max).then_some((ip, len))
        }
        None => {
            let ip: IpAddr = s.parse().ok()?;
            Some((ip, if ip.is_ipv4() { 32 } else { 128 }))
        }
    }
}

/// The first address `host:port` resolves to (an IP literal as is).
async fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port)).await.ok()?.next()
}

/// `host` or `host:port` (IPv6 in brackets), with `default` as the port.
fn split_host_port(s: &str, default: u16) -> (String, u16) {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once(']') {
            let port = p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .unwrap_or(default);
            return (h.to_owned(), port);
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_owned(), p.parse().unwrap_or(default)),
        _ => (s.to_owned(), default),
    }
}

/// Reads the enabled trunks: their inbound sources, digest credentials and
/// call rates. A source wider than /24 (/48) that was not forced (a row
/// written before the check existed) is skipped with a warning.
pub(crate) async fn load(dir: &dyn Directory) -> Result<TrunkTable, StoreError> {
    let mut out = TrunkTable::default();
    for t in dir.list_trunks().await? {
        let s = &t.settings;
        if !s.enabled {
            continue;
        }
        out.rates.push((t.id, s.calls_per_second));
        let transport = match s.transport {
            store::Transport::Tcp => Transport::Tcp,
            store::Transport::Tls => Transport::Tls,
            _ => Transport::Udp,
        };
        if let Some(addr) = resolve(&s.host, s.port).await {
            let register = match (&s.username, &s.password) {
                (Some(username), Some(password)) if s.register => {
                    let (rhost, rport) = match s.registrar.as_deref() {
                        Some(r) => split_host_port(r, s.port),
                        None => (s.host.clone(), s.port),
                    };
                    resolve(&rhost, rport).await.map(|raddr| RegisterSettings {
                        username: username.clone(),
                        password: password.clone(),
                        registrar_host: rhost,
                        dest: Target::new(transport, raddr),
                        expires: s.register_expires,
                        from_domain: s.from_domain.clone(),
                    })
                }
                _ => None,
            };
            out.targets.push(TrunkTarget {
                trunk: t.id,
                host: s.host.clone(),
                port: s.port,
                dest: Target::new(transport, addr),
                register,
            });
        }
        if s.inbound_auth {
            if let (Some(username), Some(password)) = (&s.username, &s.password) {
                out.digest.push(DigestTrunk {
                    trunk: t.id,
                    username: username.clone(),
                    password: password.clone(),
                });
            }
            continue;
        }
        match s.inbound_source.as_deref().and_then(parse_source) {
            Some((net, prefix)) => {
                let min = if net.is_ipv4() {
                    store::TrunkSettings::MIN_V4_PREFIX
                } else {
                    store::TrunkSettings::MIN_V6_PREFIX
                };
                if prefix < min && !s.force_wide_source {
                    tracing::warn!(trunk = %s.name, source = %net, prefix,
                        "trunk inbound source wider than /{min} and not forced: ignored");
                    continue;
                }
                out.sources.push(TrunkSource {
                    trunk: t.id,
                    net,
                    prefix,
                    port: None,
                });
            }
            None => {
                // Resolved here so a name in `host` works; a failure skips
                // the trunk until the next refresh.
                if let Ok(addrs) = tokio::net::lookup_host((s.host.as_str(), s.port)).await {
                    for a in addrs {
                        out.sources.push(TrunkSource {
                            trunk: t.id,
                            net: a.ip(),
                            prefix: if a.is_ipv4() { 32 } else { 128 },
                            port: Some(a.port()),
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_match() {
        assert_eq!(
            parse_source("192.0.2.0/24"),
            Some(("192.0.2.0".parse().unwrap(), 24))
        );
        assert_eq!(
            parse_source(" 2001:db8::1 "),
            Some(("2001:db8::1".parse().unwrap(), 128))
        );
        assert_eq!(parse_source("192.0.2.0/33"), None);
        assert_eq!(parse_source("carrier.example"), None);
        let block = TrunkSource {
            trunk: TrunkId::new(),
            net: "192.0.2.0".parse().unwrap(),
            prefix: 24,
            port: None,
        };
        assert!(block.matches("192.0.2.77:5060".parse().unwrap()));
        assert!(block.matches("[::ffff:192.0.2.9]:5060".parse().unwrap()));
        assert!(!block.matches("192.0.3.1:5060".parse().unwrap()));
        let exact = TrunkSource {
            trunk: TrunkId::new(),
            net: "127.0.0.1".parse().unwrap(),
            prefix: 32,
            port: Some(5080),
        };
        assert!(exact.matches("127.0.0.1:5080".parse().unwrap()));
        assert!(!exact.matches("127.0.0.1:5081".parse().unwrap()));
        let table = TrunkTable {
            sources: vec![block.clone(), exact.clone()],
            digest: vec![DigestTrunk {
                trunk: TrunkId::new(),
                username: "carrier".into(),
                password: Secret::new("pw"),
            }],
            rates: Vec::new(),
            targets: Vec::new(),
        };
        assert_eq!(
            table.by_source("127.0.0.1:5080".parse().unwrap()),
            Some(exact.trunk)
        );
        assert_eq!(table.by_source("198.51.100.1:5060".parse().unwrap()), None);
        assert!(table.by_username("carrier").is_some());
        assert!(table.by_username("Carrier").is_none());
        assert_eq!(
            table.networks().collect::<Vec<_>>(),
            vec![(block.trunk, block.net, 24), (exact.trunk, exact.net, 32)]
        );
        let digest = table.digest[0].trunk;
        let with_hosts = TrunkTable {
            targets: vec![
                TrunkTarget {
                    trunk: digest,
                    host: "carrier.example".into(),
                    port: 5060,
                    dest: Target::new(Transport::Udp, "203.0.113.5:5060".parse().unwrap()),
                    register: None,
                },
                TrunkTarget {
                    trunk: block.trunk,
                    host: "2001:db8::7".into(),
                    port: 5061,
                    dest: Target::new(Transport::Tls, "[2001:db8::7]:5061".parse().unwrap()),
                    register: None,
                },
            ],
            ..table
        };
        assert_eq!(
            with_hosts.networks().collect::<Vec<_>>(),
            vec![
                (block.trunk, block.net, 24),
                (exact.trunk, exact.net, 32),
                (digest, "203.0.113.5".parse().unwrap(), 32),
                (block.trunk, "2001:db8::7".parse().unwrap(), 128),
            ]
        );
        assert_eq!(
            split_host_port("reg.example:5080", 5060),
            ("reg.example".into(), 5080)
        );
        assert_eq!(
            split_host_port("reg.example", 5061),
            ("reg.example".into(), 5061)
        );
        assert_eq!(
            split_host_port("[2001:db8::1]:5070", 5060),
            ("2001:db8::1".into(), 5070)
        );
        assert_eq!(
            split_host_port("2001:db8::1", 5060),
            ("2001:db8::1".into(), 5060)
        );
    }
}
