//! The media driver: the socket side of [`media::Bridge`].
//!
//! The call engine emits [`MediaCommand`]s; [`MediaDriver::execute`] turns
//! them into UDP sockets and relay tasks:
//!
//! * `Open` binds two sockets per [`media::PortPair`] (RTP on the even port,
//!   RTCP on the one above) on [`MediaDriverConfig::bind_ip`], creates one
//!   empty [`Bridge`](media::Bridge) per m-line and spawns the call's relay
//!   task. A bind failure is returned as [`OpenError`] (the ports go back to
//!   the pool at once): the engine driver then hangs the call up.
//! * `Leg` puts (or updates) a side of one m-line's bridge.
//! * `Connected` arms the media timeout.
//! * `Close` ends the call's task; its sockets close, then its port pairs
//!   return to the pool.
//!
//! Each call is one task polling all of its sockets with one reused
//! buffer: a datagram goes through `Bridge::on_packet` and, when forwarded,
//! leaves by `try_send_to` from the socket of the leg and component the
//! [`media::Forward`] names. Nothing is allocated per RTP packet.
//!
//! A call whose armed bridges all see no RTP for
//! [`MediaDriverConfig::media_timeout`] reports [`MediaEvent::TimedOut`]
//! once, on the receiver [`MediaDriver::new`] returns.
//!
//! # Wiring it to the engine
//!
//! ```text
//! let (mut media, mut media_events) = MediaDriver::new(config);   // inside the runtime
//! loop {
//!     select! {
//!         ... SIP input, timers ... => { feed the engine }
//!         Some(MediaEvent::TimedOut { call }) = media_events.recv() =>
//!             engine.hang_up(call, "media timeout", Instant::now()),
//!     }
//!     while let Some(cmd) = engine.poll_media() {
//!         if let Err(e) = media.execute(cmd) {                  // only Open can fail
//!             engine.hang_up(e.call, "media ports unavailable", Instant::now());
//!         }
//!     }
//!     ... drain poll_sip / poll_record as the engine docs say ...
//! }
//! ```
//!
//! [`MediaDriver::stats`] gives a cloneable [`MediaStats`] for the web
//! app's active-calls view (per call, per m-line, per leg: counters and
//! latched address, refreshed at most every
//! [`MediaDriverConfig::stats_interval`]).

mod call;
mod stats;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use media::{PortPair, RelayConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::call::{MediaCommand, StreamPorts};
use call::{CallCmd, CallTask};
pub use stats::{CallMediaStats, LegMediaStats, MediaStats, StreamStats};

/// Media driver settings.
#[derive(Debug, Clone)]
pub struct MediaDriverConfig {
    /// Where relay sockets are bound (the unspecified address, or the
    /// interface behind `SWITCHBOARD_PUBLIC_ADDR`).
    pub bind_ip: IpAddr,
    /// No RTP on an answered call for this long hangs it up.
    pub media_timeout: Duration,
    /// How long a latched source must be silent before another may take
    /// its place.
    pub relatch_after: Duration,
    /// How often a call's counters are published to [`MediaStats`] while
    /// packets flow.
    pub stats_interval: Duration,
    /// Receive buffer size per call task: longer datagrams are dropped.
    pub max_datagram: usize,
}

impl Default for MediaDriverConfig {
    fn default() -> Self {
        MediaDriverConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            media_timeout: Duration::from_secs(60),
            relatch_after: RelayConfig::default().relatch_after,
            stats_interval: Duration::from_secs(1),
            max_datagram: 4096,
        }
    }
}

impl MediaDriverConfig {
    fn relay(&self) -> RelayConfig {
        RelayConfig {
            relatch_after: self.relatch_after,
            media_timeout: self.media_timeout,
        }
    }
}

/// What the media side tells the engine driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// No RTP from either party of an answered call for the media timeout:
    /// `engine.hang_up(call, "media timeout", now)`.
    TimedOut { call: u64 },
}

/// `Open` failed: the call has no media and should be ended. Its port
/// pairs are already back in the pool.
#[derive(Debug, thiserror::Error)]
#[error("call {call}: cannot bind relay port {port}: {source}")]
pub struct OpenError {
    pub call: u64,
    pub port: u16,
    #[source]
    pub source: io::Error,
}

/// Bound sockets of one port pair.
pub(crate) struct BoundPair {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

/// The relay's socket side. Must be created and used inside a tokio
/// runtime (it spawns one task per call).
pub struct MediaDriver {
    config: MediaDriverConfig,
    calls: HashMap<u64, mpsc::UnboundedSender<CallCmd>>,
    events: mpsc::UnboundedSender<MediaEvent>,
    stats: MediaStats,
}

impl MediaDriver {
    /// The driver and the receiver of its events.
    pub fn new(config: MediaDriverConfig) -> (MediaDriver, mpsc::UnboundedReceiver<MediaEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let driver = MediaDriver {
            config,
            calls: HashMap::new(),
            events,
            stats: MediaStats::default(),
        };
        (driver, rx)
    }

    pub fn config(&self) -> &MediaDriverConfig {
        &self.config
    }

    /// A handle on the per-call counters, for display.
    pub fn stats(&self) -> MediaStats {
        self.stats.clone()
    }

    /// Calls with a relay task.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Carries out one engine command. Only `Open` can fail.
    pub fn execute(&mut self, cmd: MediaCommand) -> Result<(), OpenError> {
        match cmd {
            MediaCommand::Open { call, streams } => self.open(call, streams),
            MediaCommand::Leg {
                call,
                side,
                index,
                config,
            } => {
                self.send(
                    call,
                    CallCmd::Leg {
                        side,
                        index,
                        config,
                    },
                );
                Ok(())
            }
            MediaCommand::Connected { call } => {
                self.send(call, CallCmd::Connected);
                Ok(())
            }
            MediaCommand::Swap { call } => {
                self.send(call, CallCmd::Swap);
                Ok(())
            }
            MediaCommand::Music { call, to, on } => {
                self.send(call, CallCmd::Music { to, on });
                Ok(())
            }
            MediaCommand::Close { call } => {
                self.close(call);
                Ok(())
            }
        }
    }

    /// Binds the call's sockets and starts its relay task. A second `Open`
    /// for a live call replaces it.
    pub fn open(&mut self, call: u64, streams: Vec<StreamPorts>) -> Result<(), OpenError> {
        self.close(call);
        let mut bound = Vec::with_capacity(streams.len());
        for s in &streams {
            let a = self.bind_pair(call, &s.a)?;
            let b = self.bind_pair(call, &s.b)?;
            bound.push([a, b]);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = CallTask::new(
            call,
            bound,
            streams,
            &self.config,
            rx,
            self.events.clone(),
            self.stats.clone(),
        );
        self.stats.insert(call, task.snapshot());
        tokio::spawn(task.run());
        self.calls.insert(call, tx);
        Ok(())
    }

    /// Ends a call's relay: its task drops the sockets, then the ports.
    /// Unknown calls are ignored.
    pub fn close(&mut self, call: u64) {
        if let Some(tx) = self.calls.remove(&call) {
            let _ = tx.send(CallCmd::Close);
        }
    }

    fn send(&mut self, call: u64, cmd: CallCmd) {
        match self.calls.get(&call) {
            Some(tx) => {
                if tx.send(cmd).is_err() {
                    // The task is gone (it cannot end on its own today,
                    // but a panic would): forget it.
                    self.calls.remove(&call);
                }
            }
            None => tracing::debug!(call, "media command for a call without relay"),
        }
    }

    fn bind_pair(&self, call: u64, pair: &PortPair) -> Result<BoundPair, OpenError> {
        let bind = |port: u16| {
            bind_udp(SocketAddr::new(self.config.bind_ip, port)).map_err(|source| OpenError {
                call,
                port,
                source,
            })
        };
        Ok(BoundPair {
            rtp: bind(pair.rtp())?,
            rtcp: bind(pair.rtcp())?,
        })
    }
}

/// A [`media::PortProbe`] for the relay's pool: whether the RTP port and the
/// RTCP port above it can both be bound on `ip` now (another process may
/// hold them). The test sockets close at once.
pub fn bind_probe(ip: IpAddr) -> media::PortProbe {
    std::sync::Arc::new(move |rtp: u16| {
        let Some(rtcp) = rtp.checked_add(1) else {
            return false;
        };
        let a = std::net::UdpSocket::bind(SocketAddr::new(ip, rtp));
        let b = std::net::UdpSocket::bind(SocketAddr::new(ip, rtcp));
        a.is_ok() && b.is_ok()
    })
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}
