//! What the web app keeps in the directory: login sessions, API tokens and the one-time operator
//! setup link. Secrets never reach the database: the web app hashes every token (SHA-256) and the
//! store only ever sees and compares [`TokenHash`]es.
//!
//! [`WebStore`] is a supertrait of [`crate::Directory`], so any `Arc<dyn Directory>` offers these
//! methods (bring the trait into scope with `use store::WebStore as _`).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::Result;
use crate::model::*;

/// Lowercase hex SHA-256 of a secret token (64 characters).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TokenHash {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return Err(ParseError::new(
                "token_hash",
                "not a token hash: expected 64 lowercase hex digits".to_owned(),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for TokenHash {
    // Short enough to tell two apart in a log, too short to be useful to anyone else.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.0[..8])
    }
}

// ---------------------------------------------------------------- sessions

/// A login session as created at sign-in.
#[derive(Clone, Debug)]
pub struct NewWebSession {
    pub id_hash: TokenHash,
    pub user_id: UserId,
    /// The synchronizer token every state-changing request of this session must carry.
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
    /// Client address and user agent, for the user's "where am I signed in" view. Truncated by the
    /// store to 64 and 512 characters.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    pub id_hash: TokenHash,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

// ---------------------------------------------------------------- API tokens

#[derive(Clone, Debug)]
pub struct NewApiToken {
    /// `None`: an operator (platform-wide) token.
    pub tenant_id: Option<TenantId>,
    pub name: String,
    pub token_hash: TokenHash,
    /// The first few characters of the token, shown in lists (at most 16).
    pub prefix: String,
    pub created_by: Option<UserId>,
    /// After this the token is refused. `None`: until revoked.
    pub expires_at: Option<OffsetDateTime>,
}

/// The user who created a token, as that user is now (read together with the token), so the web
/// app can refuse a token whose creator was disabled or lost the role the token needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenCreator {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub role: Role,
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub tenant_id: Option<TenantId>,
    pub name: String,
    pub token_hash: TokenHash,
    pub prefix: String,
    pub created_by: Option<UserId>,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    /// `None` when the token was created without a user (`created_by` is `None`) or the user row
    /// is gone.
    pub creator: Option<TokenCreator>,
}

// ---------------------------------------------------------------- audit log

/// One change for the audit log, as the web app's service layer writes it. Names, not ids: the
/// entry outlives what it names. The store trims and caps each text (actor 300, action 64,
/// subject 300, detail 1000 characters) rather than refuse: an audit write never fails a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// `None` for a platform-wide change.
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub tenant_id: Option<TenantId>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait WebStore: Send + Sync {
    // ------------------------------------------------------------ sessions

    async fn create_web_session(&self, new: &NewWebSession) -> Result<WebSession>;
    /// The session (unexpired at `now`) and its user. Cross-tenant by nature: the cookie is all
    /// the request has. `NotFound` for an unknown or expired session; disabled users are returned
    /// and the caller refuses them.
    async fn get_web_session(
        &self,
        id_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<(WebSession, User)>;
    /// Records activity and slides the expiry.
    async fn touch_web_session(
        &self,
        id_hash: &TokenHash,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()>;
    /// Returns whether a session was removed.
    async fn delete_web_session(&self, id_hash: &TokenHash) -> Result<bool>;
    /// Signs a user out everywhere (password change, disable), optionally keeping one session.
    async fn delete_user_web_sessions(&self, user: UserId, keep: Option<&TokenHash>)
    -> Result<u64>;
    async fn delete_expired_web_sessions(&self, now: OffsetDateTime) -> Result<u64>;

    // ------------------------------------------------------------ sign-in attempts

    /// Counts one sign-in attempt against each `(key, limit)`, each count in a fixed window of
    /// `window` that starts at its first attempt (a count whose window has ended starts again
    /// at 1). Each increment is one atomic statement, so parallel requests, also from other
    /// processes on the same database, never see the same count. Returns `Some(retry_at)`
    /// when any count is now above its limit (the attempt must be refused; it still counts):
    /// the end of the latest such window. Keys are at most 200 characters.
    async fn count_login_attempt(
        &self,
        keys: &[(&str, u32)],
        window: time::Duration,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>>;
    /// After a successful sign-in: deletes the count of `clear` and takes one attempt off the
    /// count of `refund`.
    async fn login_succeeded(&self, clear: &str, refund: &str) -> Result<()>;
    /// Deletes counts whose window started at or before `cutoff`.
    async fn delete_stale_login_attempts(&self, cutoff: OffsetDateTime) -> Result<u64>;

    // ------------------------------------------------------------ audit log

    /// Appends an entry (see [`NewAuditEntry`] for the limits); an empty actor is refused.
    async fn append_audit(&self, new: &NewAuditEntry) -> Result<AuditEntry>;
    /// Newest first. `Some(tenant)`: that business's entries only; `None`: every entry, the
    /// operator's view.
    async fn list_audit(&self, tenant: Option<TenantId>, page: Page) -> Result<Paged<AuditEntry>>;

    // ------------------------------------------------------------ API tokens

    async fn create_api_token(&self, new: &NewApiToken) -> Result<ApiToken>;
    /// Cross-tenant by nature: the bearer token is all the request has. Returns revoked tokens
    /// too: the caller refuses them.
    async fn get_api_token_by_hash(&self, hash: &TokenHash) -> Result<ApiToken>;
    /// The tokens of a tenant, or the operator tokens for `None`; newest first.
    async fn list_api_tokens(&self, tenant: Option<TenantId>) -> Result<Vec<ApiToken>>;
    /// Idempotent; `NotFound` if the token is not in that scope.
    async fn revoke_api_token(
        &self,
        tenant: Option<TenantId>,
        id: ApiTokenId,
        now: OffsetDateTime,
    ) -> Result<ApiToken>;
    async fn touch_api_token(&self, id: ApiTokenId, now: OffsetDateTime) -> Result<()>;

    // ------------------------------------------------------------ business users

    /// Makes a business user an admin or a member (`Invalid`, field "role", for `Operator`:
    /// operators belong to no tenant). `NotFound` if the user is not the tenant's.
    async fn set_user_role(&self, tenant: TenantId, user: UserId, role: Role) -> Result<User>;

    // ------------------------------------------------------------ a member's own extension

    /// The extension (lowest number first) whose `user_id` is this user, if any: what a member
    /// manages on their own page.
    async fn find_user_extension(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<ExtensionId>>;

    // ------------------------------------------------------------ first-run setup

    /// Stores a setup token (only its hash).
    async fn create_setup_token(&self, hash: &TokenHash, expires_at: OffsetDateTime) -> Result<()>;
    /// Is this setup token unused and unexpired at `now`?
    async fn setup_token_valid(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<bool>;
    /// In one transaction: marks the token used and creates the first operator, provided the
    /// token is unused and unexpired (`NotFound` otherwise) and no operator exists yet
    /// (`Conflict`, field "setup"). `new.role` must be `Operator`.
    async fn redeem_setup_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
        new: &NewUser,
    ) -> Result<User>;
}
