//! The dial plan over the directory.
//!
//! The engine's [`DialPlan`](crate::call::DialPlan) trait is synchronous
//! and the directory is asynchronous, so resolution is split in two:
//!
//! * [`Resolver`] (async, over [`store::Directory`]) does the real work:
//!   classifies what was dialled ([`classify`]), checks the tenant's
//!   permissions, looks up extensions, numbers and trunks, and chooses the
//!   presented caller ID. The driver calls [`Resolver::prepare`] (a device's
//!   INVITE) or [`Resolver::prepare_inbound`] (a trunk's INVITE) *before*
//!   handing the INVITE to the engine.
//!   The string to prepare is the INVITE's Request-URI user exactly as the
//!   engine reads it ([`dialled_of`]).
//! * [`PreparedPlan`] (sync, in memory) is the engine's `DialPlan`: it answers
//!   from what `prepare` stored — the dialled string, the caller's own
//!   extension, and the forwarding targets reachable from the callee (so a
//!   forward on busy or no answer in the middle of a call resolves without
//!   I/O; for a ring group, its external members and its fallback chain) — and applies the outside-call limit at that moment from the live
//!   [`OutsideCalls`] counter.
//!
//! # Rules
//!
//! * 2–6 digits: `resolve_dialable` → an extension (its DND, forwarding and
//!   no-answer timeout) or a ring group (its settings, its members' profiles
//!   in order, its fallback's number); IVR menus and conference rooms are
//!   refused with 480 until they exist; nothing → [`Destination::Unknown`].
//! * `999` / `112`: always routed through the emergency trunk order, no
//!   limit or restriction, even for a suspended tenant.
//! * Any UK or international form → E.164. A number the tenant itself holds
//!   rings its route target directly; otherwise it is classified by the
//!   numbering plan ([`tariff`]): premium rate and special-rate kinds
//!   (personal, pager, UAN, shared-cost, unknown type) are refused (403)
//!   unless `allow_premium`, numbers outside region GB (the Crown
//!   Dependencies included) unless `allow_international`; then the
//!   outbound trunks by priority. Forwarding to an outside number resolves
//!   the same way, so it obeys the same permissions. The limit answers 503
//!   ([`LIMIT_STATUS`]).
//! * Presented caller ID: the tenant's number routed to the calling
//!   extension, else its main number, else the first number it holds; a
//!   tenant holding no number cannot call out (403) but can still call 999.
//! * A suspended tenant is refused (403) for everything but emergency calls.
//!
//! # The outside-call counter
//!
//! The driver owns the [`OutsideCalls`] shared with the plan. It counts a
//! call as started when the engine reports it
//! ([`CallEngine::poll_outside_started`](crate::call::CallEngine::poll_outside_started):
//! dialled out, or forwarded out mid-call) and as ended when that call's
//! record, marked `counted_outside`, comes out of `poll_record`. One task
//! owns the engine, so the limit check in [`PreparedPlan`] and the count
//! cannot interleave.
//!
//! # Caller ID per caller
//!
//! An outside destination carries the caller ID chosen for the calling
//! extension, so [`PreparedPlan`] keeps outside entries per caller; two
//! extensions dialling the same number at once each present their own.

mod classify;
mod prepared;
mod resolver;
mod tariff;

pub use classify::{Dialled, classify};
pub use prepared::{LIMIT_STATUS, Lookup, OutsideCallGuard, OutsideCalls, PreparedPlan};
pub use resolver::{Inbound, Resolver};
pub use tariff::{Tariff, tariff};

use crate::call::Destination;
use store::StoreError;

/// The dialled string of an INVITE as the engine reads it (the
/// Request-URI user, unescaped): the key to prepare under.
pub fn dialled_of(request: &sip::Request) -> Option<String> {
    request
        .uri
        .user()
        .map(|u| String::from_utf8_lossy(&sip::unescape(u)).into_owned())
}

/// What to answer when the directory could not be read while resolving:
/// 503 if it is unreachable (worth retrying), 500 otherwise.
pub fn refusal_for(error: &StoreError) -> Destination {
    let status = if error.is_unavailable() { 503 } else { 500 };
    Destination::Refused {
        status,
        reason: format!("dial plan: {error}"),
    }
}
