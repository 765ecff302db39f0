//! Public numbers (DDIs): the operator's inventory, tenants' numbers and their routes.

use crate::error::{Result, StoreError};
use crate::model::RouteTarget;

pub(crate) const MAX_RANGE: u32 = 10_000;

/// The field a foreign-key failure of a number insert or route change is about.
pub(crate) fn route_fk_field(route: &RouteTarget) -> (&'static str, String) {
    match route {
        RouteTarget::None => ("tenant_id", "no such business".to_owned()),
        r => (
            "route",
            format!(
                "the {} to route to does not exist in this business",
                r.kind().replace('_', " ")
            ),
        ),
    }
}

pub(crate) fn check_range(count: u32) -> Result<()> {
    if count == 0 || count > MAX_RANGE {
        return Err(StoreError::invalid(
            "count",
            format!("a range holds 1 to {MAX_RANGE} numbers, not {count}"),
        ));
    }
    Ok(())
}

macro_rules! number_cols {
    () => {
        "id, e164, number_type, tenant_id, route_kind, route_extension_id, route_ring_group_id, \
         route_ivr_id, route_conference_id, created_at"
    };
}
pub(crate) use number_cols;

macro_rules! numbers_impl {
    () => {
        fn number_row(r: &DbRow) -> Result<Number> {
            let kind: String = get(r, "route_kind")?;
            Ok(Number {
                id: NumberId::from_uuid(get(r, "id")?),
                e164: parse_col(get(r, "e164")?, "e164")?,
                number_type: parse_col(get(r, "number_type")?, "number_type")?,
                tenant_id: get::<Option<Uuid>>(r, "tenant_id")?.map(TenantId::from_uuid),
                route: route_from(
                    &kind,
                    get(r, "route_extension_id")?,
                    get(r, "route_ring_group_id")?,
                    get(r, "route_ivr_id")?,
                    get(r, "route_conference_id")?,
                )?,
                created_at: get(r, "created_at")?,
            })
        }

        async fn insert_number(conn: &mut Conn, e164: &E164, tenant: Option<TenantId>, route: RouteTarget) -> Result<Number> {
            let number = Number {
                id: NumberId::new(),
                e164: e164.clone(),
                number_type: e164.number_type(),
                tenant_id: tenant,
                route,
                created_at: now(),
            };
            let (kind, ext, rg, ivr, conf) = route_cols(&route);
            let (fk_field, fk_message) = route_fk_field(&route);
            sqlx::query(
                "INSERT INTO numbers (id, e164, number_type, tenant_id, route_kind, route_extension_id, route_ring_group_id, \
                 route_ivr_id, route_conference_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(number.id.as_uuid())
            .bind(e164.as_str())
            .bind(number.number_type.as_str())
            .bind(tenant.map(|t| t.as_uuid()))
            .bind(kind)
            .bind(ext)
            .bind(rg)
            .bind(ivr)
            .bind(conf)
            .bind(ts(number.created_at))
            .execute(&mut *conn)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, fk_field, &fk_message))
            .map_err(|e| on_conflict(e, "e164", format!("the number {e164} is already on the platform")))?;
            Ok(number)
        }

        async fn add_number(pool: &Pool, e164: &E164, tenant: Option<TenantId>) -> Result<Number> {
            let mut conn = pool.acquire().await.map_err(db_err)?;
            insert_number(&mut conn, e164, tenant, RouteTarget::None).await
        }

        async fn add_number_routed(pool: &Pool, e164: &E164, tenant: TenantId, route: RouteTarget) -> Result<Number> {
            let mut conn = pool.acquire().await.map_err(db_err)?;
            insert_number(&mut conn, e164, Some(tenant), route).await
        }

        async fn add_number_range(pool: &Pool, first: &E164, count: u32, tenant: Option<TenantId>) -> Result<Vec<Number>> {
            check_range(count)?;
            let mut all = Vec::with_capacity(count as usize);
            for i in 0..count {
                let n = first.offset(u64::from(i)).ok_or_else(|| {
                    StoreError::invalid("e164", format!("{first} + {i} is not a valid number: the range leaves its number block"))
                        .at_row(i as usize)
                })?;
                all.push(n);
            }
            let mut tx = begin(pool).await?;
            let mut out = Vec::with_capacity(all.len());
            for (i, n) in all.iter().enumerate() {
                out.push(insert_number(&mut tx, n, tenant, RouteTarget::None).await.map_err(|e| e.at_row(i))?);
            }
            tx.commit().await.map_err(db_err)?;
            Ok(out)
        }

        async fn list_numbers(pool: &Pool, scope: NumberScope, page: Page) -> Result<Paged<Number>> {
            let (filter, tenant) = match scope {
                NumberScope::All => ("", None),
                NumberScope::Unassigned => (" WHERE tenant_id IS NULL", None),
                NumberScope::Tenant(t) => (" WHERE tenant_id = $3", Some(t.as_uuid())),
            };
            let sql = format!("SELECT {} FROM numbers{filter} ORDER BY e164 LIMIT $1 OFFSET $2", number_cols!());
            let mut q = sqlx::query(&sql).bind(i64::from(page.effective_limit())).bind(i64::from(page.offset));
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let rows = q.fetch_all(pool).await.map_err(db_err)?;
            let count_sql = format!("SELECT count(*) FROM numbers{}", filter.replace("$3", "$1"));
            let mut c = sqlx::query_scalar::<_, i64>(&count_sql);
            if let Some(t) = tenant {
                c = c.bind(t);
            }
            let total = c.fetch_one(pool).await.map_err(db_err)?;
            Ok(Paged { items: rows.iter().map(number_row).collect::<Result<_>>()?, total: total as u64 })
        }

        async fn get_number(pool: &Pool, id: NumberId) -> Result<Number> {
            let row = sqlx::query(concat!("SELECT ", number_cols!(), " FROM numbers WHERE id = $1"))
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(number_row).unwrap_or(Err(StoreError::not_found("number")))
        }

        async fn get_number_scoped(pool: &Pool, scope: NumberScope, id: NumberId) -> Result<Number> {
            let q = match scope {
                NumberScope::All => sqlx::query(concat!("SELECT ", number_cols!(), " FROM numbers WHERE id = $1")).bind(id.as_uuid()),
                NumberScope::Unassigned => {
                    sqlx::query(concat!("SELECT ", number_cols!(), " FROM numbers WHERE id = $1 AND tenant_id IS NULL")).bind(id.as_uuid())
                }
                NumberScope::Tenant(t) => sqlx::query(concat!("SELECT ", number_cols!(), " FROM numbers WHERE id = $1 AND tenant_id = $2"))
                    .bind(id.as_uuid())
                    .bind(t.as_uuid()),
            };
            let row = q.fetch_optional(pool).await.map_err(db_err)?;
            row.as_ref().map(number_row).unwrap_or(Err(StoreError::not_found("number")))
        }

        async fn get_number_by_e164(pool: &Pool, e164: &E164) -> Result<Number> {
            let row = sqlx::query(concat!("SELECT ", number_cols!(), " FROM numbers WHERE e164 = $1"))
                .bind(e164.as_str())
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            row.as_ref().map(number_row).unwrap_or(Err(StoreError::not_found("number")))
        }

        async fn assign_number(pool: &Pool, id: NumberId, tenant: Option<TenantId>) -> Result<Number> {
            // A number given to the business it already belongs to keeps its route; moved
            // anywhere else, it is unrouted (the old business's destinations mean nothing there).
            let done = sqlx::query(
                "UPDATE numbers SET tenant_id = $2, \
                 route_kind = CASE WHEN tenant_id IS NOT DISTINCT FROM $2 THEN route_kind ELSE 'none' END, \
                 route_extension_id = CASE WHEN tenant_id IS NOT DISTINCT FROM $2 THEN route_extension_id END, \
                 route_ring_group_id = CASE WHEN tenant_id IS NOT DISTINCT FROM $2 THEN route_ring_group_id END, \
                 route_ivr_id = CASE WHEN tenant_id IS NOT DISTINCT FROM $2 THEN route_ivr_id END, \
                 route_conference_id = CASE WHEN tenant_id IS NOT DISTINCT FROM $2 THEN route_conference_id END \
                 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(tenant.map(|t| t.as_uuid()))
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "tenant_id", "no such business"))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("number"));
            }
            get_number(pool, id).await
        }

        async fn set_number_route(pool: &Pool, tenant: TenantId, id: NumberId, route: RouteTarget) -> Result<Number> {
            let (kind, ext, rg, ivr, conf) = route_cols(&route);
            let done = sqlx::query(
                "UPDATE numbers SET route_kind = $3, route_extension_id = $4, route_ring_group_id = $5, \
                 route_ivr_id = $6, route_conference_id = $7 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(kind)
            .bind(ext)
            .bind(rg)
            .bind(ivr)
            .bind(conf)
            .execute(pool)
            .await
            .map_err(db_err)
            .map_err(|e| on_fk(e, "route", &route_fk_field(&route).1))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("number"));
            }
            get_number(pool, id).await
        }

        async fn delete_number(pool: &Pool, id: NumberId) -> Result<()> {
            let done = sqlx::query("DELETE FROM numbers WHERE id = $1 AND tenant_id IS NULL")
                .bind(id.as_uuid())
                .execute(pool)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 0 {
                get_number(pool, id).await?;
                return Err(StoreError::conflict("tenant_id", "the number belongs to a business; return it to inventory first"));
            }
            Ok(())
        }
    };
}
pub(crate) use numbers_impl;
