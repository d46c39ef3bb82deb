//! [`IdentityStore`]: agent tokens, OAuth clients, people and their sessions, the break-glass
//! credential, sealed secrets. Hashes and sealed bytes only; the checks themselves
//! (constant-time comparison, expiry, TOTP) live with the callers.

use async_trait::async_trait;

use crate::StoreError;

/// An agent token as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRow {
    /// The public id (the `<id>` of `wdn_at_<id>_<secret>`).
    pub id: String,
    /// SHA-256 of the whole token.
    pub hash: Vec<u8>,
    /// The agent it authenticates.
    pub agent: String,
    /// The environment of the agent's card when it was issued.
    pub environment: String,
    /// `None`: every tool of the card.
    #[sqlx(json(nullable))]
    pub tools: Option<Vec<String>>,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Unix seconds, once revoked.
    pub revoked_at: Option<i64>,
    /// Who issued it (`cli:<user>`, `oauth:<client>`, ...).
    pub issued_by: String,
}

/// An OAuth client as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClientRow {
    /// `<agent>.<id>`.
    pub client_id: String,
    /// The agent its tokens are for.
    pub agent: String,
    /// Argon2id PHC string of the secret.
    pub secret_hash: String,
    /// Unix seconds.
    pub created_at: i64,
    /// A disabled client gets no tokens.
    pub disabled: bool,
}

/// What [`IdentityStore::begin_attempt`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// No such person.
    Unknown,
    /// Locked until these Unix seconds; the attempt was not counted.
    Locked(i64),
    /// Counted: the attempt's number since the last success, and the lock it set (Unix
    /// seconds; `0` or past when it set none).
    Counted { failed: u32, locked_until: i64 },
}

/// A person as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    /// The login name.
    pub name: String,
    /// `admin`, `approver`, `auditor` or `owner`.
    pub role: String,
    /// Argon2id PHC string of the password.
    pub password_hash: String,
    /// Whether a TOTP code is asked at login and at approval time.
    pub mfa: bool,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// Failed logins since the last success.
    #[sqlx(try_from = "i64")]
    pub failed_logins: u32,
    /// Unix seconds until which logins are refused.
    pub locked_until: i64,
    /// The last TOTP time step accepted (a code is used once).
    pub last_totp_step: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A human session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    /// The public id.
    pub id: String,
    /// SHA-256 of the session credential.
    pub hash: Vec<u8>,
    /// SHA-256 of the session's CSRF token.
    pub csrf_hash: Vec<u8>,
    /// Whose session.
    pub user_name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last request.
    pub last_seen: i64,
    /// Unix seconds of the last TOTP check (step-up).
    pub totp_at: Option<i64>,
    /// Opened with the break-glass credential.
    pub break_glass: bool,
    /// Unix seconds, once ended.
    pub ended_at: Option<i64>,
}

/// A sealed secret as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecretRow {
    /// Its name (`totp/<user>`, an upstream credential, ...).
    pub name: String,
    /// The data key, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
    /// The value, sealed with the data key.
    pub ciphertext: Vec<u8>,
    /// Which master key wraps it.
    pub master_id: String,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Identities: who may call (agent tokens, OAuth clients) and who may approve and audit
/// (people, sessions, break-glass), and the sealed secrets behind them.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    // ---- agent tokens ----------------------------------------------------------------------

    /// Store a new token (never revoked yet).
    async fn insert_token(&self, t: &TokenRow) -> Result<(), StoreError>;

    /// A token by its public id. Read from the store on every call (no cache), so a
    /// revocation takes effect on the next request.
    async fn token(&self, id: &str) -> Result<Option<TokenRow>, StoreError>;

    /// Tokens, newest first; with `include_inactive` also expired and revoked ones.
    async fn tokens(&self, now: i64, include_inactive: bool) -> Result<Vec<TokenRow>, StoreError>;

    /// Revoke a token; `false` if there is no such active token.
    async fn revoke_token(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    // ---- OAuth clients ---------------------------------------------------------------------

    /// Store a new (enabled) client.
    async fn insert_client(&self, c: &ClientRow) -> Result<(), StoreError>;

    /// A client by id.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRow>, StoreError>;

    // ---- people ----------------------------------------------------------------------------

    /// Store a new (enabled) person.
    async fn insert_user(&self, u: &UserRow) -> Result<(), StoreError>;

    /// A person by name.
    async fn user(&self, name: &str) -> Result<Option<UserRow>, StoreError>;

    /// Every person, by name.
    async fn users(&self) -> Result<Vec<UserRow>, StoreError>;

    /// Disable a user and end their sessions; `false` if no such enabled user.
    async fn disable_user(&self, name: &str, now: i64) -> Result<bool, StoreError>;

    /// Start a credential check (password or one-time code) for a person, atomically: unless
    /// the account is locked at `now`, count the attempt as a failure up front (a success
    /// clears it with [`Self::record_login_success`]), and when the count reaches `max` lock
    /// the account before the check runs — 30 s, doubling with each further failure, at most
    /// an hour. Concurrent attempts each get their own count, so none is lost and at most one
    /// check per lock-out period runs past `max`.
    async fn begin_attempt(&self, name: &str, now: i64, max: u32) -> Result<Attempt, StoreError>;

    /// Record an accepted TOTP step, only if it is newer than the last one (so two racing
    /// requests cannot both use one code). `false` if the step was already used.
    async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StoreError>;

    /// A successful login clears the failure count.
    async fn record_login_success(&self, name: &str) -> Result<(), StoreError>;

    // ---- sessions --------------------------------------------------------------------------

    /// Store a new session.
    async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError>;

    /// A session by id.
    async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError>;

    /// Note a request on the session.
    async fn touch_session(&self, id: &str, now: i64) -> Result<(), StoreError>;

    /// Note a TOTP check (step-up) on the session.
    async fn session_totp_verified(&self, id: &str, now: i64) -> Result<(), StoreError>;

    /// End a session (logout).
    async fn end_session(&self, id: &str, now: i64) -> Result<(), StoreError>;

    // ---- break-glass -----------------------------------------------------------------------

    /// Seal a new break-glass credential; earlier ones are revoked.
    async fn seal_break_glass(&self, id: &str, hash: &[u8], now: i64) -> Result<(), StoreError>;

    /// The hash of an active break-glass credential by id.
    async fn break_glass_hash(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    // ---- sealed secrets --------------------------------------------------------------------

    /// Store or replace a sealed secret.
    async fn put_secret(&self, s: &SecretRow) -> Result<(), StoreError>;

    /// A sealed secret by name.
    async fn secret(&self, name: &str) -> Result<Option<SecretRow>, StoreError>;

    /// Every sealed secret, by name.
    async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError>;

    /// Replace every sealed secret in one transaction (master-key rotation).
    async fn replace_secrets(&self, rows: &[SecretRow]) -> Result<(), StoreError>;
}
