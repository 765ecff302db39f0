//! Per-call state: the legs, forks, forwarding and pending work.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use media::Side;
use sip::transaction::TxKey;
use sip::{Method, Request, Response, StatusCode};
use store::TenantId;

use super::dialog::Dialog;
use super::group::GroupState;
use super::media::CallMedia;
use super::{CallPhase, ExtensionProfile, TrunkRoute};

/// Which leg of a call a dialog belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegRef {
    A,
    Fork(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ForkState {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response arrived (a CANCEL may be sent).
    Proceeding,
    Answered,
    Done,
}

/// One B-leg (one contact rung).
#[derive(Clone, Debug)]
pub(crate) struct Fork {
    pub dialog: Dialog,
    pub invite: Request,
    pub branch: String,
    pub state: ForkState,
    /// A CANCEL asked for before any provisional response (RFC 3261 §9.1),
    /// with its Reason header value if any.
    pub cancel_pending: Option<Option<&'static str>>,
    pub cancelled: bool,
    pub extension: String,
    /// The ringing round (forwarding starts a new one).
    pub round: u32,
    /// The ACK sent for this leg's 2xx, resent on retransmissions.
    pub ack: Option<Request>,
    /// Set for a B-leg towards a trunk.
    pub trunk: Option<TrunkLeg>,
    /// The ring group member (index into the group's members) this leg rings.
    pub member: Option<usize>,
}

/// Trunk specifics of a B-leg.
#[derive(Clone, Debug)]
pub(crate) struct TrunkLeg {
    pub route: TrunkRoute,
    /// Credentials were sent once already (a second challenge fails).
    pub auth_tried: bool,
    /// No response by then: skip this trunk.
    pub setup_deadline: Option<Instant>,
}

/// The caller's leg.
#[derive(Debug)]
pub(crate) struct ALeg {
    pub dialog: Dialog,
    pub invite: Request,
    pub key: TxKey,
    /// A final response went out on the INVITE.
    pub finalized: bool,
    pub sent_ringing: bool,
}

/// Forwarding state within one call.
#[derive(Debug)]
pub(crate) struct RouteState {
    /// The extension being rung (`None` before the first).
    pub profile: Option<ExtensionProfile>,
    pub visited: Vec<String>,
    pub hops: u8,
    /// Diversion header values, newest first (RFC 5806).
    pub diversions: Vec<String>,
    /// Max-Forwards for the next B-leg INVITE.
    pub max_forwards: u8,
}

/// A request passed across the bridge, waiting for the far side's answer.
#[derive(Debug)]
pub(crate) struct Relay {
    pub from: Side,
    pub server_key: TxKey,
    pub request: Request,
    pub offer: Option<media::Sdp>,
}

/// A 2xx to an INVITE, retransmitted until its ACK arrives (RFC 6026).
#[derive(Debug)]
pub(crate) struct Retransmit {
    pub side: Side,
    pub key: TxKey,
    pub response: Response,
    pub cseq: u32,
    pub next: Instant,
    pub interval: Duration,
    pub give_up: Instant,
    /// The 2xx to the caller's initial INVITE.
    pub initial: bool,
}

#[derive(Debug)]
pub(crate) struct Call {
    pub id: u64,
    pub tenant: TenantId,
    pub caller: String,
    /// The caller's display name (from the directory), for the B-legs' From.
    pub caller_name: String,
    pub dialled: String,
    pub callee: String,
    pub phase: CallPhase,
    pub a: ALeg,
    pub forks: Vec<Fork>,
    pub winner: Option<usize>,
    pub media: CallMedia,
    /// The caller's offer, anchored for the B-legs when ringing starts.
    pub offer_a: media::Sdp,
    /// The anchored offer every fork gets.
    pub offer_b: Vec<u8>,
    pub route: RouteState,
    pub round: u32,
    pub failures: Vec<u16>,
    pub no_answer_at: Option<Instant>,
    pub linger_until: Option<Instant>,
    pub started: Instant,
    pub answered: Option<Instant>,
    pub relays: HashMap<String, Relay>,
    /// Per side (A = 0, B = 1): a re-INVITE received and not yet answered,
    /// and a re-INVITE we sent and not yet answered.
    pub uas_invite: [Option<TxKey>; 2],
    pub uac_invite: [Option<String>; 2],
    /// Per side: the last ACK we sent for a 2xx to our re-INVITE (CSeq, ACK).
    pub last_ack: [Option<(u32, Request)>; 2],
    pub retransmits: Vec<Retransmit>,
    /// Trunks still to try, in order, for an outside call.
    pub routes: std::collections::VecDeque<TrunkRoute>,
    /// CDR direction and the trunk used (last tried, or the answering one).
    pub direction: store::Direction,
    /// Per side (A, B): it has put the call on hold (music plays to the
    /// other side).
    pub held: [bool; 2],
    /// Per side: when it last put the call on hold (meaningful while
    /// `held` says so), for the hold length cap.
    pub held_at: [Option<Instant>; 2],
    /// When the call length cap hangs the call up (from its INVITE).
    pub cap_at: Instant,
    /// The hold length cap, copied from the engine's settings.
    pub max_hold: Duration,
    /// Whether one of the tenant's extensions placed the call (`caller` is
    /// then its number); false for calls from a trunk.
    pub from_extension: bool,
    /// Whether the call was counted as a live outside call
    /// ([`super::CallEngine::poll_outside_started`]).
    pub outside_counted: bool,
    pub trunk: Option<store::TrunkId>,
    /// The ring group being rung, while it rings.
    pub group: Option<GroupState>,
    /// A semi-attended transfer waits for this consultation call to be
    /// answered: (the call to join it into, its transferor's fork, who).
    pub join_into: Option<(u64, usize, String)>,
    /// A blind transfer ringing its target.
    pub transfer: Option<super::transfer::Transfer>,
    /// Who new B-legs present as the caller (name, number) when it is not
    /// `caller`: the transferee, while a transfer rings its target.
    pub presented: Option<(String, String)>,
    /// Who transferred the call, and to whom (for the record).
    pub transferred: Option<(String, String)>,
    /// Re-INVITEs the engine sent on its own, by branch.
    pub own_reinvites: HashMap<String, Side>,
    /// The caller's Call-ID, kept for the record when sides were swapped.
    pub cdr_call_id: Option<String>,
    /// Index entries to remove when the call is reaped.
    pub client_keys: Vec<(String, Method)>,
    pub tags: Vec<String>,
}

/// A status code from a constant known to be in range.
pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::new(code).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR)
}

pub(crate) fn idx(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

impl Call {
    /// Whether B-legs may still be started and settled: the call rings, or
    /// a transfer rings its target.
    pub fn hunting(&self) -> bool {
        (self.phase == super::CallPhase::Ringing && !self.a.finalized && self.winner.is_none())
            || self.transfer.is_some()
    }

    /// Keeps resending `response` (a 2xx to an INVITE on `side`) until its
    /// ACK arrives: T1 doubling up to T2, for 64·T1 (RFC 6026).
    #[allow(clippy::too_many_arguments)]
    pub fn retransmit_2xx(
        &mut self,
        side: Side,
        key: TxKey,
        response: Response,
        cseq: u32,
        now: Instant,
        initial: bool,
        config: &super::EngineConfig,
    ) {
        self.retransmits.push(Retransmit {
            side,
            key,
            response,
            cseq,
            next: now + config.t1,
            interval: config.t1,
            give_up: now + config.t1 * 64,
            initial,
        });
    }

    /// The (name, number) new B-legs show as the caller.
    pub fn presented(&self) -> (&str, &str) {
        match &self.presented {
            Some((name, number)) => (name, number),
            None => (&self.caller_name, &self.caller),
        }
    }

    /// The calling extension, for the dial plan's caller ID choice.
    pub fn calling_extension(&self) -> Option<&str> {
        self.from_extension.then_some(self.caller.as_str())
    }

    pub fn dialog(&self, side: Side) -> Option<&Dialog> {
        match side {
            Side::A => Some(&self.a.dialog),
            Side::B => self
                .winner
                .and_then(|w| self.forks.get(w))
                .map(|f| &f.dialog),
        }
    }

    pub fn dialog_mut(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::A => Some(&mut self.a.dialog),
            Side::B => self
                .winner
                .and_then(|w| self.forks.get_mut(w))
                .map(|f| &mut f.dialog),
        }
    }

    /// When a party's hold reaches the hold length cap, if one holds.
    pub fn hold_deadline(&self) -> Option<Instant> {
        (0..2)
            .filter(|&i| self.held[i])
            .filter_map(|i| self.held_at[i])
            .min()
            .map(|t| t + self.max_hold)
    }

    pub fn deadline(&self) -> Option<Instant> {
        let retx = self.retransmits.iter().map(|r| r.next.min(r.give_up)).min();
        let setup = self
            .forks
            .iter()
            .filter_map(|f| f.trunk.as_ref().and_then(|t| t.setup_deadline))
            .min();
        let member = self.group.as_ref().and_then(|g| g.member_deadline);
        let transfer = self.transfer.as_ref().and_then(|t| t.deadline);
        // The caps apply until the call ends (then it only lingers).
        let live = self.phase != super::CallPhase::Ended;
        let caps = live.then(|| {
            self.hold_deadline()
                .map_or(self.cap_at, |h| h.min(self.cap_at))
        });
        [
            self.no_answer_at,
            self.linger_until,
            retx,
            setup,
            member,
            transfer,
            caps,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
