//! A directory wrapper whose `insert_cdr` fails on demand.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use store::*;
use time::OffsetDateTime;

/// Delegates to a real directory; `insert_cdr` fails with `Unavailable` for
/// the first `fail_first` calls and while `down` is set, and with `Invalid`
/// for ids in `reject`.
pub struct Flaky {
    pub inner: Arc<dyn Directory>,
    pub fail_first: AtomicUsize,
    pub down: AtomicBool,
    pub reject: Mutex<Vec<CdrId>>,
    pub attempts: AtomicUsize,
    pub written: Mutex<Vec<CdrId>>,
}

#[async_trait]
impl Directory for Flaky {
    async fn insert_cdr(&self, cdr: &NewCdr) -> Result<bool> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("down".into()));
        }
        if self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        if self.reject.lock().unwrap().contains(&cdr.id) {
            return Err(StoreError::invalid("tenant_id", "no such tenant"));
        }
        let fresh = self.inner.insert_cdr(cdr).await?;
        if fresh {
            self.written.lock().unwrap().push(cdr.id);
        }
        Ok(fresh)
    }
    async fn migrate(&self) -> Result<()> {
        self.inner.migrate().await
    }
    async fn health(&self) -> Health {
        self.inner.health().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
    async fn create_tenant(&self, new: &NewTenant) -> Result<Tenant> {
        self.inner.create_tenant(new).await
    }
    async fn get_tenant(&self, id: TenantId) -> Result<Tenant> {
        self.inner.get_tenant(id).await
    }
    async fn get_tenant_by_domain(&self, domain: &SipDomain) -> Result<Tenant> {
        self.inner.get_tenant_by_domain(domain).await
    }
    async fn list_tenants(&self, page: Page) -> Result<Paged<Tenant>> {
        self.inner.list_tenants(page).await
    }
    async fn update_tenant(&self, id: TenantId, settings: &TenantSettings) -> Result<Tenant> {
        self.inner.update_tenant(id, settings).await
    }
    async fn set_tenant_suspended(&self, id: TenantId, suspended: bool) -> Result<Tenant> {
        self.inner.set_tenant_suspended(id, suspended).await
    }
    async fn create_user(&self, new: &NewUser) -> Result<User> {
        self.inner.create_user(new).await
    }
    async fn get_user_by_email(&self, email: &Email) -> Result<User> {
        self.inner.get_user_by_email(email).await
    }
    async fn get_user(&self, tenant: TenantId, id: UserId) -> Result<User> {
        self.inner.get_user(tenant, id).await
    }
    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>> {
        self.inner.list_users(tenant).await
    }
    async fn list_operators(&self) -> Result<Vec<User>> {
        self.inner.list_operators().await
    }
    async fn set_user_password_hash(
        &self,
        tenant: Option<TenantId>,
        id: UserId,
        hash: &PasswordHash,
    ) -> Result<()> {
        self.inner.set_user_password_hash(tenant, id, hash).await
    }
    async fn set_user_disabled(
        &self,
        tenant: Option<TenantId>,
        id: UserId,
        disabled: bool,
    ) -> Result<()> {
        self.inner.set_user_disabled(tenant, id, disabled).await
    }
    async fn create_extension(
        &self,
        tenant: TenantId,
        new: &NewExtension,
        credential: Option<&NewCredential>,
    ) -> Result<(Extension, Option<SipCredential>)> {
        self.inner.create_extension(tenant, new, credential).await
    }
    async fn get_extension(&self, tenant: TenantId, id: ExtensionId) -> Result<Extension> {
        self.inner.get_extension(tenant, id).await
    }
    async fn get_extension_by_number(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
    ) -> Result<Extension> {
        self.inner.get_extension_by_number(tenant, number).await
    }
    async fn list_extensions(
        &self,
        tenant: TenantId,
        search: Option<&str>,
        page: Page,
    ) -> Result<Paged<Extension>> {
        self.inner.list_extensions(tenant, search, page).await
    }
    async fn update_extension(
        &self,
        tenant: TenantId,
        id: ExtensionId,
        settings: &ExtensionSettings,
    ) -> Result<Extension> {
        self.inner.update_extension(tenant, id, settings).await
    }
    async fn delete_extension(&self, tenant: TenantId, id: ExtensionId) -> Result<()> {
        self.inner.delete_extension(tenant, id).await
    }
    async fn import_extensions(
        &self,
        tenant: TenantId,
        rows: &[ImportExtension],
    ) -> Result<Vec<Extension>> {
        self.inner.import_extensions(tenant, rows).await
    }
    async fn resolve_dialable(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
    ) -> Result<RouteTarget> {
        self.inner.resolve_dialable(tenant, number).await
    }
    async fn create_credential(
        &self,
        tenant: TenantId,
        extension: ExtensionId,
        new: &NewCredential,
    ) -> Result<SipCredential> {
        self.inner.create_credential(tenant, extension, new).await
    }
    async fn get_credential_by_username(
        &self,
        tenant: TenantId,
        username: &SipUsername,
    ) -> Result<SipCredential> {
        self.inner
            .get_credential_by_username(tenant, username)
            .await
    }
    async fn get_credential(&self, tenant: TenantId, id: CredentialId) -> Result<SipCredential> {
        self.inner.get_credential(tenant, id).await
    }
    async fn get_credential_by_mac(&self, mac: &MacAddress) -> Result<SipCredential> {
        self.inner.get_credential_by_mac(mac).await
    }
    async fn list_credentials(
        &self,
        tenant: TenantId,
        extension: ExtensionId,
    ) -> Result<Vec<SipCredential>> {
        self.inner.list_credentials(tenant, extension).await
    }
    async fn regenerate_credential(
        &self,
        tenant: TenantId,
        id: CredentialId,
        ha1_md5: &Ha1Md5,
        ha1_sha256: &Ha1Sha256,
    ) -> Result<SipCredential> {
        self.inner
            .regenerate_credential(tenant, id, ha1_md5, ha1_sha256)
            .await
    }
    async fn delete_credential(&self, tenant: TenantId, id: CredentialId) -> Result<()> {
        self.inner.delete_credential(tenant, id).await
    }
    async fn create_ivr_menu(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
        name: &str,
    ) -> Result<IvrMenu> {
        self.inner.create_ivr_menu(tenant, number, name).await
    }
    async fn list_ivr_menus(&self, tenant: TenantId) -> Result<Vec<IvrMenu>> {
        self.inner.list_ivr_menus(tenant).await
    }
    async fn create_conference_room(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
        name: &str,
        pin: Option<&Pin>,
    ) -> Result<ConferenceRoom> {
        self.inner
            .create_conference_room(tenant, number, name, pin)
            .await
    }
    async fn list_conference_rooms(&self, tenant: TenantId) -> Result<Vec<ConferenceRoom>> {
        self.inner.list_conference_rooms(tenant).await
    }
    async fn create_ring_group(
        &self,
        tenant: TenantId,
        number: &ExtensionNumber,
        settings: &RingGroupSettings,
    ) -> Result<RingGroup> {
        self.inner.create_ring_group(tenant, number, settings).await
    }
    async fn get_ring_group(&self, tenant: TenantId, id: RingGroupId) -> Result<RingGroup> {
        self.inner.get_ring_group(tenant, id).await
    }
    async fn list_ring_groups(&self, tenant: TenantId) -> Result<Vec<RingGroup>> {
        self.inner.list_ring_groups(tenant).await
    }
    async fn update_ring_group(
        &self,
        tenant: TenantId,
        id: RingGroupId,
        settings: &RingGroupSettings,
    ) -> Result<RingGroup> {
        self.inner.update_ring_group(tenant, id, settings).await
    }
    async fn set_ring_group_members(
        &self,
        tenant: TenantId,
        id: RingGroupId,
        members: &[RingGroupMember],
    ) -> Result<RingGroup> {
        self.inner.set_ring_group_members(tenant, id, members).await
    }
    async fn set_ring_group_last_answered(
        &self,
        tenant: TenantId,
        id: RingGroupId,
        position: Option<u32>,
    ) -> Result<()> {
        self.inner
            .set_ring_group_last_answered(tenant, id, position)
            .await
    }
    async fn delete_ring_group(&self, tenant: TenantId, id: RingGroupId) -> Result<()> {
        self.inner.delete_ring_group(tenant, id).await
    }
    async fn add_number(&self, e164: &E164, tenant: Option<TenantId>) -> Result<Number> {
        self.inner.add_number(e164, tenant).await
    }
    async fn add_number_routed(
        &self,
        e164: &E164,
        tenant: TenantId,
        route: RouteTarget,
    ) -> Result<Number> {
        self.inner.add_number_routed(e164, tenant, route).await
    }
    async fn add_number_range(
        &self,
        first: &E164,
        count: u32,
        tenant: Option<TenantId>,
    ) -> Result<Vec<Number>> {
        self.inner.add_number_range(first, count, tenant).await
    }
    async fn list_numbers(&self, scope: NumberScope, page: Page) -> Result<Paged<Number>> {
        self.inner.list_numbers(scope, page).await
    }
    async fn assign_number(&self, id: NumberId, tenant: Option<TenantId>) -> Result<Number> {
        self.inner.assign_number(id, tenant).await
    }
    async fn set_number_route(
        &self,
        tenant: TenantId,
        id: NumberId,
        route: RouteTarget,
    ) -> Result<Number> {
        self.inner.set_number_route(tenant, id, route).await
    }
    async fn get_number(&self, scope: NumberScope, id: NumberId) -> Result<Number> {
        self.inner.get_number(scope, id).await
    }
    async fn get_number_by_e164(&self, e164: &E164) -> Result<Number> {
        self.inner.get_number_by_e164(e164).await
    }
    async fn delete_number(&self, id: NumberId) -> Result<()> {
        self.inner.delete_number(id).await
    }
    async fn create_trunk(&self, settings: &TrunkSettings) -> Result<Trunk> {
        self.inner.create_trunk(settings).await
    }
    async fn get_trunk(&self, id: TrunkId) -> Result<Trunk> {
        self.inner.get_trunk(id).await
    }
    async fn list_trunks(&self) -> Result<Vec<Trunk>> {
        self.inner.list_trunks().await
    }
    async fn update_trunk(&self, id: TrunkId, settings: &TrunkSettings) -> Result<Trunk> {
        self.inner.update_trunk(id, settings).await
    }
    async fn delete_trunk(&self, id: TrunkId) -> Result<()> {
        self.inner.delete_trunk(id).await
    }
    async fn list_outbound_trunks(&self) -> Result<Vec<Trunk>> {
        self.inner.list_outbound_trunks().await
    }
    async fn list_emergency_trunks(&self) -> Result<Vec<Trunk>> {
        self.inner.list_emergency_trunks().await
    }
    async fn upsert_registration(
        &self,
        tenant: TenantId,
        binding: &Binding,
    ) -> Result<Registration> {
        self.inner.upsert_registration(tenant, binding).await
    }
    async fn remove_registration(
        &self,
        tenant: TenantId,
        credential: CredentialId,
        contact_uri: &str,
    ) -> Result<bool> {
        self.inner
            .remove_registration(tenant, credential, contact_uri)
            .await
    }
    async fn remove_registrations_for_credential(
        &self,
        tenant: TenantId,
        credential: CredentialId,
    ) -> Result<u64> {
        self.inner
            .remove_registrations_for_credential(tenant, credential)
            .await
    }
    async fn list_registrations(
        &self,
        tenant: TenantId,
        extension: ExtensionId,
    ) -> Result<Vec<Registration>> {
        self.inner.list_registrations(tenant, extension).await
    }
    async fn list_tenant_registrations(
        &self,
        tenant: TenantId,
        now: OffsetDateTime,
    ) -> Result<Vec<(ExtensionNumber, Registration)>> {
        self.inner.list_tenant_registrations(tenant, now).await
    }
    async fn list_unexpired_registrations(&self, now: OffsetDateTime) -> Result<Vec<Registration>> {
        self.inner.list_unexpired_registrations(now).await
    }
    async fn list_last_registered(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(ExtensionId, OffsetDateTime)>> {
        self.inner.list_last_registered(tenant).await
    }
    async fn delete_expired_registrations(&self, now: OffsetDateTime) -> Result<u64> {
        self.inner.delete_expired_registrations(now).await
    }
    async fn apply_registration_batch(&self, changes: &[RegistrationChange]) -> Result<()> {
        self.inner.apply_registration_batch(changes).await
    }
    async fn list_cdrs(&self, tenant: TenantId, query: &CdrQuery) -> Result<Paged<Cdr>> {
        self.inner.list_cdrs(tenant, query).await
    }
    async fn call_summary(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        busiest: u32,
    ) -> Result<CallSummary> {
        self.inner.call_summary(tenant, from, to, busiest).await
    }
    async fn list_call_starts(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<CallStart>> {
        self.inner.list_call_starts(tenant, from, to, limit).await
    }
    async fn count_all_calls(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<u64> {
        self.inner.count_all_calls(from, to).await
    }
}

/// The web app's part of the directory: plain delegation.
#[async_trait]
impl WebStore for Flaky {
    async fn append_audit(&self, new: &NewAuditEntry) -> Result<AuditEntry> {
        self.inner.append_audit(new).await
    }
    async fn list_audit(&self, tenant: Option<TenantId>, page: Page) -> Result<Paged<AuditEntry>> {
        self.inner.list_audit(tenant, page).await
    }
    async fn create_web_session(&self, new: &NewWebSession) -> Result<WebSession> {
        self.inner.create_web_session(new).await
    }
    async fn get_web_session(
        &self,
        id_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<(WebSession, User)> {
        self.inner.get_web_session(id_hash, now).await
    }
    async fn touch_web_session(
        &self,
        id_hash: &TokenHash,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        self.inner.touch_web_session(id_hash, now, expires_at).await
    }
    async fn delete_web_session(&self, id_hash: &TokenHash) -> Result<bool> {
        self.inner.delete_web_session(id_hash).await
    }
    async fn delete_user_web_sessions(
        &self,
        user: UserId,
        keep: Option<&TokenHash>,
    ) -> Result<u64> {
        self.inner.delete_user_web_sessions(user, keep).await
    }
    async fn delete_expired_web_sessions(&self, now: OffsetDateTime) -> Result<u64> {
        self.inner.delete_expired_web_sessions(now).await
    }
    async fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken> {
        self.inner.create_api_token(new).await
    }
    async fn get_api_token_by_hash(&self, hash: &TokenHash) -> Result<ApiToken> {
        self.inner.get_api_token_by_hash(hash).await
    }
    async fn list_api_tokens(&self, tenant: Option<TenantId>) -> Result<Vec<ApiToken>> {
        self.inner.list_api_tokens(tenant).await
    }
    async fn revoke_api_token(
        &self,
        tenant: Option<TenantId>,
        id: ApiTokenId,
        now: OffsetDateTime,
    ) -> Result<ApiToken> {
        self.inner.revoke_api_token(tenant, id, now).await
    }
    async fn touch_api_token(&self, id: ApiTokenId, now: OffsetDateTime) -> Result<()> {
        self.inner.touch_api_token(id, now).await
    }
    async fn count_login_attempt(
        &self,
        keys: &[(&str, u32)],
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>> {
        self.inner.count_login_attempt(keys, window, now).await
    }
    async fn login_succeeded(&self, clear: &str, refund: &str) -> Result<()> {
        self.inner.login_succeeded(clear, refund).await
    }
    async fn delete_stale_login_attempts(&self, cutoff: OffsetDateTime) -> Result<u64> {
        self.inner.delete_stale_login_attempts(cutoff).await
    }
    async fn set_user_role(&self, tenant: TenantId, user: UserId, role: Role) -> Result<User> {
        self.inner.set_user_role(tenant, user, role).await
    }
    async fn find_user_extension(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<ExtensionId>> {
        self.inner.find_user_extension(tenant, user).await
    }
    async fn create_setup_token(&self, hash: &TokenHash, expires_at: OffsetDateTime) -> Result<()> {
        self.inner.create_setup_token(hash, expires_at).await
    }
    async fn setup_token_valid(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<bool> {
        self.inner.setup_token_valid(hash, now).await
    }
    async fn redeem_setup_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
        new: &NewUser,
    ) -> Result<User> {
        self.inner.redeem_setup_token(hash, now, new).await
    }
}
