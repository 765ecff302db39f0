//! One-time views of new SIP passwords (POST/redirect/GET).
//!
//! The form post that makes a password (new extension, new device, new password) keeps it
//! here under a random view token and redirects to `GET /t/{tenant}/credentials/{token}`,
//! which shows it once. A reload of that page, a later visit, another session or another
//! business get "this password was shown once" instead: the form is never posted again, and
//! the password is never shown twice.
//!
//! Entries are in memory only, bound to the session and the business that made them, and
//! live [`VIEW_TTL`]; at most [`MAX_VIEWS`] are held (the oldest go first).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::{TenantId, TokenHash};

/// How long a view token is honoured (and, once used, remembered as used).
pub const VIEW_TTL: Duration = Duration::from_secs(10 * 60);
/// View tokens held at most.
pub const MAX_VIEWS: usize = 10_000;

/// What the one-time page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    pub title: String,
    pub intro: String,
    pub username: String,
    pub password: String,
    /// The extension's page.
    pub back: String,
}

/// What a view token gives.
#[derive(Debug, PartialEq, Eq)]
pub enum View {
    /// The secret, this once.
    Secret(Secret),
    /// Already shown: only where to go to make a new one.
    Shown { back: String },
    /// Unknown, expired, or not this session's or business's.
    Unknown,
}

struct Entry {
    session: TokenHash,
    tenant: TenantId,
    created: Instant,
    back: String,
    /// `None` once shown.
    secret: Option<Secret>,
}

/// The held views (see the module doc).
#[derive(Default)]
pub struct Reveals {
    inner: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Reveals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reveals")
            .field("held", &self.lock().len())
            .finish()
    }
}

impl Reveals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `secret` for one view by `session` within `tenant`; returns the view token
    /// (256 random bits from the OS).
    pub fn put(
        &self,
        session: &TokenHash,
        tenant: TenantId,
        secret: Secret,
        now: Instant,
    ) -> String {
        let token = crate::crypto::random_token();
        let mut map = self.lock();
        if map.len() >= MAX_VIEWS {
            map.retain(|_, e| now.saturating_duration_since(e.created) < VIEW_TTL);
        }
        while map.len() >= MAX_VIEWS {
            let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(
            token.clone(),
            Entry {
                session: session.clone(),
                tenant,
                created: now,
                back: secret.back.clone(),
                secret: Some(secret),
            },
        );
        token
    }

    /// The view `token` gives `session` within `tenant`; a secret is given once.
    pub fn take(&self, token: &str, session: &TokenHash, tenant: TenantId, now: Instant) -> View {
        let mut map = self.lock();
        let Some(e) = map.get_mut(token) else {
            return View::Unknown;
        };
        if now.saturating_duration_since(e.created) >= VIEW_TTL {
            map.remove(token);
            return View::Unknown;
        }
        if &e.session != session || e.tenant != tenant {
            return View::Unknown;
        }
        match e.secret.take() {
            Some(s) => View::Secret(s),
            None => View::Shown {
                back: e.back.clone(),
            },
        }
    }

    /// Tokens held (used ones included until they expire).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u8) -> TokenHash {
        hex::encode([n; 32]).parse().unwrap()
    }

    fn secret() -> Secret {
        Secret {
            title: "Extension 201 created".into(),
            intro: "Ready.".into(),
            username: "201".into(),
            password: "s3cret".into(),
            back: "/t/x/extensions/y".into(),
        }
    }

    #[test]
    fn shown_once_to_its_own_session_and_business() {
        let r = Reveals::default();
        let t = TenantId::from_uuid(uuid::Uuid::now_v7());
        let other = TenantId::from_uuid(uuid::Uuid::now_v7());
        let now = Instant::now();
        let tok = r.put(&session(1), t, secret(), now);
        assert_eq!(tok.len(), 43, "256 bits, base64url");
        assert_ne!(tok, r.put(&session(1), t, secret(), now));
        assert_eq!(r.take(&tok, &session(2), t, now), View::Unknown);
        assert_eq!(r.take(&tok, &session(1), other, now), View::Unknown);
        assert_eq!(r.take(&tok, &session(1), t, now), View::Secret(secret()));
        assert_eq!(
            r.take(&tok, &session(1), t, now),
            View::Shown {
                back: "/t/x/extensions/y".into()
            }
        );
        assert_eq!(r.take("nope", &session(1), t, now), View::Unknown);
    }

    #[test]
    fn expires_and_is_bounded() {
        let r = Reveals::default();
        let t = TenantId::from_uuid(uuid::Uuid::now_v7());
        let now = Instant::now();
        let tok = r.put(&session(1), t, secret(), now);
        let later = now + VIEW_TTL;
        assert_eq!(r.take(&tok, &session(1), t, later), View::Unknown);
        let first = r.put(&session(1), t, secret(), later);
        for i in 1..(MAX_VIEWS + 5) {
            r.put(
                &session(1),
                t,
                secret(),
                later + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(r.len(), MAX_VIEWS);
        assert_eq!(
            r.take(&first, &session(1), t, later + Duration::from_secs(1)),
            View::Unknown,
            "the oldest went first"
        );
    }
}
