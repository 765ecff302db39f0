//! IVR menus, conference rooms and ring groups, and the typed route columns shared with numbers.

use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::model::*;

/// The typed route columns: (kind, extension, ring group, IVR, conference).
pub(crate) type RouteCols = (
    &'static str,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
);

pub(crate) fn route_cols(r: &RouteTarget) -> RouteCols {
    match *r {
        RouteTarget::None => ("none", None, None, None, None),
        RouteTarget::Extension(id) => ("extension", Some(id.as_uuid()), None, None, None),
        RouteTarget::RingGroup(id) => ("ring_group", None, Some(id.as_uuid()), None, None),
        RouteTarget::Ivr(id) => ("ivr", None, None, Some(id.as_uuid()), None),
        RouteTarget::Conference(id) => ("conference", None, None, None, Some(id.as_uuid())),
    }
}

pub(crate) fn route_from(
    kind: &str,
    ext: Option<Uuid>,
    rg: Option<Uuid>,
    ivr: Option<Uuid>,
    conf: Option<Uuid>,
) -> Result<RouteTarget> {
    let corrupt = || StoreError::Internal(format!("corrupt route in the database: kind {kind}"));
    Ok(match kind {
        "none" => RouteTarget::None,
        "extension" => RouteTarget::Extension(ExtensionId::from_uuid(ext.ok_or_else(corrupt)?)),
        "ring_group" => RouteTarget::RingGroup(RingGroupId::from_uuid(rg.ok_or_else(corrupt)?)),
        "ivr" => RouteTarget::Ivr(IvrMenuId::from_uuid(ivr.ok_or_else(corrupt)?)),
        "conference" => {
            RouteTarget::Conference(ConferenceRoomId::from_uuid(conf.ok_or_else(corrupt)?))
        }
        _ => return Err(corrupt()),
    })
}

pub(crate) fn check_ring_group_settings(s: &RingGroupSettings) -> Result<()> {
    let len = s.name.trim().chars().count();
    if len == 0 || len > 200 {
        return Err(StoreError::invalid(
            "name",
            "name must be 1 to 200 characters",
        ));
    }
    if !(5..=600).contains(&s.ring_timeout_secs) {
        return Err(StoreError::invalid(
            "ring_timeout_secs",
            "ring timeout must be 5 to 600 seconds",
        ));
    }
    if !(5..=300).contains(&s.member_timeout_secs) {
        return Err(StoreError::invalid(
            "member_timeout_secs",
            "member timeout must be 5 to 300 seconds",
        ));
    }
    Ok(())
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    let len = name.trim().chars().count();
    if len == 0 || len > 200 {
        return Err(StoreError::invalid(
            "name",
            "name must be 1 to 200 characters",
        ));
    }
    Ok(())
}

macro_rules! ring_group_cols {
    () => {
        "id, tenant_id, number, name, strategy, ring_timeout_secs, member_timeout_secs, fallback_kind, \
         fallback_extension_id, fallback_ring_group_id, fallback_ivr_id, fallback_conference_id, \
         last_answered_member, created_at"
    };
}
pub(crate) use ring_group_cols;

macro_rules! routing_impl {
    () => {
        fn ring_group_row(r: &DbRow) -> Result<RingGroup> {
            let kind: String = get(r, "fallback_kind")?;
            Ok(RingGroup {
                id: RingGroupId::from_uuid(get(r, "id")?),
                tenant_id: TenantId::from_uuid(get(r, "tenant_id")?),
                number: parse_col(get(r, "number")?, "number")?,
                settings: RingGroupSettings {
                    name: get(r, "name")?,
                    strategy: parse_col(get(r, "strategy")?, "strategy")?,
                    ring_timeout_secs: get_u32(r, "ring_timeout_secs")?,
                    member_timeout_secs: get_u32(r, "member_timeout_secs")?,
                    fallback: route_from(
                        &kind,
                        get(r, "fallback_extension_id")?,
                        get(r, "fallback_ring_group_id")?,
                        get(r, "fallback_ivr_id")?,
                        get(r, "fallback_conference_id")?,
                    )?,
                },
                members: Vec::new(),
                last_answered_member: get::<Option<i32>>(r, "last_answered_member")?.map(|p| p.max(0) as u32),
                created_at: get(r, "created_at")?,
            })
        }

        fn member_row(r: &DbRow) -> Result<(Uuid, RingGroupMember)> {
            let group: Uuid = get(r, "ring_group_id")?;
            let kind: String = get(r, "member_kind")?;
            let member = match kind.as_str() {
                "extension" => RingGroupMember::Extension(ExtensionId::from_uuid(
                    get::<Option<Uuid>>(r, "extension_id")?.ok_or_else(|| corrupt("ring group member", "no extension"))?,
                )),
                _ => RingGroupMember::External(parse_col(
                    get::<Option<String>>(r, "external")?.ok_or_else(|| corrupt("ring group member", "no number"))?,
                    "ring group member",
                )?),
            };
            Ok((group, member))
        }

        async fn create_ivr_menu(pool: &Pool, tenant: TenantId, number: &ExtensionNumber, name: &str) -> Result<IvrMenu> {
            check_name(name)?;
            let menu = IvrMenu { id: IvrMenuId::new(), tenant_id: tenant, number: number.clone(), name: name.trim().to_owned(), created_at: now() };
            let mut tx = begin(pool).await?;
            insert_dialable(&mut tx, tenant, number, "ivr").await?;
            sqlx::query("INSERT INTO ivr_menus (id, tenant_id, number, name, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(menu.id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(number.as_str())
                .bind(&menu.name)
                .bind(ts(menu.created_at))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(menu)
        }

        async fn list_ivr_menus(pool: &Pool, tenant: TenantId) -> Result<Vec<IvrMenu>> {
            let rows = sqlx::query("SELECT id, tenant_id, number, name, created_at FROM ivr_menus WHERE tenant_id = $1 ORDER BY number")
                .bind(tenant.as_uuid())
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            rows.iter()
                .map(|r| {
                    Ok(IvrMenu {
                        id: IvrMenuId::from_uuid(get(r, "id")?),
                        tenant_id: TenantId::from_uuid(get(r, "tenant_id")?),
                        number: parse_col(get(r, "number")?, "number")?,
                        name: get(r, "name")?,
                        created_at: get(r, "created_at")?,
                    })
                })
                .collect()
        }

        async fn create_conference_room(
            pool: &Pool,
            tenant: TenantId,
            number: &ExtensionNumber,
            name: &str,
            pin: Option<&Pin>,
        ) -> Result<ConferenceRoom> {
            check_name(name)?;
            let room = ConferenceRoom {
                id: ConferenceRoomId::new(),
                tenant_id: tenant,
                number: number.clone(),
                name: name.trim().to_owned(),
                pin: pin.cloned(),
                created_at: now(),
            };
            let mut tx = begin(pool).await?;
            insert_dialable(&mut tx, tenant, number, "conference").await?;
            sqlx::query("INSERT INTO conference_rooms (id, tenant_id, number, name, pin, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(room.id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(number.as_str())
                .bind(&room.name)
                .bind(pin.map(|p| p.as_str()))
                .bind(ts(room.created_at))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(room)
        }

        async fn list_conference_rooms(pool: &Pool, tenant: TenantId) -> Result<Vec<ConferenceRoom>> {
            let rows = sqlx::query(
                "SELECT id, tenant_id, number, name, pin, created_at FROM conference_rooms WHERE tenant_id = $1 ORDER BY number",
            )
            .bind(tenant.as_uuid())
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
            rows.iter()
                .map(|r| {
                    Ok(ConferenceRoom {
                        id: ConferenceRoomId::from_uuid(get(r, "id")?),
                        tenant_id: TenantId::from_uuid(get(r, "tenant_id")?),
                        number: parse_col(get(r, "number")?, "number")?,
                        name: get(r, "name")?,
                        pin: parse_opt(get(r, "pin")?, "pin")?,
                        created_at: get(r, "created_at")?,
                    })
                })
                .collect()
        }

        fn fallback_err(e: StoreError) -> StoreError {
            on_fk(e, "fallback", "the fallback target does not exist in this business")
        }

        async fn create_ring_group(pool: &Pool, tenant: TenantId, number: &ExtensionNumber, s: &RingGroupSettings) -> Result<RingGroup> {
            check_ring_group_settings(s)?;
            let group = RingGroup {
                id: RingGroupId::new(),
                tenant_id: tenant,
                number: number.clone(),
                settings: RingGroupSettings { name: s.name.trim().to_owned(), ..s.clone() },
                members: Vec::new(),
                last_answered_member: None,
                created_at: now(),
            };
            let (kind, ext, rg, ivr, conf) = route_cols(&s.fallback);
            let mut tx = begin(pool).await?;
            insert_dialable(&mut tx, tenant, number, "ring_group").await?;
            sqlx::query(
                "INSERT INTO ring_groups (id, tenant_id, number, name, strategy, ring_timeout_secs, member_timeout_secs, \
                 fallback_kind, fallback_extension_id, fallback_ring_group_id, fallback_ivr_id, fallback_conference_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(group.id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(number.as_str())
            .bind(&group.settings.name)
            .bind(s.strategy.as_str())
            .bind(to_i32(s.ring_timeout_secs, "ring_timeout_secs")?)
            .bind(to_i32(s.member_timeout_secs, "member_timeout_secs")?)
            .bind(kind)
            .bind(ext)
            .bind(rg)
            .bind(ivr)
            .bind(conf)
            .bind(ts(group.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_err)
            .map_err(fallback_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(group)
        }

        async fn load_members(conn: &mut Conn, tenant: TenantId, group: Option<RingGroupId>) -> Result<Vec<(Uuid, RingGroupMember)>> {
            const ALL: &str = "SELECT ring_group_id, member_kind, extension_id, external FROM ring_group_members \
                               WHERE tenant_id = $1 ORDER BY ring_group_id, position";
            const ONE: &str = "SELECT ring_group_id, member_kind, extension_id, external FROM ring_group_members \
                               WHERE tenant_id = $1 AND ring_group_id = $2 ORDER BY position";
            let q = match group {
                Some(g) => sqlx::query(ONE).bind(tenant.as_uuid()).bind(g.as_uuid()),
                None => sqlx::query(ALL).bind(tenant.as_uuid()),
            };
            let rows = q
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
            rows.iter().map(member_row).collect()
        }

        async fn get_ring_group(pool: &Pool, tenant: TenantId, id: RingGroupId) -> Result<RingGroup> {
            let mut conn = pool.acquire().await.map_err(db_err)?;
            let row = sqlx::query(concat!("SELECT ", ring_group_cols!(), " FROM ring_groups WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
            let Some(row) = row else {
                return Err(StoreError::not_found("ring group"));
            };
            let mut group = ring_group_row(&row)?;
            group.members = load_members(&mut conn, tenant, Some(id)).await?.into_iter().map(|(_, m)| m).collect();
            Ok(group)
        }

        async fn list_ring_groups(pool: &Pool, tenant: TenantId) -> Result<Vec<RingGroup>> {
            let mut conn = pool.acquire().await.map_err(db_err)?;
            let rows = sqlx::query(concat!("SELECT ", ring_group_cols!(), " FROM ring_groups WHERE tenant_id = $1 ORDER BY number"))
                .bind(tenant.as_uuid())
                .fetch_all(&mut *conn)
                .await
                .map_err(db_err)?;
            let mut groups = rows.iter().map(ring_group_row).collect::<Result<Vec<_>>>()?;
            for (gid, member) in load_members(&mut conn, tenant, None).await? {
                if let Some(g) = groups.iter_mut().find(|g| g.id.as_uuid() == gid) {
                    g.members.push(member);
                }
            }
            Ok(groups)
        }

        async fn update_ring_group(pool: &Pool, tenant: TenantId, id: RingGroupId, s: &RingGroupSettings) -> Result<RingGroup> {
            check_ring_group_settings(s)?;
            let (kind, ext, rg, ivr, conf) = route_cols(&s.fallback);
            let done = sqlx::query(
                "UPDATE ring_groups SET name = $3, strategy = $4, ring_timeout_secs = $5, member_timeout_secs = $6, \
                 fallback_kind = $7, fallback_extension_id = $8, fallback_ring_group_id = $9, fallback_ivr_id = $10, \
                 fallback_conference_id = $11 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(id.as_uuid())
            .bind(s.name.trim())
            .bind(s.strategy.as_str())
            .bind(to_i32(s.ring_timeout_secs, "ring_timeout_secs")?)
            .bind(to_i32(s.member_timeout_secs, "member_timeout_secs")?)
            .bind(kind)
            .bind(ext)
            .bind(rg)
            .bind(ivr)
            .bind(conf)
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(fallback_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("ring group"));
            }
            get_ring_group(pool, tenant, id).await
        }

        async fn set_ring_group_members(pool: &Pool, tenant: TenantId, id: RingGroupId, members: &[RingGroupMember]) -> Result<RingGroup> {
            for (i, m) in members.iter().enumerate() {
                if members[..i].contains(m) {
                    return Err(StoreError::invalid("members", format!("member {} is listed twice", i + 1)));
                }
            }
            let mut tx = begin(pool).await?;
            // Lock the group row (and prove it is this tenant's) before replacing its members.
            let found = sqlx::query("UPDATE ring_groups SET last_answered_member = NULL WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if found.rows_affected() == 0 {
                return Err(StoreError::not_found("ring group"));
            }
            sqlx::query("DELETE FROM ring_group_members WHERE tenant_id = $1 AND ring_group_id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            for (i, m) in members.iter().enumerate() {
                let (kind, ext, external) = match m {
                    RingGroupMember::Extension(e) => ("extension", Some(e.as_uuid()), None),
                    RingGroupMember::External(n) => ("external", None, Some(n.as_str())),
                };
                sqlx::query(
                    "INSERT INTO ring_group_members (tenant_id, ring_group_id, position, member_kind, extension_id, external) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(i as i32)
                .bind(kind)
                .bind(ext)
                .bind(external)
                .execute(&mut *tx)
                .await
                .map_err(db_err)
                .map_err(|e| on_fk(e, "members", &format!("member {}: no such extension in this business", i + 1)))?;
            }
            tx.commit().await.map_err(db_err)?;
            get_ring_group(pool, tenant, id).await
        }

        async fn set_ring_group_last_answered(pool: &Pool, tenant: TenantId, id: RingGroupId, position: Option<u32>) -> Result<()> {
            let position = position.map(|p| to_i32(p, "position")).transpose()?;
            let done = sqlx::query("UPDATE ring_groups SET last_answered_member = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(position)
                .execute(pool)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("ring group"));
            }
            Ok(())
        }

        async fn delete_ring_group(pool: &Pool, tenant: TenantId, id: RingGroupId) -> Result<()> {
            let mut tx = begin(pool).await?;
            let number: Option<String> = sqlx::query_scalar("DELETE FROM ring_groups WHERE tenant_id = $1 AND id = $2 RETURNING number")
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)
                .map_err(|e| match e {
                    StoreError::Invalid { field: catalog::FK_FIELD, .. } => StoreError::conflict(
                        "route",
                        "a public number or another ring group's fallback routes to this ring group; change that first",
                    ),
                    e => e,
                })?;
            let Some(number) = number else {
                return Err(StoreError::not_found("ring group"));
            };
            delete_dialable(&mut tx, tenant, &number, "ring_group").await?;
            tx.commit().await.map_err(db_err)?;
            Ok(())
        }

    };
}
pub(crate) use routing_impl;
