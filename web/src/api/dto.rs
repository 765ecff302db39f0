//! The REST API's request and response bodies. Domain values are parsed from these at the edge
//! (`E164`, `ExtensionNumber`, ...); responses never carry secrets other than a password or token
//! the caller just asked to be generated.

use serde::{Deserialize, Serialize};
use store::{Extension, Number, RouteTarget, Tenant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `{"error": {...}}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// not_found, forbidden, unauthenticated, bad_request, conflict, invalid,
    /// too_many_requests, unavailable, internal
    pub code: String,
    pub message: String,
    /// The request field the error is about, when there is one.
    pub field: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Substring of the number or name (extensions only).
    pub q: Option<String>,
    /// 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// Default 0.
    pub offset: Option<u32>,
    /// Numbers only: just the unassigned inventory.
    pub unassigned: Option<bool>,
}

// ------------------------------------------------------------------ tenants

#[derive(Serialize, ToSchema)]
pub struct TenantOut {
    pub id: String,
    pub slug: String,
    pub sip_domain: String,
    pub name: String,
    pub suspended: bool,
    pub max_concurrent_calls: u32,
    pub max_outside_calls: u32,
    pub allow_international: bool,
    pub allow_premium: bool,
    pub created_at: String,
}

impl From<&Tenant> for TenantOut {
    fn from(t: &Tenant) -> Self {
        let s = &t.settings;
        Self {
            id: t.id.to_string(),
            slug: t.slug.to_string(),
            sip_domain: t.sip_domain.to_string(),
            name: s.name.clone(),
            suspended: t.suspended,
            max_concurrent_calls: s.max_concurrent_calls,
            max_outside_calls: s.max_outside_calls,
            allow_international: s.allow_international,
            allow_premium: s.allow_premium,
            created_at: rfc3339(t.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub items: Vec<TenantOut>,
    pub total: u64,
}

#[derive(Deserialize, ToSchema)]
pub struct TenantIn {
    pub name: String,
    /// Lowercase letters, digits and dashes.
    pub slug: String,
    /// Fixed after creation: it is the SIP digest realm.
    pub sip_domain: String,
    pub max_concurrent_calls: Option<u32>,
    pub max_outside_calls: Option<u32>,
    pub allow_international: Option<bool>,
    pub allow_premium: Option<bool>,
}

/// Absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
pub struct TenantPatch {
    pub name: Option<String>,
    pub max_concurrent_calls: Option<u32>,
    pub max_outside_calls: Option<u32>,
    pub allow_international: Option<bool>,
    pub allow_premium: Option<bool>,
    pub suspended: Option<bool>,
}

// ------------------------------------------------------------------ numbers

#[derive(Serialize, ToSchema)]
pub struct RouteOut {
    /// none, extension, ring_group, ivr, conference
    pub kind: String,
    pub id: Option<String>,
}

impl From<RouteTarget> for RouteOut {
    fn from(r: RouteTarget) -> Self {
        let id = match r {
            RouteTarget::None => None,
            RouteTarget::Extension(i) => Some(i.to_string()),
            RouteTarget::RingGroup(i) => Some(i.to_string()),
            RouteTarget::Ivr(i) => Some(i.to_string()),
            RouteTarget::Conference(i) => Some(i.to_string()),
        };
        Self {
            kind: r.kind().into(),
            id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NumberOut {
    pub id: String,
    /// E.164, e.g. +442079460018.
    pub e164: String,
    /// National form for UK numbers, e.g. 020 7946 0018.
    pub display: String,
    /// geographic, mobile, freephone, non_geographic, premium, personal, uan, voip, other
    pub number_type: String,
    /// `null`: in the operator's inventory.
    pub tenant_id: Option<String>,
    pub route: RouteOut,
}

impl From<&Number> for NumberOut {
    fn from(n: &Number) -> Self {
        Self {
            id: n.id.to_string(),
            e164: n.e164.to_string(),
            display: n.e164.display(),
            number_type: n.number_type.to_string(),
            tenant_id: n.tenant_id.map(|t| t.to_string()),
            route: n.route.into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NumberList {
    pub items: Vec<NumberOut>,
    pub total: u64,
}

/// One number, or a range from `first` to `last` (at most 10,000; all or none). Any common UK
/// form is accepted: `020 7946 0018`, `+44 (0)20 7946 0018`, `0044…`.
#[derive(Deserialize, ToSchema)]
pub struct NumbersIn {
    pub first: String,
    pub last: Option<String>,
    /// Give the new numbers straight to this business.
    pub tenant_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct AssignIn {
    /// The business, or `null` to return the number to the inventory (its route is reset).
    pub tenant_id: Option<String>,
}

/// Where calls to the number go: `{"extension": "201"}`, `{"ring_group": "20"}`, or
/// `{"extension": null}` for nowhere.
#[derive(Deserialize, ToSchema)]
pub struct RouteIn {
    /// An extension number of the business.
    pub extension: Option<String>,
    /// A ring group number of the business (instead of `extension`).
    pub ring_group: Option<String>,
}

// ------------------------------------------------------------------ ring groups

/// One member of a ring group, in ring order.
#[derive(Serialize, ToSchema)]
pub struct RingMemberOut {
    /// extension or external
    pub kind: String,
    /// The extension's number, or the phone number in E.164.
    pub number: String,
    /// The extension's id and name (extensions only).
    pub extension_id: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RingGroupOut {
    pub id: String,
    pub number: String,
    pub name: String,
    /// simultaneous, sequential or round_robin
    pub strategy: String,
    /// How long the whole group rings before the fallback.
    pub ring_timeout_secs: u32,
    /// How long each member rings (sequential, round_robin).
    pub member_timeout_secs: u32,
    pub members: Vec<RingMemberOut>,
    /// Where unanswered calls go; kind `none`: the caller hears busy or unavailable.
    pub fallback: RouteOut,
    /// The fallback's extension or ring group number.
    pub fallback_number: Option<String>,
    /// Position in `members` of whoever answered last (round robin starts after it).
    pub last_answered_member: Option<u32>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct RingGroupList {
    pub items: Vec<RingGroupOut>,
}

#[derive(Deserialize, ToSchema)]
pub struct RingGroupIn {
    /// 2 to 6 digits, not starting with 0, not 999 or 112, and not used by another extension or
    /// group of the business.
    pub number: String,
    pub name: String,
    /// simultaneous (default), sequential or round_robin
    pub strategy: Option<String>,
    /// 5 to 600, default 30.
    pub ring_timeout_secs: Option<u32>,
    /// 5 to 300, default 15.
    pub member_timeout_secs: Option<u32>,
    /// An extension or ring group number of the business; absent or "" for none.
    pub fallback: Option<String>,
    /// Extension numbers or phone numbers, in ring order.
    #[serde(default)]
    pub members: Vec<String>,
}

/// Absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
pub struct RingGroupPatch {
    pub name: Option<String>,
    pub strategy: Option<String>,
    pub ring_timeout_secs: Option<u32>,
    pub member_timeout_secs: Option<u32>,
    /// An extension or ring group number; "" for none.
    pub fallback: Option<String>,
    /// The whole member list in its new order (restarts the round-robin rotation if it
    /// changes).
    pub members: Option<Vec<String>>,
}

// ------------------------------------------------------------------ extensions

#[derive(Serialize, ToSchema)]
pub struct ExtensionOut {
    pub id: String,
    pub number: String,
    pub display_name: String,
    pub dnd: bool,
    pub no_answer_timeout_secs: u32,
    /// Calls the extension may take part in at once (made and received).
    pub max_concurrent_calls: u32,
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
    pub created_at: String,
}

impl From<&Extension> for ExtensionOut {
    fn from(e: &Extension) -> Self {
        let s = &e.settings;
        let f = |t: &Option<store::ForwardTarget>| t.as_ref().map(|t| t.to_string());
        Self {
            id: e.id.to_string(),
            number: e.number.to_string(),
            display_name: s.display_name.clone(),
            dnd: s.dnd,
            no_answer_timeout_secs: s.no_answer_timeout_secs,
            max_concurrent_calls: s.max_concurrent_calls,
            forward_always: f(&s.forwarding.always),
            forward_busy: f(&s.forwarding.busy),
            forward_no_answer: f(&s.forwarding.no_answer),
            created_at: rfc3339(e.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ExtensionList {
    pub items: Vec<ExtensionOut>,
    pub total: u64,
}

#[derive(Deserialize, ToSchema)]
pub struct ExtensionIn {
    /// 2 to 6 digits, not starting with 0 (UK national dialling), not 999 or 112 (emergency).
    pub number: String,
    pub display_name: String,
}

/// Absent fields are left as they are; an empty forward clears it.
#[derive(Deserialize, ToSchema)]
pub struct ExtensionPatch {
    pub display_name: Option<String>,
    pub dnd: Option<bool>,
    pub no_answer_timeout_secs: Option<u32>,
    /// 1 to 1000.
    pub max_concurrent_calls: Option<u32>,
    /// An extension number or a phone number; "" to clear.
    pub forward_always: Option<String>,
    pub forward_busy: Option<String>,
    pub forward_no_answer: Option<String>,
}

/// SIP credentials, returned once when generated.
#[derive(Serialize, ToSchema)]
pub struct SipCredentialsOut {
    pub username: String,
    pub password: String,
    /// The digest realm and the domain of the SIP URI.
    pub domain: String,
    /// Where phones register (host or host:port).
    pub registrar: String,
}

#[derive(Serialize, ToSchema)]
pub struct ExtensionCreated {
    pub extension: ExtensionOut,
    pub sip: SipCredentialsOut,
}

// ------------------------------------------------------------------ activity

#[derive(Serialize, ToSchema)]
pub struct RegistrationOut {
    pub extension: String,
    pub aor: String,
    pub contact: String,
    pub user_agent: Option<String>,
    pub source: String,
    /// udp, tcp, tls, ws, wss
    pub transport: String,
    pub expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct RegistrationList {
    pub items: Vec<RegistrationOut>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallParams {
    /// RFC 3339; calls that started at or after this.
    pub from: Option<String>,
    /// RFC 3339; calls that started before this.
    pub to: Option<String>,
    /// Substring of the caller, callee or dialled number.
    pub party: Option<String>,
    /// Only missed calls: inbound or internal calls nobody answered.
    pub missed: Option<bool>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct CallOut {
    pub id: String,
    pub call_id: String,
    /// internal, outbound, inbound, emergency
    pub direction: String,
    pub caller: String,
    pub callee: String,
    pub dialled: String,
    pub started_at: String,
    pub answered_at: Option<String>,
    pub ended_at: String,
    pub duration_secs: u32,
    /// answered, no_answer, busy, failed, cancelled, rejected
    pub disposition: String,
    pub hangup_cause: String,
    /// The name of the trunk that carried the call; null for calls that used no trunk
    /// (internal calls), or when the trunk has since been deleted.
    pub trunk: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CallList {
    pub items: Vec<CallOut>,
    pub total: u64,
}

// ------------------------------------------------------------------ calls in progress

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActiveCallParams {
    /// Business id: only that business's calls. A business token may name only its own.
    pub tenant: Option<String>,
}

/// A call going on right now.
#[derive(Serialize, ToSchema)]
pub struct ActiveCallOut {
    /// The engine's call number, unique while the server runs.
    pub id: u64,
    pub tenant_id: String,
    /// An extension number, or the outside caller's number.
    pub caller: String,
    pub dialled: String,
    /// The extension or number being rung or talked to (after forwarding).
    pub callee: String,
    /// ringing, answering, connected
    pub state: String,
    pub started_at: String,
    pub answered_at: Option<String>,
    /// Seconds since the answer; null while ringing.
    pub duration_secs: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct ActiveCallList {
    /// Oldest first.
    pub items: Vec<ActiveCallOut>,
}

// ------------------------------------------------------------------ users and devices

#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// admin or member
    pub role: String,
    pub disabled: bool,
    pub created_at: String,
}

impl From<&store::User> for UserOut {
    fn from(u: &store::User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.to_string(),
            display_name: u.display_name.clone(),
            role: u.role.to_string(),
            disabled: u.disabled,
            created_at: rfc3339(u.created_at),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserOut>,
}

#[derive(Deserialize, ToSchema)]
pub struct UserIn {
    pub email: String,
    pub display_name: Option<String>,
    /// admin or member (default member)
    pub role: Option<String>,
}

/// Absent fields are left as they are. Disabling signs the user out everywhere.
#[derive(Deserialize, ToSchema)]
pub struct UserPatch {
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// A one-time password, returned once: the user signs in with it and changes it.
#[derive(Serialize, ToSchema)]
pub struct OneTimePassword {
    pub user: UserOut,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceOut {
    pub id: String,
    pub username: String,
    pub mac_address: Option<String>,
    pub model: Option<String>,
    /// Last registration kept from bindings that are gone (expired and swept, or removed);
    /// bindings still stored may be newer (see the registrations endpoint).
    pub last_seen_at: Option<String>,
}

impl From<&store::SipCredential> for DeviceOut {
    fn from(c: &store::SipCredential) -> Self {
        Self {
            id: c.id.to_string(),
            username: c.username.to_string(),
            mac_address: c.mac_address.as_ref().map(|m| m.to_string()),
            model: c.model.clone(),
            last_seen_at: c.last_seen_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    pub items: Vec<DeviceOut>,
}

#[derive(Deserialize, ToSchema)]
pub struct DeviceIn {
    /// Any common form, e.g. 00:11:22:aa:bb:cc.
    pub mac_address: Option<String>,
    pub model: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceCreated {
    pub device: DeviceOut,
    pub sip: SipCredentialsOut,
}

// ------------------------------------------------------------------ trunks

/// A trunk as the API shows it: never its password, only whether it has one.
#[derive(Serialize, ToSchema)]
pub struct TrunkOut {
    pub id: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    /// udp, tcp or tls
    pub transport: String,
    pub username: Option<String>,
    pub has_password: bool,
    pub from_domain: Option<String>,
    pub priority: i32,
    pub emergency_priority: Option<i32>,
    pub enabled: bool,
    pub inbound_source: Option<String>,
    /// The inbound source is wider than /24 (IPv4) or /48 (IPv6), accepted because forced.
    pub force_wide_source: bool,
    /// Inbound calls are recognised by digest with the trunk's username and password.
    pub inbound_auth: bool,
    /// New calls per second at most, each way.
    pub calls_per_second: u32,
    /// Switchboard registers to the provider.
    pub register: bool,
    /// Where it registers (`host` or `host:port`); null: the trunk's host and port.
    pub registrar: Option<String>,
    /// Registration expiry asked for, in seconds.
    pub register_expires: u32,
    /// What the running server knows: health from the OPTIONS keepalive and
    /// the registration to the provider (null when no engine runs).
    pub state: Option<TrunkStateOut>,
}

/// A trunk's runtime state.
#[derive(Serialize, ToSchema)]
pub struct TrunkStateOut {
    /// `up`, `down` or `unknown` (not probed yet, or the keepalive is off).
    pub health: String,
    /// Status of the last OPTIONS response.
    pub last_status: Option<u16>,
    /// Round trip of the last answered OPTIONS, in milliseconds.
    pub latency_ms: Option<u64>,
    /// When the last OPTIONS finished (RFC 3339).
    pub checked_at: Option<String>,
    pub registration: Option<TrunkRegistrationOut>,
}

/// Registration to the provider.
#[derive(Serialize, ToSchema)]
pub struct TrunkRegistrationOut {
    /// `registered` or `failed`.
    pub state: String,
    /// Registered: when it runs out (refreshed before), RFC 3339.
    pub expires_at: Option<String>,
    /// Failed: the registrar's final status (null: no response).
    pub status: Option<u16>,
    /// Failed: why.
    pub reason: Option<String>,
}

impl From<crate::TrunkState> for TrunkStateOut {
    fn from(s: crate::TrunkState) -> Self {
        Self {
            health: s.health,
            last_status: s.last_status,
            latency_ms: s.latency_ms,
            checked_at: s.checked_at.map(rfc3339),
            registration: s.registration.map(|r| TrunkRegistrationOut {
                state: r.state,
                expires_at: r.expires_at.map(rfc3339),
                status: r.status,
                reason: r.reason,
            }),
        }
    }
}

impl TrunkOut {
    /// Adds what the running server knows about the trunk.
    pub fn with_state(mut self, state: Option<crate::TrunkState>) -> Self {
        self.state = state.map(TrunkStateOut::from);
        self
    }
}

impl From<&store::Trunk> for TrunkOut {
    fn from(t: &store::Trunk) -> Self {
        let s = &t.settings;
        Self {
            id: t.id.to_string(),
            name: s.name.clone(),
            host: s.host.clone(),
            port: s.port,
            transport: s.transport.to_string(),
            username: s.username.clone(),
            has_password: s.password.is_some(),
            from_domain: s.from_domain.clone(),
            priority: s.priority,
            emergency_priority: s.emergency_priority,
            enabled: s.enabled,
            inbound_source: s.inbound_source.clone(),
            force_wide_source: s.force_wide_source,
            inbound_auth: s.inbound_auth,
            calls_per_second: s.calls_per_second,
            register: s.register,
            registrar: s.registrar.clone(),
            register_expires: s.register_expires,
            state: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TrunkList {
    pub items: Vec<TrunkOut>,
}

/// For POST every required field; for PATCH absent fields are left as they are
/// (`"password": ""` removes the password).
#[derive(Deserialize, ToSchema)]
pub struct TrunkIn {
    pub name: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub transport: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from_domain: Option<String>,
    pub priority: Option<i32>,
    pub emergency_priority: Option<i32>,
    pub enabled: Option<bool>,
    /// An IP address or CIDR; a block wider than /24 (IPv4) or /48 (IPv6)
    /// is refused (422) unless `force_wide_source` is true.
    pub inbound_source: Option<String>,
    pub force_wide_source: Option<bool>,
    /// Recognise inbound calls by digest (needs username and password).
    pub inbound_auth: Option<bool>,
    /// 1 to 1000, default 10.
    pub calls_per_second: Option<u32>,
    /// Register to the provider (needs username and password).
    pub register: Option<bool>,
    /// `host` or `host:port`; `""` clears it (the trunk's host and port).
    pub registrar: Option<String>,
    /// 60 to 86400 seconds, default 3600.
    pub register_expires: Option<u32>,
}

// ------------------------------------------------------------------ API tokens

/// An API token (never its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    pub id: String,
    pub name: String,
    /// The first characters of the token, as the web admin lists them.
    pub prefix: String,
    /// The business it reaches; null for an operator (platform) token.
    pub tenant_id: Option<String>,
    pub created_at: String,
    /// When it stops working (set in the web admin when it is created); null: until revoked.
    /// A token also stops when its creator is disabled or no longer an admin of the business
    /// (or an operator, for a platform token).
    pub expires_at: Option<String>,
}
