//! UUID v7 identifiers, one type per table so an extension id cannot be passed where a tenant id
//! is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ParseError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| {
                    ParseError::new(
                        $what,
                        format!("{:?} is not a valid {}: expected a UUID such as 0193a6c4-5b1e-7c3d-8e2f-0a1b2c3d4e5f", s, $what),
                    )
                })
            }
        }

        impl TryFrom<&str> for $name {
            type Error = ParseError;
            fn try_from(s: &str) -> Result<Self, ParseError> {
                s.parse()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(/// A tenant (business) on the platform.
    TenantId, "tenant id");
id_type!(/// A web user (operator, tenant admin or member).
    UserId, "user id");
id_type!(/// An extension inside a tenant.
    ExtensionId, "extension id");
id_type!(/// A SIP credential (a device) of an extension.
    CredentialId, "credential id");
id_type!(/// A public (DDI) number.
    NumberId, "number id");
id_type!(/// An upstream SIP trunk.
    TrunkId, "trunk id");
id_type!(/// A ring group inside a tenant.
    RingGroupId, "ring group id");
id_type!(/// An IVR menu inside a tenant.
    IvrMenuId, "IVR menu id");
id_type!(/// A conference room inside a tenant.
    ConferenceRoomId, "conference room id");
id_type!(/// A persisted registration binding.
    RegistrationId, "registration id");
id_type!(/// A call detail record.
    CdrId, "CDR id");
id_type!(/// A web API token.
    ApiTokenId, "API token id");
id_type!(/// An audit log entry.
    AuditEntryId, "audit entry id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = TenantId::new();
        assert_eq!(id.to_string().parse::<TenantId>().unwrap(), id);
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let err = "nope".parse::<ExtensionId>().unwrap_err();
        assert_eq!(err.field, "extension id");
        assert!(err.message.contains("\"nope\""), "{err}");
    }
}
