//! Settings of the SIP service.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sip::Limits;
use sip::auth::VerifierConfig;
use sip::guard::GuardConfig;

use crate::cdr::CdrWriterConfig;
use crate::media_driver::MediaDriverConfig;
use crate::registrar::RegistrarConfig;
use crate::registrar::persist::PersistConfig;
use crate::transport::tcp::TcpConfig;

/// Everything [`super::SipService::start`] needs. [`SipConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct SipConfig {
    /// UDP and TCP listen on this address (same port). Port 0 picks a free port; read it back
    /// with [`super::SipServiceHandle::local_addrs`]. (`SWITCHBOARD_SIP_ADDR`)
    pub listen: SocketAddr,
    /// The host (IP or name, optionally `:port`) phones reach us at, when it differs from
    /// `listen` (NAT, 0.0.0.0). Kept for the Via/Contact/Record-Route of requests the calls
    /// engine will send; the registrar does not need it. (`SWITCHBOARD_PUBLIC_ADDR`)
    pub public_addr: Option<String>,
    pub registrar: RegistrarConfig,
    pub guard: GuardConfig,
    pub verifier: VerifierConfig,
    pub limits: Limits,
    /// Keys the nonce MAC. `None`: 32 random bytes per start (nonces issued before a restart
    /// are then re-challenged, which phones handle). Give a stable secret to share nonces
    /// across restarts or processes.
    pub nonce_secret: Option<Vec<u8>>,
    /// UDP sockets bound with SO_REUSEPORT, each drained by its own task. Default 2.
    pub udp_sockets: usize,
    /// Run the UDP receive loops and the group-commit task on a dedicated OS thread with a
    /// current-thread runtime, instead of on the caller's runtime: a datagram, its answer and
    /// its commit then never cross worker threads. Directory lookups (cache misses), TCP and the
    /// sweeper stay on the caller's runtime. Default true.
    pub dedicated_thread: bool,
    pub tcp: TcpConfig,
    pub persist: PersistConfig,
    /// Expired-binding sweep period. Default 1 s.
    pub sweep_interval: Duration,
    pub calls: CallsConfig,
    /// Admin changes made in this process (the web app's service layer publishes on it);
    /// `None`: only changes from other processes are applied.
    pub changes: Option<store::ChangeBus>,
    /// How often the SQLite change log is read for changes made by other processes (the CLI,
    /// another server). PostgreSQL delivers them at once (LISTEN/NOTIFY). Default 200 ms.
    pub change_poll: Duration,
}

/// Settings of the calls engine and its media relay.
#[derive(Clone, Debug)]
pub struct CallsConfig {
    /// Relay ports (`SWITCHBOARD_RTP_PORTS`), even RTP + odd RTCP.
    pub rtp_ports: media::PortRange,
    /// The address written into anchored SDP. `None`: `public_addr` when it
    /// is an IP address, else the listen address, else 127.0.0.1.
    pub media_addr: Option<IpAddr>,
    pub media: MediaDriverConfig,
    pub cdr: CdrWriterConfig,
    /// How long a call may ring out through a trunk.
    pub outside_ring_timeout: Duration,
    /// Percent of the relay's port pairs kept for emergency calls
    /// (`SWITCHBOARD_EMERGENCY_PORT_RESERVE`, default 5).
    pub emergency_port_reserve: u8,
    /// An answered call is hung up after this long
    /// (`SWITCHBOARD_MAX_CALL_DURATION`, default 4 h).
    pub max_call_duration: Duration,
    /// A call on hold this long is hung up (`SWITCHBOARD_MAX_HOLD_DURATION`,
    /// default 1 h).
    pub max_hold_duration: Duration,
    /// Interval of the trunk OPTIONS keepalive (`SWITCHBOARD_TRUNK_KEEPALIVE`);
    /// zero turns it off. Default 30 s.
    pub trunk_keepalive: Duration,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            rtp_ports: media::PortRange::new(16_384, 32_767)
                .unwrap_or_else(|_| unreachable!("a valid constant range")),
            media_addr: None,
            media: MediaDriverConfig::default(),
            cdr: CdrWriterConfig::default(),
            outside_ring_timeout: Duration::from_secs(180),
            emergency_port_reserve: 5,
            max_call_duration: crate::call::EngineConfig::DEFAULT_MAX_CALL,
            max_hold_duration: crate::call::EngineConfig::DEFAULT_MAX_HOLD,
            trunk_keepalive: Duration::from_secs(30),
        }
    }
}

impl SipConfig {
    pub fn new(listen: SocketAddr) -> Self {
        SipConfig {
            listen,
            public_addr: None,
            registrar: RegistrarConfig::default(),
            guard: GuardConfig::default(),
            verifier: VerifierConfig::default(),
            limits: Limits::default(),
            nonce_secret: None,
            udp_sockets: 2,
            dedicated_thread: true,
            tcp: TcpConfig::default(),
            persist: PersistConfig::default(),
            sweep_interval: Duration::from_secs(1),
            calls: CallsConfig::default(),
            changes: None,
            change_poll: store::changes::WatchOptions::DEFAULT_POLL,
        }
    }
}
