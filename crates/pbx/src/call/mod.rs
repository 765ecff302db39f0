//! The call engine: a sans-IO back-to-back user agent.
//!
//! [`CallEngine`] is the transaction user (TU) above a
//! [`sip::transaction::TransactionLayer`]. Every call is an A-leg (a UAS
//! dialog with the caller) and one or more B-legs (UAC dialogs towards the
//! callee's registered contacts, rung in parallel). The engine never touches
//! a socket, a clock or the database:
//!
//! * **Inputs** — [`CallEngine::on_invite`] for an authenticated
//!   dialog-creating INVITE (the driver authenticates first, see
//!   [`auth`]), [`CallEngine::on_inbound`] for one from a recognised trunk,
//!   [`CallEngine::hang_up`] (media timeout, operator),
//!   [`CallEngine::handle_event`] for every other
//!   [`sip::transaction::Event`], [`CallEngine::send_failed`] when the layer
//!   refused a request, and [`CallEngine::handle_timeout`]. Each takes `now`.
//! * **Outputs** — [`CallEngine::poll_sip`] ([`SipOutput`]: requests to start
//!   as client transactions, responses for server transactions, ACKs to send
//!   statelessly), [`CallEngine::poll_media`] ([`MediaCommand`]: bind relay
//!   ports, configure bridge legs, arm the media timeout, close),
//!   [`CallEngine::poll_record`] ([`CallRecord`], one per call),
//!   [`CallEngine::poll_ring_group_answered`] ([`RingGroupAnswered`], for
//!   the directory) and [`CallEngine::poll_timeout`].
//! * **Directory** — the dial plan ([`DialPlan`]) and the location service
//!   ([`Locator`]) are synchronous traits: the driver implements them over
//!   its caches (the registrar's location service, the directory).
//!
//! Topology hiding: a B-leg gets its own Call-ID, tags, CSeq space and
//! Contact; nothing of the A-leg's headers but the (anchored) SDP crosses.
//!
//! Ring groups ([`Destination::RingGroup`]) are rung by the same machinery:
//! every member's contacts are B-legs tagged with the member, and a small
//! per-call hunt state (in `group.rs`) decides who rings next, skips members
//! who are unregistered, busy or on DND, and falls back when nobody answers.
//!
//! # Defences
//!
//! * Tags, Call-IDs and branches are 128 random bits each (thread CSPRNG).
//! * An in-dialog request (BYE, re-INVITE, UPDATE, INFO, REFER, NOTIFY...)
//!   is accepted only from its leg's flow: a phone's dialog from the
//!   address (and transport) it was set up over, a trunk's from the peer's
//!   IP or any of the trunk's networks ([`CallEngine::set_trunk_networks`]);
//!   anything else gets 403 and changes nothing. ACKs likewise are ignored.
//! * REFER is refused (403) on a trunk's leg, and an INVITE with Replaces
//!   from a trunk: only the business's own extensions transfer or take
//!   calls over.
//! * Concurrent calls are capped per business ([`DialPlan::call_limit`],
//!   403) and per extension ([`ExtensionProfile::max_calls`]: 486 for the
//!   caller; a callee at its limit is busy), emergency calls excepted.
//! * At most [`StreamLimits`] streams (2 audio, 2 video) get relay ports;
//!   other m-lines are refused with port 0. Emergency calls may take the
//!   pool's reserved ports.
//! * Calls are hung up (BYE both legs) at
//!   [`EngineConfig::max_call_duration`] after their INVITE, and after
//!   [`EngineConfig::max_hold_duration`] on hold.
//! * The relay accepts (and latches to) a leg's media only from its
//!   signalling IP or its SDP addresses.
//!
//! # Driving it
//!
//! One engine and one transaction layer per SIP element, owned by one task:
//!
//! ```text
//! on datagram/stream message  -> layer.receive(msg, source, now)
//! for ev in layer.poll_event():
//!     Event::Request INVITE with is_initial_invite(&req):
//!         auth::inspect_invite(..)  -> Challenge(407): layer.send_response
//!                                   -> Verify(creds): look up HA1 (async, directory),
//!         auth::verify_invite(..)   -> Err(resp): layer.send_response
//!                                   -> Ok: engine.on_invite(key, req, source, identity, now)
//!         (from a trunk's address: engine.on_inbound(key, req, source, InboundCall, now))
//!     anything else               -> engine.handle_event(ev, now)
//! for out in engine.poll_sip():
//!     Request { request, dest }   -> layer.send_request (Err: engine.send_failed(&request, now))
//!     Response { key, response }  -> layer.send_response (errors: the transaction is gone; ignore)
//!     Ack { request, dest }       -> layer.send_stateless
//! for cmd in engine.poll_media()  -> the relay task (Open binds sockets and owns the PortPairs,
//!                                    Leg configures a Bridge side, Connected arms the media
//!                                    timeout, Close drops sockets and ports); a media timeout
//!                                    comes back as engine.hang_up(call, "media timeout", now)
//! for rec in engine.poll_record() -> CDR writer (rec.to_new_cdr(id, wall) with a retry queue)
//! for a in engine.poll_ring_group_answered() -> directory.set_ring_group_last_answered (in order)
//! drain layer.poll_transmit() into the sockets, then sleep until
//! min(layer.poll_timeout(), engine.poll_timeout()) and call both handle_timeout(now).
//! ```
//!
//! Outputs of one input must be drained before the next input (responses
//! refer to transactions the layer must already know).
//!
//! # Not yet
//!
//! Offerless INVITEs (offer in the 2xx) are refused with 488; SIP
//! extensions in `Require` with 420 (no 100rel, no session timers);
//! transfer (REFER) with 501. Calls refused before a call exists (483,
//! 488, 420) leave no CDR.

pub mod auth;
mod cdr;
mod dialog;
mod engine;
mod group;
mod limits;
mod media;
mod midcall;
mod outcome;
mod select;
mod setup;
mod state;
mod transfer;
mod trunk;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sip::transaction::{Target, TxKey};
use sip::{Request, Response, Uri};
use store::{
    ExtensionId, ExtensionNumber, Forwarding, RingGroupId, RingStrategy, SipUsername, TenantId,
    TrunkId,
};

pub use cdr::CallRecord;
pub use engine::CallEngine;
pub use media::{MediaCommand, StreamLimits, StreamPorts};
pub use select::best_response;

/// Who is calling, established by the driver from the INVITE's
/// Proxy-Authorization (never from what the caller claims in From).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdentity {
    pub tenant: TenantId,
    pub extension: ExtensionNumber,
    pub credential: SipUsername,
}

/// An INVITE from a trunk, as the driver recognised it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundCall {
    /// The tenant holding the dialled number.
    pub tenant: TenantId,
    /// The trunk it came in on.
    pub trunk: TrunkId,
}

/// One registered contact of an extension, as the location service keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactTarget {
    /// The Contact URI of the binding: the B-leg's Request-URI.
    pub uri: Uri,
    /// The flow the registration came over: where the B-leg is sent.
    pub flow: Target,
}

/// The location service as the engine needs it.
pub trait Locator {
    /// Every live contact of `extension`, in no particular order.
    fn contacts(&self, tenant: TenantId, extension: &ExtensionProfile) -> Vec<ContactTarget>;
}

/// What the engine needs to know about an extension it rings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionProfile {
    /// The directory's id (the location service's key).
    pub id: ExtensionId,
    pub number: ExtensionNumber,
    pub display_name: String,
    pub dnd: bool,
    pub forwarding: Forwarding,
    pub no_answer_timeout: Duration,
    /// Calls it may take part in at once (made and received); beyond it a
    /// new call of its own gets 486 and one for it is treated as busy.
    pub max_calls: u32,
}

/// Where a dialled string leads inside a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Extension(ExtensionProfile),
    /// A ring group of the tenant, its members resolved.
    RingGroup(RingGroupPlan),
    /// An outside number, with the trunks to try in order.
    Outside(OutsideCall),
    /// The dial plan refuses the call (premium rate not allowed, outside
    /// call limit reached...): the status to answer and the CDR cause.
    Refused {
        status: u16,
        reason: String,
    },
    Unknown,
}

/// A ring group as the dial plan prepared it (see `group.rs` for how the
/// engine rings it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingGroupPlan {
    pub id: RingGroupId,
    pub number: ExtensionNumber,
    /// Shown to the members after the caller's name: "Alice (Sales)".
    pub name: String,
    pub strategy: RingStrategy,
    /// How long the whole group may ring before the fallback.
    pub ring_timeout: Duration,
    /// Each member's turn (sequential and round robin).
    pub member_timeout: Duration,
    /// In ring order. Members the directory no longer knows are left out,
    /// so positions may have gaps.
    pub members: Vec<GroupMember>,
    /// Position of the member who answered last (round robin starts after
    /// it), as the directory last recorded it.
    pub last_answered: Option<u32>,
    /// Where an unanswered call goes: a number of the tenant (extension or
    /// ring group) the dial plan resolves. `None`: the caller hears busy
    /// (every member busy) or temporarily unavailable.
    pub fallback: Option<String>,
}

/// One member of a ring group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    /// Its position in the directory's member list.
    pub position: u32,
    pub target: MemberTarget,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberTarget {
    /// Rung on its registered contacts; its own forwarding is not followed.
    Extension(ExtensionProfile),
    /// An outside number (E.164), rung through the trunks as the dial plan
    /// resolves it.
    External(String),
}

/// A round-robin group's call was answered by the member at `position`:
/// the driver persists it (`set_ring_group_last_answered`) so the rotation
/// survives a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingGroupAnswered {
    pub tenant: TenantId,
    pub group: RingGroupId,
    pub position: u32,
}

/// An outside call as the dial plan prepared it: the number normalised to
/// E.164, the trunks in priority order (the emergency order for 999/112),
/// the caller ID already chosen per trunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutsideCall {
    /// E.164, for the CDR's callee.
    pub number: String,
    pub routes: Vec<TrunkRoute>,
    /// 999 / 112: no ringing limit, CDR direction `emergency`.
    pub emergency: bool,
}

/// One way out through a trunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkRoute {
    pub trunk: TrunkId,
    /// The provider's signalling address.
    pub dest: Target,
    /// Request-URI (and To) of the INVITE, e.g. `sip:+442079460018@carrier`.
    pub request_uri: Uri,
    /// From header value without tag, presenting the caller's number.
    pub from: String,
    /// Digest credentials for the provider's 401/407 challenges.
    pub credentials: Option<TrunkCredentials>,
}

/// What Switchboard answers a provider's digest challenge with.
#[derive(Clone, PartialEq, Eq)]
pub struct TrunkCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for TrunkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkCredentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The dial plan as the engine needs it.
pub trait DialPlan {
    /// Resolves what a caller of `tenant` dialled (the Request-URI user).
    /// `caller` is the calling extension when an extension calls (it picks
    /// the presented caller ID of an outside call); `None` for calls from a
    /// trunk and for looking up an extension's own profile.
    fn resolve(&self, tenant: TenantId, caller: Option<&str>, dialled: &str) -> Destination;

    /// The tenant's concurrent-call limit (`max_concurrent_calls`), when
    /// known: a new call beyond it is refused with 403, emergency calls
    /// excepted.
    fn call_limit(&self, tenant: TenantId) -> Option<u32> {
        let _ = tenant;
        None
    }
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Our SIP address: Via sent-by and Contact host.
    pub sip_addr: SocketAddr,
    /// The address written into anchored SDP (`SWITCHBOARD_PUBLIC_ADDR`).
    pub media_addr: IpAddr,
    /// Forwarding hops one call may take before the chain is cut.
    pub max_forward_hops: u8,
    /// RFC 3261 T1 and T2, for 2xx retransmission to the A-leg (RFC 6026).
    pub t1: Duration,
    pub t2: Duration,
    /// How long an ended call lingers to absorb retransmissions.
    pub linger: Duration,
    /// Streams relayed per call (2 audio, 2 video by default); further
    /// m-lines are refused with port 0 and take no relay ports.
    pub streams: StreamLimits,
    /// A trunk that sends no response at all within this time is skipped
    /// (the next trunk is tried).
    pub trunk_setup_timeout: Duration,
    /// How long an outside (non-emergency) call may ring.
    pub outside_ring_timeout: Duration,
    /// An answered call is hung up (BYE to both legs) after this long.
    pub max_call_duration: Duration,
    /// A call one party has held for this long is hung up.
    pub max_hold_duration: Duration,
}

impl EngineConfig {
    pub fn new(sip_addr: SocketAddr, media_addr: IpAddr) -> Self {
        EngineConfig {
            sip_addr,
            media_addr,
            max_forward_hops: 5,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            linger: Duration::from_secs(32),
            streams: StreamLimits::default(),
            trunk_setup_timeout: Duration::from_secs(4),
            outside_ring_timeout: Duration::from_secs(180),
            max_call_duration: Self::DEFAULT_MAX_CALL,
            max_hold_duration: Self::DEFAULT_MAX_HOLD,
        }
    }

    /// Default call length cap: 4 hours.
    pub const DEFAULT_MAX_CALL: Duration = Duration::from_secs(4 * 3600);
    /// Default hold length cap: 1 hour.
    pub const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(3600);
}

/// Something for the driver to do with its transaction layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SipOutput {
    /// Start a client transaction: `layer.send_request(request, dest, now)`.
    /// The request carries its branch; if the layer refuses it, report it
    /// with [`CallEngine::send_failed`].
    Request { request: Request, dest: Target },
    /// Answer a server transaction: `layer.send_response(&key, response, now)`.
    Response { key: TxKey, response: Response },
    /// An ACK for a 2xx: `layer.send_stateless(&Message::Request(request), dest)`.
    Ack { request: Request, dest: Target },
}

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallPhase {
    /// B-legs are ringing.
    Ringing,
    /// A B-leg answered; waiting for the caller's ACK.
    Answering,
    Connected,
    /// Over; lingering to absorb retransmissions.
    Ended,
}

/// One active call, for the web app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSummary {
    pub id: u64,
    pub tenant: TenantId,
    pub caller: String,
    pub dialled: String,
    /// The extension being rung or talking (after forwarding).
    pub callee: String,
    pub phase: CallPhase,
    pub started: Instant,
    pub answered: Option<Instant>,
    /// B-legs still ringing.
    pub ringing_contacts: usize,
}

/// Methods the engine handles, for Allow headers.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER";

/// Whether an INVITE creates a dialog (no To tag): such INVITEs are
/// authenticated by the driver and handed to [`CallEngine::on_invite`].
pub fn is_initial_invite(request: &Request) -> bool {
    request.method == sip::Method::Invite
        && request
            .to_addr()
            .ok()
            .flatten()
            .is_some_and(|to| to.tag().is_none())
}
