//! Platform trunks, registration bindings and call detail records.

use crate::error::{Result, StoreError};
use crate::model::*;

pub(crate) fn check_trunk(s: &TrunkSettings) -> Result<()> {
    match s.problems().into_iter().next() {
        Some((field, message)) => Err(StoreError::invalid(field, message)),
        None => Ok(()),
    }
}

pub(crate) fn check_binding(b: &Binding) -> Result<()> {
    if b.aor.is_empty() {
        return Err(StoreError::invalid("aor", "AOR must not be empty"));
    }
    if b.contact_uri.is_empty() {
        return Err(StoreError::invalid(
            "contact_uri",
            "contact URI must not be empty",
        ));
    }
    if b.q.is_some_and(|q| !(0.0..=1.0).contains(&q)) {
        return Err(StoreError::invalid("q", "q must be between 0 and 1"));
    }
    Ok(())
}

macro_rules! trunk_cols {
    () => {
        "id, name, host, port, transport, username, password, from_domain, priority, emergency_priority, \
         enabled, inbound_source, force_wide_source, inbound_auth, calls_per_second, register_enabled, \
         registrar, register_expires, created_at"
    };
}
pub(crate) use trunk_cols;

macro_rules! registration_cols {
    () => {
        "id, tenant_id, extension_id, credential_id, aor, contact_uri, call_id, cseq, q, expires_at, instance_id, \
         reg_id, source_addr, transport, local_addr, user_agent, path, created_at, updated_at"
    };
}
pub(crate) use registration_cols;

macro_rules! cdr_cols {
    () => {
        "id, tenant_id, call_id, direction, caller, callee, dialled, trunk_id, started_at, answered_at, ended_at, \
         duration_secs, disposition, hangup_cause, hangup_by, transferred_by, transferred_to, created_at"
    };
}
pub(crate) use cdr_cols;

/// A missed call of `cdrs c`: someone in the business was called (inbound or internal) and
/// nobody answered.
macro_rules! missed_cdr {
    () => {
        "(c.direction IN ('inbound', 'internal') AND c.answered_at IS NULL)"
    };
}
pub(crate) use missed_cdr;

/// [`cdr_cols`] of `cdrs c`, with the name of the trunk that carried the call (`trunks tr`).
macro_rules! cdr_list_cols {
    () => {
        "c.id, c.tenant_id, c.call_id, c.direction, c.caller, c.callee, c.dialled, c.trunk_id, c.started_at, \
         c.answered_at, c.ended_at, c.duration_secs, c.disposition, c.hangup_cause, c.hangup_by, \
         c.transferred_by, c.transferred_to, c.created_at, tr.name AS trunk_name"
    };
}
pub(crate) use cdr_list_cols;

macro_rules! operations_impl {
    () => {
        fn trunk_row(r: &DbRow) -> Result<Trunk> {
            let port: i32 = get(r, "port")?;
            Ok(Trunk {
                id: TrunkId::from_uuid(get(r, "id")?),
                settings: TrunkSettings {
                    name: get(r, "name")?,
                    host: get(r, "host")?,
                    port: u16::try_from(port).map_err(|e| corrupt("port", e))?,
                    transport: parse_col(get(r, "transport")?, "transport")?,
                    username: get(r, "username")?,
                    password: get::<Option<String>>(r, "password")?.map(Secret::new),
                    from_domain: get(r, "from_domain")?,
                    priority: get(r, "priority")?,
                    emergency_priority: get(r, "emergency_priority")?,
                    enabled: get(r, "enabled")?,
                    inbound_source: get(r, "inbound_source")?,
                    force_wide_source: get(r, "force_wide_source")?,
                    inbound_auth: get(r, "inbound_auth")?,
                    calls_per_second: u32::try_from(get::<i32>(r, "calls_per_second")?)
                        .map_err(|e| corrupt("calls_per_second", e))?,
                    register: get(r, "register_enabled")?,
                    registrar: get(r, "registrar")?,
                    register_expires: u32::try_from(get::<i32>(r, "register_expires")?)
                        .map_err(|e| corrupt("register_expires", e))?,
                },
                created_at: get(r, "created_at")?,
            })
        }

        async fn create_trunk(pool: &Pool, s: &TrunkSettings) -> Result<Trunk> {
            check_trunk(s)?;
            let trunk = Trunk { id: TrunkId::new(), settings: TrunkSettings { name: s.name.trim().to_owned(), registrar: s.registrar.as_deref().map(|r| r.trim().to_owned()), ..s.clone() }, created_at: now() };
            sqlx::query(concat!(
                "INSERT INTO trunks (", trunk_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
            ))
            .bind(trunk.id.as_uuid())
            .bind(&trunk.settings.name)
            .bind(s.host.trim())
            .bind(i32::from(s.port))
            .bind(s.transport.as_str())
            .bind(s.username.as_deref())
            .bind(s.password.as_ref().map(|p| p.expose()))
            .bind(s.from_domain.as_deref())
            .bind(s.priority)
            .bind(s.emergency_priority)
            .bind(s.enabled)
            .bind(s.inbound_source.as_deref())
            .bind(s.force_wide_source)
            .bind(s.inbound_auth)
            .bind(i32::try_from(s.calls_per_second).unwrap_or(i32::MAX))
            .bind(s.register)
            .bind(s.registrar.as_deref().map(str::trim))
            .bind(i32::try_from(s.register_expires).unwrap_or(i32::MAX))
            .bind(ts(trunk.created_at))
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_conflict(e, "name", format!("a trunk named {:?} already exists", trunk.settings.name)))?;
            Ok(trunk)
        }

        async fn get_trunk(pool: &Pool, id: TrunkId) -> Result<Trunk> {
            let row = sqlx::query(concat!("SELECT ", trunk_cols!(), " FROM trunks WHERE id = $1"))
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(trunk_row).unwrap_or(Err(StoreError::not_found("trunk")))
        }

        async fn list_trunks_where(pool: &Pool, sql: &'static str) -> Result<Vec<Trunk>> {
            let rows = sqlx::query(sql).fetch_all(pool).await.map_err(db_err)?;
            rows.iter().map(trunk_row).collect()
        }

        async fn list_trunks(pool: &Pool) -> Result<Vec<Trunk>> {
            list_trunks_where(pool, concat!("SELECT ", trunk_cols!(), " FROM trunks ORDER BY priority, name")).await
        }

        async fn list_outbound_trunks(pool: &Pool) -> Result<Vec<Trunk>> {
            list_trunks_where(pool, concat!("SELECT ", trunk_cols!(), " FROM trunks WHERE enabled = TRUE ORDER BY priority, name")).await
        }

        async fn list_emergency_trunks(pool: &Pool) -> Result<Vec<Trunk>> {
            list_trunks_where(
                pool,
                concat!(
                    "SELECT ", trunk_cols!(),
                    " FROM trunks WHERE enabled = TRUE AND emergency_priority IS NOT NULL ORDER BY emergency_priority, priority, name"
                ),
            )
            .await
        }

        async fn update_trunk(pool: &Pool, id: TrunkId, s: &TrunkSettings) -> Result<Trunk> {
            check_trunk(s)?;
            let done = sqlx::query(
                "UPDATE trunks SET name = $2, host = $3, port = $4, transport = $5, username = $6, password = $7, \
                 from_domain = $8, priority = $9, emergency_priority = $10, enabled = $11, inbound_source = $12, \
                 force_wide_source = $13, inbound_auth = $14, calls_per_second = $15, register_enabled = $16, \
                 registrar = $17, register_expires = $18 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(s.name.trim())
            .bind(s.host.trim())
            .bind(i32::from(s.port))
            .bind(s.transport.as_str())
            .bind(s.username.as_deref())
            .bind(s.password.as_ref().map(|p| p.expose()))
            .bind(s.from_domain.as_deref())
            .bind(s.priority)
            .bind(s.emergency_priority)
            .bind(s.enabled)
            .bind(s.inbound_source.as_deref())
            .bind(s.force_wide_source)
            .bind(s.inbound_auth)
            .bind(i32::try_from(s.calls_per_second).unwrap_or(i32::MAX))
            .bind(s.register)
            .bind(s.registrar.as_deref().map(str::trim))
            .bind(i32::try_from(s.register_expires).unwrap_or(i32::MAX))
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_conflict(e, "name", format!("a trunk named {:?} already exists", s.name.trim())))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("trunk"));
            }
            get_trunk(pool, id).await
        }

        async fn delete_trunk(pool: &Pool, id: TrunkId) -> Result<()> {
            let done = sqlx::query("DELETE FROM trunks WHERE id = $1").bind(id.as_uuid()).execute(pool).await.map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("trunk"));
            }
            Ok(())
        }

        fn registration_row(r: &DbRow) -> Result<Registration> {
            let cseq: i64 = get(r, "cseq")?;
            let reg_id: Option<i64> = get(r, "reg_id")?;
            Ok(Registration {
                id: RegistrationId::from_uuid(get(r, "id")?),
                tenant_id: TenantId::from_uuid(get(r, "tenant_id")?),
                binding: Binding {
                    extension_id: ExtensionId::from_uuid(get(r, "extension_id")?),
                    credential_id: CredentialId::from_uuid(get(r, "credential_id")?),
                    aor: get(r, "aor")?,
                    contact_uri: get(r, "contact_uri")?,
                    call_id: get(r, "call_id")?,
                    cseq: u32::try_from(cseq).map_err(|e| corrupt("cseq", e))?,
                    q: get(r, "q")?,
                    expires_at: get(r, "expires_at")?,
                    instance_id: get(r, "instance_id")?,
                    reg_id: reg_id.map(u32::try_from).transpose().map_err(|e| corrupt("reg_id", e))?,
                    source_addr: parse_col(get(r, "source_addr")?, "source_addr")?,
                    transport: parse_col(get(r, "transport")?, "transport")?,
                    local_addr: parse_opt(get(r, "local_addr")?, "local_addr")?,
                    user_agent: get(r, "user_agent")?,
                    path: get(r, "path")?,
                },
                created_at: get(r, "created_at")?,
                updated_at: get(r, "updated_at")?,
            })
        }

        async fn upsert_registration(pool: &Pool, tenant: TenantId, b: &Binding) -> Result<Registration> {
            check_binding(b)?;
            let at = now();
            let expires_at = micros(b.expires_at);
            let row = sqlx::query(concat!(
                "INSERT INTO registrations (", registration_cols!(), ") \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18) \
                 ON CONFLICT (credential_id, contact_uri) DO UPDATE SET aor = excluded.aor, call_id = excluded.call_id, \
                 cseq = excluded.cseq, q = excluded.q, expires_at = excluded.expires_at, instance_id = excluded.instance_id, \
                 reg_id = excluded.reg_id, source_addr = excluded.source_addr, transport = excluded.transport, \
                 local_addr = excluded.local_addr, user_agent = excluded.user_agent, path = excluded.path, \
                 updated_at = excluded.updated_at \
                 WHERE registrations.tenant_id = excluded.tenant_id AND registrations.extension_id = excluded.extension_id \
                 RETURNING id, created_at"
            ))
            .bind(RegistrationId::new().as_uuid())
            .bind(tenant.as_uuid())
            .bind(b.extension_id.as_uuid())
            .bind(b.credential_id.as_uuid())
            .bind(&b.aor)
            .bind(&b.contact_uri)
            .bind(&b.call_id)
            .bind(i64::from(b.cseq))
            .bind(b.q)
            .bind(ts(expires_at))
            .bind(b.instance_id.as_deref())
            .bind(b.reg_id.map(i64::from))
            .bind(b.source_addr.to_string())
            .bind(b.transport.as_str())
            .bind(b.local_addr.map(|a| a.to_string()))
            .bind(b.user_agent.as_deref())
            .bind(b.path.as_deref())
            .bind(ts(at))
            .fetch_optional(pool)
            .await
            .map_err(db_err)
            .map_err(|e| match e {
                StoreError::Invalid { field: catalog::FK_FIELD, .. } => StoreError::not_found("credential"),
                e => e,
            })?;
            let Some(row) = row else {
                return Err(StoreError::not_found("credential"));
            };
            Ok(Registration {
                id: RegistrationId::from_uuid(get(&row, "id")?),
                tenant_id: tenant,
                binding: Binding { expires_at, ..b.clone() },
                created_at: get(&row, "created_at")?,
                updated_at: at,
            })
        }

        async fn remove_registration(pool: &Pool, tenant: TenantId, credential: CredentialId, contact_uri: &str) -> Result<bool> {
            let done = sqlx::query("DELETE FROM registrations WHERE tenant_id = $1 AND credential_id = $2 AND contact_uri = $3")
                .bind(tenant.as_uuid())
                .bind(credential.as_uuid())
                .bind(contact_uri)
                .execute(pool)
                .await
                .map_err(db_err)?;
            Ok(done.rows_affected() > 0)
        }

        async fn remove_registrations_for_credential(pool: &Pool, tenant: TenantId, credential: CredentialId) -> Result<u64> {
            let mut tx = begin(pool).await?;
            // Keep when it last registered (see delete_expired_registrations).
            sqlx::query(
                "UPDATE sip_credentials SET last_seen_at = r.seen \
                 FROM (SELECT credential_id, max(updated_at) AS seen FROM registrations \
                       WHERE tenant_id = $1 AND credential_id = $2 GROUP BY credential_id) r \
                 WHERE sip_credentials.id = r.credential_id \
                   AND (sip_credentials.last_seen_at IS NULL OR sip_credentials.last_seen_at < r.seen)",
            )
            .bind(tenant.as_uuid())
            .bind(credential.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let done = sqlx::query("DELETE FROM registrations WHERE tenant_id = $1 AND credential_id = $2")
                .bind(tenant.as_uuid())
                .bind(credential.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(done.rows_affected())
        }

        async fn list_registrations(pool: &Pool, tenant: TenantId, extension: ExtensionId) -> Result<Vec<Registration>> {
            let rows = sqlx::query(concat!(
                "SELECT ", registration_cols!(),
                " FROM registrations WHERE tenant_id = $1 AND extension_id = $2 ORDER BY created_at, id"
            ))
            .bind(tenant.as_uuid())
            .bind(extension.as_uuid())
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            rows.iter().map(registration_row).collect()
        }

        async fn list_unexpired_registrations(pool: &Pool, at: OffsetDateTime) -> Result<Vec<Registration>> {
            let rows = sqlx::query(concat!("SELECT ", registration_cols!(), " FROM registrations WHERE expires_at > $1 ORDER BY expires_at, id"))
                .bind(ts(micros(at)))
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            rows.iter().map(registration_row).collect()
        }

        async fn list_tenant_registrations(pool: &Pool, tenant: TenantId, at: OffsetDateTime) -> Result<Vec<(ExtensionNumber, Registration)>> {
            let rows = sqlx::query(
                "SELECT e.number AS extension_number, r.id, r.tenant_id, r.extension_id, r.credential_id, r.aor, r.contact_uri, \
                 r.call_id, r.cseq, r.q, r.expires_at, r.instance_id, r.reg_id, r.source_addr, r.transport, r.local_addr, \
                 r.user_agent, r.path, r.created_at, r.updated_at \
                 FROM registrations r JOIN extensions e ON e.tenant_id = r.tenant_id AND e.id = r.extension_id \
                 WHERE r.tenant_id = $1 AND r.expires_at > $2 ORDER BY e.number, r.expires_at, r.id",
            )
            .bind(tenant.as_uuid())
            .bind(ts(micros(at)))
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            rows.iter()
                .map(|r| Ok((parse_col(get(r, "extension_number")?, "extension number")?, registration_row(r)?)))
                .collect()
        }

        async fn delete_expired_registrations(pool: &Pool, at: OffsetDateTime) -> Result<u64> {
            let mut tx = begin(pool).await?;
            // The bindings' own refresh times become the credentials' "last seen": the
            // registrar writes nothing for it, the sweep carries it over.
            sqlx::query(
                "UPDATE sip_credentials SET last_seen_at = r.seen \
                 FROM (SELECT credential_id, max(updated_at) AS seen FROM registrations \
                       WHERE expires_at <= $1 GROUP BY credential_id) r \
                 WHERE sip_credentials.id = r.credential_id \
                   AND (sip_credentials.last_seen_at IS NULL OR sip_credentials.last_seen_at < r.seen)",
            )
            .bind(ts(micros(at)))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let done = sqlx::query("DELETE FROM registrations WHERE expires_at <= $1")
                .bind(ts(micros(at)))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(done.rows_affected())
        }

        async fn list_last_registered(pool: &Pool, tenant: TenantId) -> Result<Vec<(ExtensionId, OffsetDateTime)>> {
            let rows = sqlx::query(
                "SELECT extension_id, max(seen) AS seen FROM ( \
                   SELECT extension_id, last_seen_at AS seen FROM sip_credentials \
                     WHERE tenant_id = $1 AND last_seen_at IS NOT NULL \
                   UNION ALL \
                   SELECT extension_id, updated_at AS seen FROM registrations WHERE tenant_id = $1 \
                 ) s GROUP BY extension_id",
            )
            .bind(tenant.as_uuid())
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            rows.iter()
                .map(|r| Ok((ExtensionId::from_uuid(get(r, "extension_id")?), get(r, "seen")?)))
                .collect()
        }

        fn cdr_row(r: &DbRow) -> Result<Cdr> {
            let duration: i64 = get(r, "duration_secs")?;
            Ok(Cdr {
                record: NewCdr {
                    id: CdrId::from_uuid(get(r, "id")?),
                    tenant_id: TenantId::from_uuid(get(r, "tenant_id")?),
                    call_id: get(r, "call_id")?,
                    direction: parse_col(get(r, "direction")?, "direction")?,
                    caller: get(r, "caller")?,
                    callee: get(r, "callee")?,
                    dialled: get(r, "dialled")?,
                    trunk_id: get::<Option<Uuid>>(r, "trunk_id")?.map(TrunkId::from_uuid),
                    started_at: get(r, "started_at")?,
                    answered_at: get(r, "answered_at")?,
                    ended_at: get(r, "ended_at")?,
                    duration_secs: u32::try_from(duration).map_err(|e| corrupt("duration_secs", e))?,
                    disposition: parse_col(get(r, "disposition")?, "disposition")?,
                    hangup_cause: get(r, "hangup_cause")?,
                    hangup_by: parse_col(get(r, "hangup_by")?, "hangup_by")?,
                    transferred_by: get(r, "transferred_by")?,
                    transferred_to: get(r, "transferred_to")?,
                },
                created_at: get(r, "created_at")?,
                trunk_name: get(r, "trunk_name")?,
            })
        }

        async fn insert_cdr(pool: &Pool, c: &NewCdr) -> Result<bool> {
            let mut conn = pool.acquire().await.map_err(db_err)?;
            insert_cdr_on(&mut conn, c).await
        }

        /// Several records in one transaction; how many were new.
        async fn insert_cdrs(pool: &Pool, cdrs: &[NewCdr]) -> Result<u64> {
            let mut tx = begin(pool).await?;
            let mut fresh = 0;
            for c in cdrs {
                fresh += u64::from(insert_cdr_on(&mut tx, c).await?);
            }
            tx.commit().await.map_err(db_err)?;
            Ok(fresh)
        }

        async fn insert_cdr_on(conn: &mut Conn, c: &NewCdr) -> Result<bool> {
            let done = sqlx::query(concat!(
                "INSERT INTO cdrs (", cdr_cols!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
                 ON CONFLICT (id) DO NOTHING"
            ))
            .bind(c.id.as_uuid())
            .bind(c.tenant_id.as_uuid())
            .bind(&c.call_id)
            .bind(c.direction.as_str())
            .bind(&c.caller)
            .bind(&c.callee)
            .bind(&c.dialled)
            .bind(c.trunk_id.map(|t| t.as_uuid()))
            .bind(ts(micros(c.started_at)))
            .bind(c.answered_at.map(|t| ts(micros(t))))
            .bind(ts(micros(c.ended_at)))
            .bind(i64::from(c.duration_secs))
            .bind(c.disposition.as_str())
            .bind(&c.hangup_cause)
            .bind(c.hangup_by.as_str())
            .bind(c.transferred_by.as_deref())
            .bind(c.transferred_to.as_deref())
            .bind(ts(now()))
            .execute(&mut *conn)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "tenant_id", "no such business or trunk"))?;
            Ok(done.rows_affected() > 0)
        }

        async fn list_cdrs(pool: &Pool, tenant: TenantId, query: &CdrQuery) -> Result<Paged<Cdr>> {
            fn filters<'a>(b: &mut sqlx::QueryBuilder<'a, Db>, tenant: TenantId, query: &'a CdrQuery) {
                // Trunks are the operator's: the record is the tenant's, the join adds only the name.
                b.push(" FROM cdrs c LEFT JOIN trunks tr ON tr.id = c.trunk_id WHERE c.tenant_id = ")
                    .push_bind(tenant.as_uuid());
                if let Some(from) = query.from {
                    b.push(" AND c.started_at >= ").push_bind(ts(micros(from)));
                }
                if let Some(to) = query.to {
                    b.push(" AND c.started_at < ").push_bind(ts(micros(to)));
                }
                if let Some(party) = query.party.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
                    let p = like_pattern(&party.to_lowercase());
                    b.push(" AND (lower(c.caller) LIKE ").push_bind(p.clone()).push(" ESCAPE '\\'");
                    b.push(" OR lower(c.callee) LIKE ").push_bind(p.clone()).push(" ESCAPE '\\'");
                    b.push(" OR lower(c.dialled) LIKE ").push_bind(p).push(" ESCAPE '\\')");
                }
                if query.missed {
                    b.push(concat!(" AND ", missed_cdr!()));
                }
            }
            let mut b = sqlx::QueryBuilder::<Db>::new(concat!("SELECT ", cdr_list_cols!()));
            filters(&mut b, tenant, query);
            b.push(" ORDER BY c.started_at DESC, c.id DESC LIMIT ")
                .push_bind(i64::from(query.page.effective_limit()))
                .push(" OFFSET ")
                .push_bind(i64::from(query.page.offset));
            let rows = b.build().fetch_all(pool).await.map_err(db_err)?;
            let mut c = sqlx::QueryBuilder::<Db>::new("SELECT count(*)");
            filters(&mut c, tenant, query);
            let total: i64 = c.build_query_scalar().fetch_one(pool).await.map_err(db_err)?;
            Ok(Paged { items: rows.iter().map(cdr_row).collect::<Result<_>>()?, total: total as u64 })
        }

        async fn call_summary(
            pool: &Pool,
            tenant: TenantId,
            from: OffsetDateTime,
            to: OffsetDateTime,
            busiest: u32,
        ) -> Result<CallSummary> {
            let row = sqlx::query(concat!(
                "SELECT count(*) AS calls, coalesce(sum(CASE WHEN ", missed_cdr!(), " THEN 1 ELSE 0 END), 0) AS missed \
                 FROM cdrs c WHERE c.tenant_id = $1 AND c.started_at >= $2 AND c.started_at < $3"
            ))
            .bind(tenant.as_uuid())
            .bind(ts(micros(from)))
            .bind(ts(micros(to)))
            .fetch_one(pool)
            .await
            .map_err(db_err)?;
            let calls: i64 = get(&row, "calls")?;
            let missed: i64 = get(&row, "missed")?;
            let rows = sqlx::query(
                "SELECT e.id, e.number, e.display_name, count(*) AS calls \
                 FROM cdrs c JOIN extensions e ON e.tenant_id = c.tenant_id \
                   AND (e.number = c.caller OR e.number = c.callee) \
                 WHERE c.tenant_id = $1 AND c.started_at >= $2 AND c.started_at < $3 \
                 GROUP BY e.id, e.number, e.display_name ORDER BY count(*) DESC, e.number LIMIT $4",
            )
            .bind(tenant.as_uuid())
            .bind(ts(micros(from)))
            .bind(ts(micros(to)))
            .bind(i64::from(busiest))
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            let busiest = rows
                .iter()
                .map(|r| {
                    let n: i64 = get(r, "calls")?;
                    Ok(BusyExtension {
                        id: ExtensionId::from_uuid(get(r, "id")?),
                        number: parse_col(get(r, "number")?, "number")?,
                        display_name: get(r, "display_name")?,
                        calls: n as u64,
                    })
                })
                .collect::<Result<_>>()?;
            Ok(CallSummary { calls: calls as u64, missed: missed as u64, busiest })
        }

        async fn count_all_calls(pool: &Pool, from: OffsetDateTime, to: OffsetDateTime) -> Result<u64> {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM cdrs WHERE started_at >= $1 AND started_at < $2")
                .bind(ts(micros(from)))
                .bind(ts(micros(to)))
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            Ok(n as u64)
        }

        async fn list_call_starts(
            pool: &Pool,
            tenant: TenantId,
            from: OffsetDateTime,
            to: OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<CallStart>> {
            let rows = sqlx::query(
                "SELECT c.started_at, c.direction, c.answered_at FROM cdrs c \
                 WHERE c.tenant_id = $1 AND c.started_at >= $2 AND c.started_at < $3 \
                 ORDER BY c.started_at, c.id LIMIT $4",
            )
            .bind(tenant.as_uuid())
            .bind(ts(micros(from)))
            .bind(ts(micros(to)))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            rows.iter()
                .map(|r| {
                    Ok(CallStart {
                        started_at: get(r, "started_at")?,
                        direction: parse_col(get(r, "direction")?, "direction")?,
                        answered: get::<Option<OffsetDateTime>>(r, "answered_at")?.is_some(),
                    })
                })
                .collect()
        }
    };
}
pub(crate) use operations_impl;
