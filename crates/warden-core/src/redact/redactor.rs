//! [`Redactor`]: the engine keyed with an HMAC key, over text, JSON and ledger events.

use std::borrow::Cow;
use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::engine::{engine, Engine};
use super::{is_marker, is_secret_field, RedactError, RedactionStats, Withholding};
use super::{ENCODED_SECRET_KIND, MARKER_PREFIX, MAX_PASSES, SECRET_FIELD_KIND};
use crate::ledger::LedgerEvent;

/// Redacts text and JSON with a keyed HMAC for correlation. Cheap to clone.
#[derive(Clone)]
pub struct Redactor {
    mac: Hmac<Sha256>,
    engine: &'static Engine,
    withholding: std::sync::Arc<Withholding>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").finish_non_exhaustive()
    }
}

impl Redactor {
    /// A redactor keyed with `key` (at least 16 bytes; Warden generates 32).
    pub fn new(key: &[u8]) -> Result<Self, RedactError> {
        if key.len() < 16 {
            return Err(RedactError::ShortKey);
        }
        let engine = engine()?;
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| RedactError::ShortKey)?;
        Ok(Self {
            mac,
            engine,
            withholding: std::sync::Arc::new(Withholding::default()),
        })
    }

    /// Also withhold what the scope cards say not to store.
    pub fn with_withholding(mut self, withholding: Withholding) -> Self {
        self.withholding = std::sync::Arc::new(withholding);
        self
    }

    /// What replaces a withheld value: the reason and the HMAC of its canonical JSON, so
    /// equal payloads still correlate.
    fn withheld(&self, why: &str, value: &Value, stats: &mut RedactionStats) -> Value {
        let canonical = crate::canonical::canonical_json(value).unwrap_or_default();
        stats.add("withheld");
        serde_json::json!({
            "withheld": why,
            "hmac8": self.token(canonical.as_bytes()),
        })
    }

    /// Replace a non-null `value` by [`Self::withheld`] when there is a reason to withhold it,
    /// else redact it.
    fn withhold_or_redact(&self, why: Option<&str>, value: &mut Value, stats: &mut RedactionStats) {
        match why {
            Some(why) if !value.is_null() => *value = self.withheld(why, value, stats),
            _ => self.redact_json(value, stats),
        }
    }

    /// First 8 hex digits of HMAC-SHA256(key, value).
    pub fn token(&self, value: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(value);
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(8);
        for b in tag.iter().take(4) {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    fn marker(&self, out: &mut String, kind: &str, value: &[u8]) {
        out.push_str(MARKER_PREFIX);
        out.push_str(kind);
        out.push(':');
        out.push_str(&self.token(value));
        out.push(']');
    }

    /// Redact `text`; borrowed back unchanged when nothing was found.
    ///
    /// A marker ends in `]`, a boundary: a value glued to a redacted one (a second phone
    /// number right after a first) can stand alone only once its neighbour is a marker. So
    /// when a match touches a token byte or a refused hit lies next to it, the result is
    /// scanned again until nothing changes (at most [`MAX_PASSES`] scans), which makes
    /// redaction idempotent: stored text redacted again stays the same. Text with nothing to
    /// redact, or whose matches stand clear of their neighbours, is scanned once.
    pub fn redact_text<'a>(&self, text: &'a str, stats: &mut RedactionStats) -> Cow<'a, str> {
        let (mut out, mut again) = match self.redact_once(text, stats) {
            (Cow::Borrowed(b), _) => return Cow::Borrowed(b),
            (Cow::Owned(o), again) => (o, again),
        };
        // Scanned again only when a marker can have changed a neighbour's context.
        for _ in 1..MAX_PASSES {
            if !again {
                break;
            }
            let (next, next_again) = match self.redact_once(&out, stats) {
                (Cow::Borrowed(_), _) => break,
                (Cow::Owned(n), a) => (n, a),
            };
            out = next;
            again = next_again;
        }
        Cow::Owned(out)
    }

    /// One scan: the redacted text, and whether a second scan could find more.
    fn redact_once<'a>(&self, text: &'a str, stats: &mut RedactionStats) -> (Cow<'a, str>, bool) {
        let (found, again) = self.engine.scan_in_context(text);
        let mut out = String::new();
        let mut at = 0;
        let bytes = text.as_bytes();
        for c in found {
            let Some(kind) = self.engine.rules.get(c.rule).map(|r| r.def.kind) else {
                continue;
            };
            if kind.is_empty() {
                continue;
            }
            if out.capacity() == 0 {
                out.reserve(text.len() + 32);
            }
            out.push_str(text.get(at..c.start).unwrap_or_default());
            self.marker(
                &mut out,
                kind,
                bytes.get(c.start..c.end).unwrap_or_default(),
            );
            stats.add(kind);
            at = c.end;
        }
        if at == 0 {
            return (Cow::Borrowed(text), false);
        }
        out.push_str(text.get(at..).unwrap_or_default());
        (Cow::Owned(out), again)
    }

    /// Redact a string in place.
    pub fn redact_string(&self, s: &mut String, stats: &mut RedactionStats) {
        if let Cow::Owned(new) = self.redact_text(s, stats) {
            *s = new;
        }
    }

    /// Redact a tool name: each `/`-separated part on its own (`server/name`, MCP methods), so
    /// a token after a `/` is not taken for the tail of a longer base64 string.
    pub fn redact_name(&self, s: &mut String, stats: &mut RedactionStats) {
        if !s.contains('/') {
            return self.redact_string(s, stats);
        }
        let parts: Vec<String> = s
            .split('/')
            .map(|part| self.redact_text(part, stats).into_owned())
            .collect();
        *s = parts.join("/");
    }

    /// Redact every string in a JSON value, member names included, and the whole value of
    /// members named like secrets.
    pub fn redact_json(&self, value: &mut Value, stats: &mut RedactionStats) {
        match value {
            Value::String(s) => self.redact_string(s, stats),
            Value::Array(items) => {
                for v in items {
                    self.redact_json(v, stats);
                }
            }
            Value::Object(map) => {
                let needs_rename = map.keys().any(|k| !self.engine.scan(k).is_empty());
                if needs_rename {
                    let old = std::mem::take(map);
                    for (k, v) in old {
                        let k = self.redact_text(&k, stats).into_owned();
                        map.insert(k, v);
                    }
                }
                for (k, v) in map.iter_mut() {
                    if is_secret_field(k) {
                        self.redact_field(v, stats);
                    } else if matches!(k.as_str(), "data" | "binaryData") && v.is_object() {
                        self.redact_encoded_members(v, stats);
                    } else {
                        self.redact_json(v, stats);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A Kubernetes Secret's `data`: each base64 value decoded and scanned with its key, as
    /// in text (the walk sees each string alone, without the key that gives it context).
    fn redact_encoded_members(&self, value: &mut Value, stats: &mut RedactionStats) {
        let Value::Object(map) = value else {
            return self.redact_json(value, stats);
        };
        for (k, v) in map.iter_mut() {
            match v {
                Value::String(s) if self.engine.decodes_to_secret(k, s) => {
                    let mut out = String::with_capacity(40);
                    self.marker(&mut out, ENCODED_SECRET_KIND, s.as_bytes());
                    stats.add(ENCODED_SECRET_KIND);
                    *s = out;
                }
                _ => self.redact_json(v, stats),
            }
        }
    }

    /// The value of a secret-named member: every string and number is redacted whole.
    fn redact_field(&self, value: &mut Value, stats: &mut RedactionStats) {
        match value {
            Value::String(s) => {
                if s.is_empty() || is_marker(s) {
                    return;
                }
                let mut out = String::with_capacity(32);
                self.marker(&mut out, SECRET_FIELD_KIND, s.as_bytes());
                stats.add(SECRET_FIELD_KIND);
                *s = out;
            }
            Value::Number(n) => {
                let mut out = String::with_capacity(32);
                self.marker(&mut out, SECRET_FIELD_KIND, n.to_string().as_bytes());
                stats.add(SECRET_FIELD_KIND);
                *value = Value::String(out);
            }
            Value::Array(items) => {
                for v in items {
                    self.redact_field(v, stats);
                }
            }
            Value::Object(_) => self.redact_json(value, stats),
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// Redact everything a ledger event carries that came from an agent or a tool: call
    /// arguments, outputs and errors, sessions and correlation ids, and the reasons and
    /// violations (they quote argument values).
    pub fn redact_event(&self, event: &mut LedgerEvent, stats: &mut RedactionStats) {
        match event {
            LedgerEvent::Decision(d) => {
                let (args, _) = self
                    .withholding
                    .flags(&d.agent, &[Some(&d.tool), d.qualified_tool.as_deref()]);
                self.withhold_or_redact(args, &mut d.arguments, stats);
                // The tool name and `on_behalf_of` are the caller's text too (a tool named
                // `AKIA…` must not land in the file as it was sent), as are argument names.
                self.redact_name(&mut d.tool, stats);
                for s in [&mut d.qualified_tool, &mut d.decision.tool]
                    .into_iter()
                    .flatten()
                {
                    self.redact_name(s, stats);
                }
                for s in [
                    &mut d.session,
                    &mut d.correlation_id,
                    &mut d.user_request,
                    &mut d.on_behalf_of,
                ]
                .into_iter()
                .flatten()
                {
                    self.redact_string(s, stats);
                }
                if let Some(id) = d.mcp_request_id.as_mut() {
                    self.redact_json(id, stats);
                }
                for r in &mut d.decision.reasons {
                    self.redact_string(r, stats);
                }
                for v in &mut d.decision.violations {
                    self.redact_string(&mut v.argument, stats);
                    self.redact_string(&mut v.message, stats);
                }
            }
            LedgerEvent::Outcome(o) => {
                let (_, output) = self.withholding.flags(&o.agent, &[Some(&o.tool)]);
                self.withhold_or_redact(output, &mut o.output, stats);
                self.redact_name(&mut o.tool, stats);
                if let Some(c) = o.correlation_id.as_mut() {
                    self.redact_string(c, stats);
                }
            }
            // A read Warden ran for a held call: its arguments come from the agent, its
            // result from a tool.
            LedgerEvent::SnapshotRead(r) => {
                let (args, output) = self.withholding.flags(&r.agent, &[Some(&r.tool)]);
                self.withhold_or_redact(args, &mut r.arguments, stats);
                self.withhold_or_redact(output, &mut r.before_state, stats);
                if let Some(e) = r.error.as_mut() {
                    self.redact_string(e, stats);
                }
            }
            // Excerpts quote untrusted tool output.
            LedgerEvent::InjectionDetected(i) => {
                for f in &mut i.findings {
                    self.redact_string(&mut f.excerpt, stats);
                }
                if let Some(s) = i.session.as_mut() {
                    self.redact_string(s, stats);
                }
            }
            // Written by Warden itself from ids and hashes, never from agent or tool content.
            LedgerEvent::ToolPinned(_)
            | LedgerEvent::ToolChanged(_)
            | LedgerEvent::ToolApproved(_)
            | LedgerEvent::Identity(_)
            | LedgerEvent::AccessCertified(_)
            // Signed votes carry the argument hash, not the arguments; changing a byte would
            // break the approver's signature.
            | LedgerEvent::ApprovalVote(_)
            | LedgerEvent::ApprovalExpired(_)
            | LedgerEvent::ApprovalFatigue(_)
            // Key ids, counts and a subject's HMAC reference only.
            | LedgerEvent::RetentionPurged(_)
            | LedgerEvent::SubjectErased(_)
            | LedgerEvent::ReviewOverdue(_) => {}
            LedgerEvent::CallReviewed(r) => self.redact_string(&mut r.note, stats),
        }
    }
}
