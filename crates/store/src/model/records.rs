//! The records the directory stores, and the inputs that create or change them.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use time::OffsetDateTime;

use super::*;

/// Offset pagination. `limit` is clamped to 1..=1000 by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u32,
}

impl Page {
    pub const MAX_LIMIT: u32 = 1000;
    pub fn new(limit: u32, offset: u32) -> Self {
        Self { limit, offset }
    }
    pub fn first(limit: u32) -> Self {
        Self { limit, offset: 0 }
    }
    /// The limit the store applies.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: 50,
            offset: 0,
        }
    }
}

/// One page of results and the total number of matching rows.
#[derive(Clone, Debug, Serialize)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
}

// ---------------------------------------------------------------- tenants

/// What a tenant admin or operator may change after creation. The SIP domain is fixed: it is the
/// digest realm every stored HA1 was computed over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantSettings {
    pub name: String,
    pub max_concurrent_calls: u32,
    pub max_outside_calls: u32,
    pub allow_international: bool,
    pub allow_premium: bool,
    /// Caller ID for outside calls when the caller has no number of its own.
    pub main_number: Option<E164>,
    /// IANA time-zone name ("Europe/London") the admin shows this business's times in.
    pub time_zone: String,
}

/// The time zone a business gets unless it chooses another.
pub const DEFAULT_TIME_ZONE: &str = "Europe/London";

impl TenantSettings {
    /// Defaults: 10 concurrent calls, 10 outside calls, no international, no premium,
    /// Europe/London.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            max_concurrent_calls: 10,
            max_outside_calls: 10,
            allow_international: false,
            allow_premium: false,
            main_number: None,
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewTenant {
    pub slug: Slug,
    pub sip_domain: SipDomain,
    pub settings: TenantSettings,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: Slug,
    pub sip_domain: SipDomain,
    pub suspended: bool,
    pub settings: TenantSettings,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

// ---------------------------------------------------------------- users

#[derive(Clone, Debug)]
pub struct NewUser {
    /// `None` exactly when `role` is `Operator`.
    pub tenant_id: Option<TenantId>,
    pub email: Email,
    pub display_name: String,
    pub role: Role,
    pub password_hash: PasswordHash,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: Email,
    pub display_name: String,
    pub role: Role,
    pub password_hash: PasswordHash,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

// ---------------------------------------------------------------- extensions

/// Call forwarding of an extension. Targets are other extensions or outside numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Forwarding {
    pub always: Option<ForwardTarget>,
    pub busy: Option<ForwardTarget>,
    pub no_answer: Option<ForwardTarget>,
}

/// The changeable settings of an extension (everything but its number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtensionSettings {
    pub display_name: String,
    /// The web user this extension belongs to (same tenant).
    pub user_id: Option<UserId>,
    /// 5..=300, default 25.
    pub no_answer_timeout_secs: u32,
    pub forwarding: Forwarding,
    pub dnd: bool,
    /// Calls this extension may take part in at once, made and received
    /// together: 1..=1000, default [`ExtensionSettings::DEFAULT_CALL_LIMIT`].
    pub max_concurrent_calls: u32,
}

impl ExtensionSettings {
    /// The per-extension concurrent-call limit of a new extension.
    pub const DEFAULT_CALL_LIMIT: u32 = 8;

    pub fn new(display_name: impl Into<String>) -> Self {
        Self {
            display_name: display_name.into(),
            user_id: None,
            no_answer_timeout_secs: 25,
            forwarding: Forwarding::default(),
            dnd: false,
            max_concurrent_calls: Self::DEFAULT_CALL_LIMIT,
        }
    }
}

#[derive(Clone, Debug)]
pub struct NewExtension {
    pub number: ExtensionNumber,
    pub settings: ExtensionSettings,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Extension {
    pub id: ExtensionId,
    pub tenant_id: TenantId,
    pub number: ExtensionNumber,
    pub settings: ExtensionSettings,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One row of a bulk import: an extension and optionally its first SIP credential.
#[derive(Clone, Debug)]
pub struct ImportExtension {
    pub extension: NewExtension,
    pub credential: Option<NewCredential>,
}

// ---------------------------------------------------------------- SIP credentials (devices)

/// A SIP credential. The HA1s are computed by the caller over realm = the tenant's SIP domain.
#[derive(Clone, Debug)]
pub struct NewCredential {
    pub username: SipUsername,
    pub ha1_md5: Ha1Md5,
    pub ha1_sha256: Ha1Sha256,
    /// Globally unique: a phone fetching its configuration identifies itself only by MAC.
    pub mac_address: Option<MacAddress>,
    pub model: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipCredential {
    pub id: CredentialId,
    pub tenant_id: TenantId,
    pub extension_id: ExtensionId,
    /// The number of the extension the credential belongs to (joined in for the registrar).
    pub extension_number: ExtensionNumber,
    pub username: SipUsername,
    pub ha1_md5: Ha1Md5,
    pub ha1_sha256: Ha1Sha256,
    pub mac_address: Option<MacAddress>,
    pub model: Option<String>,
    pub created_at: OffsetDateTime,
    /// When a registration of it was last refreshed, as kept when its bindings were removed
    /// (expiry sweep, or removal of all its bindings); current bindings may be newer.
    pub last_seen_at: Option<OffsetDateTime>,
}

// ---------------------------------------------------------------- dial plan targets

/// Where a call to a public number (or a ring group's fallback) goes. Always inside one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RouteTarget {
    None,
    Extension(ExtensionId),
    RingGroup(RingGroupId),
    Ivr(IvrMenuId),
    Conference(ConferenceRoomId),
}

impl RouteTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            RouteTarget::None => "none",
            RouteTarget::Extension(_) => "extension",
            RouteTarget::RingGroup(_) => "ring_group",
            RouteTarget::Ivr(_) => "ivr",
            RouteTarget::Conference(_) => "conference",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IvrMenu {
    pub id: IvrMenuId,
    pub tenant_id: TenantId,
    pub number: ExtensionNumber,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConferenceRoom {
    pub id: ConferenceRoomId,
    pub tenant_id: TenantId,
    pub number: ExtensionNumber,
    pub name: String,
    pub pin: Option<Pin>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

// ---------------------------------------------------------------- public numbers

/// Which numbers to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberScope {
    /// Operator view: every number on the platform.
    All,
    /// Operator inventory: numbers not given to any tenant.
    Unassigned,
    /// A tenant's numbers.
    Tenant(TenantId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Number {
    pub id: NumberId,
    pub e164: E164,
    pub number_type: NumberType,
    /// `None`: operator inventory.
    pub tenant_id: Option<TenantId>,
    pub route: RouteTarget,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

// ---------------------------------------------------------------- trunks

/// Everything about a trunk that is set by the operator. `transport` must be udp, tcp or tls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkSettings {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from_domain: Option<String>,
    /// Lower goes first.
    pub priority: i32,
    /// Order for 999/112 calls, lower first; `None` = never used for emergency calls.
    pub emergency_priority: Option<i32>,
    pub enabled: bool,
    /// IP address or CIDR that inbound INVITEs from this trunk come from.
    /// A block wider than /24 (IPv4) or /48 (IPv6) is refused unless
    /// `force_wide_source` is set.
    pub inbound_source: Option<String>,
    /// Accept an `inbound_source` wider than /24 (IPv4) or /48 (IPv6).
    pub force_wide_source: bool,
    /// Inbound calls from this carrier are recognised by digest: the carrier
    /// answers Switchboard's 407 with this trunk's username and password
    /// (both required). Its source address alone is then not trusted.
    pub inbound_auth: bool,
    /// New calls per second at most through this trunk, each way (1 to
    /// 1000, default [`TrunkSettings::DEFAULT_CALLS_PER_SECOND`]).
    pub calls_per_second: u32,
    /// Register to the provider (username and password required).
    pub register: bool,
    /// Where to register, `host` or `host:port`; `None`: the trunk's host and port.
    pub registrar: Option<String>,
    /// Registration expiry asked for, in seconds (60 to 86400, default 3600).
    pub register_expires: u32,
}

impl TrunkSettings {
    /// Everything wrong with these settings, in form order, as (field, message); empty when
    /// they can be stored. The store refuses settings with the first of them; a form shows
    /// them all at once.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let s = self;
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let len = s.name.trim().chars().count();
        if len == 0 || len > 100 {
            out.push(("name", "name must be 1 to 100 characters".into()));
        }
        if s.host.trim().is_empty() || s.host.len() > 253 || s.host.contains(char::is_whitespace) {
            out.push((
                "host",
                format!(
                    "{:?} is not a valid host: expected a hostname or IP address",
                    s.host
                ),
            ));
        }
        if s.port == 0 {
            out.push(("port", "port must be 1 to 65535".into()));
        }
        if !matches!(
            s.transport,
            Transport::Udp | Transport::Tcp | Transport::Tls
        ) {
            out.push((
                "transport",
                "trunk transport must be udp, tcp or tls".into(),
            ));
        }
        for (field, v) in [("username", &s.username), ("from_domain", &s.from_domain)] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                out.push((field, format!("{field} must not be empty when given")));
            }
        }
        if let Some(src) = &s.inbound_source {
            let parsed = match src.split_once('/') {
                None => src.parse::<IpAddr>().ok().map(|ip| (ip, None)),
                Some((ip, bits)) => match (ip.parse::<IpAddr>(), bits.parse::<u8>()) {
                    (Ok(ip @ IpAddr::V4(_)), Ok(b)) if b <= 32 => Some((ip, Some(b))),
                    (Ok(ip @ IpAddr::V6(_)), Ok(b)) if b <= 128 => Some((ip, Some(b))),
                    _ => None,
                },
            };
            match parsed {
                None => out.push((
                    "inbound_source",
                    format!(
                        "{src:?} is not a valid inbound source: expected an IP address or CIDR such as 192.0.2.0/24"
                    ),
                )),
                Some((ip, bits)) => {
                    let min = if ip.is_ipv4() {
                        TrunkSettings::MIN_V4_PREFIX
                    } else {
                        TrunkSettings::MIN_V6_PREFIX
                    };
                    if bits.is_some_and(|b| b < min) && !s.force_wide_source {
                        out.push((
                            "inbound_source",
                            format!(
                                "{src:?} is wider than /{min}: anyone in it could call in as this trunk. \
                                 Give the carrier's own addresses (/{min} or narrower), or force the wide block \
                                 if the carrier really sends from all of it"
                            ),
                        ));
                    }
                }
            }
        }
        if !(1..=1000).contains(&s.calls_per_second) {
            out.push((
                "calls_per_second",
                "calls per second must be 1 to 1000".into(),
            ));
        }
        let has_credentials =
            s.username.is_some() && s.password.as_ref().is_some_and(|p| !p.expose().is_empty());
        if s.inbound_auth && !has_credentials {
            out.push((
                "inbound_auth",
                "inbound digest authentication needs the trunk's username and password".into(),
            ));
        }
        if s.register && !has_credentials {
            out.push((
                "register",
                "registering to the provider needs the trunk's username and password".into(),
            ));
        }
        if let Some(r) = &s.registrar {
            let r = r.trim();
            if r.is_empty() || r.len() > 260 || r.contains(char::is_whitespace) {
                out.push((
                    "registrar",
                    format!("{r:?} is not a valid registrar: expected host or host:port"),
                ));
            }
        }
        if !(60..=86400).contains(&s.register_expires) {
            out.push((
                "register_expires",
                "registration expiry must be 60 to 86400 seconds".into(),
            ));
        }
        out
    }

    pub const DEFAULT_CALLS_PER_SECOND: u32 = 10;
    pub const DEFAULT_REGISTER_EXPIRES: u32 = 3600;
    /// The narrowest prefixes accepted without `force_wide_source`.
    pub const MIN_V4_PREFIX: u8 = 24;
    pub const MIN_V6_PREFIX: u8 = 48;

    /// A UDP trunk to `host:port` with every optional setting at its default
    /// (enabled, priority 100, no credentials).
    pub fn new(name: &str, host: &str, port: u16) -> Self {
        TrunkSettings {
            name: name.to_owned(),
            host: host.to_owned(),
            port,
            transport: Transport::Udp,
            username: None,
            password: None,
            from_domain: None,
            priority: 100,
            emergency_priority: None,
            enabled: true,
            inbound_source: None,
            force_wide_source: false,
            inbound_auth: false,
            calls_per_second: Self::DEFAULT_CALLS_PER_SECOND,
            register: false,
            registrar: None,
            register_expires: Self::DEFAULT_REGISTER_EXPIRES,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trunk {
    pub id: TrunkId,
    pub settings: TrunkSettings,
    pub created_at: OffsetDateTime,
}

// ---------------------------------------------------------------- registrations

/// A registration binding as the registrar wants it persisted. Keyed by (credential, contact).
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub extension_id: ExtensionId,
    pub credential_id: CredentialId,
    pub aor: String,
    pub contact_uri: String,
    pub call_id: String,
    pub cseq: u32,
    pub q: Option<f32>,
    pub expires_at: OffsetDateTime,
    /// `+sip.instance` (RFC 5626).
    pub instance_id: Option<String>,
    pub reg_id: Option<u32>,
    /// Where the REGISTER came from (the flow).
    pub source_addr: SocketAddr,
    pub transport: Transport,
    pub local_addr: Option<SocketAddr>,
    pub user_agent: Option<String>,
    /// Path header value (RFC 3327), as received.
    pub path: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    pub id: RegistrationId,
    pub tenant_id: TenantId,
    pub binding: Binding,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

// ---------------------------------------------------------------- CDRs

/// A call detail record as written by the engine. The id is chosen by the engine so a retried
/// write is recognised and ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewCdr {
    pub id: CdrId,
    pub tenant_id: TenantId,
    pub call_id: String,
    pub direction: Direction,
    pub caller: String,
    pub callee: String,
    pub dialled: String,
    pub trunk_id: Option<TrunkId>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub answered_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    /// Billable seconds, from answer to end.
    pub duration_secs: u32,
    pub disposition: Disposition,
    pub hangup_cause: String,
    pub hangup_by: HangupBy,
    pub transferred_by: Option<String>,
    pub transferred_to: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cdr {
    #[serde(flatten)]
    pub record: NewCdr,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The name of the trunk that carried the call (`record.trunk_id`), when it still exists.
    pub trunk_name: Option<String>,
}

/// Filters for listing CDRs. `party` matches a substring of caller, callee or dialled;
/// `missed` keeps only missed calls (see [`CallSummary::missed`]).
#[derive(Clone, Debug, Default)]
pub struct CdrQuery {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub party: Option<String>,
    pub missed: bool,
    pub page: Page,
}

/// A business's calls over a time range, for its dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallSummary {
    /// Calls started in the range.
    pub calls: u64,
    /// Of those, calls to someone in the business (inbound or internal) never answered.
    pub missed: u64,
    /// The extensions that made or took the most of those calls, most first (ties by number).
    pub busiest: Vec<BusyExtension>,
}

/// When one call started and how it went: what the dashboard's charts count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallStart {
    pub started_at: OffsetDateTime,
    pub direction: Direction,
    pub answered: bool,
}

impl CallStart {
    /// Someone in the business was called (inbound or internal) and nobody answered: the
    /// same rule as [`CdrQuery::missed`] and [`CallSummary::missed`].
    pub fn missed(&self) -> bool {
        !self.answered && matches!(self.direction, Direction::Inbound | Direction::Internal)
    }
}

/// One extension and how many calls of a range it made or took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusyExtension {
    pub id: ExtensionId,
    pub number: ExtensionNumber,
    pub display_name: String,
    pub calls: u64,
}

// ---------------------------------------------------------------- ring groups

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "target", rename_all = "snake_case")]
pub enum RingGroupMember {
    Extension(ExtensionId),
    External(E164),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RingGroupSettings {
    pub name: String,
    pub strategy: RingStrategy,
    /// Whole group, 5..=600.
    pub ring_timeout_secs: u32,
    /// Per member for sequential/round robin, 5..=300.
    pub member_timeout_secs: u32,
    /// Where unanswered calls go (`None` = hang up / busy).
    pub fallback: RouteTarget,
}

impl RingGroupSettings {
    pub fn new(name: impl Into<String>, strategy: RingStrategy) -> Self {
        Self {
            name: name.into(),
            strategy,
            ring_timeout_secs: 30,
            member_timeout_secs: 15,
            fallback: RouteTarget::None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RingGroup {
    pub id: RingGroupId,
    pub tenant_id: TenantId,
    pub number: ExtensionNumber,
    pub settings: RingGroupSettings,
    /// In ring order.
    pub members: Vec<RingGroupMember>,
    /// Index in `members` of the member that answered last (round robin starts after it). Reset
    /// to `None` whenever the member list changes.
    pub last_answered_member: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

// ---------------------------------------------------------------- health

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    /// "postgres" or "sqlite".
    pub backend: &'static str,
    pub reachable: bool,
    /// Embedded migration versions applied successfully.
    pub applied: Vec<i64>,
    /// Embedded migration versions not applied yet.
    pub pending: Vec<i64>,
    pub error: Option<String>,
}

impl Health {
    /// Reachable and fully migrated.
    pub fn is_ok(&self) -> bool {
        self.reachable && self.pending.is_empty() && self.error.is_none()
    }
}
