//! Change events: what an admin changed, for the running engine.
//!
//! Every mutation of the web app's service layer (pages, API and CLI alike) publishes one
//! [`Change`]. Delivery:
//! * inside one process, over a [`ChangeBus`] (a tokio broadcast channel);
//! * across processes (the CLI, or another server on the same database), through
//!   [`crate::Directory::record_change`]: a row in the `change_log` table, which PostgreSQL also
//!   sends with `NOTIFY switchboard_changes` in the same transaction. A server reads them from
//!   [`crate::Directory::watch_changes`]: `LISTEN` on PostgreSQL, a poll of the table on SQLite.
//!
//! A receiver that may have missed events (a lagging broadcast receiver, a lost `LISTEN`
//! connection, a cursor older than the pruned log) gets [`Delivery::Resync`] and must drop what
//! it caches wholesale: an event is never silently lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

use crate::model::{CredentialId, ExtensionId, NumberId, RingGroupId, TenantId, TrunkId};

/// The NOTIFY channel (PostgreSQL).
pub const NOTIFY_CHANNEL: &str = "switchboard_changes";

/// Rows kept in `change_log`; older ones are pruned as new ones are written. A reader whose
/// cursor falls behind them resynchronises.
pub const LOG_KEEP: i64 = 10_000;

/// What happened to the thing a [`Change`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    /// Settings changed (forwarding, DND, members, route, addresses...).
    Updated,
    Deleted,
    /// A credential's password was replaced.
    Regenerated,
    /// A tenant suspended: none of its phones may register or call.
    Suspended,
    /// A tenant resumed.
    Resumed,
}

/// One admin change: which tenant, which object, what happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// An extension (its forwarding, DND, no-answer timeout, owner) or, when deleted, every
    /// credential and binding under it.
    Extension {
        tenant: TenantId,
        extension: ExtensionId,
        action: Action,
    },
    /// One SIP credential (device) of an extension.
    Credential {
        tenant: TenantId,
        extension: ExtensionId,
        credential: CredentialId,
        action: Action,
    },
    RingGroup {
        tenant: TenantId,
        group: RingGroupId,
        action: Action,
    },
    /// A telephone number: assigned, unassigned, routed, added or deleted. `tenant` is the
    /// tenant it belongs to after the change (`None`: the operator's inventory).
    Number {
        tenant: Option<TenantId>,
        number: NumberId,
        action: Action,
    },
    /// Tenant settings (limits, permissions, main number) or its suspension.
    Tenant { tenant: TenantId, action: Action },
    /// A trunk (platform-wide).
    Trunk { trunk: TrunkId, action: Action },
}

impl Change {
    /// The tenant the change belongs to (`None`: platform-wide or unassigned).
    pub fn tenant(&self) -> Option<TenantId> {
        match *self {
            Change::Extension { tenant, .. }
            | Change::Credential { tenant, .. }
            | Change::RingGroup { tenant, .. }
            | Change::Tenant { tenant, .. } => Some(tenant),
            Change::Number { tenant, .. } => tenant,
            Change::Trunk { .. } => None,
        }
    }

    /// The JSON stored in `change_log` and sent with NOTIFY.
    pub fn to_json(&self) -> String {
        // A plain enum of ids and unit variants always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// What a change receiver gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    Change(Change),
    /// Changes may have been missed (the reason says why): drop every cache.
    Resync(String),
}

/// In-process delivery, and the identity of this process in the change log. Cheap to clone.
///
/// Each change sent gets a sequence number; receivers report what they have applied
/// ([`ChangeReceiver::applied`]), so a publisher can wait until the engine of its process acts
/// on the change before it answers ([`ChangeBus::settled`]).
#[derive(Clone, Debug)]
pub struct ChangeBus {
    origin: Uuid,
    tx: broadcast::Sender<(u64, Change)>,
    sent: Arc<AtomicU64>,
    applied: Arc<watch::Sender<u64>>,
}

impl ChangeBus {
    /// Room for this many events per receiver; a receiver further behind resynchronises.
    pub const CAPACITY: usize = 1024;

    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(Self::CAPACITY);
        Self {
            origin: Uuid::now_v7(),
            tx,
            sent: Arc::new(AtomicU64::new(0)),
            applied: Arc::new(watch::channel(0).0),
        }
    }

    /// This process: rows of the change log written with it are not read back.
    pub fn origin(&self) -> Uuid {
        self.origin
    }

    /// Sends to every receiver in this process (none: nothing happens); returns the change's
    /// sequence number for [`ChangeBus::settled`].
    pub fn send(&self, change: Change) -> u64 {
        // numbered under the send so receivers see numbers in order
        let seq = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.tx.send((seq, change));
        seq
    }

    /// Waits (at most `limit`) until every receiver has applied the change numbered `seq`.
    /// Returns at once when nobody in this process listens (the CLI).
    pub async fn settled(&self, seq: u64, limit: std::time::Duration) -> bool {
        if self.tx.receiver_count() == 0 {
            return true;
        }
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|v| *v >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    pub fn subscribe(&self) -> ChangeReceiver {
        ChangeReceiver {
            rx: self.tx.subscribe(),
            sent: Arc::clone(&self.sent),
            applied: Arc::clone(&self.applied),
            last: 0,
        }
    }
}

impl Default for ChangeBus {
    fn default() -> Self {
        Self::new()
    }
}

/// A [`ChangeBus`] receiver that turns lag into [`Delivery::Resync`].
#[derive(Debug)]
pub struct ChangeReceiver {
    rx: broadcast::Receiver<(u64, Change)>,
    sent: Arc<AtomicU64>,
    applied: Arc<watch::Sender<u64>>,
    /// The newest change the last delivery covers.
    last: u64,
}

impl ChangeReceiver {
    /// The next delivery; `None` once every sender is gone. Call [`ChangeReceiver::applied`]
    /// once it has been acted on.
    pub async fn recv(&mut self) -> Option<Delivery> {
        match self.rx.recv().await {
            Ok((seq, c)) => {
                self.last = seq;
                Some(Delivery::Change(c))
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                // the resync covers everything sent so far
                self.last = self.sent.load(Ordering::SeqCst);
                Some(Delivery::Resync(format!(
                    "{n} in-process change events were dropped while the receiver lagged"
                )))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Reports the last delivery as applied (publishers waiting in [`ChangeBus::settled`]
    /// go on).
    pub fn applied(&self) {
        let last = self.last;
        self.applied.send_if_modified(|v| {
            let newer = *v < last;
            if newer {
                *v = last;
            }
            newer
        });
    }
}

/// Settings of [`crate::Directory::watch_changes`].
#[derive(Clone, Copy, Debug)]
pub struct WatchOptions {
    /// This process's origin: its own rows are skipped.
    pub origin: Uuid,
    /// SQLite: how often the change log is read (default 200 ms). PostgreSQL ignores it
    /// (NOTIFY arrives at once).
    pub poll: std::time::Duration,
}

impl WatchOptions {
    pub const DEFAULT_POLL: std::time::Duration = std::time::Duration::from_millis(200);

    pub fn new(origin: Uuid) -> Self {
        Self {
            origin,
            poll: Self::DEFAULT_POLL,
        }
    }
}

/// Deliveries from other processes; the watching task ends when this is dropped.
pub type ChangeWatch = mpsc::Receiver<Delivery>;

/// Queue between the watching task and its reader; when full the task waits (the database
/// keeps the rows, or PostgreSQL buffers the notifications).
pub(crate) const WATCH_QUEUE: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_json() {
        let c = Change::Credential {
            tenant: TenantId::new(),
            extension: ExtensionId::new(),
            credential: CredentialId::new(),
            action: Action::Regenerated,
        };
        let json = c.to_json();
        assert!(json.contains("\"kind\":\"credential\""), "{json}");
        assert!(json.contains("\"action\":\"regenerated\""), "{json}");
        assert_eq!(Change::from_json(&json).unwrap(), c);
    }

    #[tokio::test]
    async fn a_lagging_receiver_is_told_to_resync() {
        let bus = ChangeBus::new();
        let mut rx = bus.subscribe();
        let c = Change::Trunk {
            trunk: TrunkId::new(),
            action: Action::Created,
        };
        for _ in 0..ChangeBus::CAPACITY + 5 {
            bus.send(c);
        }
        assert!(matches!(rx.recv().await, Some(Delivery::Resync(_))));
        assert_eq!(rx.recv().await, Some(Delivery::Change(c)));
    }

    #[tokio::test]
    async fn a_publisher_waits_until_the_change_is_applied() {
        let bus = ChangeBus::new();
        let c = Change::Trunk {
            trunk: TrunkId::new(),
            action: Action::Deleted,
        };
        // nobody listening (the CLI): nothing to wait for
        assert!(bus.settled(bus.send(c), std::time::Duration::ZERO).await);
        let mut rx = bus.subscribe();
        let seq = bus.send(c);
        assert!(!bus.settled(seq, std::time::Duration::from_millis(20)).await);
        assert_eq!(rx.recv().await, Some(Delivery::Change(c)));
        rx.applied();
        assert!(bus.settled(seq, std::time::Duration::from_millis(20)).await);
    }
}
