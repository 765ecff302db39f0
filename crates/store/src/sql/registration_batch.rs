//! `apply_registration_batch`: the registrar's group commit, one transaction per batch, the
//! same statements as `upsert_registration` / `remove_registration` run on the transaction.

macro_rules! registration_batch_impl {
    () => {
        async fn apply_registration_batch(
            pool: &Pool,
            changes: &[$crate::registration_batch::RegistrationChange],
        ) -> Result<()> {
            use $crate::registration_batch::RegistrationChange;
            if changes.is_empty() {
                return Ok(());
            }
            let mut tx = begin(pool).await?;
            let at = ts(now());
            for change in changes {
                match change {
                    RegistrationChange::Upsert { tenant, binding: b } => {
                        check_binding(b)?;
                        let done = sqlx::query(concat!(
                            "INSERT INTO registrations (", registration_cols!(), ") \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18) \
                             ON CONFLICT (credential_id, contact_uri) DO UPDATE SET aor = excluded.aor, call_id = excluded.call_id, \
                             cseq = excluded.cseq, q = excluded.q, expires_at = excluded.expires_at, instance_id = excluded.instance_id, \
                             reg_id = excluded.reg_id, source_addr = excluded.source_addr, transport = excluded.transport, \
                             local_addr = excluded.local_addr, user_agent = excluded.user_agent, path = excluded.path, \
                             updated_at = excluded.updated_at \
                             WHERE registrations.tenant_id = excluded.tenant_id AND registrations.extension_id = excluded.extension_id"
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
                        .bind(ts(micros(b.expires_at)))
                        .bind(b.instance_id.as_deref())
                        .bind(b.reg_id.map(i64::from))
                        .bind(b.source_addr.to_string())
                        .bind(b.transport.as_str())
                        .bind(b.local_addr.map(|a| a.to_string()))
                        .bind(b.user_agent.as_deref())
                        .bind(b.path.as_deref())
                        .bind(&at)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)
                        .map_err(|e| match e {
                            StoreError::Invalid { field: catalog::FK_FIELD, .. } => {
                                StoreError::not_found("credential")
                            }
                            e => e,
                        })?;
                        if done.rows_affected() == 0 {
                            return Err(StoreError::not_found("credential"));
                        }
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
            tx.commit().await.map_err(db_err)
        }
    };
}
pub(crate) use registration_batch_impl;
