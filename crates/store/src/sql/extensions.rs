//! Extensions, their SIP credentials, bulk import and short-number resolution.

macro_rules! extension_cols {
    () => {
        "id, tenant_id, number, display_name, user_id, no_answer_timeout_secs, forward_always, \
         forward_busy, forward_no_answer, dnd, max_concurrent_calls, created_at"
    };
}
pub(crate) use extension_cols;

macro_rules! credential_select {
    () => {
        "SELECT c.id, c.tenant_id, c.extension_id, e.number AS extension_number, c.username, \
         c.ha1_md5, c.ha1_sha256, c.mac_address, c.model, c.created_at, c.last_seen_at \
         FROM sip_credentials c JOIN extensions e ON e.tenant_id = c.tenant_id AND e.id = c.extension_id"
    };
}
pub(crate) use credential_select;

macro_rules! extensions_impl {
    () => {
        fn extension_row(r: &DbRow) -> Result<Extension> {
            Ok(Extension {
                id: ExtensionId::from_uuid(get(r, "id")?),
                tenant_id: TenantId::from_uuid(get(r, "tenant_id")?),
                number: parse_col(get(r, "number")?, "number")?,
                settings: ExtensionSettings {
                    display_name: get(r, "display_name")?,
                    user_id: get::<Option<Uuid>>(r, "user_id")?.map(UserId::from_uuid),
                    no_answer_timeout_secs: get_u32(r, "no_answer_timeout_secs")?,
                    forwarding: Forwarding {
                        always: parse_opt(get(r, "forward_always")?, "forward_always")?,
                        busy: parse_opt(get(r, "forward_busy")?, "forward_busy")?,
                        no_answer: parse_opt(get(r, "forward_no_answer")?, "forward_no_answer")?,
                    },
                    dnd: get(r, "dnd")?,
                    max_concurrent_calls: get_u32(r, "max_concurrent_calls")?,
                },
                created_at: get(r, "created_at")?,
            })
        }

        fn credential_row(r: &DbRow) -> Result<SipCredential> {
            Ok(SipCredential {
                id: CredentialId::from_uuid(get(r, "id")?),
                tenant_id: TenantId::from_uuid(get(r, "tenant_id")?),
                extension_id: ExtensionId::from_uuid(get(r, "extension_id")?),
                extension_number: parse_col(get(r, "extension_number")?, "extension number")?,
                username: parse_col(get(r, "username")?, "username")?,
                ha1_md5: parse_col(get(r, "ha1_md5")?, "ha1_md5")?,
                ha1_sha256: parse_col(get(r, "ha1_sha256")?, "ha1_sha256")?,
                mac_address: parse_opt(get(r, "mac_address")?, "mac_address")?,
                model: get(r, "model")?,
                created_at: get(r, "created_at")?,
                last_seen_at: get(r, "last_seen_at")?,
            })
        }

        fn check_extension_settings(number: &ExtensionNumber, s: &ExtensionSettings) -> Result<()> {
            if s.display_name.chars().count() > 200 {
                return Err(StoreError::invalid("display_name", "display name must be at most 200 characters"));
            }
            if !(5..=300).contains(&s.no_answer_timeout_secs) {
                return Err(StoreError::invalid(
                    "no_answer_timeout_secs",
                    format!("no-answer timeout must be 5 to 300 seconds, not {}", s.no_answer_timeout_secs),
                ));
            }
            if !(1..=1000).contains(&s.max_concurrent_calls) {
                return Err(StoreError::invalid(
                    "max_concurrent_calls",
                    format!("concurrent call limit must be 1 to 1000, not {}", s.max_concurrent_calls),
                ));
            }
            let f = &s.forwarding;
            for (field, target) in [("forward_always", &f.always), ("forward_busy", &f.busy), ("forward_no_answer", &f.no_answer)] {
                if let Some(ForwardTarget::Extension(n)) = target {
                    if n == number {
                        return Err(StoreError::invalid(field, format!("extension {number} cannot forward to itself")));
                    }
                }
            }
            Ok(())
        }

        /// Takes `number` for something new of the tenant: the one place every extension, ring
        /// group, IVR menu and room number (web, API, CLI, CSV import) is checked against the
        /// numbering rules for new numbers.
        async fn insert_dialable(conn: &mut Conn, tenant: TenantId, number: &ExtensionNumber, kind: &str) -> Result<()> {
            number.check_new()?;
            sqlx::query("INSERT INTO dialables (tenant_id, number, kind) VALUES ($1, $2, $3)")
                .bind(tenant.as_uuid())
                .bind(number.as_str())
                .bind(kind)
                .execute(&mut *conn)
                .await
                .map_err(db_err)
                .map_err(|e| on_fk(e, "tenant_id", "no such business"))
                .map_err(|e| on_conflict(e, "number", format!("the number {number} is already in use in this business")))?;
            Ok(())
        }

        async fn delete_dialable(conn: &mut Conn, tenant: TenantId, number: &str, kind: &str) -> Result<()> {
            sqlx::query("DELETE FROM dialables WHERE tenant_id = $1 AND number = $2 AND kind = $3")
                .bind(tenant.as_uuid())
                .bind(number)
                .bind(kind)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            Ok(())
        }

        async fn insert_extension(conn: &mut Conn, tenant: TenantId, new: &NewExtension) -> Result<Extension> {
            check_extension_settings(&new.number, &new.settings)?;
            insert_dialable(conn, tenant, &new.number, "extension").await?;
            let ext = Extension {
                id: ExtensionId::new(),
                tenant_id: tenant,
                number: new.number.clone(),
                settings: new.settings.clone(),
                created_at: now(),
            };
            let s = &ext.settings;
            let fwd = |t: &Option<ForwardTarget>| t.as_ref().map(|t| t.to_string());
            sqlx::query(
                "INSERT INTO extensions (id, tenant_id, number, display_name, user_id, no_answer_timeout_secs, \
                 forward_always, forward_busy, forward_no_answer, dnd, created_at, max_concurrent_calls) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(ext.id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(ext.number.as_str())
            .bind(&s.display_name)
            .bind(s.user_id.map(|u| u.as_uuid()))
            .bind(to_i32(s.no_answer_timeout_secs, "no_answer_timeout_secs")?)
            .bind(fwd(&s.forwarding.always))
            .bind(fwd(&s.forwarding.busy))
            .bind(fwd(&s.forwarding.no_answer))
            .bind(s.dnd)
            .bind(ts(ext.created_at))
            .bind(to_i32(s.max_concurrent_calls, "max_concurrent_calls")?)
            .execute(&mut *conn)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "user_id", "no such user in this business"))
            .map_err(|e| on_conflict(e, "number", format!("the number {} is already in use in this business", new.number)))?;
            Ok(ext)
        }

        async fn insert_credential(
            conn: &mut Conn,
            tenant: TenantId,
            extension: &Extension,
            new: &NewCredential,
        ) -> Result<SipCredential> {
            if let Some(m) = &new.model {
                if m.is_empty() || m.chars().count() > 100 {
                    return Err(StoreError::invalid("model", "model must be 1 to 100 characters"));
                }
            }
            let cred = SipCredential {
                id: CredentialId::new(),
                tenant_id: tenant,
                extension_id: extension.id,
                extension_number: extension.number.clone(),
                username: new.username.clone(),
                ha1_md5: new.ha1_md5.clone(),
                ha1_sha256: new.ha1_sha256.clone(),
                mac_address: new.mac_address.clone(),
                model: new.model.clone(),
                created_at: now(),
                last_seen_at: None,
            };
            sqlx::query(
                "INSERT INTO sip_credentials (id, tenant_id, extension_id, username, ha1_md5, ha1_sha256, \
                 mac_address, model, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(cred.id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(extension.id.as_uuid())
            .bind(cred.username.as_str())
            .bind(cred.ha1_md5.as_str())
            .bind(cred.ha1_sha256.as_str())
            .bind(cred.mac_address.as_ref().map(|m| m.as_str()))
            .bind(cred.model.as_deref())
            .bind(ts(cred.created_at))
            .execute(&mut *conn)
            .await
            .map_err(db_err)
            .map_err(|e| match e {
                StoreError::Invalid { field: catalog::FK_FIELD, .. } => StoreError::not_found("extension"),
                e => e,
            })
            .map_err(|e| on_conflict(e, "username", format!("the SIP username {} is already in use", new.username)))?;
            Ok(cred)
        }

        async fn create_extension(
            pool: &Pool,
            tenant: TenantId,
            new: &NewExtension,
            credential: Option<&NewCredential>,
        ) -> Result<(Extension, Option<SipCredential>)> {
            let mut tx = begin(pool).await?;
            let ext = insert_extension(&mut tx, tenant, new).await?;
            let cred = match credential {
                Some(c) => Some(insert_credential(&mut tx, tenant, &ext, c).await?),
                None => None,
            };
            tx.commit().await.map_err(db_err)?;
            Ok((ext, cred))
        }

        async fn import_extensions(pool: &Pool, tenant: TenantId, rows: &[ImportExtension]) -> Result<Vec<Extension>> {
            let mut out = Vec::with_capacity(rows.len());
            let mut tx = begin(pool).await?;
            for (index, row) in rows.iter().enumerate() {
                let ext = insert_extension(&mut tx, tenant, &row.extension).await.map_err(|e| e.at_row(index))?;
                if let Some(c) = &row.credential {
                    insert_credential(&mut tx, tenant, &ext, c).await.map_err(|e| e.at_row(index))?;
                }
                out.push(ext);
            }
            tx.commit().await.map_err(db_err)?;
            Ok(out)
        }

        async fn get_extension(pool: &Pool, tenant: TenantId, id: ExtensionId) -> Result<Extension> {
            let row = sqlx::query(concat!("SELECT ", extension_cols!(), " FROM extensions WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(extension_row).unwrap_or(Err(StoreError::not_found("extension")))
        }

        async fn get_extension_by_number(pool: &Pool, tenant: TenantId, number: &ExtensionNumber) -> Result<Extension> {
            let row = sqlx::query(concat!("SELECT ", extension_cols!(), " FROM extensions WHERE tenant_id = $1 AND number = $2"))
                .bind(tenant.as_uuid())
                .bind(number.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(extension_row).unwrap_or(Err(StoreError::not_found("extension")))
        }

        async fn list_extensions(pool: &Pool, tenant: TenantId, search: Option<&str>, page: Page) -> Result<Paged<Extension>> {
            let pattern = search.map(str::trim).filter(|s| !s.is_empty()).map(|s| like_pattern(&s.to_lowercase()));
            const FILTER: &str = " WHERE tenant_id = $1 AND (CAST($2 AS TEXT) IS NULL \
                OR number LIKE $2 ESCAPE '\\' OR lower(display_name) LIKE $2 ESCAPE '\\')";
            let rows = sqlx::query(&format!(
                "SELECT {} FROM extensions{FILTER} ORDER BY number LIMIT $3 OFFSET $4",
                extension_cols!()
            ))
            .bind(tenant.as_uuid())
            .bind(pattern.as_deref())
            .bind(i64::from(page.effective_limit()))
            .bind(i64::from(page.offset))
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM extensions{FILTER}"))
                .bind(tenant.as_uuid())
                .bind(pattern.as_deref())
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            Ok(Paged { items: rows.iter().map(extension_row).collect::<Result<_>>()?, total: total as u64 })
        }

        async fn update_extension(pool: &Pool, tenant: TenantId, id: ExtensionId, s: &ExtensionSettings) -> Result<Extension> {
            let current = get_extension(pool, tenant, id).await?;
            check_extension_settings(&current.number, s)?;
            let fwd = |t: &Option<ForwardTarget>| t.as_ref().map(|t| t.to_string());
            let done = sqlx::query(
                "UPDATE extensions SET display_name = $3, user_id = $4, no_answer_timeout_secs = $5, \
                 forward_always = $6, forward_busy = $7, forward_no_answer = $8, dnd = $9, \
                 max_concurrent_calls = $10 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(&s.display_name)
            .bind(s.user_id.map(|u| u.as_uuid()))
            .bind(to_i32(s.no_answer_timeout_secs, "no_answer_timeout_secs")?)
            .bind(fwd(&s.forwarding.always))
            .bind(fwd(&s.forwarding.busy))
            .bind(fwd(&s.forwarding.no_answer))
            .bind(s.dnd)
            .bind(to_i32(s.max_concurrent_calls, "max_concurrent_calls")?)
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "user_id", "no such user in this business"))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("extension"));
            }
            Ok(Extension { settings: s.clone(), ..current })
        }

        async fn delete_extension(pool: &Pool, tenant: TenantId, id: ExtensionId) -> Result<()> {
            let mut tx = begin(pool).await?;
            // The member lists of the groups it belongs to shrink: forget their round-robin place.
            sqlx::query(
                "UPDATE ring_groups SET last_answered_member = NULL WHERE tenant_id = $1 AND id IN \
                 (SELECT ring_group_id FROM ring_group_members WHERE tenant_id = $1 AND extension_id = $2)",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let number: Option<String> = sqlx::query_scalar("DELETE FROM extensions WHERE tenant_id = $1 AND id = $2 RETURNING number")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)
                .map_err(|e| match e {
                    StoreError::Invalid { field: catalog::FK_FIELD, .. } => StoreError::conflict(
                        "route",
                        "a public number or a ring group fallback routes to this extension; change that first",
                    ),
                    e => e,
                })?;
            let Some(number) = number else {
                return Err(StoreError::not_found("extension"));
            };
            delete_dialable(&mut tx, tenant, &number, "extension").await?;
            tx.commit().await.map_err(db_err)?;
            Ok(())
        }

        async fn resolve_dialable(pool: &Pool, tenant: TenantId, number: &ExtensionNumber) -> Result<RouteTarget> {
            let row = sqlx::query(
                "SELECT e.id AS ext, r.id AS rg, i.id AS ivr, c.id AS conf FROM dialables d \
                 LEFT JOIN extensions e ON e.tenant_id = d.tenant_id AND e.number = d.number \
                 LEFT JOIN ring_groups r ON r.tenant_id = d.tenant_id AND r.number = d.number \
                 LEFT JOIN ivr_menus i ON i.tenant_id = d.tenant_id AND i.number = d.number \
                 LEFT JOIN conference_rooms c ON c.tenant_id = d.tenant_id AND c.number = d.number \
                 WHERE d.tenant_id = $1 AND d.number = $2",
            )
            .bind(tenant.as_uuid())
            .bind(number.as_str())
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
            let Some(r) = row else {
                return Err(StoreError::not_found("number"));
            };
            let target = if let Some(id) = get::<Option<Uuid>>(&r, "ext")? {
                RouteTarget::Extension(ExtensionId::from_uuid(id))
            } else if let Some(id) = get::<Option<Uuid>>(&r, "rg")? {
                RouteTarget::RingGroup(RingGroupId::from_uuid(id))
            } else if let Some(id) = get::<Option<Uuid>>(&r, "ivr")? {
                RouteTarget::Ivr(IvrMenuId::from_uuid(id))
            } else if let Some(id) = get::<Option<Uuid>>(&r, "conf")? {
                RouteTarget::Conference(ConferenceRoomId::from_uuid(id))
            } else {
                return Err(StoreError::not_found("number"));
            };
            Ok(target)
        }

        async fn create_credential(pool: &Pool, tenant: TenantId, extension: ExtensionId, new: &NewCredential) -> Result<SipCredential> {
            let ext = get_extension(pool, tenant, extension).await?;
            let mut conn = pool.acquire().await.map_err(db_err)?;
            insert_credential(&mut conn, tenant, &ext, new).await
        }

        async fn get_credential_by_username(pool: &Pool, tenant: TenantId, username: &SipUsername) -> Result<SipCredential> {
            let row = sqlx::query(concat!(credential_select!(), " WHERE c.tenant_id = $1 AND c.username = $2"))
                .bind(tenant.as_uuid())
                .bind(username.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(credential_row).unwrap_or(Err(StoreError::not_found("credential")))
        }

        async fn get_credential(pool: &Pool, tenant: TenantId, id: CredentialId) -> Result<SipCredential> {
            let row = sqlx::query(concat!(credential_select!(), " WHERE c.tenant_id = $1 AND c.id = $2"))
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(credential_row).unwrap_or(Err(StoreError::not_found("credential")))
        }

        async fn get_credential_by_mac(pool: &Pool, mac: &MacAddress) -> Result<SipCredential> {
            let row = sqlx::query(concat!(credential_select!(), " WHERE c.mac_address = $1"))
                .bind(mac.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(credential_row).unwrap_or(Err(StoreError::not_found("credential")))
        }

        async fn list_credentials(pool: &Pool, tenant: TenantId, extension: ExtensionId) -> Result<Vec<SipCredential>> {
            let rows = sqlx::query(concat!(
                credential_select!(),
                " WHERE c.tenant_id = $1 AND c.extension_id = $2 ORDER BY c.username"
            ))
            .bind(tenant.as_uuid())
            .bind(extension.as_uuid())
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            rows.iter().map(credential_row).collect()
        }

        async fn regenerate_credential(
            pool: &Pool,
            tenant: TenantId,
            id: CredentialId,
            md5: &Ha1Md5,
            sha256: &Ha1Sha256,
        ) -> Result<SipCredential> {
            let done = sqlx::query("UPDATE sip_credentials SET ha1_md5 = $3, ha1_sha256 = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(md5.as_str())
                .bind(sha256.as_str())
                .execute(pool)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("credential"));
            }
            get_credential(pool, tenant, id).await
        }

        async fn delete_credential(pool: &Pool, tenant: TenantId, id: CredentialId) -> Result<()> {
            let done = sqlx::query("DELETE FROM sip_credentials WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .execute(pool)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("credential"));
            }
            Ok(())
        }
    };
}
pub(crate) use extensions_impl;
