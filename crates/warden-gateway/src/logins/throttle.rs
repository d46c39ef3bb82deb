//! The sign-in doors' use of [`crate::abuse`]: refuse an address past its budget (recorded
//! once per minute) and record failures within the ledger budget. Kept out of `abuse.rs` so
//! the budgets themselves depend on nothing of the gateway.

use crate::abuse::ClientAddr;

/// Refuse a client address past its budget (`429`), recording the refusal once per minute
/// (within the ledger budget). `door` names what was tried (`login`, `oauth_token`).
pub(crate) async fn admit(
    state: &crate::state::AppState,
    from: ClientAddr,
    door: &str,
) -> Result<(), crate::error::ApiError> {
    let Err(throttled) = state.abuse.admit(from.0) else {
        return Ok(());
    };
    if throttled.record {
        if let Some(suppressed) = state.abuse.may_record() {
            let mut details = serde_json::Map::new();
            details.insert("door".into(), serde_json::json!(door));
            details.insert(
                "address".into(),
                serde_json::json!(from.0.map(|ip| ip.to_string())),
            );
            details.insert(
                "retry_after_secs".into(),
                serde_json::json!(throttled.retry_after_secs),
            );
            if suppressed > 0 {
                details.insert("suppressed".into(), serde_json::json!(suppressed));
            }
            let details = serde_json::Value::Object(details);
            crate::identity::append(
                &state.store,
                warden_core::ledger::IdentityEvent {
                    action: "sign_in_throttled".into(),
                    actor: "anonymous".into(),
                    subject: door.to_string(),
                    severity: "high".into(),
                    break_glass: false,
                    details,
                },
            )
            .await
            .map_err(crate::error::ApiError::store_unavailable)?;
        }
    }
    Err(crate::error::ApiError::throttled(
        throttled.retry_after_secs,
    ))
}

/// A failure anyone can cause, recorded within the ledger budget: `Some(details)` with
/// `suppressed` added when earlier ones were not written, `None` when this one is only counted.
pub(crate) fn budgeted(
    state: &crate::state::AppState,
    mut details: serde_json::Value,
) -> Option<serde_json::Value> {
    let suppressed = state.abuse.may_record()?;
    if suppressed > 0 {
        if let Some(d) = details.as_object_mut() {
            d.insert("suppressed".into(), serde_json::json!(suppressed));
        }
    }
    Some(details)
}
