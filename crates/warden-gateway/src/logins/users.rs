//! Enrolment: adding and disabling people, and checking their TOTP codes.

use rand::RngCore;
use serde_json::json;
use warden_core::identity::otpauth_uri;
use warden_core::identity::verify_totp;
use warden_core::ledger::IdentityEvent;
use warden_store::{Store, UserRow};

use super::Role;
use crate::identity::{append, hash_password};
use crate::secrets::{get_sealed, put_sealed, MasterKey, SecretError};

/// The store name of a user's sealed TOTP seed.
fn totp_name(user: &str) -> String {
    format!("totp/{user}")
}

/// What `warden user add` prints once.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub password: String,
    /// `None` when the user was added without MFA (auditor or owner only).
    pub otpauth_uri: Option<String>,
}

/// Why a user could not be added.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user names may use letters, digits, `-`, `_`, `.` and `@` only (1 to 64)")]
    BadName,
    #[error("a user `{0}` already exists")]
    Exists(String),
    #[error("MFA cannot be turned off for the {0} role")]
    MfaRequired(&'static str),
    #[error("the password must have at least 12 characters")]
    WeakPassword,
    #[error("no enabled user `{0}`")]
    NoSuchUser(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error(transparent)]
    Store(#[from] warden_store::StoreError),
}

fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// A generated password: 20 characters from a 57-letter alphabet without look-alikes (~116 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut b = [0u8; 1];
        rand::rngs::OsRng.fill_bytes(&mut b);
        // Rejection sampling keeps the choice uniform.
        let v = usize::from(b[0] & 0x3f);
        if let Some(c) = ALPHABET.get(v) {
            out.push(char::from(*c));
        }
    }
    out
}

/// Enrol a person: password (given or generated) stored as Argon2id, TOTP seed sealed under
/// the master key. Records `user_added` and, with MFA, `mfa_enrolled`.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site per front end; a struct would only rename the arguments"
)]
pub async fn add_user(
    store: &Store,
    key: &MasterKey,
    name: &str,
    role: Role,
    password: Option<String>,
    mfa: bool,
    actor: &str,
    now: i64,
) -> Result<Enrollment, UserError> {
    if !valid_user_name(name) {
        return Err(UserError::BadName);
    }
    if !mfa && role.requires_mfa() {
        return Err(UserError::MfaRequired(role.as_str()));
    }
    if store.identities().user(name).await?.is_some() {
        return Err(UserError::Exists(name.to_string()));
    }
    let password = match password {
        Some(p) if p.chars().count() < 12 => return Err(UserError::WeakPassword),
        Some(p) => p,
        None => generate_password(),
    };
    let password_hash = hash_password(&password)?;
    let mut uri = None;
    if mfa {
        let mut seed = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        put_sealed(store, key, &totp_name(name), &seed, now).await?;
        uri = Some(otpauth_uri("Warden", name, &seed));
    }
    append(
        store,
        IdentityEvent {
            action: "user_added".into(),
            actor: actor.to_string(),
            subject: name.to_string(),
            severity: "info".into(),
            break_glass: false,
            details: json!({"role": role.as_str(), "mfa": mfa, "password": "argon2id"}),
        },
    )
    .await?;
    store
        .identities()
        .insert_user(&UserRow {
            name: name.to_string(),
            role: role.as_str().to_string(),
            password_hash,
            mfa,
            disabled: false,
            failed_logins: 0,
            locked_until: 0,
            last_totp_step: None,
            created_at: now,
        })
        .await?;
    if mfa {
        append(
            store,
            IdentityEvent {
                action: "mfa_enrolled".into(),
                actor: actor.to_string(),
                subject: name.to_string(),
                severity: "info".into(),
                break_glass: false,
                details: json!({"method": "totp", "rfc": 6238, "digits": 6, "period": 30, "master_key_id": key.id()}),
            },
        )
        .await?;
    }
    Ok(Enrollment {
        password,
        otpauth_uri: uri,
    })
}

/// Disable a user and end their sessions.
pub async fn disable_user(
    store: &Store,
    name: &str,
    actor: &str,
    now: i64,
) -> Result<(), UserError> {
    if !store.identities().disable_user(name, now).await? {
        return Err(UserError::NoSuchUser(name.to_string()));
    }
    append(
        store,
        IdentityEvent {
            action: "user_disabled".into(),
            actor: actor.to_string(),
            subject: name.to_string(),
            severity: "info".into(),
            break_glass: false,
            details: json!({}),
        },
    )
    .await?;
    Ok(())
}

/// Check a TOTP code for a user and consume its step (so it cannot be used again). `Ok(true)`
/// when accepted. Used by login, step-up and sign-offs on the command line.
pub async fn check_totp(
    store: &Store,
    key: &MasterKey,
    user: &str,
    code: &str,
    now: i64,
) -> Result<bool, UserError> {
    let Some(row) = store.identities().user(user).await? else {
        return Ok(false);
    };
    let seed = get_sealed(store, key, &totp_name(user)).await?;
    let last = row.last_totp_step.and_then(|s| u64::try_from(s).ok());
    let now = u64::try_from(now).unwrap_or(0);
    let Some(step) = verify_totp(&seed, code, now, last) else {
        return Ok(false);
    };
    Ok(store
        .identities()
        .use_totp_step(user, i64::try_from(step).unwrap_or(i64::MAX))
        .await?)
}
