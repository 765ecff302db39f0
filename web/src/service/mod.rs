//! The service layer: every admin mutation the pages, the API and the CLI make goes through
//! [`Service`], which writes it to the directory and then publishes a [`Change`] so the
//! running engine applies it at once: in this process over the [`ChangeBus`] (the mutation
//! returns once the engine has applied it, or after 2 s), in others through the directory's
//! change log (see [`store::changes`]).
//!
//! The rules that used to be written once per caller live here too: SIP credentials and
//! password policy ([`credentials`]) and ring-group member parsing ([`ring_groups`]).

pub mod credentials;
pub mod ring_groups;

use std::sync::Arc;

use store::changes::Action;
use store::*;

use crate::error::AppError;

/// What points at an extension ([`Service::extension_dependents`]).
#[derive(Debug, Default)]
pub struct ExtensionDependents {
    /// Numbers routed to it.
    pub numbers: Vec<Number>,
    /// Ring groups whose unanswered calls go to it.
    pub fallbacks: Vec<RingGroup>,
    /// Other extensions forwarding to it, each with which of its forwards do
    /// ("always", "when busy", "on no answer").
    pub forwarders: Vec<(Extension, Vec<&'static str>)>,
}

impl ExtensionDependents {
    /// A number or ring group still sends calls to the extension.
    pub fn blocks_delete(&self) -> bool {
        !self.numbers.is_empty() || !self.fallbacks.is_empty()
    }

    /// In words: "020 7946 0018 routes to it; ring group 20 (Sales) falls back to it".
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for n in &self.numbers {
            parts.push(format!("number {} routes to it", n.e164.display()));
        }
        for g in &self.fallbacks {
            parts.push(format!(
                "ring group {} ({}) falls back to it",
                g.number, g.settings.name
            ));
        }
        for (e, how) in &self.forwarders {
            parts.push(format!(
                "extension {} ({}) forwards to it {}",
                e.number,
                e.settings.display_name,
                how.join(" and ")
            ));
        }
        parts.join("; ")
    }
}

/// Which of these forwards go to extension `number`.
fn forwards_to(f: &Forwarding, number: &ExtensionNumber) -> Vec<&'static str> {
    [
        (&f.always, "always"),
        (&f.busy, "when busy"),
        (&f.no_answer, "on no answer"),
    ]
    .into_iter()
    .filter(|(t, _)| matches!(t, Some(ForwardTarget::Extension(n)) if n == number))
    .map(|(_, how)| how)
    .collect()
}

/// How long a mutation waits for the engine of its process to apply its change.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Writes admin changes and announces them. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    dir: Arc<dyn Directory>,
    bus: ChangeBus,
}

impl Service {
    /// A service publishing on `bus` (the engine of this process subscribes to it) and into
    /// the directory's change log (for other processes).
    pub fn new(dir: Arc<dyn Directory>, bus: ChangeBus) -> Self {
        Self { dir, bus }
    }

    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.dir
    }

    pub fn bus(&self) -> &ChangeBus {
        &self.bus
    }

    /// Announces a change that is already committed. A change log that cannot be written is
    /// logged, not returned: the change itself is made, and servers in other processes pick
    /// it up at their next resynchronisation.
    pub async fn publish(&self, change: Change) {
        let seq = self.bus.send(change);
        if let Err(e) = self.dir.record_change(self.bus.origin(), &change).await {
            tracing::warn!(error = %e, ?change, "change not recorded for other processes");
        }
        // Answer once the engine of this process has acted on it: the next SIP message after
        // the admin's "saved" sees the change.
        if !self.bus.settled(seq, SETTLE_LIMIT).await {
            tracing::warn!(
                ?change,
                "the engine took over {SETTLE_LIMIT:?} to apply a change"
            );
        }
    }

    // ------------------------------------------------------------ extensions

    /// Creates an extension with its first SIP credential (username = the number) and
    /// `password` (checked by [`credentials::check_sip_password`]) or a generated one.
    /// Returns the extension, its credential and the password to show once.
    pub async fn create_extension(
        &self,
        tenant: &Tenant,
        new: &NewExtension,
        password: Option<&str>,
    ) -> Result<(Extension, SipCredential, String), AppError> {
        if let Some(p) = password {
            credentials::check_sip_password(p).map_err(|m| AppError::invalid("password", m))?;
        }
        let username: SipUsername = new.number.as_str().parse()?;
        let (cred, password) = credentials::new_credential(&tenant.sip_domain, username, password);
        let (ext, stored) = self
            .dir
            .create_extension(tenant.id, new, Some(&cred))
            .await?;
        let stored = stored.ok_or_else(|| {
            AppError::Internal(crate::error::Internal::new(
                "the extension was created without its credential",
            ))
        })?;
        self.extension_changed(tenant.id, ext.id, Action::Created)
            .await;
        Ok((ext, stored, password))
    }

    /// Imports extensions (all or nothing); each row's password is already checked. The
    /// store's error is returned as is: [`StoreError::Row`] names the row that failed.
    pub async fn import_extensions(
        &self,
        tenant: TenantId,
        rows: &[ImportExtension],
    ) -> Result<Vec<Extension>, StoreError> {
        let made = self.dir.import_extensions(tenant, rows).await?;
        for e in &made {
            self.extension_changed(tenant, e.id, Action::Created).await;
        }
        Ok(made)
    }

    /// New settings: forwarding, DND, no-answer timeout, name, owner.
    pub async fn update_extension(
        &self,
        tenant: TenantId,
        id: ExtensionId,
        settings: &ExtensionSettings,
    ) -> Result<Extension, AppError> {
        let e = self.dir.update_extension(tenant, id, settings).await?;
        self.extension_changed(tenant, id, Action::Updated).await;
        Ok(e)
    }

    /// What points at an extension: the numbers routed to it and the ring groups falling back
    /// to it (both block its deletion), and the other extensions forwarding to it.
    pub async fn extension_dependents(
        &self,
        tenant: TenantId,
        ext: &Extension,
    ) -> Result<ExtensionDependents, AppError> {
        let mut out = ExtensionDependents::default();
        let here = RouteTarget::Extension(ext.id);
        let mut offset = 0;
        loop {
            let page = self
                .dir
                .list_numbers(
                    NumberScope::Tenant(tenant),
                    Page::new(Page::MAX_LIMIT, offset),
                )
                .await?;
            let n = page.items.len() as u32;
            out.numbers
                .extend(page.items.into_iter().filter(|n| n.route == here));
            offset += n;
            if n == 0 || u64::from(offset) >= page.total {
                break;
            }
        }
        out.fallbacks = self
            .dir
            .list_ring_groups(tenant)
            .await?
            .into_iter()
            .filter(|g| g.settings.fallback == here)
            .collect();
        let mut offset = 0;
        loop {
            let page = self
                .dir
                .list_extensions(tenant, None, Page::new(Page::MAX_LIMIT, offset))
                .await?;
            let n = page.items.len() as u32;
            for e in page.items {
                let forwards = forwards_to(&e.settings.forwarding, &ext.number);
                if e.id != ext.id && !forwards.is_empty() {
                    out.forwarders.push((e, forwards));
                }
            }
            offset += n;
            if n == 0 || u64::from(offset) >= page.total {
                break;
            }
        }
        Ok(out)
    }

    /// Deletes an extension, its credentials and their registrations; its phones stop
    /// ringing at once. Refused (a conflict naming them) while a number routes to it or a ring
    /// group falls back to it, and while other extensions forward to it unless
    /// `clear_forwards`, when those forwards are removed first: no extension is left
    /// forwarding to one that is gone.
    pub async fn delete_extension(
        &self,
        tenant: TenantId,
        id: ExtensionId,
        clear_forwards: bool,
    ) -> Result<(), AppError> {
        let ext = self.dir.get_extension(tenant, id).await?;
        let deps = self.extension_dependents(tenant, &ext).await?;
        if deps.blocks_delete() || (!clear_forwards && !deps.forwarders.is_empty()) {
            return Err(AppError::Conflict {
                field: "route",
                message: format!(
                    "Extension {} ({}) cannot be deleted yet: {}. Change that first.",
                    ext.number,
                    ext.settings.display_name,
                    deps.summary()
                ),
            });
        }
        for (e, _) in &deps.forwarders {
            let mut settings = e.settings.clone();
            let f = &mut settings.forwarding;
            for slot in [&mut f.always, &mut f.busy, &mut f.no_answer] {
                if matches!(slot, Some(ForwardTarget::Extension(n)) if *n == ext.number) {
                    *slot = None;
                }
            }
            self.update_extension(tenant, e.id, &settings).await?;
        }
        self.dir.delete_extension(tenant, id).await?;
        self.extension_changed(tenant, id, Action::Deleted).await;
        Ok(())
    }

    async fn extension_changed(&self, tenant: TenantId, extension: ExtensionId, action: Action) {
        self.publish(Change::Extension {
            tenant,
            extension,
            action,
        })
        .await;
    }

    // ------------------------------------------------------------ credentials (devices)

    /// Adds a device credential to an extension.
    pub async fn add_credential(
        &self,
        tenant: TenantId,
        extension: ExtensionId,
        cred: &NewCredential,
    ) -> Result<SipCredential, AppError> {
        let c = self.dir.create_credential(tenant, extension, cred).await?;
        self.credential_changed(&c, Action::Created).await;
        Ok(c)
    }

    /// Gives a credential a new generated password; the old one fails at once and phones
    /// registered with it are signed off. Returns the new password, to show once.
    pub async fn regenerate_credential(
        &self,
        tenant: &Tenant,
        cred: &SipCredential,
    ) -> Result<String, AppError> {
        let (fresh, password) =
            credentials::new_credential(&tenant.sip_domain, cred.username.clone(), None);
        self.dir
            .regenerate_credential(tenant.id, cred.id, &fresh.ha1_md5, &fresh.ha1_sha256)
            .await?;
        self.dir
            .remove_registrations_for_credential(tenant.id, cred.id)
            .await?;
        self.credential_changed(cred, Action::Regenerated).await;
        Ok(password)
    }

    /// Removes a device credential; a phone registered with it is signed off at once.
    pub async fn delete_credential(
        &self,
        tenant: TenantId,
        cred: &SipCredential,
    ) -> Result<(), AppError> {
        self.dir
            .remove_registrations_for_credential(tenant, cred.id)
            .await?;
        self.dir.delete_credential(tenant, cred.id).await?;
        self.credential_changed(cred, Action::Deleted).await;
        Ok(())
    }

    async fn credential_changed(&self, c: &SipCredential, action: Action) {
        self.publish(Change::Credential {
            tenant: c.tenant_id,
            extension: c.extension_id,
            credential: c.id,
            action,
        })
        .await;
    }

    // ------------------------------------------------------------ numbers

    pub async fn add_number(
        &self,
        e164: &E164,
        tenant: Option<TenantId>,
    ) -> Result<Number, AppError> {
        let n = self.dir.add_number(e164, tenant).await?;
        self.number_changed(&n, Action::Created).await;
        Ok(n)
    }

    pub async fn add_number_range(
        &self,
        first: &E164,
        count: u32,
        tenant: Option<TenantId>,
    ) -> Result<Vec<Number>, AppError> {
        let added = self.dir.add_number_range(first, count, tenant).await?;
        for n in &added {
            self.number_changed(n, Action::Created).await;
        }
        Ok(added)
    }

    pub async fn assign_number(
        &self,
        id: NumberId,
        tenant: Option<TenantId>,
    ) -> Result<Number, AppError> {
        let n = self.dir.assign_number(id, tenant).await?;
        self.number_changed(&n, Action::Updated).await;
        Ok(n)
    }

    pub async fn set_number_route(
        &self,
        tenant: TenantId,
        id: NumberId,
        route: RouteTarget,
    ) -> Result<Number, AppError> {
        let n = self.dir.set_number_route(tenant, id, route).await?;
        self.number_changed(&n, Action::Updated).await;
        Ok(n)
    }

    pub async fn delete_number(&self, n: &Number) -> Result<(), AppError> {
        self.dir.delete_number(n.id).await?;
        self.number_changed(n, Action::Deleted).await;
        Ok(())
    }

    async fn number_changed(&self, n: &Number, action: Action) {
        self.publish(Change::Number {
            tenant: n.tenant_id,
            number: n.id,
            action,
        })
        .await;
    }

    // ------------------------------------------------------------ trunks

    pub async fn create_trunk(&self, settings: &TrunkSettings) -> Result<Trunk, AppError> {
        let t = self.dir.create_trunk(settings).await?;
        self.trunk_changed(t.id, Action::Created).await;
        Ok(t)
    }

    pub async fn update_trunk(
        &self,
        id: TrunkId,
        settings: &TrunkSettings,
    ) -> Result<Trunk, AppError> {
        let t = self.dir.update_trunk(id, settings).await?;
        self.trunk_changed(id, Action::Updated).await;
        Ok(t)
    }

    pub async fn delete_trunk(&self, id: TrunkId) -> Result<(), AppError> {
        self.dir.delete_trunk(id).await?;
        self.trunk_changed(id, Action::Deleted).await;
        Ok(())
    }

    async fn trunk_changed(&self, trunk: TrunkId, action: Action) {
        self.publish(Change::Trunk { trunk, action }).await;
    }

    // ------------------------------------------------------------ tenants

    /// New tenant settings (limits, permissions, main number).
    pub async fn update_tenant(
        &self,
        id: TenantId,
        settings: &TenantSettings,
    ) -> Result<Tenant, AppError> {
        let t = self.dir.update_tenant(id, settings).await?;
        self.publish(Change::Tenant {
            tenant: id,
            action: Action::Updated,
        })
        .await;
        Ok(t)
    }

    /// Suspends (no phone of it registers or calls, at once) or resumes a tenant.
    pub async fn set_tenant_suspended(
        &self,
        id: TenantId,
        suspended: bool,
    ) -> Result<Tenant, AppError> {
        let t = self.dir.set_tenant_suspended(id, suspended).await?;
        let action = if suspended {
            Action::Suspended
        } else {
            Action::Resumed
        };
        self.publish(Change::Tenant { tenant: id, action }).await;
        Ok(t)
    }
}
