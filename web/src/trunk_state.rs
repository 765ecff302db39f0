//! What the running server knows about each trunk (health from the OPTIONS
//! keepalive, registration to the provider), for the operator's trunk pages
//! and the trunks API. The call engine lives in a crate this one does not
//! depend on: the binary bridges it into [`TrunkStates`] and hands it to
//! [`AppState::with_trunk_states`](crate::AppState::with_trunk_states).
//! Without one, no state is shown.

use store::TrunkId;
use time::OffsetDateTime;

/// One trunk's runtime state.
#[derive(Clone, Debug, PartialEq)]
pub struct TrunkState {
    /// `up` (the last OPTIONS was answered), `down` (it was not) or
    /// `unknown` (not probed yet, or the keepalive is off).
    pub health: String,
    /// Status of the last OPTIONS response.
    pub last_status: Option<u16>,
    /// Round trip of the last answered OPTIONS, in milliseconds.
    pub latency_ms: Option<u64>,
    pub checked_at: Option<OffsetDateTime>,
    /// Registration to the provider, for trunks that register.
    pub registration: Option<TrunkRegistration>,
}

/// Registration to the provider, as last seen.
#[derive(Clone, Debug, PartialEq)]
pub struct TrunkRegistration {
    /// `registered` or `failed`.
    pub state: String,
    /// Registered: when the registration runs out (it is refreshed before).
    pub expires_at: Option<OffsetDateTime>,
    /// Failed: the registrar's final status (`null`: no response).
    pub status: Option<u16>,
    /// Failed: why, e.g. `403 Forbidden` or `no response from the registrar`.
    pub reason: Option<String>,
}

/// Source of trunk states (the binary's bridge to the call engine).
pub trait TrunkStates: Send + Sync + 'static {
    fn state(&self, trunk: TrunkId) -> Option<TrunkState>;
}

/// No engine attached: no state.
pub struct NoTrunkStates;

impl TrunkStates for NoTrunkStates {
    fn state(&self, _trunk: TrunkId) -> Option<TrunkState> {
        None
    }
}
