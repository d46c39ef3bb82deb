//! Agent identities: scoped, expiring tokens; OAuth clients; the break-glass credential;
//! Argon2id password hashing. Used by the gateway (authentication) and by the CLI (issue,
//! revoke, add).
//!
//! A token is `wdn_at_<id>_<secret>` (see [`warden_core::identity`]); the store keeps only
//! its SHA-256, the agent, the environment of the agent's card, an optional tool subset and
//! the expiry. It is looked up on every request (no cache), so revocation applies to the next
//! call. Every refusal is the same `unauthenticated` answer; the log says which check failed
//! (by token id, never the token).

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use axum::http::HeaderMap;
use rand::RngCore;
use serde_json::json;
use warden_core::config::IdentityConfig;
use warden_core::identity::{
    credential_hash, format_credential, hash_prefix, hashes_equal, parse_credential, CredentialKind,
};
use warden_core::ledger::{IdentityEvent, LedgerEvent};
use warden_core::{CompiledPolicy, Decision, Verdict};
use warden_store::{ClientRow, Store, StoreError, TokenRow};

use crate::error::ApiError;
use crate::state::AppState;

/// Why an identity operation was refused (CLI and admin API; never an authentication check,
/// which answers only "unauthenticated").
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no scope card for agent `{0}` (agents/{0}.toml)")]
    UnknownAgent(String),
    #[error(
        "tool `{tool}` is not on the scope card of `{agent}`; a token can only narrow the card"
    )]
    ToolNotOnCard { agent: String, tool: String },
    #[error(
        "a token may live at most {max} s ([identity] token_ttl_max_secs); asked for {asked} s"
    )]
    TtlTooLong { asked: u64, max: u64 },
    #[error("the time-to-live must be at least 1 second")]
    TtlZero,
    #[error("no active token `{0}`")]
    NoSuchToken(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Unix seconds now by the system clock (for commands that run without a gateway state; a
/// gateway reads [`AppState::clock`]).
pub fn unix_now() -> i64 {
    crate::Clock::system().unix()
}

/// RFC 3339 of Unix seconds (for lists and records).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A credential of `kind` from the operating system's random source: (text, public id).
pub fn new_credential(kind: CredentialKind) -> (String, String) {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    (format_credential(kind, id, secret), hex::encode(id))
}

/// Argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane; OWASP's minimum) as a PHC string.
pub fn hash_password(secret: &str) -> Result<String, IdentityError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| IdentityError::Invalid(e.to_string()))?;
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| IdentityError::Invalid(e.to_string()))
}

/// A token just issued. `token` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub id: String,
    pub agent: String,
    pub environment: String,
    pub tools: Option<Vec<String>>,
    pub expires_at: i64,
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    pub agent: &'a str,
    /// Seconds; `None` = `[identity] token_ttl_secs`.
    pub ttl: Option<u64>,
    /// Tool names or `server/name`, each on the card; `None` = every tool of the card.
    pub tools: Option<Vec<String>>,
    /// `cli:<user>`, `oauth:<client>`, a user name, or `break-glass:<id>`.
    pub issued_by: &'a str,
    pub break_glass: bool,
    pub now: i64,
}

/// Issue a token for an agent: bound to its card's environment, optionally to a subset of
/// its tools, expiring after `ttl` (never after `[identity] token_ttl_max_secs`). The
/// `token_issued` record is durable before the token exists.
pub async fn issue_token(
    store: &Store,
    policy: &CompiledPolicy,
    cfg: &IdentityConfig,
    req: TokenRequest<'_>,
) -> Result<IssuedToken, IdentityError> {
    let card = policy
        .cards
        .get(req.agent)
        .ok_or_else(|| IdentityError::UnknownAgent(req.agent.to_string()))?;
    let ttl = req.ttl.unwrap_or(cfg.token_ttl_secs);
    if ttl == 0 {
        return Err(IdentityError::TtlZero);
    }
    if ttl > cfg.token_ttl_max_secs {
        return Err(IdentityError::TtlTooLong {
            asked: ttl,
            max: cfg.token_ttl_max_secs,
        });
    }
    let tools = match req.tools {
        None => None,
        Some(list) => {
            let mut out = Vec::new();
            for t in list {
                let grant = card.tool(&t).ok_or_else(|| IdentityError::ToolNotOnCard {
                    agent: req.agent.to_string(),
                    tool: t.clone(),
                })?;
                let q = grant.qualified().to_string();
                if !out.contains(&q) {
                    out.push(q);
                }
            }
            Some(out)
        }
    };
    let (token, id) = new_credential(CredentialKind::AgentToken);
    let hash = credential_hash(&token);
    let expires_at = req
        .now
        .saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    let environment = card.environment.to_string();
    append(
        store,
        IdentityEvent {
            action: "token_issued".into(),
            actor: req.issued_by.to_string(),
            subject: req.agent.to_string(),
            severity: "info".into(),
            break_glass: req.break_glass,
            details: json!({
                "token_id": id,
                "token_hash_prefix": hash_prefix(&hash),
                "environment": environment,
                "tools": tools,
                "expires_at": rfc3339(expires_at),
                "ttl_secs": ttl,
            }),
        },
    )
    .await?;
    store
        .identities()
        .insert_token(&TokenRow {
            id: id.clone(),
            hash: hash.to_vec(),
            agent: req.agent.to_string(),
            environment: environment.clone(),
            tools: tools.clone(),
            issued_at: req.now,
            expires_at,
            revoked_at: None,
            issued_by: req.issued_by.to_string(),
        })
        .await?;
    Ok(IssuedToken {
        token,
        id,
        agent: req.agent.to_string(),
        environment,
        tools,
        expires_at,
    })
}

/// Revoke a token by id (recorded first).
pub async fn revoke_token(
    store: &Store,
    id: &str,
    actor: &str,
    break_glass: bool,
    now: i64,
) -> Result<TokenRow, IdentityError> {
    let row = store
        .identities()
        .token(id)
        .await?
        .filter(|t| t.revoked_at.is_none())
        .ok_or_else(|| IdentityError::NoSuchToken(id.to_string()))?;
    if !store.identities().revoke_token(id, now).await? {
        return Err(IdentityError::NoSuchToken(id.to_string()));
    }
    append(
        store,
        IdentityEvent {
            action: "token_revoked".into(),
            actor: actor.to_string(),
            subject: row.agent.clone(),
            severity: "info".into(),
            break_glass,
            details: json!({"token_id": id}),
        },
    )
    .await?;
    Ok(row)
}

/// An OAuth client just created; `secret` is shown once.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: String,
    pub secret: String,
}

/// Create an OAuth client for an agent; its secret is stored as Argon2id only.
pub async fn add_client(
    store: &Store,
    policy: &CompiledPolicy,
    agent: &str,
    actor: &str,
    now: i64,
) -> Result<NewClient, IdentityError> {
    if !policy.cards.contains_key(agent) {
        return Err(IdentityError::UnknownAgent(agent.to_string()));
    }
    let (secret, id) = new_credential(CredentialKind::ClientSecret);
    let client_id = format!("{agent}.{id}");
    let secret_hash = hash_password(&secret)?;
    append(
        store,
        IdentityEvent {
            action: "client_added".into(),
            actor: actor.to_string(),
            subject: agent.to_string(),
            severity: "info".into(),
            break_glass: false,
            details: json!({"client_id": client_id, "secret_hash": "argon2id"}),
        },
    )
    .await?;
    store
        .identities()
        .insert_client(&ClientRow {
            client_id: client_id.clone(),
            agent: agent.to_string(),
            secret_hash,
            created_at: now,
            disabled: false,
        })
        .await?;
    Ok(NewClient { client_id, secret })
}

/// Seal a new break-glass credential (earlier ones stop working). Shown once.
pub async fn seal_break_glass(
    store: &Store,
    actor: &str,
    now: i64,
) -> Result<(String, String), IdentityError> {
    let (cred, id) = new_credential(CredentialKind::BreakGlass);
    let hash = credential_hash(&cred);
    append(
        store,
        IdentityEvent {
            action: "break_glass_sealed".into(),
            actor: actor.to_string(),
            subject: format!("break-glass:{id}"),
            severity: "info".into(),
            break_glass: false,
            details: json!({"credential_id": id, "hash_prefix": hash_prefix(&hash)}),
        },
    )
    .await?;
    store.identities().seal_break_glass(&id, &hash, now).await?;
    Ok((cred, id))
}

/// Check a presented break-glass credential: its id if it is the active one.
pub async fn check_break_glass(
    store: &Store,
    presented: &str,
) -> Result<Option<String>, StoreError> {
    let digest = credential_hash(presented);
    let parsed = parse_credential(presented).filter(|c| c.kind == CredentialKind::BreakGlass);
    let stored = match &parsed {
        Some(c) => store.identities().break_glass_hash(c.id).await?,
        None => None,
    };
    let known = stored.as_deref().and_then(|s| <[u8; 32]>::try_from(s).ok());
    let eq = hashes_equal(&known.unwrap_or([0u8; 32]), &digest);
    Ok(match (parsed, known) {
        (Some(c), Some(_)) if eq => Some(c.id.to_string()),
        _ => None,
    })
}

/// Append an identity record and wait until it is durable. Its time is read from the
/// store's clock, which a gateway shares with its `AppState` (so a test that moves the
/// gateway's time moves the records' time too).
pub async fn append(store: &Store, event: IdentityEvent) -> Result<(), StoreError> {
    store
        .append_now(LedgerEvent::Identity(event))
        .await
        .map(|_| ())
}

// ---- authentication of agents -----------------------------------------------------------

/// Who is calling, as established by a static key or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPrincipal {
    pub agent: String,
    /// The token's tool subset (`server/name`), if it has one.
    pub tools: Option<Vec<String>>,
    /// The token id, when a token was used.
    pub token_id: Option<String>,
}

/// Authenticate an agent request: a static key from `warden.toml` `[agent_keys]`, or a
/// token. Tokens must be well-formed, known, unrevoked, unexpired, issued for this gateway's
/// environment and for an agent that still has a card. Every failure answers the same.
///
/// An agent whose card keeps its records in another region than the one this gateway
/// serves is refused here (`421`), before anything about its call is read or recorded.
pub async fn authenticate_agent(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<AgentPrincipal, ApiError> {
    let principal = authenticate_any_region(state, headers).await?;
    state.serves_agent(&principal.agent)?;
    Ok(principal)
}

async fn authenticate_any_region(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<AgentPrincipal, ApiError> {
    let presented = crate::auth::bearer(headers).ok_or_else(ApiError::unauthenticated)?;
    if !presented.starts_with(warden_core::identity::CREDENTIAL_PREFIX) {
        return state
            .keys
            .authenticate_key(presented)
            .map(|agent| AgentPrincipal {
                agent,
                tools: None,
                token_id: None,
            })
            .ok_or_else(ApiError::unauthenticated);
    }
    let digest = credential_hash(presented);
    let parsed = parse_credential(presented).filter(|c| c.kind == CredentialKind::AgentToken);
    let row = match &parsed {
        Some(c) => state
            .store
            .identities()
            .token(c.id)
            .await
            .map_err(|e| ApiError::ledger_unavailable(e.to_string()))?,
        None => None,
    };
    let stored: [u8; 32] = row
        .as_ref()
        .and_then(|r| <[u8; 32]>::try_from(r.hash.as_slice()).ok())
        .unwrap_or([0u8; 32]);
    // Compared in constant time whether or not a row was found.
    let hash_ok = hashes_equal(&stored, &digest);
    let now = state.now();
    let gateway_env = state.policy.environment.to_string();
    let failure = match &row {
        None => Some("unknown or malformed token"),
        Some(_) if !hash_ok => Some("token secret does not match"),
        Some(r) if r.revoked_at.is_some() => Some("token revoked"),
        Some(r) if now >= r.expires_at => Some("token expired"),
        Some(r) if r.environment != gateway_env => Some("token issued for another environment"),
        Some(r) if !state.policy.cards.contains_key(&r.agent) => Some("agent has no scope card"),
        Some(_) => None,
    };
    match (failure, row) {
        (None, Some(r)) => Ok(AgentPrincipal {
            agent: r.agent,
            tools: r.tools,
            token_id: Some(r.id),
        }),
        (why, _) => {
            tracing::info!(
                message = "agent token refused",
                token_id = parsed.as_ref().map_or("-", |c| c.id),
                reason = why.unwrap_or("unknown")
            );
            Err(ApiError::unauthenticated())
        }
    }
}

/// Narrow a decision to a token's tool subset: a call to a tool outside it is denied, with
/// the reason, whatever the policy said.
pub fn apply_token_scope(decision: &mut Decision, subset: Option<&[String]>, requested: &str) {
    let Some(subset) = subset else { return };
    let within = decision
        .tool
        .as_deref()
        .is_some_and(|q| subset.iter().any(|s| s == q))
        || subset.iter().any(|s| s == requested);
    // A tool not on the card is already denied, with the card's reason.
    if within || decision.tool.is_none() {
        return;
    }
    decision.decision = Verdict::Deny;
    decision.reasons = vec![format!(
        "the token used for this call is limited to {}; `{requested}` is not among them (issue a token with this tool, or use the OAuth scope)",
        subset.join(", ")
    )];
    decision.policies = vec!["warden/token-scope".to_string()];
}
