//! The before-state of a held call: what a snapshot read returned, and its diff against the
//! proposed call's arguments.

use serde::Serialize;
use serde_json::Value;

/// The before-state in a snapshot read's `tools/call` result: its `structuredContent` when
/// present, else the JSON of its one text item (or the text itself), else its content list.
/// A result marked `isError` is an `Err` with its text (at most 500 characters).
pub fn snapshot_state(result: &Value) -> Result<Value, String> {
    let content = result.get("content").and_then(Value::as_array);
    let texts: Vec<&str> = content
        .map(|c| {
            c.iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|i| i.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = texts.join(" ");
        let text: String = text.chars().take(500).collect();
        return Err(if text.is_empty() {
            "the read tool reported an error".to_string()
        } else {
            format!("the read tool reported an error: {text}")
        });
    }
    if let Some(s) = result.get("structuredContent").filter(|v| !v.is_null()) {
        return Ok(s.clone());
    }
    match (texts.as_slice(), content) {
        ([one], Some(c)) if c.len() == 1 => Ok(serde_json::from_str::<Value>(one)
            .unwrap_or_else(|_| Value::String((*one).to_string()))),
        (_, Some(c)) => Ok(Value::Array(c.clone())),
        (_, None) => Err("the read returned no content".to_string()),
    }
}

/// How one field compares between the before-state and the proposed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldChange {
    /// In both, with different values: the call would change it.
    Changes,
    /// In both, equal.
    Same,
    /// In the before-state only: the call does not name it.
    Kept,
    /// In the call only.
    New,
}

/// One row of the before-state → proposed change diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffRow {
    pub field: String,
    pub before: Option<Value>,
    pub proposed: Option<Value>,
    pub change: FieldChange,
}

/// Compare a before-state with a call's arguments field by field (top-level members matched
/// by name): the before-state's fields in order, then the arguments it does not have. Empty
/// when either is not a JSON object.
pub fn state_diff(before: &Value, proposed: &Value) -> Vec<DiffRow> {
    let (Some(b), Some(p)) = (before.as_object(), proposed.as_object()) else {
        return Vec::new();
    };
    let mut rows = Vec::with_capacity(b.len() + p.len());
    for (k, bv) in b {
        let (proposed, change) = match p.get(k) {
            Some(pv) if pv == bv => (Some(pv.clone()), FieldChange::Same),
            Some(pv) => (Some(pv.clone()), FieldChange::Changes),
            None => (None, FieldChange::Kept),
        };
        rows.push(DiffRow {
            field: k.clone(),
            before: Some(bv.clone()),
            proposed,
            change,
        });
    }
    for (k, pv) in p {
        if !b.contains_key(k) {
            rows.push(DiffRow {
                field: k.clone(),
                before: None,
                proposed: Some(pv.clone()),
                change: FieldChange::New,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn before_state_from_a_read_result() {
        let structured =
            json!({"content": [{"type": "text", "text": "x"}], "structuredContent": {"a": 1}});
        assert_eq!(snapshot_state(&structured).unwrap(), json!({"a": 1}));
        let text_json = json!({"content": [{"type": "text", "text": "{\"balance\": 3}"}]});
        assert_eq!(snapshot_state(&text_json).unwrap(), json!({"balance": 3}));
        let plain = json!({"content": [{"type": "text", "text": "open"}]});
        assert_eq!(snapshot_state(&plain).unwrap(), json!("open"));
        let err = json!({"content": [{"type": "text", "text": "no such order"}], "isError": true});
        assert_eq!(
            snapshot_state(&err).unwrap_err(),
            "the read tool reported an error: no such order"
        );
        assert!(snapshot_state(&json!({})).is_err());
    }

    #[test]
    fn diff_of_before_state_and_call() {
        let rows = state_diff(
            &json!({"id": "O-1", "status": "paid", "refunded": 0}),
            &json!({"id": "O-1", "status": "refunded", "amount": 5}),
        );
        let got: Vec<(&str, FieldChange)> =
            rows.iter().map(|r| (r.field.as_str(), r.change)).collect();
        assert_eq!(
            got,
            vec![
                ("id", FieldChange::Same),
                ("status", FieldChange::Changes),
                ("refunded", FieldChange::Kept),
                ("amount", FieldChange::New),
            ]
        );
        assert!(state_diff(&json!("text"), &json!({"a": 1})).is_empty());
    }
}
