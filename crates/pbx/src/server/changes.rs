//! Admin changes applied to the running engine.
//!
//! Two sources feed one task: the in-process [`store::ChangeBus`] (the web app in this
//! process) and [`store::Directory::watch_changes`] (the CLI or another server on the same
//! database: PostgreSQL NOTIFY, or the SQLite change log polled every
//! [`super::SipConfig::change_poll`]). Each [`Change`] acts at once:
//!
//! | change | location service | credential cache | dial plans | other |
//! |---|---|---|---|---|
//! | extension deleted | its bindings dropped | tenant evicted | tenant invalidated | |
//! | extension created/updated (forwarding, DND...) | | tenant evicted | tenant invalidated | |
//! | credential deleted/regenerated | its bindings and registration rows dropped | tenant evicted | | |
//! | credential created | | tenant evicted | | |
//! | ring group | | | tenant invalidated | |
//! | number | | | all invalidated (numbers move between tenants) | |
//! | tenant suspended | every binding of the tenant dropped | tenant evicted | tenant invalidated | |
//! | tenant updated/resumed | | tenant evicted | tenant invalidated | |
//! | trunk | | | all invalidated | inbound trunk sources reloaded |
//!
//! A [`Delivery::Resync`] (a lagging receiver, a lost LISTEN connection, a pruned log) drops
//! the caches and plans wholesale, reloads the trunks, and re-checks every binding's credential
//! against the directory.

use std::sync::Arc;

use store::changes::{Action, ChangeReceiver, ChangeWatch, Delivery};
use store::{Change, CredentialId, Directory, TenantId};
use tokio::sync::{mpsc, watch};

use super::calls::{self, AuthContext, Input};
use crate::location::{Binding, LocationService};
use crate::registrar::cache::CredCache;

/// What a change touches.
pub(crate) struct Hooks {
    pub location: Arc<LocationService>,
    pub cache: Arc<CredCache>,
    pub auth: Arc<AuthContext>,
    pub directory: Arc<dyn Directory>,
    /// The calls task's queue (for reloaded trunk sources).
    pub calls: mpsc::Sender<Input>,
}

/// Applies deliveries from both sources until `stop` turns true or both sources end.
pub(crate) async fn run(
    hooks: Hooks,
    mut local: Option<ChangeReceiver>,
    mut remote: Option<ChangeWatch>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if local.is_none() && remote.is_none() {
            return;
        }
        tokio::select! {
            d = recv_local(&mut local) => {
                if let Some(d) = d {
                    hooks.apply(d).await;
                    // the web request that made the change answers now
                    if let Some(l) = &local {
                        l.applied();
                    }
                }
            }
            d = recv_remote(&mut remote) => {
                if let Some(d) = d {
                    hooks.apply(d).await;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// The next in-process delivery; `None` (and the source dropped) when the bus is gone.
async fn recv_local(rx: &mut Option<ChangeReceiver>) -> Option<Delivery> {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    let d = r.recv().await;
    if d.is_none() {
        *rx = None;
    }
    d
}

/// The next delivery from other processes; `None` (and the source dropped) when the watch ends.
async fn recv_remote(rx: &mut Option<ChangeWatch>) -> Option<Delivery> {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    let d = r.recv().await;
    if d.is_none() {
        tracing::warn!(
            "the change watch ended; changes made by other processes are no longer applied"
        );
        *rx = None;
    }
    d
}

impl Hooks {
    pub(crate) async fn apply(&self, delivery: Delivery) {
        match delivery {
            Delivery::Change(c) => self.change(c).await,
            Delivery::Resync(why) => {
                tracing::warn!(reason = %why, "change events may have been missed: dropping caches");
                self.resync().await;
            }
        }
    }

    async fn change(&self, change: Change) {
        tracing::debug!(?change, "applying an admin change");
        let plan = &self.auth.plan;
        // The credential cache goes first: from here on a revoked password or account fails,
        // so no new binding can be made with it while the old ones are dropped.
        if let Change::Extension { tenant, .. }
        | Change::Credential { tenant, .. }
        | Change::Tenant { tenant, .. } = change
        {
            self.cache.evict_tenant(tenant);
        }
        match change {
            Change::Extension {
                tenant,
                extension,
                action,
            } => {
                if action == Action::Deleted {
                    self.revoke(tenant, |b| b.extension_id == extension).await;
                }
                self.forget_numbers(tenant);
                plan.invalidate(tenant);
            }
            Change::Credential {
                tenant,
                credential,
                action,
                ..
            } => {
                if matches!(action, Action::Deleted | Action::Regenerated) {
                    self.revoke(tenant, |b| b.credential_id == credential).await;
                }
            }
            Change::RingGroup { tenant, .. } => plan.invalidate(tenant),
            Change::Number { .. } => plan.clear(),
            Change::Tenant { tenant, action } => {
                if action == Action::Suspended {
                    self.revoke(tenant, |_| true).await;
                }
                self.forget_numbers(tenant);
                plan.invalidate(tenant);
            }
            Change::Trunk { .. } => {
                plan.clear();
                self.reload_trunks().await;
            }
        }
    }

    /// Drops the bindings of `tenant` that `revoked` accepts and their registration rows. A
    /// REGISTER already past its digest check when the cache was evicted may add its binding
    /// back while the rows are deleted: the bindings are swept once more afterwards.
    async fn revoke(&self, tenant: TenantId, revoked: impl Fn(&Binding) -> bool) {
        let gone = self.location.remove_where(tenant, &revoked);
        log_dropped(&gone, "revoked by an admin change");
        let creds: std::collections::HashSet<CredentialId> =
            gone.iter().map(|b| b.credential_id).collect();
        for c in creds {
            self.forget_credential_rows(tenant, c).await;
        }
        let late = self.location.remove_where(tenant, &revoked);
        log_dropped(&late, "revoked by an admin change (registered meanwhile)");
        for b in &late {
            self.forget_credential_rows(tenant, b.credential_id).await;
        }
    }

    /// Drops everything cached; keeps only bindings whose credential still exists.
    async fn resync(&self) {
        self.cache.clear();
        self.auth.plan.clear();
        self.auth
            .numbers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.reload_trunks().await;
        for tenant in self.location.tenants() {
            let held: std::collections::HashSet<CredentialId> = self
                .location
                .list(tenant)
                .iter()
                .map(|b| b.credential_id)
                .collect();
            for credential in held {
                match self.directory.get_credential(tenant, credential).await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {
                        let gone = self
                            .location
                            .remove_where(tenant, |b| b.credential_id == credential);
                        log_dropped(&gone, "credential gone (resync)");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, %tenant, "resync could not check a binding's credential")
                    }
                }
            }
        }
    }

    async fn reload_trunks(&self) {
        match calls::load_trunk_sources(&*self.directory).await {
            Ok(t) => {
                let _ = self.calls.send(Input::Trunks(t)).await;
            }
            Err(e) => tracing::warn!(error = %e, "reloading trunks after a change failed"),
        }
    }

    fn forget_numbers(&self, tenant: TenantId) {
        self.auth
            .numbers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(t, _), _| *t != tenant);
    }

    async fn forget_credential_rows(&self, tenant: TenantId, credential: CredentialId) {
        match self
            .directory
            .remove_registrations_for_credential(tenant, credential)
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(error = %e, %tenant, "registration rows not removed"),
        }
    }
}

fn log_dropped(gone: &[Binding], why: &str) {
    for b in gone {
        tracing::info!(tenant = %b.tenant, aor = %b.aor, contact = %b.contact, reason = why, "binding dropped");
    }
}
