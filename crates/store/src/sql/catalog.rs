//! Constraint catalogue: which field a violated constraint is about, and what to tell the user.
//! PostgreSQL reports the constraint name; SQLite reports the name of a named CHECK but only the
//! columns of a UNIQUE constraint, so both are listed.

use sqlx::error::ErrorKind;

use crate::error::StoreError;

/// Field of the placeholder error for a foreign-key violation; see [`super::on_fk`].
pub(crate) const FK_FIELD: &str = "reference";

struct Unique {
    name: &'static str,
    sqlite_columns: &'static str,
    field: &'static str,
    message: &'static str,
}

const UNIQUES: &[Unique] = &[
    Unique {
        name: "tenants_slug_key",
        sqlite_columns: "tenants.slug",
        field: "slug",
        message: "this slug is already taken",
    },
    Unique {
        name: "tenants_sip_domain_key",
        sqlite_columns: "tenants.sip_domain",
        field: "sip_domain",
        message: "this SIP domain is already used by another business",
    },
    Unique {
        name: "users_email_key",
        sqlite_columns: "users.email",
        field: "email",
        message: "a user with this e-mail address already exists",
    },
    Unique {
        name: "dialables_pkey",
        sqlite_columns: "dialables.tenant_id, dialables.number",
        field: "number",
        message: "this number is already used by an extension, ring group, IVR menu or conference room",
    },
    Unique {
        name: "dialables_tenant_number_kind_key",
        sqlite_columns: "dialables.tenant_id, dialables.number, dialables.kind",
        field: "number",
        message: "this number is already in use",
    },
    Unique {
        name: "extensions_number_key",
        sqlite_columns: "extensions.tenant_id, extensions.number",
        field: "number",
        message: "this extension number is already in use",
    },
    Unique {
        name: "ring_groups_number_key",
        sqlite_columns: "ring_groups.tenant_id, ring_groups.number",
        field: "number",
        message: "this ring group number is already in use",
    },
    Unique {
        name: "ivr_menus_number_key",
        sqlite_columns: "ivr_menus.tenant_id, ivr_menus.number",
        field: "number",
        message: "this IVR number is already in use",
    },
    Unique {
        name: "conference_rooms_number_key",
        sqlite_columns: "conference_rooms.tenant_id, conference_rooms.number",
        field: "number",
        message: "this conference number is already in use",
    },
    Unique {
        name: "sip_credentials_username_key",
        sqlite_columns: "sip_credentials.tenant_id, sip_credentials.username",
        field: "username",
        message: "this SIP username is already in use",
    },
    Unique {
        name: "sip_credentials_mac_address_key",
        sqlite_columns: "sip_credentials.mac_address",
        field: "mac_address",
        message: "a device with this MAC address is already provisioned",
    },
    Unique {
        name: "numbers_e164_key",
        sqlite_columns: "numbers.e164",
        field: "e164",
        message: "this number is already on the platform",
    },
    Unique {
        name: "trunks_name_key",
        sqlite_columns: "trunks.name",
        field: "name",
        message: "a trunk with this name already exists",
    },
    Unique {
        name: "ring_group_members_pkey",
        sqlite_columns: "ring_group_members.ring_group_id, ring_group_members.position",
        field: "members",
        message: "two members share a position",
    },
    Unique {
        name: "registrations_contact_key",
        sqlite_columns: "registrations.credential_id, registrations.contact_uri",
        field: "contact_uri",
        message: "this contact is already bound",
    },
];

/// (constraint name, field, message) for CHECK constraints.
const CHECKS: &[(&str, &str, &str)] = &[
    (
        "tenants_name_check",
        "name",
        "name must be 1 to 200 characters",
    ),
    (
        "tenants_slug_check",
        "slug",
        "slug must be lowercase letters, digits and '-'",
    ),
    (
        "tenants_sip_domain_check",
        "sip_domain",
        "SIP domain must be a lowercase hostname",
    ),
    (
        "tenants_max_concurrent_calls_check",
        "max_concurrent_calls",
        "must not be negative",
    ),
    (
        "tenants_max_outside_calls_check",
        "max_outside_calls",
        "must not be negative",
    ),
    (
        "tenants_main_number_check",
        "main_number",
        "main number must be in E.164 form",
    ),
    (
        "tenants_time_zone_check",
        "time_zone",
        "time zone must be an IANA name such as Europe/London",
    ),
    (
        "audit_log_actor_check",
        "actor",
        "an audit entry names who made the change",
    ),
    (
        "audit_log_action_check",
        "action",
        "an audit entry names the kind of change",
    ),
    (
        "audit_log_subject_check",
        "subject",
        "subject must be at most 300 characters",
    ),
    (
        "audit_log_detail_check",
        "detail",
        "detail must be at most 1000 characters",
    ),
    (
        "users_email_check",
        "email",
        "e-mail address must be lowercase name@domain",
    ),
    (
        "users_display_name_check",
        "display_name",
        "display name must be at most 200 characters",
    ),
    (
        "users_role_check",
        "role",
        "role must be operator, admin or member",
    ),
    (
        "users_password_hash_check",
        "password_hash",
        "password hash must be an argon2id PHC string",
    ),
    (
        "users_operator_tenant_check",
        "tenant_id",
        "operators belong to no business; admins and members belong to one",
    ),
    (
        "dialables_number_check",
        "number",
        "number must be 2 to 6 digits",
    ),
    (
        "extensions_display_name_check",
        "display_name",
        "display name must be at most 200 characters",
    ),
    (
        "extensions_no_answer_timeout_secs_check",
        "no_answer_timeout_secs",
        "no-answer timeout must be 5 to 300 seconds",
    ),
    (
        "extensions_max_concurrent_calls_check",
        "max_concurrent_calls",
        "concurrent call limit must be 1 to 1000",
    ),
    (
        "extensions_forward_always_check",
        "forward_always",
        "forward target must not be empty",
    ),
    (
        "extensions_forward_busy_check",
        "forward_busy",
        "forward target must not be empty",
    ),
    (
        "extensions_forward_no_answer_check",
        "forward_no_answer",
        "forward target must not be empty",
    ),
    (
        "sip_credentials_username_check",
        "username",
        "SIP username must be 1 to 64 letters, digits or . _ ~ + -",
    ),
    (
        "sip_credentials_ha1_md5_check",
        "ha1_md5",
        "HA1 (MD5) must be 32 lowercase hex digits",
    ),
    (
        "sip_credentials_ha1_sha256_check",
        "ha1_sha256",
        "HA1 (SHA-256) must be 64 lowercase hex digits",
    ),
    (
        "sip_credentials_mac_address_check",
        "mac_address",
        "MAC address must be 12 lowercase hex digits",
    ),
    (
        "sip_credentials_model_check",
        "model",
        "model must be 1 to 100 characters",
    ),
    (
        "ivr_menus_name_check",
        "name",
        "name must be 1 to 200 characters",
    ),
    (
        "conference_rooms_name_check",
        "name",
        "name must be 1 to 200 characters",
    ),
    (
        "conference_rooms_pin_check",
        "pin",
        "PIN must be 1 to 12 digits",
    ),
    (
        "ring_groups_name_check",
        "name",
        "name must be 1 to 200 characters",
    ),
    (
        "ring_groups_strategy_check",
        "strategy",
        "strategy must be simultaneous, sequential or round_robin",
    ),
    (
        "ring_groups_ring_timeout_secs_check",
        "ring_timeout_secs",
        "ring timeout must be 5 to 600 seconds",
    ),
    (
        "ring_groups_member_timeout_secs_check",
        "member_timeout_secs",
        "member timeout must be 5 to 300 seconds",
    ),
    (
        "ring_groups_fallback_kind_check",
        "fallback",
        "unknown fallback kind",
    ),
    (
        "ring_groups_fallback_check",
        "fallback",
        "fallback kind and target do not match",
    ),
    (
        "ring_groups_fallback_self_check",
        "fallback",
        "a ring group cannot fall back to itself",
    ),
    (
        "ring_group_members_position_check",
        "members",
        "member position must not be negative",
    ),
    (
        "ring_group_members_member_kind_check",
        "members",
        "member kind must be extension or external",
    ),
    (
        "ring_group_members_external_check",
        "members",
        "external member must be in E.164 form",
    ),
    (
        "ring_group_members_target_check",
        "members",
        "member kind and target do not match",
    ),
    ("numbers_e164_check", "e164", "number must be in E.164 form"),
    (
        "numbers_number_type_check",
        "number_type",
        "unknown number type",
    ),
    ("numbers_route_kind_check", "route", "unknown route kind"),
    (
        "numbers_route_check",
        "route",
        "route kind and target do not match",
    ),
    (
        "numbers_route_tenant_check",
        "route",
        "a number must belong to a business before it can be routed",
    ),
    (
        "trunks_name_check",
        "name",
        "name must be 1 to 100 characters",
    ),
    (
        "trunks_host_check",
        "host",
        "host must be 1 to 253 characters",
    ),
    ("trunks_port_check", "port", "port must be 1 to 65535"),
    (
        "trunks_transport_check",
        "transport",
        "trunk transport must be udp, tcp or tls",
    ),
    (
        "trunks_username_check",
        "username",
        "username must not be empty",
    ),
    (
        "trunks_from_domain_check",
        "from_domain",
        "from domain must not be empty",
    ),
    (
        "trunks_inbound_source_check",
        "inbound_source",
        "inbound source must not be empty",
    ),
    ("registrations_aor_check", "aor", "AOR must not be empty"),
    (
        "registrations_contact_uri_check",
        "contact_uri",
        "contact URI must not be empty",
    ),
    (
        "registrations_cseq_check",
        "cseq",
        "CSeq must not be negative",
    ),
    ("registrations_q_check", "q", "q must be between 0 and 1"),
    (
        "registrations_transport_check",
        "transport",
        "transport must be udp, tcp, tls, ws or wss",
    ),
    ("cdrs_direction_check", "direction", "unknown direction"),
    (
        "cdrs_duration_secs_check",
        "duration_secs",
        "duration must not be negative",
    ),
    (
        "cdrs_disposition_check",
        "disposition",
        "unknown disposition",
    ),
    (
        "cdrs_hangup_by_check",
        "hangup_by",
        "hangup_by must be caller, callee or system",
    ),
    (
        "cdrs_times_check",
        "ended_at",
        "a call cannot end or be answered before it started",
    ),
    (
        "cdrs_answered_check",
        "answered_at",
        "answered calls, and only they, have an answer time",
    ),
];

/// Maps a database-reported constraint violation. `constraint` is the constraint name when the
/// database gives it (PostgreSQL); otherwise it is recovered from SQLite's `message`.
pub(crate) fn violation(kind: ErrorKind, constraint: Option<&str>, message: &str) -> StoreError {
    match kind {
        ErrorKind::UniqueViolation => {
            let cols = message.strip_prefix("UNIQUE constraint failed: ");
            let found = UNIQUES
                .iter()
                .find(|u| constraint == Some(u.name) || cols == Some(u.sqlite_columns));
            match found {
                Some(u) => StoreError::conflict(u.field, u.message),
                None => StoreError::conflict("id", "this record already exists"),
            }
        }
        ErrorKind::CheckViolation => {
            let name = constraint.or_else(|| message.strip_prefix("CHECK constraint failed: "));
            match CHECKS.iter().find(|(n, _, _)| Some(*n) == name) {
                Some((_, field, msg)) => StoreError::invalid(field, *msg),
                None => StoreError::invalid("value", "a value is out of range"),
            }
        }
        ErrorKind::ForeignKeyViolation => {
            StoreError::invalid(FK_FIELD, "a referenced record does not exist")
        }
        ErrorKind::NotNullViolation => StoreError::invalid("value", "a required value is missing"),
        _ => StoreError::Internal(format!("database error: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_messages_map_like_postgres_names() {
        let a = violation(
            ErrorKind::UniqueViolation,
            None,
            "UNIQUE constraint failed: extensions.tenant_id, extensions.number",
        );
        let b = violation(
            ErrorKind::UniqueViolation,
            Some("extensions_number_key"),
            "duplicate key",
        );
        assert_eq!(a, b);
        assert_eq!(a.field(), Some("number"));
        let c = violation(
            ErrorKind::CheckViolation,
            None,
            "CHECK constraint failed: users_operator_tenant_check",
        );
        assert_eq!(c.field(), Some("tenant_id"));
    }
}
