//! Session state for prompt-injection containment: what a session has read, how tainted it is,
//! and where the values of a proposed call's arguments came from. Pure: the gateway owns one
//! [`SessionState`] per (agent, session), feeds it tool outputs and user requests, and passes it
//! to [`crate::CompiledPolicy::decide_with`].
//!
//! - **Taint**: `clean` → `untrusted` (an output whose tool is labelled `untrusted` was read) →
//!   `suspicious` (the injection detector fired on such an output). It never goes down within
//!   a session.
//! - **Read classes**: the data classes of every tool output read (`[[tools]] data_classes`).
//! - **Untrusted text**: the text of untrusted outputs, kept (bounded, newest wins) for
//!   argument provenance, with the tool and ledger sequence number it came from.
//! - **Trusted text**: the user's own requests declared by the caller, and trusted outputs. A
//!   value found there is vouched for even if untrusted text repeats it.

use std::collections::{BTreeSet, VecDeque};

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::injection::{Detector, Finding};
use crate::scope_card::{Egress, Trust};

/// Most bytes of untrusted text kept per session (older outputs are dropped first).
pub const MAX_UNTRUSTED_BYTES: usize = 256 * 1024;
/// Most bytes of trusted text (user requests, trusted outputs) kept per session.
pub const MAX_TRUSTED_BYTES: usize = 128 * 1024;
/// Most untrusted sources and findings remembered per session.
const MAX_SOURCES: usize = 64;

/// How far a session's inputs can be trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Taint {
    /// Only trusted inputs so far.
    #[default]
    Clean,
    /// Read untrusted content.
    Untrusted,
    /// Read untrusted content in which the injection detector found instructions.
    Suspicious,
}

impl Taint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clean => "clean",
            Self::Untrusted => "untrusted",
            Self::Suspicious => "suspicious",
        }
    }

    /// As a small number (0 clean, 1 untrusted, 2 suspicious), ordered like the taint, so a
    /// store can keep the greater of two with `MAX`.
    pub fn level(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::Untrusted => 1,
            Self::Suspicious => 2,
        }
    }

    /// The taint of a [`Self::level`]; an unknown level reads as suspicious (fail closed).
    pub fn from_level(level: i64) -> Self {
        match level {
            0 => Self::Clean,
            1 => Self::Untrusted,
            _ => Self::Suspicious,
        }
    }
}

/// One text a session read, as a store keeps it to rebuild the session
/// ([`SessionState::restore`]): a trusted text (the user's request, a trusted output) or an
/// untrusted output with its source and the detector's findings in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredText {
    /// `None` for trusted text; the output's source for untrusted text.
    pub source: Option<Source>,
    /// The text, lower-cased as the session keeps it.
    pub text: String,
    /// The detector's findings in it (untrusted text only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

/// An untrusted output the session read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The tool as `server/name`.
    pub tool: String,
    /// The ledger sequence number of the outcome record that carried it.
    pub seq: u64,
}

#[derive(Debug, Clone)]
struct Segment {
    source: Source,
    /// Lower-cased text.
    lower: String,
}

/// Where one argument value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgProvenance {
    /// The argument's name (for nested values, `name.path`).
    pub argument: String,
    /// The value (or the part of it) found in untrusted content.
    pub value: String,
    /// Whether `value` is the argument's whole value or a part of it (an address in a body).
    pub whole: bool,
    pub source: Source,
}

impl ArgProvenance {
    /// In words, for decision reasons.
    pub fn describe(&self) -> String {
        let shown = shorten(&self.value, 80);
        if self.whole {
            format!(
                "argument `{}` = `{shown}` came from untrusted output of `{}` (seq {}), not from the user's request",
                self.argument, self.source.tool, self.source.seq
            )
        } else {
            format!(
                "argument `{}` contains `{shown}`, which came from untrusted output of `{}` (seq {}), not from the user's request",
                self.argument, self.source.tool, self.source.seq
            )
        }
    }
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n).collect::<String>())
    } else {
        s.to_string()
    }
}

/// What reading one output did to the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputEffect {
    /// The detector's findings (untrusted outputs only).
    pub findings: Vec<Finding>,
    /// The taint before and after.
    pub taint_before: Taint,
    pub taint_after: Taint,
}

/// One session's state. Cheap to clone; bounded in size.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    taint: Taint,
    read_classes: BTreeSet<String>,
    sources: Vec<Source>,
    segments: VecDeque<Segment>,
    segment_bytes: usize,
    trusted: String,
    findings: Vec<(Source, Finding)>,
}

/// All text in a JSON value: strings and numbers, one per line (object keys are left out).
pub fn output_text(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Number(n) => {
                out.push_str(&n.to_string());
                out.push('\n');
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            Value::Bool(_) | Value::Null => {}
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out
}

fn push_bounded(buf: &mut String, text: &str, max: usize) {
    if buf.len() + text.len() + 1 > max {
        // Keep the newest: drop from the front on a char boundary.
        let excess = (buf.len() + text.len() + 1).saturating_sub(max);
        let mut cut = excess.min(buf.len());
        while cut < buf.len() && !buf.is_char_boundary(cut) {
            cut += 1;
        }
        buf.drain(..cut);
    }
    let room = max.saturating_sub(buf.len() + 1);
    let mut take = text.len().min(room);
    while take > 0 && !text.is_char_boundary(take) {
        take -= 1;
    }
    buf.push_str(text.get(..take).unwrap_or_default());
    buf.push('\n');
}

impl SessionState {
    pub fn taint(&self) -> Taint {
        self.taint
    }

    pub fn read_classes(&self) -> &BTreeSet<String> {
        &self.read_classes
    }

    /// The untrusted outputs read, oldest first (bounded).
    pub fn untrusted_sources(&self) -> &[Source] {
        &self.sources
    }

    /// The detector's findings in this session, with the output each came from (bounded).
    pub fn findings(&self) -> &[(Source, Finding)] {
        &self.findings
    }

    /// Whether any untrusted text is kept (provenance can only find something if so).
    pub fn has_untrusted_text(&self) -> bool {
        !self.segments.is_empty()
    }

    /// The caller declares the user's own request: values in it are trusted.
    pub fn declare_user_request(&mut self, text: &str) {
        push_bounded(&mut self.trusted, &text.to_lowercase(), MAX_TRUSTED_BYTES);
    }

    /// Raise the taint to at least `floor` (it never goes down).
    pub fn raise_taint(&mut self, floor: Taint) {
        self.taint = self.taint.max(floor);
    }

    /// Bytes of text kept (untrusted and trusted), for bounding caches of sessions.
    pub fn text_bytes(&self) -> usize {
        self.segment_bytes + self.trusted.len()
    }

    /// Rebuild a session from what a store kept: its taint (never lowered by what the texts
    /// say), the data classes read, and its texts oldest first. The same bounds apply as when
    /// the texts were read.
    pub fn restore(
        taint: Taint,
        read_classes: impl IntoIterator<Item = String>,
        texts: impl IntoIterator<Item = StoredText>,
    ) -> Self {
        let mut s = Self {
            taint,
            read_classes: read_classes.into_iter().collect(),
            ..Self::default()
        };
        for t in texts {
            match t.source {
                None => push_bounded(&mut s.trusted, &t.text, MAX_TRUSTED_BYTES),
                Some(source) => {
                    let taint = Self::taint_of(Trust::Untrusted, &t.findings);
                    s.push_untrusted(source, t.text, t.findings, taint);
                }
            }
        }
        s
    }

    /// Keep an untrusted text (already lower-cased) with its source and findings.
    fn push_untrusted(&mut self, source: Source, text: String, findings: Vec<Finding>, t: Taint) {
        self.taint = self.taint.max(t);
        for f in findings {
            if self.findings.len() < MAX_SOURCES {
                self.findings.push((source.clone(), f));
            }
        }
        if self.sources.len() >= MAX_SOURCES {
            self.sources.remove(0);
        }
        self.sources.push(source.clone());
        let mut lower = text;
        if lower.len() > MAX_UNTRUSTED_BYTES {
            let mut cut = MAX_UNTRUSTED_BYTES;
            while cut > 0 && !lower.is_char_boundary(cut) {
                cut -= 1;
            }
            lower.truncate(cut);
        }
        self.segment_bytes += lower.len();
        self.segments.push_back(Segment { source, lower });
        while self.segment_bytes > MAX_UNTRUSTED_BYTES {
            match self.segments.pop_front() {
                Some(s) => self.segment_bytes -= s.lower.len(),
                None => break,
            }
        }
    }

    /// A tool's output was read. `tool` is `server/name`; `seq` the ledger sequence number of
    /// the outcome record. Untrusted outputs taint the session and are scanned by `detector`.
    pub fn record_output(
        &mut self,
        tool: &str,
        trust: Trust,
        data_classes: &[String],
        output: &Value,
        seq: u64,
        detector: &Detector,
    ) -> OutputEffect {
        let text = output_text(output);
        self.record_text(tool, trust, data_classes, &text, seq, detector)
    }

    /// As [`Self::record_output`], for output already flattened to text.
    pub fn record_text(
        &mut self,
        tool: &str,
        trust: Trust,
        data_classes: &[String],
        text: &str,
        seq: u64,
        detector: &Detector,
    ) -> OutputEffect {
        let findings = match trust {
            Trust::Trusted => Vec::new(),
            Trust::Untrusted => detector.scan(text),
        };
        self.record_scanned(tool, trust, data_classes, text, seq, findings)
    }

    /// As [`Self::record_text`], with the detector's `findings` in `text` already known
    /// (ignored for trusted output).
    pub fn record_scanned(
        &mut self,
        tool: &str,
        trust: Trust,
        data_classes: &[String],
        text: &str,
        seq: u64,
        findings: Vec<Finding>,
    ) -> OutputEffect {
        let before = self.taint;
        self.read_classes.extend(data_classes.iter().cloned());
        let findings = match trust {
            Trust::Trusted => {
                push_bounded(&mut self.trusted, &text.to_lowercase(), MAX_TRUSTED_BYTES);
                Vec::new()
            }
            Trust::Untrusted => {
                let source = Source {
                    tool: tool.to_string(),
                    seq,
                };
                let t = Self::taint_of(trust, &findings);
                self.push_untrusted(source, text.to_lowercase(), findings.clone(), t);
                findings
            }
        };
        OutputEffect {
            findings,
            taint_before: before,
            taint_after: self.taint,
        }
    }

    /// The taint an output of this trust with these findings gives a session (at least).
    pub fn taint_of(trust: Trust, findings: &[Finding]) -> Taint {
        match trust {
            Trust::Trusted => Taint::Clean,
            Trust::Untrusted if findings.is_empty() => Taint::Untrusted,
            Trust::Untrusted => Taint::Suspicious,
        }
    }

    /// For each argument value of a proposed call: whether it (or an address, URL or account
    /// number inside it) appears in untrusted content this session read and not in trusted
    /// text. One entry per argument at most (the first source found, newest output first).
    pub fn provenance(&self, args: &Value) -> Vec<ArgProvenance> {
        let mut out = Vec::new();
        if self.segments.is_empty() {
            return out;
        }
        let Value::Object(obj) = args else {
            return out;
        };
        for (name, v) in obj {
            let mut leaves = Vec::new();
            leaves_of(name, v, &mut leaves);
            for (path, text) in leaves {
                if let Some(p) = self.trace(&path, &text) {
                    out.push(p);
                    break;
                }
            }
        }
        out
    }

    fn trace(&self, argument: &str, value: &str) -> Option<ArgProvenance> {
        let lower = value.trim().to_lowercase();
        let mut candidates: Vec<(String, bool)> = Vec::new();
        let numeric = !lower.is_empty()
            && lower
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-');
        let min = if numeric { 2 } else { 3 };
        if lower.chars().count() >= min && lower.len() <= 512 {
            candidates.push((lower.clone(), true));
        }
        if let Some(re) = entity_regex() {
            for m in re.find_iter(&lower) {
                let s = m.as_str().trim_end_matches(['.', ',', ';', ':']);
                if s.len() >= 5 && s != lower {
                    candidates.push((s.to_string(), false));
                }
            }
        }
        for (cand, whole) in candidates {
            if contains_word(&self.trusted, &cand) {
                continue;
            }
            if let Some(seg) = self
                .segments
                .iter()
                .rev()
                .find(|s| contains_word(&s.lower, &cand))
            {
                let shown = if whole {
                    value.trim().to_string()
                } else {
                    cand
                };
                return Some(ArgProvenance {
                    argument: argument.to_string(),
                    value: shown,
                    whole,
                    source: seg.source.clone(),
                });
            }
        }
        None
    }
}

/// E-mail addresses, URLs, and account-like tokens (letters and at least four digits).
fn entity_regex() -> Option<&'static Regex> {
    // Immutable, lazily built table: the entity regex, compiled once per process.
    static RE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"[a-z0-9][a-z0-9._%+-]*@[a-z0-9.-]+\.[a-z]{2,}|https?://[^\s<>\x22'\)\]]+|www\.[^\s<>\x22'\)\]]+|\b[a-z]{0,6}[-_]?[0-9][0-9 -]{3,}[0-9a-z]*\b",
        )
        .ok()
    })
    .as_ref()
}

fn leaves_of(path: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path.to_string(), s.clone())),
        Value::Number(n) => out.push((path.to_string(), n.to_string())),
        Value::Array(a) => a.iter().for_each(|x| leaves_of(path, x, out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| leaves_of(&format!("{path}.{k}"), x, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// `needle` occurs in `hay` not glued to letters or digits on either side.
pub(crate) fn contains_word(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut from = 0;
    while let Some(i) = hay.get(from..).and_then(|h| h.find(needle)) {
        let at = from + i;
        let end = at + needle.len();
        let before = hay.get(..at).and_then(|h| h.chars().next_back());
        let after = hay.get(end..).and_then(|h| h.chars().next());
        let edge_ok = |c: Option<char>, inner: Option<char>| !(alnum(c) && alnum(inner));
        if edge_ok(before, needle.chars().next()) && edge_ok(after, needle.chars().next_back()) {
            return true;
        }
        from = at + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Destinations in a call's arguments that are not on the tool's egress allowlist.
pub fn egress_off_list(egress: &Egress, args: &Value) -> Vec<String> {
    let mut off = Vec::new();
    for name in &egress.args {
        let mut values = Vec::new();
        match args.get(name) {
            Some(Value::String(s)) => values.push(s.clone()),
            Some(Value::Array(a)) => {
                for x in a {
                    match x {
                        Value::String(s) => values.push(s.clone()),
                        other => values.push(other.to_string()),
                    }
                }
            }
            Some(Value::Null) | None => {}
            Some(other) => values.push(other.to_string()),
        }
        for v in values {
            if !destination_allowed(&egress.allow, &v) {
                off.push(v);
            }
        }
    }
    off
}

/// Whether one destination matches an allowlist entry: `@domain` (e-mail at it or a
/// subdomain), `#channel`, a bare domain (e-mail or URL host at it or a subdomain), or an exact
/// value. Case-insensitive.
pub fn destination_allowed(allow: &[String], destination: &str) -> bool {
    let d = destination.trim().to_ascii_lowercase();
    if d.is_empty() {
        return false;
    }
    let under = |host: &str, domain: &str| {
        !domain.is_empty()
            && (host == domain || host.strip_suffix(domain).is_some_and(|p| p.ends_with('.')))
    };
    let email_domain = d
        .rsplit_once('@')
        .map(|(local, dom)| (local, dom.trim_end_matches('>')))
        .filter(|(local, dom)| !local.is_empty() && dom.contains('.'))
        .map(|(_, dom)| dom.to_string());
    let url_host = d
        .split_once("://")
        .map(|(_, rest)| rest)
        .or_else(|| d.starts_with("www.").then_some(d.as_str()))
        .map(|rest| {
            let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
            host.split(':').next().unwrap_or_default().to_string()
        });
    allow.iter().any(|a| {
        if let Some(dom) = a.strip_prefix('@') {
            email_domain.as_deref().is_some_and(|e| under(e, dom))
        } else if let Some(ch) = a.strip_prefix('#') {
            d.trim_start_matches('#') == ch
        } else if a.contains('.') && !a.contains('@') && !a.contains('/') {
            email_domain.as_deref().is_some_and(|e| under(e, a))
                || url_host.as_deref().is_some_and(|h| under(h, a))
                || (email_domain.is_none() && url_host.is_none() && under(&d, a))
        } else {
            d == *a
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_need_edges() {
        assert!(contains_word("pay 500 now", "500"));
        assert!(!contains_word("pay 1500 now", "500"));
        assert!(contains_word("to mark@evil.com.", "mark@evil.com"));
        assert!(!contains_word("amark@evil.com", "mark@evil.com"));
    }

    #[test]
    fn allowlist_forms() {
        let allow: Vec<String> = ["@acme.com", "#support", "partner.org", "alice"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        assert!(destination_allowed(&allow, "bob@acme.com"));
        assert!(destination_allowed(&allow, "bob@eu.acme.com"));
        assert!(!destination_allowed(&allow, "bob@acme.com.evil.net"));
        assert!(!destination_allowed(&allow, "bob@notacme.com"));
        assert!(destination_allowed(&allow, "#support"));
        assert!(destination_allowed(&allow, "support"));
        assert!(!destination_allowed(&allow, "#random"));
        assert!(destination_allowed(&allow, "https://api.partner.org/hook"));
        assert!(!destination_allowed(
            &allow,
            "https://partner.org.evil.net/"
        ));
        assert!(!destination_allowed(
            &allow,
            "https://partner.org@evil.net/x"
        ));
        assert!(destination_allowed(&allow, "x@partner.org"));
        assert!(destination_allowed(&allow, "Alice"));
        assert!(!destination_allowed(&allow, "alice2"));
        assert!(!destination_allowed(&allow, ""));
    }

    #[test]
    fn output_text_flattens_strings_and_numbers() {
        let t = output_text(&json!({"a": "x", "b": [1, {"c": "y"}], "d": true}));
        assert_eq!(t, "x\n1\ny\n");
    }
}
