//! Per-call relay counters, published by the call tasks for display.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use media::LegStats;

/// One leg of one m-line, as the relay sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegMediaStats {
    /// Whether signalling has configured this leg yet.
    pub configured: bool,
    /// Where the leg's SDP asked for RTP.
    pub sdp_rtp: Option<SocketAddr>,
    /// Where its RTP actually comes from (and goes to).
    pub latched: Option<SocketAddr>,
    /// Counters: `*_in` from this leg's phone, `*_out` toward it.
    pub counters: LegStats,
}

/// One m-line: the caller's leg (`a`) and the callee's (`b`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub a: LegMediaStats,
    pub b: LegMediaStats,
    /// Local RTP ports (A side, B side).
    pub ports: (u16, u16),
}

/// One call's relay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallMediaStats {
    pub call: u64,
    pub streams: Vec<StreamStats>,
    /// Whether the media timeout is armed (the call was answered).
    pub connected: bool,
    /// Datagrams the kernel refused to send (buffer full, unreachable).
    pub send_errors: u64,
    /// Datagrams too long for the receive buffer.
    pub oversized: u64,
    /// Datagrams that arrived before signalling configured their leg.
    pub before_leg: u64,
    /// Whether the media timeout fired.
    pub timed_out: bool,
}

impl CallMediaStats {
    /// Packets relayed from the caller's phone to the callee's (all
    /// m-lines), and the other way.
    pub fn packets(&self) -> (u64, u64) {
        self.streams.iter().fold((0, 0), |(ab, ba), s| {
            (
                ab + s.b.counters.rtp_out + s.b.counters.rtcp_out,
                ba + s.a.counters.rtp_out + s.a.counters.rtcp_out,
            )
        })
    }

    /// Bytes relayed caller → callee and callee → caller.
    pub fn bytes(&self) -> (u64, u64) {
        self.streams.iter().fold((0, 0), |(ab, ba), s| {
            (ab + s.b.counters.bytes_out, ba + s.a.counters.bytes_out)
        })
    }
}

/// The published counters of every call with a relay; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct MediaStats {
    inner: Arc<Mutex<HashMap<u64, CallMediaStats>>>,
}

impl MediaStats {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, CallMediaStats>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest counters of `call`.
    pub fn get(&self, call: u64) -> Option<CallMediaStats> {
        self.lock().get(&call).cloned()
    }

    /// Every call's counters, by call id.
    pub fn all(&self) -> Vec<CallMediaStats> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by_key(|s| s.call);
        v
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub(super) fn insert(&self, call: u64, stats: CallMediaStats) {
        self.lock().insert(call, stats);
    }

    /// Overwrites `call`'s entry in place (no allocation once the entry
    /// exists), unless it was removed.
    pub(super) fn update(&self, call: u64, f: impl FnOnce(&mut CallMediaStats)) {
        if let Some(s) = self.lock().get_mut(&call) {
            f(s);
        }
    }

    pub(super) fn remove(&self, call: u64) {
        self.lock().remove(&call);
    }
}
