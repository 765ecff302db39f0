//! The state of calls: configuration, per-call record, timers, counters.

use std::time::{Duration, Instant};

use super::msg::Side;
use crate::histogram::Histogram;
use crate::rtp::MediaCmd;
use crate::scenario::register::Timers;
use crate::sdp;
use crate::transport::Transport;

/// Who sends the BYE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hangup {
    Caller,
    Callee,
}

impl std::str::FromStr for Hangup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "caller" => Ok(Hangup::Caller),
            "callee" => Ok(Hangup::Callee),
            _ => Err(format!("`{s}`: expected caller or callee")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CallConfig {
    pub transport: Transport,
    pub timers: Timers,
    /// Expires of the callees' REGISTERs.
    pub expires: u32,
    /// Talk time from the 200 to the hang-up (0: BYE right after the ACK).
    pub hold: Duration,
    /// How long a callee rings before it answers.
    pub answer_delay: Duration,
    pub hangup: Hangup,
    /// Send and check RTP on every answered call.
    pub rtp: bool,
    /// With RTP: how long before the BYE the media stops, so packets in
    /// flight still reach a relay that is open.
    pub media_drain: Duration,
    /// Calls allowed at once; a start above it fails (`concurrency_limit`).
    pub max_concurrent: usize,
}

/// Where a call's media commands go: the media thread, or a test.
pub trait MediaOut {
    fn command(&mut self, cmd: MediaCmd);
}

impl MediaOut for crate::rtp::engine::MediaSender {
    fn command(&mut self, cmd: MediaCmd) {
        self.send(cmd);
    }
}

/// Call-level measurements beside the shared [`Metrics`].
#[derive(Debug, Clone, Default)]
pub struct CallStats {
    /// Callees registered before the calls started.
    pub callees_registered: usize,
    pub callers: usize,
    /// Calls that got their 200.
    pub answered: u64,
    /// First INVITE to 200 (the 407 round included), µs.
    pub setup: Histogram,
    /// BYE to its 200, µs.
    pub teardown: Histogram,
    /// BYE sent by one side to BYE received by the other, µs.
    pub bye_relay: Histogram,
    /// INVITE sent to the callee's INVITE arriving, µs (server routing time
    /// plus the 407 round).
    pub invite_relay: Histogram,
    /// Most calls in flight (started, not ended) at once.
    pub peak_in_flight: usize,
    /// Most calls answered and not yet torn down at once.
    pub peak_active: usize,
    /// INVITEs that reached a callee with another caller's identity in From.
    pub caller_id_mismatch: u64,
    /// Requests the callees/callers answered 481/480/486/501 (no call for them).
    pub unmatched_requests: u64,
    /// 2xx retransmissions re-ACKed.
    pub reacks: u64,
    /// BYEs repeated after their call ended (answered 200 again).
    pub bye_repeats: u64,
}

// timer kinds
pub(super) const T_RETX_A: u8 = 0;
pub(super) const T_RETX_B: u8 = 1;
pub(super) const T_RETX_200: u8 = 2;
pub(super) const T_ANSWER: u8 = 3;
pub(super) const T_HANGUP: u8 = 4;
pub(super) const T_BYE: u8 = 5;
pub(super) const T_GUARD: u8 = 6;

/// (deadline, slot, epoch, kind, seq): stale ones are skipped when due.
pub(super) type Timer = (Instant, u32, u32, u8, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Free,
    /// INVITE out, no 200 yet.
    Inviting,
    /// 200 received and ACKed: talking until the hang-up.
    Talking,
    /// BYE sent (or due after the media drain): waiting for both legs to end.
    Ending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BState {
    /// No INVITE yet.
    Waiting,
    /// 180 sent.
    Ringing,
    /// 200 sent, no ACK yet.
    Answered,
    Confirmed,
}

/// A request being retransmitted (Timer A/E).
#[derive(Debug)]
pub(super) struct Tx {
    pub(super) req: Vec<u8>,
    pub(super) txn: u32,
    pub(super) started: Instant,
    pub(super) interval: Duration,
    pub(super) invite: bool,
    /// A provisional response arrived (INVITE: retransmissions stop).
    pub(super) proceeding: bool,
    pub(super) live: bool,
}

impl Tx {
    pub(super) fn new(now: Instant) -> Self {
        Tx {
            req: Vec::new(),
            txn: 0,
            started: now,
            interval: Duration::ZERO,
            invite: false,
            proceeding: false,
            live: false,
        }
    }
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) epoch: u32,
    pub(super) phase: Phase,
    pub(super) caller: u32,
    pub(super) callee: u32,
    pub(super) started: Instant,
    pub(super) answered_at: Option<Instant>,
    pub(super) bye_sent_at: Option<Instant>,
    pub(super) bye_by: Side,
    // caller leg (our UAC)
    pub(super) a: Tx,
    pub(super) a_cseq: u32,
    pub(super) a_call_id: String,
    /// The Request-URI of the INVITE (and the digest `uri`).
    pub(super) a_ruri: String,
    pub(super) a_offer: Vec<u8>,
    pub(super) a_from: String,
    /// To of the dialog (with the remote tag once known).
    pub(super) a_to: String,
    pub(super) a_target: String,
    pub(super) a_routes: Vec<String>,
    pub(super) a_ack: Vec<u8>,
    pub(super) a_contact: String,
    pub(super) a_done: bool,
    // callee leg (our UAS)
    pub(super) b_state: BState,
    pub(super) b: Tx,
    pub(super) b_invite: Option<sip::Request>,
    pub(super) b_call_id: String,
    /// Our To (with our tag) and the server's From, for a callee BYE.
    pub(super) b_local: String,
    pub(super) b_remote: String,
    pub(super) b_target: String,
    pub(super) b_routes: Vec<String>,
    pub(super) b_cseq: u32,
    pub(super) b_last: Vec<u8>,
    pub(super) b_200_interval: Duration,
    pub(super) b_200_started: Instant,
    pub(super) b_done: bool,
    /// The callee must hang up as soon as the ACK comes.
    pub(super) b_hangup_pending: bool,
    // media
    pub(super) a_media: Option<sdp::Media>,
    pub(super) b_media: Option<sdp::Media>,
    pub(super) a_streaming: bool,
    pub(super) b_streaming: bool,
}

impl Call {
    pub(super) fn new(now: Instant) -> Self {
        Call {
            epoch: 0,
            phase: Phase::Free,
            caller: 0,
            callee: 0,
            started: now,
            answered_at: None,
            bye_sent_at: None,
            bye_by: Side::A,
            a: Tx::new(now),
            a_cseq: 0,
            a_call_id: String::new(),
            a_ruri: String::new(),
            a_offer: Vec::new(),
            a_from: String::new(),
            a_to: String::new(),
            a_target: String::new(),
            a_routes: Vec::new(),
            a_ack: Vec::new(),
            a_contact: String::new(),
            a_done: false,
            b_state: BState::Waiting,
            b: Tx::new(now),
            b_invite: None,
            b_call_id: String::new(),
            b_local: String::new(),
            b_remote: String::new(),
            b_target: String::new(),
            b_routes: Vec::new(),
            b_cseq: 0,
            b_last: Vec::new(),
            b_200_interval: Duration::ZERO,
            b_200_started: now,
            b_done: false,
            b_hangup_pending: false,
            a_media: None,
            b_media: None,
            a_streaming: false,
            b_streaming: false,
        }
    }
}
