//! Recent failed registrations of each SIP credential (wrong password, banned source), for
//! the extension page. Like [`trunk_state`](crate::trunk_state): the SIP service keeps them in
//! memory, bounded, and the binary bridges them into [`RegistrationFailures`] and hands it to
//! [`AppState::with_registration_failures`](crate::AppState::with_registration_failures).
//! Without one, none are shown.

use std::net::IpAddr;

use store::{CredentialId, TenantId};
use time::OffsetDateTime;

/// One failed registration, or a run of identical ones.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistrationFailure {
    /// When it (last) happened.
    pub at: OffsetDateTime,
    pub source: IpAddr,
    /// For people, e.g. "wrong password".
    pub reason: String,
    /// How many times in a row (at least 1).
    pub count: u32,
}

/// Source of failed registrations (the binary's bridge to the SIP service).
pub trait RegistrationFailures: Send + Sync + 'static {
    /// The recent failures of `credential`, newest first; none unless it is `tenant`'s.
    fn recent(&self, tenant: TenantId, credential: CredentialId) -> Vec<RegistrationFailure>;
}

/// No SIP service attached: nothing to show.
pub struct NoRegistrationFailures;

impl RegistrationFailures for NoRegistrationFailures {
    fn recent(&self, _tenant: TenantId, _credential: CredentialId) -> Vec<RegistrationFailure> {
        Vec::new()
    }
}
