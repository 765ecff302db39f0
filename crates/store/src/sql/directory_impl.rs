//! The parts of a backend that are the same for both: row helpers, migrations, health, and the
//! `Directory` impl that forwards each method to the function of the same name.

macro_rules! backend_common {
    () => {
        fn get<'r, T>(r: &'r DbRow, col: &str) -> Result<T>
        where
            T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
        {
            sqlx::Row::try_get(r, col).map_err(|e| corrupt(col, e))
        }

        fn get_u32(r: &DbRow, col: &str) -> Result<u32> {
            let v: i32 = get(r, col)?;
            u32::try_from(v).map_err(|e| corrupt(col, e))
        }

        async fn migrate(pool: &Pool) -> Result<()> {
            MIGRATOR.run(pool).await.map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => db_err(e),
                e => StoreError::Internal(format!("migration failed: {e}")),
            })
        }

        async fn health(pool: &Pool) -> Health {
            let embedded: Vec<i64> = MIGRATOR
                .iter()
                .filter(|m| m.migration_type.is_up_migration())
                .map(|m| m.version)
                .collect();
            let mut health = Health {
                backend: BACKEND,
                reachable: false,
                applied: Vec::new(),
                pending: Vec::new(),
                error: None,
            };
            if let Err(e) = sqlx::query("SELECT 1").execute(pool).await {
                health.pending = embedded;
                health.error = Some(db_err(e).to_string());
                return health;
            }
            health.reachable = true;
            // Before the first migration the bookkeeping table does not exist: nothing applied.
            let applied: Vec<i64> = sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
            )
            .fetch_all(pool)
            .await
            .unwrap_or_default();
            health.pending = embedded
                .iter()
                .copied()
                .filter(|v| !applied.contains(v))
                .collect();
            health.applied = applied;
            health
        }
    };
}
pub(crate) use backend_common;

macro_rules! directory_impl {
    ($ty:ty) => {
        #[async_trait::async_trait]
        impl Directory for $ty {
            async fn migrate(&self) -> Result<()> {
                migrate(&self.pool).await
            }
            async fn health(&self) -> Health {
                health(&self.pool).await
            }
            async fn close(&self) {
                self.pool.close().await
            }
            async fn record_change(
                &self,
                origin: Uuid,
                change: &crate::changes::Change,
            ) -> Result<()> {
                record_change(&self.pool, origin, change).await
            }
            async fn watch_changes(
                &self,
                options: crate::changes::WatchOptions,
            ) -> Result<crate::changes::ChangeWatch> {
                watch_changes(&self.pool, options).await
            }

            async fn create_tenant(&self, new: &NewTenant) -> Result<Tenant> {
                create_tenant(&self.pool, new).await
            }
            async fn get_tenant(&self, id: TenantId) -> Result<Tenant> {
                get_tenant(&self.pool, id).await
            }
            async fn get_tenant_by_domain(&self, domain: &SipDomain) -> Result<Tenant> {
                get_tenant_by_domain(&self.pool, domain).await
            }
            async fn list_tenants(&self, page: Page) -> Result<Paged<Tenant>> {
                list_tenants(&self.pool, page).await
            }
            async fn update_tenant(
                &self,
                id: TenantId,
                settings: &TenantSettings,
            ) -> Result<Tenant> {
                update_tenant(&self.pool, id, settings).await
            }
            async fn set_tenant_suspended(&self, id: TenantId, suspended: bool) -> Result<Tenant> {
                set_tenant_suspended(&self.pool, id, suspended).await
            }

            async fn create_user(&self, new: &NewUser) -> Result<User> {
                create_user(&self.pool, new).await
            }
            async fn get_user_by_email(&self, email: &Email) -> Result<User> {
                get_user_by_email(&self.pool, email).await
            }
            async fn get_user(&self, tenant: TenantId, id: UserId) -> Result<User> {
                get_user(&self.pool, tenant, id).await
            }
            async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>> {
                list_users(&self.pool, tenant).await
            }
            async fn list_operators(&self) -> Result<Vec<User>> {
                list_operators(&self.pool).await
            }
            async fn set_user_password_hash(
                &self,
                tenant: Option<TenantId>,
                id: UserId,
                hash: &PasswordHash,
            ) -> Result<()> {
                set_user_password_hash(&self.pool, tenant, id, hash).await
            }
            async fn set_user_disabled(
                &self,
                tenant: Option<TenantId>,
                id: UserId,
                disabled: bool,
            ) -> Result<()> {
                set_user_disabled(&self.pool, tenant, id, disabled).await
            }

            async fn create_extension(
                &self,
                tenant: TenantId,
                new: &NewExtension,
                credential: Option<&NewCredential>,
            ) -> Result<(Extension, Option<SipCredential>)> {
                create_extension(&self.pool, tenant, new, credential).await
            }
            async fn get_extension(&self, tenant: TenantId, id: ExtensionId) -> Result<Extension> {
                get_extension(&self.pool, tenant, id).await
            }
            async fn get_extension_by_number(
                &self,
                tenant: TenantId,
                number: &ExtensionNumber,
            ) -> Result<Extension> {
                get_extension_by_number(&self.pool, tenant, number).await
            }
            async fn list_extensions(
                &self,
                tenant: TenantId,
                search: Option<&str>,
                page: Page,
            ) -> Result<Paged<Extension>> {
                list_extensions(&self.pool, tenant, search, page).await
            }
            async fn update_extension(
                &self,
                tenant: TenantId,
                id: ExtensionId,
                settings: &ExtensionSettings,
            ) -> Result<Extension> {
                update_extension(&self.pool, tenant, id, settings).await
            }
            async fn delete_extension(&self, tenant: TenantId, id: ExtensionId) -> Result<()> {
                delete_extension(&self.pool, tenant, id).await
            }
            async fn import_extensions(
                &self,
                tenant: TenantId,
                rows: &[ImportExtension],
            ) -> Result<Vec<Extension>> {
                import_extensions(&self.pool, tenant, rows).await
            }
            async fn resolve_dialable(
                &self,
                tenant: TenantId,
                number: &ExtensionNumber,
            ) -> Result<RouteTarget> {
                resolve_dialable(&self.pool, tenant, number).await
            }

            async fn create_credential(
                &self,
                tenant: TenantId,
                extension: ExtensionId,
                new: &NewCredential,
            ) -> Result<SipCredential> {
                create_credential(&self.pool, tenant, extension, new).await
            }
            async fn get_credential_by_username(
                &self,
                tenant: TenantId,
                username: &SipUsername,
            ) -> Result<SipCredential> {
                get_credential_by_username(&self.pool, tenant, username).await
            }
            async fn get_credential(
                &self,
                tenant: TenantId,
                id: CredentialId,
            ) -> Result<SipCredential> {
                get_credential(&self.pool, tenant, id).await
            }
            async fn get_credential_by_mac(&self, mac: &MacAddress) -> Result<SipCredential> {
                get_credential_by_mac(&self.pool, mac).await
            }
            async fn list_credentials(
                &self,
                tenant: TenantId,
                extension: ExtensionId,
            ) -> Result<Vec<SipCredential>> {
                list_credentials(&self.pool, tenant, extension).await
            }
            async fn regenerate_credential(
                &self,
                tenant: TenantId,
                id: CredentialId,
                ha1_md5: &Ha1Md5,
                ha1_sha256: &Ha1Sha256,
            ) -> Result<SipCredential> {
                regenerate_credential(&self.pool, tenant, id, ha1_md5, ha1_sha256).await
            }
            async fn delete_credential(&self, tenant: TenantId, id: CredentialId) -> Result<()> {
                delete_credential(&self.pool, tenant, id).await
            }

            async fn create_ivr_menu(
                &self,
                tenant: TenantId,
                number: &ExtensionNumber,
                name: &str,
            ) -> Result<IvrMenu> {
                create_ivr_menu(&self.pool, tenant, number, name).await
            }
            async fn list_ivr_menus(&self, tenant: TenantId) -> Result<Vec<IvrMenu>> {
                list_ivr_menus(&self.pool, tenant).await
            }
            async fn create_conference_room(
                &self,
                tenant: TenantId,
                number: &ExtensionNumber,
                name: &str,
                pin: Option<&Pin>,
            ) -> Result<ConferenceRoom> {
                create_conference_room(&self.pool, tenant, number, name, pin).await
            }
            async fn list_conference_rooms(&self, tenant: TenantId) -> Result<Vec<ConferenceRoom>> {
                list_conference_rooms(&self.pool, tenant).await
            }

            async fn create_ring_group(
                &self,
                tenant: TenantId,
                number: &ExtensionNumber,
                settings: &RingGroupSettings,
            ) -> Result<RingGroup> {
                create_ring_group(&self.pool, tenant, number, settings).await
            }
            async fn get_ring_group(&self, tenant: TenantId, id: RingGroupId) -> Result<RingGroup> {
                get_ring_group(&self.pool, tenant, id).await
            }
            async fn list_ring_groups(&self, tenant: TenantId) -> Result<Vec<RingGroup>> {
                list_ring_groups(&self.pool, tenant).await
            }
            async fn update_ring_group(
                &self,
                tenant: TenantId,
                id: RingGroupId,
                settings: &RingGroupSettings,
            ) -> Result<RingGroup> {
                update_ring_group(&self.pool, tenant, id, settings).await
            }
            async fn set_ring_group_members(
                &self,
                tenant: TenantId,
                id: RingGroupId,
                members: &[RingGroupMember],
            ) -> Result<RingGroup> {
                set_ring_group_members(&self.pool, tenant, id, members).await
            }
            async fn set_ring_group_last_answered(
                &self,
                tenant: TenantId,
                id: RingGroupId,
                position: Option<u32>,
            ) -> Result<()> {
                set_ring_group_last_answered(&self.pool, tenant, id, position).await
            }
            async fn delete_ring_group(&self, tenant: TenantId, id: RingGroupId) -> Result<()> {
                delete_ring_group(&self.pool, tenant, id).await
            }

            async fn add_number(&self, e164: &E164, tenant: Option<TenantId>) -> Result<Number> {
                add_number(&self.pool, e164, tenant).await
            }
            async fn add_number_routed(
                &self,
                e164: &E164,
                tenant: TenantId,
                route: RouteTarget,
            ) -> Result<Number> {
                add_number_routed(&self.pool, e164, tenant, route).await
            }
            async fn add_number_range(
                &self,
                first: &E164,
                count: u32,
                tenant: Option<TenantId>,
            ) -> Result<Vec<Number>> {
                add_number_range(&self.pool, first, count, tenant).await
            }
            async fn list_numbers(&self, scope: NumberScope, page: Page) -> Result<Paged<Number>> {
                list_numbers(&self.pool, scope, page).await
            }
            async fn assign_number(
                &self,
                id: NumberId,
                tenant: Option<TenantId>,
            ) -> Result<Number> {
                assign_number(&self.pool, id, tenant).await
            }
            async fn set_number_route(
                &self,
                tenant: TenantId,
                id: NumberId,
                route: RouteTarget,
            ) -> Result<Number> {
                set_number_route(&self.pool, tenant, id, route).await
            }
            async fn get_number(&self, scope: NumberScope, id: NumberId) -> Result<Number> {
                get_number_scoped(&self.pool, scope, id).await
            }
            async fn get_number_by_e164(&self, e164: &E164) -> Result<Number> {
                get_number_by_e164(&self.pool, e164).await
            }
            async fn delete_number(&self, id: NumberId) -> Result<()> {
                delete_number(&self.pool, id).await
            }

            async fn create_trunk(&self, settings: &TrunkSettings) -> Result<Trunk> {
                create_trunk(&self.pool, settings).await
            }
            async fn get_trunk(&self, id: TrunkId) -> Result<Trunk> {
                get_trunk(&self.pool, id).await
            }
            async fn list_trunks(&self) -> Result<Vec<Trunk>> {
                list_trunks(&self.pool).await
            }
            async fn update_trunk(&self, id: TrunkId, settings: &TrunkSettings) -> Result<Trunk> {
                update_trunk(&self.pool, id, settings).await
            }
            async fn delete_trunk(&self, id: TrunkId) -> Result<()> {
                delete_trunk(&self.pool, id).await
            }
            async fn list_outbound_trunks(&self) -> Result<Vec<Trunk>> {
                list_outbound_trunks(&self.pool).await
            }
            async fn list_emergency_trunks(&self) -> Result<Vec<Trunk>> {
                list_emergency_trunks(&self.pool).await
            }

            async fn upsert_registration(
                &self,
                tenant: TenantId,
                binding: &Binding,
            ) -> Result<Registration> {
                upsert_registration(&self.pool, tenant, binding).await
            }
            async fn remove_registration(
                &self,
                tenant: TenantId,
                credential: CredentialId,
                contact_uri: &str,
            ) -> Result<bool> {
                remove_registration(&self.pool, tenant, credential, contact_uri).await
            }
            async fn remove_registrations_for_credential(
                &self,
                tenant: TenantId,
                credential: CredentialId,
            ) -> Result<u64> {
                remove_registrations_for_credential(&self.pool, tenant, credential).await
            }
            async fn list_registrations(
                &self,
                tenant: TenantId,
                extension: ExtensionId,
            ) -> Result<Vec<Registration>> {
                list_registrations(&self.pool, tenant, extension).await
            }
            async fn list_last_registered(
                &self,
                tenant: TenantId,
            ) -> Result<Vec<(ExtensionId, OffsetDateTime)>> {
                list_last_registered(&self.pool, tenant).await
            }
            async fn list_unexpired_registrations(
                &self,
                now: OffsetDateTime,
            ) -> Result<Vec<Registration>> {
                list_unexpired_registrations(&self.pool, now).await
            }
            async fn apply_registration_batch(
                &self,
                changes: &[$crate::registration_batch::RegistrationChange],
            ) -> Result<()> {
                apply_registration_batch(&self.pool, changes).await
            }
            async fn delete_expired_registrations(&self, now: OffsetDateTime) -> Result<u64> {
                delete_expired_registrations(&self.pool, now).await
            }

            async fn list_tenant_registrations(
                &self,
                tenant: TenantId,
                now: OffsetDateTime,
            ) -> Result<Vec<(ExtensionNumber, Registration)>> {
                list_tenant_registrations(&self.pool, tenant, now).await
            }
            async fn insert_cdr(&self, cdr: &NewCdr) -> Result<bool> {
                insert_cdr(&self.pool, cdr).await
            }
            async fn insert_cdrs(&self, cdrs: &[NewCdr]) -> Result<u64> {
                insert_cdrs(&self.pool, cdrs).await
            }
            async fn list_cdrs(&self, tenant: TenantId, query: &CdrQuery) -> Result<Paged<Cdr>> {
                list_cdrs(&self.pool, tenant, query).await
            }
            async fn call_summary(
                &self,
                tenant: TenantId,
                from: OffsetDateTime,
                to: OffsetDateTime,
                busiest: u32,
            ) -> Result<CallSummary> {
                call_summary(&self.pool, tenant, from, to, busiest).await
            }
            async fn list_call_starts(
                &self,
                tenant: TenantId,
                from: OffsetDateTime,
                to: OffsetDateTime,
                limit: u32,
            ) -> Result<Vec<CallStart>> {
                list_call_starts(&self.pool, tenant, from, to, limit).await
            }
            async fn count_all_calls(
                &self,
                from: OffsetDateTime,
                to: OffsetDateTime,
            ) -> Result<u64> {
                count_all_calls(&self.pool, from, to).await
            }
        }
    };
}
pub(crate) use directory_impl;

/// Expands every shared piece into the calling backend module.
macro_rules! expand_backend {
    ($ty:ty) => {
        $crate::sql::directory_impl::backend_common!();
        $crate::sql::tenants::tenants_impl!();
        $crate::sql::extensions::extensions_impl!();
        $crate::sql::routing::routing_impl!();
        $crate::sql::numbers::numbers_impl!();
        $crate::sql::operations::operations_impl!();
        $crate::sql::registration_batch::registration_batch_impl!();
        $crate::sql::directory_impl::directory_impl!($ty);
        $crate::sql::web::web_impl!($ty);
    };
}
pub(crate) use expand_backend;
