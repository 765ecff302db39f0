//! `apply_registration_batch`: the registrar's group commit, one transaction per batch.
//!
//! Only the last change per (credential, contact URI) matters, so the batch is first reduced
//! to one change per key; then the removals run as single deletes (rare) and the upserts as
//! multi-row `INSERT ... ON CONFLICT DO UPDATE` statements of up to [`UPSERT_CHUNK`] rows.
//! Few statements per batch matter: with sqlx every statement is a round trip to the
//! connection's worker thread. (Reducing also keeps PostgreSQL from seeing one key twice in a
//! statement, which it refuses.)

use std::collections::HashMap;

use crate::model::CredentialId;
use crate::registration_batch::RegistrationChange;

/// Rows per multi-row upsert at most: 19 parameters each, well under SQLite's 32,766 and
/// PostgreSQL's 65,535.
pub(crate) const UPSERT_CHUNK: usize = 128;

/// Splits `n` rows into statement sizes that are powers of two (largest first, at most
/// [`UPSERT_CHUNK`]), so only eight distinct statements exist and all stay in the prepared
/// statement cache.
pub(crate) fn chunk_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = if n >= UPSERT_CHUNK {
            UPSERT_CHUNK
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        n -= size;
        Some(size)
    })
}

/// The last change of each (credential, contact) key, in first-seen key order.
pub(crate) fn last_per_key(changes: &[RegistrationChange]) -> Vec<&RegistrationChange> {
    let mut slot: HashMap<(CredentialId, &str), usize> = HashMap::with_capacity(changes.len());
    let mut out: Vec<&RegistrationChange> = Vec::with_capacity(changes.len());
    for c in changes {
        let key = match c {
            RegistrationChange::Upsert { binding, .. } => {
                (binding.credential_id, binding.contact_uri.as_str())
            }
            RegistrationChange::Remove {
                credential,
                contact_uri,
                ..
            } => (*credential, contact_uri.as_str()),
        };
        match slot.get(&key) {
            Some(&i) => {
                if let Some(s) = out.get_mut(i) {
                    *s = c;
                }
            }
            None => {
                slot.insert(key, out.len());
                out.push(c);
            }
        }
    }
    out
}

macro_rules! registration_batch_impl {
    () => {
        async fn apply_registration_batch(
            pool: &Pool,
            changes: &[$crate::registration_batch::RegistrationChange],
        ) -> Result<()> {
            use $crate::registration_batch::RegistrationChange;
            use $crate::sql::registration_batch::{chunk_sizes, last_per_key};
            let reduced = last_per_key(changes);
            if reduced.is_empty() {
                return Ok(());
            }
            let mut upserts: Vec<(TenantId, &Binding)> = Vec::with_capacity(reduced.len());
            let mut tx = begin(pool).await?;
            for change in reduced {
                match change {
                    RegistrationChange::Upsert { tenant, binding } => {
                        check_binding(binding)?;
                        upserts.push((*tenant, binding));
                    }
                    RegistrationChange::Remove {
                        tenant,
                        credential,
                        contact_uri,
                    } => {
                        sqlx::query(
                            "DELETE FROM registrations WHERE tenant_id = $1 AND credential_id = $2 AND contact_uri = $3",
                        )
                        .bind(tenant.as_uuid())
                        .bind(credential.as_uuid())
                        .bind(contact_uri.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    }
                }
            }
            let at = now();
            let mut rest: &[(TenantId, &Binding)] = &upserts;
            for size in chunk_sizes(upserts.len()) {
                let (chunk, tail) = rest.split_at(size.min(rest.len()));
                rest = tail;
                let mut q = sqlx::QueryBuilder::<Db>::new(concat!(
                    "INSERT INTO registrations (",
                    registration_cols!(),
                    ") "
                ));
                q.push_values(chunk, |mut row, (tenant, b)| {
                    row.push_bind(RegistrationId::new().as_uuid())
                        .push_bind(tenant.as_uuid())
                        .push_bind(b.extension_id.as_uuid())
                        .push_bind(b.credential_id.as_uuid())
                        .push_bind(b.aor.as_str())
                        .push_bind(b.contact_uri.as_str())
                        .push_bind(b.call_id.as_str())
                        .push_bind(i64::from(b.cseq))
                        .push_bind(b.q)
                        .push_bind(ts(micros(b.expires_at)))
                        .push_bind(b.instance_id.as_deref())
                        .push_bind(b.reg_id.map(i64::from))
                        .push_bind(b.source_addr.to_string())
                        .push_bind(b.transport.as_str())
                        .push_bind(b.local_addr.map(|a| a.to_string()))
                        .push_bind(b.user_agent.as_deref())
                        .push_bind(b.path.as_deref())
                        .push_bind(ts(at))
                        .push_bind(ts(at));
                });
                q.push(
                    " ON CONFLICT (credential_id, contact_uri) DO UPDATE SET aor = excluded.aor, call_id = excluded.call_id, \
                     cseq = excluded.cseq, q = excluded.q, expires_at = excluded.expires_at, instance_id = excluded.instance_id, \
                     reg_id = excluded.reg_id, source_addr = excluded.source_addr, transport = excluded.transport, \
                     local_addr = excluded.local_addr, user_agent = excluded.user_agent, path = excluded.path, \
                     updated_at = excluded.updated_at \
                     WHERE registrations.tenant_id = excluded.tenant_id AND registrations.extension_id = excluded.extension_id",
                );
                let done = q
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)
                    .map_err(|e| match e {
                        StoreError::Invalid { field: catalog::FK_FIELD, .. } => {
                            StoreError::not_found("credential")
                        }
                        e => e,
                    })?;
                // a row skipped by the WHERE: the contact is bound to another tenant/extension
                if done.rows_affected() < chunk.len() as u64 {
                    return Err(StoreError::not_found("credential"));
                }
            }
            tx.commit().await.map_err(db_err)
        }
    };
}
pub(crate) use registration_batch_impl;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TenantId;

    fn remove(c: CredentialId, uri: &str) -> RegistrationChange {
        RegistrationChange::Remove {
            tenant: TenantId::new(),
            credential: c,
            contact_uri: uri.to_owned(),
        }
    }

    #[test]
    fn chunks_are_powers_of_two() {
        assert_eq!(chunk_sizes(0).count(), 0);
        assert_eq!(chunk_sizes(1).collect::<Vec<_>>(), [1]);
        assert_eq!(chunk_sizes(7).collect::<Vec<_>>(), [4, 2, 1]);
        assert_eq!(chunk_sizes(300).collect::<Vec<_>>(), [128, 128, 32, 8, 4]);
        assert_eq!(chunk_sizes(300).sum::<usize>(), 300);
    }

    #[test]
    fn keeps_the_last_change_per_key() {
        let (a, b) = (CredentialId::new(), CredentialId::new());
        let changes = [
            remove(a, "x"),
            remove(b, "x"),
            remove(a, "y"),
            remove(a, "x"),
        ];
        let out = last_per_key(&changes);
        assert_eq!(out.len(), 3);
        assert!(std::ptr::eq(out[0], &changes[3]));
        assert!(std::ptr::eq(out[1], &changes[1]));
        assert!(std::ptr::eq(out[2], &changes[2]));
    }
}
