//! Tenants and users.

macro_rules! tenant_cols {
    () => {
        "id, slug, sip_domain, suspended, name, max_concurrent_calls, max_outside_calls, \
         allow_international, allow_premium, main_number, time_zone, created_at"
    };
}
pub(crate) use tenant_cols;

macro_rules! user_cols {
    () => {
        "id, tenant_id, email, display_name, role, password_hash, disabled, created_at"
    };
}
pub(crate) use user_cols;

macro_rules! tenants_impl {
    () => {
        fn tenant_row(r: &DbRow) -> Result<Tenant> {
            Ok(Tenant {
                id: TenantId::from_uuid(get(r, "id")?),
                slug: parse_col(get(r, "slug")?, "slug")?,
                sip_domain: parse_col(get(r, "sip_domain")?, "sip_domain")?,
                suspended: get(r, "suspended")?,
                settings: TenantSettings {
                    name: get(r, "name")?,
                    max_concurrent_calls: get_u32(r, "max_concurrent_calls")?,
                    max_outside_calls: get_u32(r, "max_outside_calls")?,
                    allow_international: get(r, "allow_international")?,
                    allow_premium: get(r, "allow_premium")?,
                    main_number: parse_opt(get(r, "main_number")?, "main_number")?,
                    time_zone: get(r, "time_zone")?,
                },
                created_at: get(r, "created_at")?,
            })
        }

        fn user_row(r: &DbRow) -> Result<User> {
            Ok(User {
                id: UserId::from_uuid(get(r, "id")?),
                tenant_id: get::<Option<Uuid>>(r, "tenant_id")?.map(TenantId::from_uuid),
                email: parse_col(get(r, "email")?, "email")?,
                display_name: get(r, "display_name")?,
                role: parse_col(get(r, "role")?, "role")?,
                password_hash: parse_col(get(r, "password_hash")?, "password_hash")?,
                disabled: get(r, "disabled")?,
                created_at: get(r, "created_at")?,
            })
        }

        fn check_tenant_settings(s: &TenantSettings) -> Result<()> {
            let len = s.name.trim().chars().count();
            if len == 0 || len > 200 {
                return Err(StoreError::invalid("name", "name must be 1 to 200 characters"));
            }
            to_i32(s.max_concurrent_calls, "max_concurrent_calls")?;
            to_i32(s.max_outside_calls, "max_outside_calls")?;
            crate::model::check_time_zone(&s.time_zone)?;
            Ok(())
        }

        async fn create_tenant(pool: &Pool, new: &NewTenant) -> Result<Tenant> {
            check_tenant_settings(&new.settings)?;
            let s = &new.settings;
            let tenant = Tenant {
                id: TenantId::new(),
                slug: new.slug.clone(),
                sip_domain: new.sip_domain.clone(),
                suspended: false,
                settings: TenantSettings { name: s.name.trim().to_owned(), ..s.clone() },
                created_at: now(),
            };
            sqlx::query(
                "INSERT INTO tenants (id, slug, sip_domain, suspended, name, max_concurrent_calls, \
                 max_outside_calls, allow_international, allow_premium, main_number, time_zone, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(tenant.id.as_uuid())
            .bind(tenant.slug.as_str())
            .bind(tenant.sip_domain.as_str())
            .bind(false)
            .bind(&tenant.settings.name)
            .bind(to_i32(s.max_concurrent_calls, "max_concurrent_calls")?)
            .bind(to_i32(s.max_outside_calls, "max_outside_calls")?)
            .bind(s.allow_international)
            .bind(s.allow_premium)
            .bind(s.main_number.as_ref().map(|n| n.as_str()))
            .bind(&s.time_zone)
            .bind(ts(tenant.created_at))
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_conflict(e, "slug", format!("the slug {} is already taken", new.slug)))
            .map_err(|e| {
                on_conflict(e, "sip_domain", format!("the SIP domain {} is already used by another business", new.sip_domain))
            })?;
            Ok(tenant)
        }

        async fn get_tenant(pool: &Pool, id: TenantId) -> Result<Tenant> {
            let row = sqlx::query(concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE id = $1"))
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(tenant_row).unwrap_or(Err(StoreError::not_found("tenant")))
        }

        async fn get_tenant_by_domain(pool: &Pool, domain: &SipDomain) -> Result<Tenant> {
            let row = sqlx::query(concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE sip_domain = $1"))
                .bind(domain.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(tenant_row).unwrap_or(Err(StoreError::not_found("tenant")))
        }

        async fn list_tenants(pool: &Pool, page: Page) -> Result<Paged<Tenant>> {
            let rows = sqlx::query(concat!(
                "SELECT ", tenant_cols!(), " FROM tenants ORDER BY lower(name), id LIMIT $1 OFFSET $2"
            ))
            .bind(i64::from(page.effective_limit()))
            .bind(i64::from(page.offset))
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            Ok(Paged { items: rows.iter().map(tenant_row).collect::<Result<_>>()?, total: total as u64 })
        }

        async fn update_tenant(pool: &Pool, id: TenantId, s: &TenantSettings) -> Result<Tenant> {
            check_tenant_settings(s)?;
            let done = sqlx::query(
                "UPDATE tenants SET name = $2, max_concurrent_calls = $3, max_outside_calls = $4, \
                 allow_international = $5, allow_premium = $6, main_number = $7, time_zone = $8 \
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(s.name.trim())
            .bind(to_i32(s.max_concurrent_calls, "max_concurrent_calls")?)
            .bind(to_i32(s.max_outside_calls, "max_outside_calls")?)
            .bind(s.allow_international)
            .bind(s.allow_premium)
            .bind(s.main_number.as_ref().map(|n| n.as_str()))
            .bind(&s.time_zone)
            .execute(pool)
            .await
            .map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("tenant"));
            }
            get_tenant(pool, id).await
        }

        async fn set_tenant_suspended(pool: &Pool, id: TenantId, suspended: bool) -> Result<Tenant> {
            let done = sqlx::query("UPDATE tenants SET suspended = $2 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(suspended)
                .execute(pool)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("tenant"));
            }
            get_tenant(pool, id).await
        }

        async fn create_user(pool: &Pool, new: &NewUser) -> Result<User> {
            match (new.role, new.tenant_id) {
                (Role::Operator, Some(_)) => {
                    return Err(StoreError::invalid("tenant_id", "operators belong to no business"));
                }
                (Role::Admin | Role::Member, None) => {
                    return Err(StoreError::invalid("tenant_id", "admins and members belong to a business"));
                }
                _ => {}
            }
            if new.display_name.chars().count() > 200 {
                return Err(StoreError::invalid("display_name", "display name must be at most 200 characters"));
            }
            insert_user(pool, new).await
        }

        /// The insert without the friendly pre-checks, so tests can prove the schema itself
        /// refuses a bad row.
        async fn insert_user(pool: &Pool, new: &NewUser) -> Result<User> {
            let user = User {
                id: UserId::new(),
                tenant_id: new.tenant_id,
                email: new.email.clone(),
                display_name: new.display_name.clone(),
                role: new.role,
                password_hash: new.password_hash.clone(),
                disabled: false,
                created_at: now(),
            };
            sqlx::query(
                "INSERT INTO users (id, tenant_id, email, display_name, role, password_hash, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(user.id.as_uuid())
            .bind(user.tenant_id.map(|t| t.as_uuid()))
            .bind(user.email.as_str())
            .bind(&user.display_name)
            .bind(user.role.as_str())
            .bind(user.password_hash.as_str())
            .bind(false)
            .bind(ts(user.created_at))
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "tenant_id", "no such business"))
            .map_err(|e| on_conflict(e, "email", format!("a user with the e-mail address {} already exists", new.email)))?;
            Ok(user)
        }

        async fn get_user_by_email(pool: &Pool, email: &Email) -> Result<User> {
            let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE email = $1"))
                .bind(email.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(user_row).unwrap_or(Err(StoreError::not_found("user")))
        }

        async fn get_user(pool: &Pool, tenant: TenantId, id: UserId) -> Result<User> {
            let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(user_row).unwrap_or(Err(StoreError::not_found("user")))
        }

        async fn list_users(pool: &Pool, tenant: TenantId) -> Result<Vec<User>> {
            let rows = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE tenant_id = $1 ORDER BY email"))
                .bind(tenant.as_uuid())
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            rows.iter().map(user_row).collect()
        }

        async fn list_operators(pool: &Pool) -> Result<Vec<User>> {
            let rows = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE tenant_id IS NULL ORDER BY email"))
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            rows.iter().map(user_row).collect()
        }

        async fn set_user_password_hash(pool: &Pool, tenant: Option<TenantId>, id: UserId, hash: &PasswordHash) -> Result<()> {
            let sql = match tenant {
                Some(_) => "UPDATE users SET password_hash = $1 WHERE id = $2 AND tenant_id = $3",
                None => "UPDATE users SET password_hash = $1 WHERE id = $2 AND tenant_id IS NULL",
            };
            let mut q = sqlx::query(sql).bind(hash.as_str()).bind(id.as_uuid());
            if let Some(t) = tenant {
                q = q.bind(t.as_uuid());
            }
            let done = q.execute(pool).await.map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("user"));
            }
            Ok(())
        }

        async fn set_user_disabled(pool: &Pool, tenant: Option<TenantId>, id: UserId, disabled: bool) -> Result<()> {
            let sql = match tenant {
                Some(_) => "UPDATE users SET disabled = $1 WHERE id = $2 AND tenant_id = $3",
                None => "UPDATE users SET disabled = $1 WHERE id = $2 AND tenant_id IS NULL",
            };
            let mut q = sqlx::query(sql).bind(disabled).bind(id.as_uuid());
            if let Some(t) = tenant {
                q = q.bind(t.as_uuid());
            }
            let done = q.execute(pool).await.map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("user"));
            }
            Ok(())
        }
    };
}
pub(crate) use tenants_impl;
