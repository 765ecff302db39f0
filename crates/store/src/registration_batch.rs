//! Registrar group commit: the changes one batch of REGISTERs makes to the `registrations` table.
//!
//! The registrar answers 200 OK only once the binding is committed; committing each REGISTER on
//! its own would cost one transaction per request. It hands its changes to a persister instead,
//! which applies up to a few hundred of them with one [`crate::Directory::apply_registration_batch`]
//! call.

use crate::model::{Binding, CredentialId, TenantId};

/// One change to the persisted bindings, applied in order inside a batch.
// Upserts are the common case; boxing them would cost an allocation per REGISTER.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum RegistrationChange {
    /// Insert or refresh the binding keyed by (credential, contact URI), as
    /// [`crate::Directory::upsert_registration`] does.
    Upsert { tenant: TenantId, binding: Binding },
    /// Remove the binding of `credential` for `contact_uri` (absent is not an error).
    Remove {
        tenant: TenantId,
        credential: CredentialId,
        contact_uri: String,
    },
}

impl RegistrationChange {
    pub fn tenant(&self) -> TenantId {
        match self {
            RegistrationChange::Upsert { tenant, .. }
            | RegistrationChange::Remove { tenant, .. } => *tenant,
        }
    }
}
