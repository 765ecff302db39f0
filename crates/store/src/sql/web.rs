//! Statements for the web app's tables (sessions, API tokens, setup tokens), expanded into each
//! backend like the other statement modules, and the `WebStore` impl that calls them.

macro_rules! web_session_cols {
    () => {
        "s.id_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, s.ip, s.user_agent"
    };
}
pub(crate) use web_session_cols;

macro_rules! api_token_cols {
    () => {
        "t.id, t.tenant_id, t.name, t.token_hash, t.prefix, t.created_by, t.created_at, t.last_used_at, \
         t.revoked_at, t.expires_at, u.tenant_id AS creator_tenant_id, u.role AS creator_role, \
         u.disabled AS creator_disabled FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by"
    };
}
pub(crate) use api_token_cols;

macro_rules! web_impl {
    ($ty:ty) => {
        use crate::sql::web::{api_token_cols, web_session_cols};
        use crate::web::{
            ApiToken, AuditEntry, NewApiToken, NewAuditEntry, NewWebSession, TokenCreator, TokenHash, WebSession,
            WebStore,
        };

        fn capped(s: &str, max: usize) -> String {
            s.trim().chars().take(max).collect()
        }

        fn audit_row(r: &DbRow) -> Result<AuditEntry> {
            Ok(AuditEntry {
                id: AuditEntryId::from_uuid(get(r, "id")?),
                tenant_id: get::<Option<Uuid>>(r, "tenant_id")?.map(TenantId::from_uuid),
                actor: get(r, "actor")?,
                action: get(r, "action")?,
                subject: get(r, "subject")?,
                detail: get(r, "detail")?,
                created_at: get(r, "created_at")?,
            })
        }

        async fn web_append_audit(pool: &Pool, new: &NewAuditEntry) -> Result<AuditEntry> {
            let entry = AuditEntry {
                id: AuditEntryId::new(),
                tenant_id: new.tenant_id,
                actor: capped(&new.actor, 300),
                action: capped(&new.action, 64),
                subject: capped(&new.subject, 300),
                detail: capped(&new.detail, 1000),
                created_at: now(),
            };
            if entry.actor.is_empty() {
                return Err(StoreError::invalid("actor", "an audit entry names who made the change"));
            }
            if entry.action.is_empty() {
                return Err(StoreError::invalid("action", "an audit entry names the kind of change"));
            }
            sqlx::query(
                "INSERT INTO audit_log (id, tenant_id, actor, action, subject, detail, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(entry.id.as_uuid())
            .bind(entry.tenant_id.map(|t| t.as_uuid()))
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.subject)
            .bind(&entry.detail)
            .bind(ts(entry.created_at))
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "tenant_id", "no such business"))?;
            Ok(entry)
        }

        async fn web_list_audit(pool: &Pool, tenant: Option<TenantId>, page: Page) -> Result<Paged<AuditEntry>> {
            // $1 NULL: every business's entries and the platform's.
            let rows = sqlx::query(
                "SELECT id, tenant_id, actor, action, subject, detail, created_at FROM audit_log \
                 WHERE ($1 IS NULL OR tenant_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
            )
            .bind(tenant.map(|t| t.as_uuid()))
            .bind(i64::from(page.effective_limit()))
            .bind(i64::from(page.offset))
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            let total: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE ($1 IS NULL OR tenant_id = $1)")
                .bind(tenant.map(|t| t.as_uuid()))
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            Ok(Paged { items: rows.iter().map(audit_row).collect::<Result<_>>()?, total: total as u64 })
        }

        fn truncate_chars(s: &Option<String>, max: usize) -> Option<String> {
            s.as_ref().map(|s| s.chars().take(max).collect())
        }

        fn web_session_row(r: &DbRow) -> Result<WebSession> {
            Ok(WebSession {
                id_hash: parse_col(get(r, "id_hash")?, "id_hash")?,
                user_id: UserId::from_uuid(get(r, "user_id")?),
                csrf_token: get(r, "csrf_token")?,
                created_at: get(r, "created_at")?,
                last_seen_at: get(r, "last_seen_at")?,
                expires_at: get(r, "expires_at")?,
                ip: get(r, "ip")?,
                user_agent: get(r, "user_agent")?,
            })
        }

        fn api_token_row(r: &DbRow) -> Result<ApiToken> {
            let created_by = get::<Option<Uuid>>(r, "created_by")?.map(UserId::from_uuid);
            Ok(ApiToken {
                id: ApiTokenId::from_uuid(get(r, "id")?),
                tenant_id: get::<Option<Uuid>>(r, "tenant_id")?.map(TenantId::from_uuid),
                name: get(r, "name")?,
                token_hash: parse_col(get(r, "token_hash")?, "token_hash")?,
                prefix: get(r, "prefix")?,
                created_by,
                created_at: get(r, "created_at")?,
                last_used_at: get(r, "last_used_at")?,
                revoked_at: get(r, "revoked_at")?,
                expires_at: get(r, "expires_at")?,
                creator: match (created_by, get::<Option<String>>(r, "creator_role")?) {
                    (Some(id), Some(role)) => Some(TokenCreator {
                        id,
                        tenant_id: get::<Option<Uuid>>(r, "creator_tenant_id")?.map(TenantId::from_uuid),
                        role: parse_col(role, "role")?,
                        disabled: get::<Option<bool>>(r, "creator_disabled")?.unwrap_or(false),
                    }),
                    _ => None,
                },
            })
        }

        async fn web_create_session(pool: &Pool, new: &NewWebSession) -> Result<WebSession> {
            let at = now();
            let session = WebSession {
                id_hash: new.id_hash.clone(),
                user_id: new.user_id,
                csrf_token: new.csrf_token.clone(),
                created_at: at,
                last_seen_at: at,
                expires_at: micros(new.expires_at),
                ip: truncate_chars(&new.ip, 64),
                user_agent: truncate_chars(&new.user_agent, 512),
            };
            sqlx::query(
                "INSERT INTO web_sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, \
                 expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(session.id_hash.as_str())
            .bind(session.user_id.as_uuid())
            .bind(&session.csrf_token)
            .bind(ts(session.created_at))
            .bind(ts(session.last_seen_at))
            .bind(ts(session.expires_at))
            .bind(session.ip.as_deref())
            .bind(session.user_agent.as_deref())
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "user_id", "no such user"))?;
            Ok(session)
        }

        async fn web_get_session(pool: &Pool, id_hash: &TokenHash, at: OffsetDateTime) -> Result<(WebSession, User)> {
            let row = sqlx::query(concat!(
                "SELECT ", web_session_cols!(), ", u.id AS u_id, u.tenant_id AS u_tenant_id, u.email AS u_email, \
                 u.display_name AS u_display_name, u.role AS u_role, u.password_hash AS u_password_hash, \
                 u.disabled AS u_disabled, u.created_at AS u_created_at \
                 FROM web_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = $1 AND s.expires_at > $2"
            ))
            .bind(id_hash.as_str())
            .bind(ts(micros(at)))
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
            let Some(r) = row else {
                return Err(StoreError::not_found("session"));
            };
            let user = User {
                id: UserId::from_uuid(get(&r, "u_id")?),
                tenant_id: get::<Option<Uuid>>(&r, "u_tenant_id")?.map(TenantId::from_uuid),
                email: parse_col(get(&r, "u_email")?, "email")?,
                display_name: get(&r, "u_display_name")?,
                role: parse_col(get(&r, "u_role")?, "role")?,
                password_hash: parse_col(get(&r, "u_password_hash")?, "password_hash")?,
                disabled: get(&r, "u_disabled")?,
                created_at: get(&r, "u_created_at")?,
            };
            Ok((web_session_row(&r)?, user))
        }

        async fn web_touch_session(pool: &Pool, id_hash: &TokenHash, at: OffsetDateTime, expires_at: OffsetDateTime) -> Result<()> {
            let done = sqlx::query("UPDATE web_sessions SET last_seen_at = $2, expires_at = $3 WHERE id_hash = $1")
                .bind(id_hash.as_str())
                .bind(ts(micros(at)))
                .bind(ts(micros(expires_at)))
                .execute(pool)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("session"));
            }
            Ok(())
        }

        async fn web_delete_session(pool: &Pool, id_hash: &TokenHash) -> Result<bool> {
            let done = sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
                .bind(id_hash.as_str())
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(done.rows_affected() > 0)
        }

        async fn web_delete_user_sessions(pool: &Pool, user: UserId, keep: Option<&TokenHash>) -> Result<u64> {
            // '' never matches a stored hash (the CHECK wants 64 hex digits).
            let done = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2")
                .bind(user.as_uuid())
                .bind(keep.map(|k| k.as_str()).unwrap_or(""))
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(done.rows_affected())
        }

        async fn web_delete_expired_sessions(pool: &Pool, at: OffsetDateTime) -> Result<u64> {
            let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
                .bind(ts(micros(at)))
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(done.rows_affected())
        }

        async fn web_count_login_attempt(
            pool: &Pool,
            keys: &[(&str, u32)],
            window: time::Duration,
            now: OffsetDateTime,
        ) -> Result<Option<OffsetDateTime>> {
            let now = micros(now);
            let cutoff = now - window;
            let mut retry_at: Option<OffsetDateTime> = None;
            for (key, limit) in keys {
                if key.is_empty() || key.chars().count() > 200 {
                    return Err(StoreError::invalid("key", "key must be 1 to 200 characters"));
                }
                let row = sqlx::query(
                    "INSERT INTO login_attempts (key, failures, window_start) VALUES ($1, 1, $2) \
                     ON CONFLICT (key) DO UPDATE SET \
                       failures = CASE WHEN login_attempts.window_start <= $3 THEN 1 \
                                       ELSE login_attempts.failures + 1 END, \
                       window_start = CASE WHEN login_attempts.window_start <= $3 THEN $2 \
                                           ELSE login_attempts.window_start END \
                     RETURNING failures, window_start",
                )
                .bind(*key)
                .bind(ts(now))
                .bind(ts(cutoff))
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
                let failures: i64 = get(&row, "failures")?;
                let since: OffsetDateTime = get(&row, "window_start")?;
                if failures > i64::from(*limit) {
                    let until = since + window;
                    retry_at = Some(retry_at.map_or(until, |r| r.max(until)));
                }
            }
            Ok(retry_at)
        }

        async fn web_login_succeeded(pool: &Pool, clear: &str, refund: &str) -> Result<()> {
            sqlx::query("DELETE FROM login_attempts WHERE key = $1")
                .bind(clear)
                .execute(pool)
                .await
                .map_err(db_err)?;
            sqlx::query("UPDATE login_attempts SET failures = failures - 1 WHERE key = $1 AND failures > 0")
                .bind(refund)
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(())
        }

        async fn web_delete_stale_login_attempts(pool: &Pool, cutoff: OffsetDateTime) -> Result<u64> {
            let done = sqlx::query("DELETE FROM login_attempts WHERE window_start <= $1")
                .bind(ts(micros(cutoff)))
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(done.rows_affected())
        }

        async fn web_create_api_token(pool: &Pool, new: &NewApiToken) -> Result<ApiToken> {
            let name = new.name.trim();
            let len = name.chars().count();
            if len == 0 || len > 100 {
                return Err(StoreError::invalid("name", "name must be 1 to 100 characters"));
            }
            let plen = new.prefix.chars().count();
            if plen == 0 || plen > 16 {
                return Err(StoreError::invalid("prefix", "prefix must be 1 to 16 characters"));
            }
            let id = ApiTokenId::new();
            sqlx::query(
                "INSERT INTO api_tokens (id, tenant_id, name, token_hash, prefix, created_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id.as_uuid())
            .bind(new.tenant_id.map(|t| t.as_uuid()))
            .bind(name)
            .bind(new.token_hash.as_str())
            .bind(&new.prefix)
            .bind(new.created_by.map(|u| u.as_uuid()))
            .bind(ts(now()))
            .bind(new.expires_at.map(|t| ts(micros(t))))
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "tenant_id", "no such business or user"))?;
            // Read back, so the creator's current state comes with it.
            web_get_api_token(pool, new.tenant_id, id).await
        }

        async fn web_get_api_token_by_hash(pool: &Pool, hash: &TokenHash) -> Result<ApiToken> {
            let row = sqlx::query(concat!("SELECT ", api_token_cols!(), " WHERE t.token_hash = $1"))
                .bind(hash.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(api_token_row).unwrap_or(Err(StoreError::not_found("API token")))
        }

        async fn web_list_api_tokens(pool: &Pool, tenant: Option<TenantId>) -> Result<Vec<ApiToken>> {
            let rows = match tenant {
                Some(t) => sqlx::query(concat!(
                    "SELECT ", api_token_cols!(), " WHERE t.tenant_id = $1 ORDER BY t.created_at DESC, t.id DESC"
                ))
                .bind(t.as_uuid())
                .fetch_all(pool)
                .await,
                None => sqlx::query(concat!(
                    "SELECT ", api_token_cols!(), " WHERE t.tenant_id IS NULL ORDER BY t.created_at DESC, t.id DESC"
                ))
                .fetch_all(pool)
                .await,
            }
            .map_err(db_err)?;
            rows.iter().map(api_token_row).collect()
        }

        async fn web_get_api_token(pool: &Pool, tenant: Option<TenantId>, id: ApiTokenId) -> Result<ApiToken> {
            let row = match tenant {
                Some(t) => sqlx::query(concat!("SELECT ", api_token_cols!(), " WHERE t.tenant_id = $1 AND t.id = $2"))
                    .bind(t.as_uuid())
                    .bind(id.as_uuid())
                    .fetch_optional(pool)
                    .await,
                None => sqlx::query(concat!("SELECT ", api_token_cols!(), " WHERE t.tenant_id IS NULL AND t.id = $1"))
                    .bind(id.as_uuid())
                    .fetch_optional(pool)
                    .await,
            }
            .map_err(db_err)?;
            row.as_ref().map(api_token_row).unwrap_or(Err(StoreError::not_found("API token")))
        }

        async fn web_revoke_api_token(pool: &Pool, tenant: Option<TenantId>, id: ApiTokenId, at: OffsetDateTime) -> Result<ApiToken> {
            // Scope check first, so a token of another tenant is NotFound and stays untouched.
            web_get_api_token(pool, tenant, id).await?;
            sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.as_uuid())
                .bind(ts(micros(at)))
                .execute(pool)
                .await
                .map_err(db_err)?;
            web_get_api_token(pool, tenant, id).await
        }

        async fn web_touch_api_token(pool: &Pool, id: ApiTokenId, at: OffsetDateTime) -> Result<()> {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(ts(micros(at)))
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(())
        }

        async fn web_set_user_role(pool: &Pool, tenant: TenantId, user: UserId, role: Role) -> Result<User> {
            if role == Role::Operator {
                return Err(StoreError::invalid("role", "a business user can be an admin or a member"));
            }
            let done = sqlx::query("UPDATE users SET role = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(role.as_str())
                .execute(pool)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("user"));
            }
            get_user(pool, tenant, user).await
        }

        async fn web_find_user_extension(pool: &Pool, tenant: TenantId, user: UserId) -> Result<Option<ExtensionId>> {
            let id: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM extensions WHERE tenant_id = $1 AND user_id = $2 ORDER BY number LIMIT 1",
            )
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
            Ok(id.map(ExtensionId::from_uuid))
        }

        async fn web_create_setup_token(pool: &Pool, hash: &TokenHash, expires_at: OffsetDateTime) -> Result<()> {
            sqlx::query("INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)")
                .bind(hash.as_str())
                .bind(ts(now()))
                .bind(ts(micros(expires_at)))
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(())
        }

        async fn web_setup_token_valid(pool: &Pool, hash: &TokenHash, at: OffsetDateTime) -> Result<bool> {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(hash.as_str())
            .bind(ts(micros(at)))
            .fetch_one(pool)
            .await
            .map_err(db_err)?;
            Ok(n > 0)
        }

        async fn web_redeem_setup_token(pool: &Pool, hash: &TokenHash, at: OffsetDateTime, new: &NewUser) -> Result<User> {
            if new.role != Role::Operator || new.tenant_id.is_some() {
                return Err(StoreError::invalid("role", "the setup link creates an operator"));
            }
            if new.display_name.chars().count() > 200 {
                return Err(StoreError::invalid("display_name", "display name must be at most 200 characters"));
            }
            let mut tx = begin(pool).await?;
            let used = sqlx::query(
                "UPDATE setup_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(hash.as_str())
            .bind(ts(micros(at)))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if used.rows_affected() == 0 {
                return Err(StoreError::not_found("setup link"));
            }
            let operators: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'operator'")
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            if operators > 0 {
                return Err(StoreError::conflict("setup", "an operator account already exists: sign in instead"));
            }
            let user = User {
                id: UserId::new(),
                tenant_id: None,
                email: new.email.clone(),
                display_name: new.display_name.clone(),
                role: Role::Operator,
                password_hash: new.password_hash.clone(),
                disabled: false,
                created_at: now(),
            };
            sqlx::query(
                "INSERT INTO users (id, tenant_id, email, display_name, role, password_hash, disabled, created_at) \
                 VALUES ($1, NULL, $2, $3, 'operator', $4, $5, $6)",
            )
            .bind(user.id.as_uuid())
            .bind(user.email.as_str())
            .bind(&user.display_name)
            .bind(user.password_hash.as_str())
            .bind(false)
            .bind(ts(user.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)
            .map_err(|e| on_conflict(e, "email", format!("a user with the e-mail address {} already exists", new.email)))?;
            tx.commit().await.map_err(db_err)?;
            Ok(user)
        }

        #[async_trait::async_trait]
        impl WebStore for $ty {
            async fn append_audit(&self, new: &NewAuditEntry) -> Result<AuditEntry> {
                web_append_audit(&self.pool, new).await
            }
            async fn list_audit(&self, tenant: Option<TenantId>, page: Page) -> Result<Paged<AuditEntry>> {
                web_list_audit(&self.pool, tenant, page).await
            }
            async fn create_web_session(&self, new: &NewWebSession) -> Result<WebSession> {
                web_create_session(&self.pool, new).await
            }
            async fn get_web_session(&self, id_hash: &TokenHash, now: OffsetDateTime) -> Result<(WebSession, User)> {
                web_get_session(&self.pool, id_hash, now).await
            }
            async fn touch_web_session(&self, id_hash: &TokenHash, now: OffsetDateTime, expires_at: OffsetDateTime) -> Result<()> {
                web_touch_session(&self.pool, id_hash, now, expires_at).await
            }
            async fn delete_web_session(&self, id_hash: &TokenHash) -> Result<bool> {
                web_delete_session(&self.pool, id_hash).await
            }
            async fn delete_user_web_sessions(&self, user: UserId, keep: Option<&TokenHash>) -> Result<u64> {
                web_delete_user_sessions(&self.pool, user, keep).await
            }
            async fn delete_expired_web_sessions(&self, now: OffsetDateTime) -> Result<u64> {
                web_delete_expired_sessions(&self.pool, now).await
            }
            async fn count_login_attempt(
                &self,
                keys: &[(&str, u32)],
                window: time::Duration,
                now: OffsetDateTime,
            ) -> Result<Option<OffsetDateTime>> {
                web_count_login_attempt(&self.pool, keys, window, now).await
            }
            async fn login_succeeded(&self, clear: &str, refund: &str) -> Result<()> {
                web_login_succeeded(&self.pool, clear, refund).await
            }
            async fn delete_stale_login_attempts(&self, cutoff: OffsetDateTime) -> Result<u64> {
                web_delete_stale_login_attempts(&self.pool, cutoff).await
            }
            async fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken> {
                web_create_api_token(&self.pool, new).await
            }
            async fn get_api_token_by_hash(&self, hash: &TokenHash) -> Result<ApiToken> {
                web_get_api_token_by_hash(&self.pool, hash).await
            }
            async fn list_api_tokens(&self, tenant: Option<TenantId>) -> Result<Vec<ApiToken>> {
                web_list_api_tokens(&self.pool, tenant).await
            }
            async fn revoke_api_token(&self, tenant: Option<TenantId>, id: ApiTokenId, now: OffsetDateTime) -> Result<ApiToken> {
                web_revoke_api_token(&self.pool, tenant, id, now).await
            }
            async fn touch_api_token(&self, id: ApiTokenId, now: OffsetDateTime) -> Result<()> {
                web_touch_api_token(&self.pool, id, now).await
            }
            async fn set_user_role(&self, tenant: TenantId, user: UserId, role: Role) -> Result<User> {
                web_set_user_role(&self.pool, tenant, user, role).await
            }
            async fn find_user_extension(&self, tenant: TenantId, user: UserId) -> Result<Option<ExtensionId>> {
                web_find_user_extension(&self.pool, tenant, user).await
            }
            async fn create_setup_token(&self, hash: &TokenHash, expires_at: OffsetDateTime) -> Result<()> {
                web_create_setup_token(&self.pool, hash, expires_at).await
            }
            async fn setup_token_valid(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<bool> {
                web_setup_token_valid(&self.pool, hash, now).await
            }
            async fn redeem_setup_token(&self, hash: &TokenHash, now: OffsetDateTime, new: &NewUser) -> Result<User> {
                web_redeem_setup_token(&self.pool, hash, now, new).await
            }
        }
    };
}
pub(crate) use web_impl;
