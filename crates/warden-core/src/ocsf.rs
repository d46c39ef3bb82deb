//! OCSF export of decision records: API Activity (class 6003) with the `security_control`
//! profile (`action_id`, `disposition_id`, `policy`), for SIEMs that ingest OCSF natively.
//!
//! One function from a typed [`DecisionEvent`] to one OCSF event; time comes in from the
//! caller (milliseconds since the Unix epoch) so the mapping stays pure and snapshot-testable.

use serde_json::{json, Value};

use crate::ledger::DecisionEvent;
use crate::policy::Verdict;

/// OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";
/// API Activity.
const CLASS_UID: u64 = 6003;
/// Application Activity.
const CATEGORY_UID: u64 = 6;
/// Activity "Other": a tool call is not one of Create/Read/Update/Delete as far as the
/// decision record knows.
const ACTIVITY_OTHER: u64 = 99;

/// Where a decision record sits in the ledger, for the `unmapped.warden` object.
#[derive(Debug, Clone, Copy)]
pub struct LedgerPosition<'a> {
    pub seq: u64,
    /// Leaf hash (hex) of the record.
    pub hash: &'a str,
    /// The record's RFC 3339 time, as stored.
    pub ts: &'a str,
}

/// One OCSF API Activity event for a decision record.
pub fn decision_event(d: &DecisionEvent, time_ms: i64, at: LedgerPosition<'_>) -> Value {
    let (action_id, action, disposition_id, disposition, severity_id, severity) =
        match d.decision.decision {
            // Run under a human approval: allowed, and the disposition says who let it.
            Verdict::Allow if d.approval_id.is_some() => {
                (1, "Allowed", 8, "Approved", 1, "Informational")
            }
            Verdict::Allow => (1, "Allowed", 1, "Allowed", 1, "Informational"),
            Verdict::Deny => (2, "Denied", 2, "Blocked", 3, "Medium"),
            // Held for a human: not run yet, neither allowed nor refused.
            Verdict::ApprovalRequired => (0, "Unknown", 14, "Delayed", 2, "Low"),
        };
    let (service, operation) = match d.qualified_tool.as_deref().and_then(|q| q.split_once('/')) {
        Some((server, tool)) => (server.to_string(), tool.to_string()),
        None => (String::new(), d.tool.clone()),
    };
    let mut api = json!({
        "operation": operation,
        "service": { "name": service },
    });
    if let Some(obj) = api.as_object_mut() {
        // The MCP JSON-RPC id when the call came over MCP, else the decision id.
        let uid = d
            .mcp_request_id
            .as_ref()
            .map_or_else(|| d.decision_id.clone(), Value::to_string);
        obj.insert("request".into(), json!({ "uid": uid }));
    }
    let mut event = json!({
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "activity_id": ACTIVITY_OTHER,
        "activity_name": "tool call",
        "type_uid": CLASS_UID * 100 + ACTIVITY_OTHER,
        "type_name": "API Activity: Other",
        "time": time_ms,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": if d.decision.decision == Verdict::Deny { 2 } else { 1 },
        "status": if d.decision.decision == Verdict::Deny { "Failure" } else { "Success" },
        "message": d.decision.reasons.first().cloned().unwrap_or_default(),
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["security_control"],
            "product": { "name": "Warden", "vendor_name": "Warden" },
            "uid": d.decision_id,
            "correlation_uid": d.correlation_id,
            "original_time": at.ts,
            "log_name": "ledger",
        },
        "actor": {
            "user": { "uid": d.agent, "name": d.agent, "type": "Other", "type_id": 99 },
            "session": d.session.as_ref().map(|s| json!({ "uid": s })),
        },
        "api": api,
        "src_endpoint": { "name": d.source, "svc_name": d.source },
        "action_id": action_id,
        "action": action,
        "disposition_id": disposition_id,
        "disposition": disposition,
        "policy": {
            "uid": d.decision.policy_version,
            "name": d.decision.policies.join(", "),
            "desc": d.decision.reasons.join("; "),
        },
        "authorizations": [{
            "decision": d.decision.decision.as_str(),
            "policy": { "uid": d.decision.policy_version, "name": d.decision.policies.join(", ") },
        }],
        "unmapped": {
            "warden": {
                "seq": at.seq,
                "leaf_hash": at.hash,
                "tier": d.decision.tier.to_string(),
                "environment": d.environment,
                "violations": d.decision.violations.len(),
                "approval_id": d.approval_id,
            }
        },
    });
    drop_nulls(&mut event);
    event
}

/// Remove members whose value is null: OCSF leaves an attribute out when it has no value
/// (a session, a correlation id, an approval the call did not have).
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for v in map.values_mut() {
                drop_nulls(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
