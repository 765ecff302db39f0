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
        let delivery = tokio::select! {
            d = recv_local(&mut local) => d,
            d = recv_remote(&mut remote) => d,
            _ = stop.changed() => return,
        };
        if let Some(d) = delivery {
            hooks.apply(d).await;
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
        match change {
            Change::Extension {
                tenant,
                extension,
                action,
            } => {
                if action == Action::Deleted {
                    let gone = self
                        .location
                        .remove_where(tenant, |b| b.extension_id == extension);
                    self.forget_rows(tenant, &gone).await;
                }
                self.cache.evict_tenant(tenant);
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
                    let gone = self
                        .location
                        .remove_where(tenant, |b| b.credential_id == credential);
                    self.forget_credential_rows(tenant, credential).await;
                    log_dropped(&gone, "credential revoked");
                }
                self.cache.evict_tenant(tenant);
            }
            Change::RingGroup { tenant, .. } => plan.invalidate(tenant),
            Change::Number { .. } => plan.clear(),
            Change::Tenant { tenant, action } => {
                if action == Action::Suspended {
                    let gone = self.location.remove_where(tenant, |_| true);
                    self.forget_rows(tenant, &gone).await;
                }
                self.cache.evict_tenant(tenant);
                self.forget_numbers(tenant);
                plan.invalidate(tenant);
            }
            Change::Trunk { .. } => {
                plan.clear();
                self.reload_trunks().await;
            }
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

    /// Deletes the registration rows of dropped bindings (so a restart does not load them).
    async fn forget_rows(&self, tenant: TenantId, gone: &[Binding]) {
        log_dropped(gone, "revoked by an admin change");
        let creds: std::collections::HashSet<CredentialId> =
            gone.iter().map(|b| b.credential_id).collect();
        for c in creds {
            self.forget_credential_rows(tenant, c).await;
        }
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
