//! The `Directory` trait: everything the engine, the web app and the CLI read or write.
//!
//! Tenancy rule: every method that touches tenant data takes a [`TenantId`] and every query is
//! scoped by it, so an id that belongs to another tenant behaves exactly like an id that does not
//! exist (`NotFound`). The few intentionally cross-tenant methods say so in their docs.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;
use crate::model::*;
use crate::registration_batch::RegistrationChange;

#[async_trait]
pub trait Directory: crate::web::WebStore + Send + Sync + 'static {
    // ------------------------------------------------------------ lifecycle

    /// Applies the embedded migrations that are not applied yet.
    async fn migrate(&self) -> Result<()>;

    /// Is the database reachable, and are all embedded migrations applied? Never fails: problems
    /// are reported inside [`Health`].
    async fn health(&self) -> Health;

    /// Closes the pool (waits for connections to be returned).
    async fn close(&self);

    // ------------------------------------------------------------ change events

    /// Appends `change` to the change log for servers in other processes (PostgreSQL also
    /// sends it with NOTIFY). `origin` names the writing process ([`crate::ChangeBus::origin`]).
    /// A directory never shared between processes (a test double) may keep this default,
    /// which records nothing.
    async fn record_change(
        &self,
        origin: uuid::Uuid,
        change: &crate::changes::Change,
    ) -> Result<()> {
        let _ = (origin, change);
        Ok(())
    }

    /// Changes recorded by other processes from now on, in order, with a
    /// [`crate::changes::Delivery::Resync`] wherever some may have been missed. PostgreSQL:
    /// LISTEN (in place when this returns); SQLite: a poll of the change log every
    /// `options.poll`. The default (test doubles) fails: there is nothing to watch.
    async fn watch_changes(
        &self,
        options: crate::changes::WatchOptions,
    ) -> Result<crate::changes::ChangeWatch> {
        let _ = options;
        Err(crate::error::StoreError::Internal(
            "this directory does not deliver changes across processes".to_owned(),
        ))
    }

    // ------------------------------------------------------------ tenants

    async fn create_tenant(&self, new: &NewTenant) -> Result<Tenant>;
    async fn get_tenant(&self, id: TenantId) -> Result<Tenant>;
    /// Cross-tenant by nature: the registrar and the web login find the tenant by its SIP domain.
    async fn get_tenant_by_domain(&self, domain: &SipDomain) -> Result<Tenant>;
    /// Operator view, ordered by name.
    async fn list_tenants(&self, page: Page) -> Result<Paged<Tenant>>;
    async fn update_tenant(&self, id: TenantId, settings: &TenantSettings) -> Result<Tenant>;
    async fn set_tenant_suspended(&self, id: TenantId, suspended: bool) -> Result<Tenant>;

    // ------------------------------------------------------------ users

    /// `password_hash` is an argon2id PHC string made by the caller.
    async fn create_user(&self, new: &NewUser) -> Result<User>;
    /// Cross-tenant by nature (login). Returns disabled users too: the caller decides.
    async fn get_user_by_email(&self, email: &Email) -> Result<User>;
    async fn get_user(&self, tenant: TenantId, id: UserId) -> Result<User>;
    /// Ordered by e-mail.
    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>>;
    /// Platform operators (users without a tenant).
    async fn list_operators(&self) -> Result<Vec<User>>;
    /// `tenant` is `None` for operators.
    async fn set_user_password_hash(
        &self,
        tenant: Option<TenantId>,
        id: UserId,
        hash: &PasswordHash,
    ) -> Result<()>;
    async fn set_user_disabled(
        &self,
        tenant: Option<TenantId>,
        id: UserId,
        disabled: bool,
    ) -> Result<()>;

    // ------------------------------------------------------------ extensions

    /// Creates the extension and, when given, its first SIP credential in one transaction.
    async fn create_extension(
        &self,
        tenant: TenantId,
        new: &NewExtension,
        credential: Option<&NewCredential>,
    ) -> Result<(Extension, Option<SipCredential>)>;
    async fn get_extension(&self, tenant: TenantId, id: ExtensionId) -> Result<Extension>;
    async fn get_extension_by_number(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
    ) -> Result<Extension>;
    /// Ordered by number. `search` matches a substring of the number or (case-insensitively) the
    /// display name.
    async fn list_extensions(
        &self,
        tenant: TenantId,
        search: Option<&str>,
        page: Page,
    ) -> Result<Paged<Extension>>;
    async fn update_extension(
        &self,
        tenant: TenantId,
        id: ExtensionId,
        settings: &ExtensionSettings,
    ) -> Result<Extension>;
    /// Deletes the extension, its credentials and bindings, and removes it from ring groups.
    /// Refused (`Conflict`, field "route") while a public number or a ring group fallback routes to it.
    async fn delete_extension(&self, tenant: TenantId, id: ExtensionId) -> Result<()>;
    /// All rows or none, in one transaction. A failing row is reported as `StoreError::Row`.
    async fn import_extensions(
        &self,
        tenant: TenantId,
        rows: &[ImportExtension],
    ) -> Result<Vec<Extension>>;

    /// What a short number dialled inside the tenant reaches (`NotFound` if nothing).
    async fn resolve_dialable(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
    ) -> Result<RouteTarget>;

    // ------------------------------------------------------------ SIP credentials

    async fn create_credential(
        &self,
        tenant: TenantId,
        extension: ExtensionId,
        new: &NewCredential,
    ) -> Result<SipCredential>;
    /// The registrar's lookup: one indexed query.
    async fn get_credential_by_username(
        &self,
        tenant: TenantId,
        username: &SipUsername,
    ) -> Result<SipCredential>;
    async fn get_credential(&self, tenant: TenantId, id: CredentialId) -> Result<SipCredential>;
    /// Cross-tenant by nature: phone provisioning knows only the MAC address.
    async fn get_credential_by_mac(&self, mac: &MacAddress) -> Result<SipCredential>;
    async fn list_credentials(
        &self,
        tenant: TenantId,
        extension: ExtensionId,
    ) -> Result<Vec<SipCredential>>;
    /// Replaces the HA1s (new password). Existing registrations are kept; the caller may remove them.
    async fn regenerate_credential(
        &self,
        tenant: TenantId,
        id: CredentialId,
        ha1_md5: &Ha1Md5,
        ha1_sha256: &Ha1Sha256,
    ) -> Result<SipCredential>;
    async fn delete_credential(&self, tenant: TenantId, id: CredentialId) -> Result<()>;

    // ------------------------------------------------------------ IVR menus, conference rooms

    async fn create_ivr_menu(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
        name: &str,
    ) -> Result<IvrMenu>;
    async fn list_ivr_menus(&self, tenant: TenantId) -> Result<Vec<IvrMenu>>;
    async fn create_conference_room(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
        name: &str,
        pin: Option<&Pin>,
    ) -> Result<ConferenceRoom>;
    async fn list_conference_rooms(&self, tenant: TenantId) -> Result<Vec<ConferenceRoom>>;

    // ------------------------------------------------------------ ring groups

    async fn create_ring_group(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
        settings: &RingGroupSettings,
    ) -> Result<RingGroup>;
    async fn get_ring_group(&self, tenant: TenantId, id: RingGroupId) -> Result<RingGroup>;
    /// Ordered by number, members included.
    async fn list_ring_groups(&self, tenant: TenantId) -> Result<Vec<RingGroup>>;
    async fn update_ring_group(
        &self,
        tenant: TenantId,
        id: RingGroupId,
        settings: &RingGroupSettings,
    ) -> Result<RingGroup>;
    /// Replaces the member list (ring order = slice order) in one transaction.
    async fn set_ring_group_members(
        &self,
        tenant: TenantId,
        id: RingGroupId,
        members: &[RingGroupMember],
    ) -> Result<RingGroup>;
    async fn set_ring_group_last_answered(
        &self,
        tenant: TenantId,
        id: RingGroupId,
        position: Option<u32>,
    ) -> Result<()>;
    /// Refused (`Conflict`, field "route") while a public number or another group's fallback routes to it.
    async fn delete_ring_group(&self, tenant: TenantId, id: RingGroupId) -> Result<()>;

    // ------------------------------------------------------------ public numbers

    /// Adds a number to the operator inventory (`tenant` = None) or straight to a tenant.
    async fn add_number(&self, e164: &E164, tenant: Option<TenantId>) -> Result<Number>;
    /// Adds a number straight to a tenant together with its route, in one statement: either the
    /// number exists routed, or nothing was written (`Invalid`, field "route", when the target is
    /// not the tenant's).
    async fn add_number_routed(
        &self,
        e164: &E164,
        tenant: TenantId,
        route: RouteTarget,
    ) -> Result<Number>;
    /// Adds `count` consecutive numbers starting at `first` (at most 10,000), all or none.
    async fn add_number_range(
        &self,
        first: &E164,
        count: u32,
        tenant: Option<TenantId>,
    ) -> Result<Vec<Number>>;
    /// Ordered by E.164.
    async fn list_numbers(&self, scope: NumberScope, page: Page) -> Result<Paged<Number>>;
    /// Operator action: gives the number to a tenant or back to inventory. The route is reset.
    async fn assign_number(&self, id: NumberId, tenant: Option<TenantId>) -> Result<Number>;
    /// The target must belong to `tenant`, and so must the number.
    async fn set_number_route(
        &self,
        tenant: TenantId,
        id: NumberId,
        route: RouteTarget,
    ) -> Result<Number>;
    /// One number, if it is inside `scope` (`NotFound` otherwise).
    async fn get_number(&self, scope: NumberScope, id: NumberId) -> Result<Number>;
    /// Cross-tenant by nature: an inbound trunk call names only the dialled number. Returns the
    /// owning tenant (if any) and the route.
    async fn get_number_by_e164(&self, e164: &E164) -> Result<Number>;
    /// Operator action; refused for a number that has a tenant.
    async fn delete_number(&self, id: NumberId) -> Result<()>;

    // ------------------------------------------------------------ trunks (platform-wide)

    async fn create_trunk(&self, settings: &TrunkSettings) -> Result<Trunk>;
    async fn get_trunk(&self, id: TrunkId) -> Result<Trunk>;
    /// All trunks by priority, then name.
    async fn list_trunks(&self) -> Result<Vec<Trunk>>;
    async fn update_trunk(&self, id: TrunkId, settings: &TrunkSettings) -> Result<Trunk>;
    async fn delete_trunk(&self, id: TrunkId) -> Result<()>;
    /// Enabled trunks by priority: the outbound hunt order.
    async fn list_outbound_trunks(&self) -> Result<Vec<Trunk>>;
    /// Enabled trunks with an emergency priority, in that order: the 999/112 hunt order.
    async fn list_emergency_trunks(&self) -> Result<Vec<Trunk>>;

    // ------------------------------------------------------------ registrations

    /// Inserts or refreshes the binding keyed by (credential, contact URI).
    async fn upsert_registration(
        &self,
        tenant: TenantId,
        binding: &Binding,
    ) -> Result<Registration>;
    /// Returns whether a binding was removed.
    async fn remove_registration(
        &self,
        tenant: TenantId,
        credential: CredentialId,
        contact_uri: &str,
    ) -> Result<bool>;
    /// Returns how many bindings were removed. The newest `updated_at` among them is kept as
    /// the credential's `last_seen_at`.
    async fn remove_registrations_for_credential(
        &self,
        tenant: TenantId,
        credential: CredentialId,
    ) -> Result<u64>;
    async fn list_registrations(
        &self,
        tenant: TenantId,
        extension: ExtensionId,
    ) -> Result<Vec<Registration>>;
    /// A tenant's unexpired bindings with their extension numbers, ordered by number (one query:
    /// the admin view of who is registered).
    async fn list_tenant_registrations(
        &self,
        tenant: TenantId,
        now: OffsetDateTime,
    ) -> Result<Vec<(ExtensionNumber, Registration)>>;
    /// Cross-tenant by nature: loads the location service at start-up.
    async fn list_unexpired_registrations(&self, now: OffsetDateTime) -> Result<Vec<Registration>>;
    /// When each of a tenant's extensions last registered: the newest `updated_at` of its
    /// bindings (expired ones included until they are swept) or `last_seen_at` of its
    /// credentials, whichever is later. Extensions that never registered are left out.
    async fn list_last_registered(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(ExtensionId, OffsetDateTime)>>;
    /// Deletes bindings with `expires_at <= now`; returns how many. Before they go, the newest
    /// `updated_at` of each credential's deleted bindings becomes its `last_seen_at` (if later),
    /// so "last registered" outlives the binding without the registrar writing anything more.
    async fn delete_expired_registrations(&self, now: OffsetDateTime) -> Result<u64>;

    /// The registrar's group commit: applies `changes` in order. Backends override this with one
    /// transaction (all or none); this default applies them one by one, for test doubles.
    async fn apply_registration_batch(&self, changes: &[RegistrationChange]) -> Result<()> {
        for change in changes {
            match change {
                RegistrationChange::Upsert { tenant, binding } => {
                    self.upsert_registration(*tenant, binding).await?;
                }
                RegistrationChange::Remove {
                    tenant,
                    credential,
                    contact_uri,
                } => {
                    self.remove_registration(*tenant, *credential, contact_uri)
                        .await?;
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ CDRs

    /// Idempotent by `cdr.id`: returns `true` if written now, `false` if it was already there.
    async fn insert_cdr(&self, cdr: &NewCdr) -> Result<bool>;
    /// Several records at once, all or none (one transaction where the
    /// backend has them); idempotent by id. Returns how many were new.
    async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<u64> {
        let mut fresh = 0;
        for c in cdrs {
            fresh += u64::from(self.insert_cdr(c).await?);
        }
        Ok(fresh)
    }
    /// Newest first.
    async fn list_cdrs(&self, tenant: TenantId, query: &CdrQuery) -> Result<Paged<Cdr>>;
    /// The tenant's calls started in `[from, to)`: the count, the missed count, and the
    /// `busiest` extensions by calls they made or took (caller or callee is their number).
    async fn call_summary(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        busiest: u32,
    ) -> Result<CallSummary>;
    /// The tenant's calls started in `[from, to)`, oldest first, at most `limit`: when each
    /// started and how it went (the dashboard's charts).
    async fn list_call_starts(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<CallStart>>;
    /// Cross-tenant by nature (the operator's dashboard): how many calls, of every tenant,
    /// started in `[from, to)`.
    async fn count_all_calls(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<u64>;
}
