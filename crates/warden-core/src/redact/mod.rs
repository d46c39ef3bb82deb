//! The redaction engine: secrets and personal data out of everything Warden stores.
//!
//! One pass over the text finds where rules may apply, then only those rules run, only near
//! their triggers:
//!
//! 1. An Aho-Corasick automaton over every rule's keywords (`ghp_`, `AKIA`, `-----BEGIN`,
//!    `password`, `@`, `://`, …) reports each keyword hit; each hit opens a window for the
//!    rules that keyword belongs to. A byte scan finds runs of digits (and an upper-case
//!    country code before two digits) for the personal-data rules that have no keyword:
//!    phone numbers, card numbers, US SSNs, IBANs.
//! 2. Overlapping windows of one rule are merged and the rule's regex runs on each window
//!    once; its validator (Luhn, ISO 7064 mod-97, Shannon entropy, placeholders, token
//!    boundaries) accepts or rejects each match.
//! 3. Where accepted matches overlap, the more specific rule wins.
//!
//! Clean text therefore costs one automaton scan and one digit scan. A match becomes
//! `[REDACTED:<kind>:<hmac8>]`, where `hmac8` is the first 8 hex digits of
//! HMAC-SHA256(key, value) (RFC 2104): the same value gives the same token under one key, so
//! records can be correlated, and the value cannot be recovered or confirmed without the key.
//! Markers already in the text are left as they are, so redacting twice changes nothing.
//!
//! JSON is walked value by value ([`Redactor::redact_json`]): every string (and member name)
//! goes through the text engine, and the whole value of a member named like a secret
//! (`password`, `api_key`, `client_secret`, `authorization`, …) is redacted whatever it looks
//! like.

mod rules;
mod validate;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use hmac::{Hmac, Mac};
use regex::bytes::{Regex, RegexBuilder};
use serde_json::Value;
use sha2::Sha256;

use crate::ledger::LedgerEvent;
use rules::{RuleDef, Trigger, RULES, SECRET_FIELD_SUFFIXES};

/// The kind given to values redacted because of their JSON member name.
pub const SECRET_FIELD_KIND: &str = "secret_field";

/// The marker prefix of a redacted value.
pub const MARKER_PREFIX: &str = "[REDACTED:";

/// One value the engine would redact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Byte offsets into the text.
    pub start: usize,
    pub end: usize,
    /// The rule family, e.g. `github_token`, `email`.
    pub kind: &'static str,
}

/// Counts of redacted values per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactionStats {
    pub counts: BTreeMap<&'static str, u64>,
}

impl RedactionStats {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    fn add(&mut self, kind: &'static str) {
        *self.counts.entry(kind).or_insert(0) += 1;
    }
}

/// Every kind the engine can report, for documentation and reports.
pub fn kinds() -> Vec<&'static str> {
    let mut k: Vec<&'static str> = RULES
        .iter()
        .map(|r| r.kind)
        .filter(|k| !k.is_empty())
        .chain(std::iter::once(SECRET_FIELD_KIND))
        .collect();
    k.sort_unstable();
    k.dedup();
    k
}

/// Every rule's regex, for benchmarks that compare against running them all unfiltered.
#[doc(hidden)]
pub fn rule_patterns() -> Vec<&'static str> {
    RULES.iter().map(|r| r.pattern).collect()
}

struct CompiledRule {
    def: &'static RuleDef,
    re: Regex,
    secret_group: Option<usize>,
}

/// The compiled rule set; built once per process.
struct Engine {
    keywords: AhoCorasick,
    /// For each keyword pattern id, the rules it triggers.
    keyword_rules: Vec<Vec<usize>>,
    rules: Vec<CompiledRule>,
    digit_rules: Vec<usize>,
    country_rules: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    start: usize,
    end: usize,
    rule: usize,
}

fn fold_variants(word: &str) -> Vec<String> {
    let lower = word.to_ascii_lowercase();
    let mut capital = lower.clone();
    if let Some(first) = capital.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let upper = word.to_ascii_uppercase();
    let mut v = vec![word.to_string(), lower, capital, upper];
    v.sort();
    v.dedup();
    v
}

impl Engine {
    fn build() -> Result<Self, String> {
        let mut keyword_index: HashMap<String, usize> = HashMap::new();
        let mut keywords: Vec<String> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut rules = Vec::with_capacity(RULES.len());
        let mut digit_rules = Vec::new();
        let mut country_rules = Vec::new();
        for (i, def) in RULES.iter().enumerate() {
            let re = RegexBuilder::new(def.pattern)
                .unicode(false)
                .size_limit(8 * 1024 * 1024)
                .dfa_size_limit(16 * 1024 * 1024)
                .build()
                .map_err(|e| format!("redaction rule {i} ({}): {e}", def.kind))?;
            let secret_group = re.capture_names().position(|n| n == Some("s"));
            rules.push(CompiledRule {
                def,
                re,
                secret_group,
            });
            match def.trigger {
                Trigger::Keywords { words, fold } => {
                    for w in words {
                        let forms = if fold {
                            fold_variants(w)
                        } else {
                            vec![(*w).to_string()]
                        };
                        for f in forms {
                            let id = *keyword_index.entry(f.clone()).or_insert_with(|| {
                                keywords.push(f);
                                keyword_rules.push(Vec::new());
                                keywords.len() - 1
                            });
                            if let Some(list) = keyword_rules.get_mut(id) {
                                if !list.contains(&i) {
                                    list.push(i);
                                }
                            }
                        }
                    }
                }
                Trigger::Digits => digit_rules.push(i),
                Trigger::CountryDigits => country_rules.push(i),
            }
        }
        let keywords = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .map_err(|e| format!("redaction keywords: {e}"))?;
        Ok(Self {
            keywords,
            keyword_rules,
            rules,
            digit_rules,
            country_rules,
        })
    }

    /// Every accepted match in `text`, sorted by start, without overlaps (markers included).
    fn scan(&self, text: &str) -> Vec<Candidate> {
        self.scan_in_context(text).0
    }

    /// [`Self::scan`], and whether redacting the matches could change what a second scan of
    /// the result finds: a match touches a token byte (a marker's `[`/`]` would become its
    /// neighbour's context), or a hit that was refused lies next to a match (refused for its
    /// context, which the marker changes).
    fn scan_in_context(&self, text: &str) -> (Vec<Candidate>, bool) {
        let bytes = text.as_bytes();
        let mut windows = Windows {
            open: vec![None; self.rules.len()],
            found: Vec::new(),
            refused: Vec::new(),
        };
        for m in self.keywords.find_overlapping_iter(bytes) {
            let Some(rules) = self.keyword_rules.get(m.pattern().as_usize()) else {
                continue;
            };
            for &r in rules {
                if let Some(rule) = self.rules.get(r) {
                    let ws = m.start().saturating_sub(rule.def.back);
                    let we = m.end().saturating_add(rule.def.fwd).min(bytes.len());
                    windows.push(self, text, r, ws, we);
                }
            }
        }
        self.digit_windows(text, &mut windows);
        windows.flush_all(self, text);
        let mut refused = windows.refused;
        let kept = resolve(&self.rules, windows.found, &mut refused);
        let touches = |k: &Candidate| {
            k.start
                .checked_sub(1)
                .and_then(|i| bytes.get(i))
                .is_some_and(|&b| validate::is_token_byte(b))
                || bytes
                    .get(k.end)
                    .is_some_and(|&b| validate::is_token_byte(b))
        };
        let near = |r: &(usize, usize)| {
            // The kept matches that start before the refused hit's end (plus slack): sorted
            // and disjoint, so the last two are the only ones that can reach it. A hit inside
            // a match disappears into its marker; one that reaches past it, or starts or ends
            // within a few bytes of it, may read differently next to a marker.
            let i = kept.partition_point(|k| k.start < r.1.saturating_add(NEAR));
            kept.get(i.saturating_sub(2)..i)
                .unwrap_or_default()
                .iter()
                .any(|k| {
                    let inside = r.0 >= k.start && r.1 <= k.end;
                    !inside && k.end.saturating_add(NEAR) > r.0
                })
        };
        let sensitive = !kept.is_empty() && (kept.iter().any(touches) || refused.iter().any(near));
        (kept, sensitive)
    }

    /// Open windows for the digit-shaped rules: runs of at least 8 digits joined by single
    /// separators (space, `-`, `.`, parentheses), and two upper-case letters before two digits.
    fn digit_windows(&self, text: &str, windows: &mut Windows) {
        let bytes = text.as_bytes();
        let n = bytes.len();
        let mut i = 0;
        while i < n {
            let Some(off) = bytes
                .get(i..)
                .and_then(|rest| rest.iter().position(u8::is_ascii_digit))
            else {
                break;
            };
            let start = i + off;
            let at = |k: usize| bytes.get(k).copied().unwrap_or(0);
            if start >= 2
                && at(start - 2).is_ascii_uppercase()
                && at(start - 1).is_ascii_uppercase()
                && at(start + 1).is_ascii_digit()
            {
                for &r in &self.country_rules {
                    if let Some(rule) = self.rules.get(r) {
                        let we = (start + rule.def.fwd).min(n);
                        windows.push(self, text, r, start - 2, we);
                    }
                }
            }
            let mut j = start;
            let mut digits = 0usize;
            let mut last_end = start;
            loop {
                let b = at(j);
                if b.is_ascii_digit() {
                    digits += 1;
                    j += 1;
                    last_end = j;
                } else if matches!(b, b' ' | b'-' | b'.' | b'(' | b')') && j < n {
                    // Up to two separators in a row (`) ` in `(415) 555`).
                    let next = at(j + 1);
                    if next.is_ascii_digit() {
                        j += 1;
                    } else if matches!(next, b' ' | b'-' | b'(' | b')')
                        && at(j + 2).is_ascii_digit()
                    {
                        j += 2;
                    } else {
                        break;
                    }
                } else {
                    break;
                }
            }
            if digits >= 8 {
                for &r in &self.digit_rules {
                    if let Some(rule) = self.rules.get(r) {
                        let ws = start.saturating_sub(rule.def.back);
                        windows.push(self, text, r, ws, last_end);
                    }
                }
            }
            i = last_end.max(start + 1);
        }
    }

    /// Run one rule on one window and keep what its validator accepts.
    fn run_rule(
        &self,
        text: &str,
        r: usize,
        (ws, we): (usize, usize),
        found: &mut Vec<Candidate>,
        refused: &mut Vec<(usize, usize)>,
    ) {
        let bytes = text.as_bytes();
        let Some(rule) = self.rules.get(r) else {
            return;
        };
        let Some(window) = bytes.get(ws..we) else {
            return;
        };
        // Where this rule's previous accepted match in the window ended: a validator that
        // widens a match (an e-mail's local part cut by the window) must not reach back into
        // it, or the two overlap, the shorter is dropped, and text that a second pass would
        // redact stays in the clear (fuzz target redact_text: `a@x.com.b@y.org`).
        let mut prev_end: Option<usize> = None;
        // The fast search finds each match; capture groups (slower) run only on a match.
        for whole in rule.re.find_iter(window) {
            let part = match rule.secret_group {
                Some(g) => rule
                    .re
                    .captures_at(window, whole.start())
                    .and_then(|c| c.get(g))
                    .unwrap_or(whole),
                None => whole,
            };
            let span = (ws + part.start(), ws + part.end());
            if span.0 >= span.1 {
                continue;
            }
            let whole_span = (ws + whole.start(), ws + whole.end());
            if rule.def.bounded {
                let before = span.0.checked_sub(1).and_then(|k| bytes.get(k)).copied();
                let after = bytes.get(span.1).copied();
                if before.is_some_and(validate::is_token_byte)
                    || after.is_some_and(validate::is_token_byte)
                {
                    refused.push(whole_span);
                    continue;
                }
            }
            let Some((mut s, mut e)) = validate::check(rule.def.check, bytes, span, whole_span)
            else {
                refused.push(whole_span);
                continue;
            };
            if let Some(p) = prev_end {
                s = s.max(p);
            }
            if s >= e {
                continue;
            }
            // Redact whole characters.
            while s > 0 && !text.is_char_boundary(s) {
                s -= 1;
            }
            while e < bytes.len() && !text.is_char_boundary(e) {
                e += 1;
            }
            prev_end = Some(e);
            found.push(Candidate {
                start: s,
                end: e,
                rule: r,
            });
        }
    }
}

/// Most scans of one text by [`Redactor::redact_text`].
pub const MAX_PASSES: usize = 8;

/// Per-rule open windows, merged while they overlap.
struct Windows {
    open: Vec<Option<(usize, usize)>>,
    found: Vec<Candidate>,
    /// Regex hits a check refused.
    refused: Vec<(usize, usize)>,
}

/// How close (in bytes) a refused hit must be to a match for the match's marker to count as
/// changing its context.
const NEAR: usize = 8;

impl Windows {
    fn push(&mut self, engine: &Engine, text: &str, r: usize, ws: usize, we: usize) {
        let Some(slot) = self.open.get_mut(r) else {
            return;
        };
        match *slot {
            Some((a, b)) if ws <= b => *slot = Some((a.min(ws), b.max(we))),
            Some((a, b)) => {
                *slot = Some((ws, we));
                engine.run_rule(text, r, (a, b), &mut self.found, &mut self.refused);
            }
            None => *slot = Some((ws, we)),
        }
    }

    fn flush_all(&mut self, engine: &Engine, text: &str) {
        for r in 0..self.open.len() {
            if let Some(Some((a, b))) = self.open.get_mut(r).map(Option::take) {
                engine.run_rule(text, r, (a, b), &mut self.found, &mut self.refused);
            }
        }
    }
}

/// Keep the best of overlapping matches: higher priority, then longer, then earlier.
fn resolve(
    rules: &[CompiledRule],
    mut found: Vec<Candidate>,
    dropped: &mut Vec<(usize, usize)>,
) -> Vec<Candidate> {
    if found.len() <= 1 {
        return found;
    }
    let prio = |c: &Candidate| rules.get(c.rule).map_or(0, |r| r.def.priority);
    found.sort_by(|a, b| {
        prio(b)
            .cmp(&prio(a))
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: BTreeMap<usize, Candidate> = BTreeMap::new();
    for c in found {
        let overlaps = kept
            .range(..c.end)
            .next_back()
            .is_some_and(|(_, k)| k.end > c.start);
        if overlaps {
            dropped.push((c.start, c.end));
        } else {
            kept.insert(c.start, c);
        }
    }
    kept.into_values().collect()
}

fn engine() -> Option<&'static Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE.get_or_init(Engine::build).as_ref().ok()
}

/// Why the redaction engine could not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedactError {
    #[error("the redaction rules did not compile: {0}")]
    Rules(String),
    #[error("the redaction key must be at least 16 bytes")]
    ShortKey,
}

/// Find what the engine would redact in `text`, without a key.
pub fn find(text: &str) -> Result<Vec<Finding>, RedactError> {
    let engine = engine().ok_or_else(build_error)?;
    Ok(engine
        .scan(text)
        .into_iter()
        .filter_map(|c| {
            let kind = engine.rules.get(c.rule)?.def.kind;
            (!kind.is_empty()).then_some(Finding {
                start: c.start,
                end: c.end,
                kind,
            })
        })
        .collect())
}

fn build_error() -> RedactError {
    static ENGINE_ERR: OnceLock<String> = OnceLock::new();
    RedactError::Rules(
        ENGINE_ERR
            .get_or_init(|| Engine::build().err().unwrap_or_default())
            .clone(),
    )
}

/// What is not stored at all: per (agent, tool) — the tool by its name and by `server/name` —
/// why its arguments and why its output are withheld, if they are.
#[derive(Debug, Clone, Default)]
pub struct Withholding {
    /// (agent, tool) → why its arguments and its output are withheld.
    tools: HashMap<(String, String), Withheld>,
}

/// Why a tool's arguments, and why its output, are not stored (`None`: stored, redacted).
type Withheld = (Option<Arc<str>>, Option<Arc<str>>);

impl Withholding {
    /// From the cards' `store_arguments = false` / `store_output = false` grants, and from
    /// data classes that are never stored (`[retention] not_stored`): a call of a tool whose
    /// `data_classes`, or whose card's, include one keeps neither arguments nor output.
    pub fn from_cards<'a>(
        cards: impl IntoIterator<Item = &'a crate::ScopeCard>,
        not_stored: &[String],
    ) -> Self {
        let mut tools = HashMap::new();
        for card in cards {
            for t in &card.tools {
                let class = t
                    .data_classes
                    .iter()
                    .chain(&card.data_classes)
                    .find(|c| not_stored.contains(c))
                    .map(|c| -> Arc<str> {
                        format!("data class `{c}` is not stored ([retention] not_stored)").into()
                    });
                let args = (!t.store_arguments)
                    .then(|| Arc::from("store_arguments = false in the scope card"))
                    .or_else(|| class.clone());
                let output = (!t.store_output)
                    .then(|| Arc::from("store_output = false in the scope card"))
                    .or(class);
                if args.is_some() || output.is_some() {
                    let flags = (args, output);
                    tools.insert((card.id.clone(), t.name.clone()), flags.clone());
                    tools.insert((card.id.clone(), t.qualified().to_string()), flags);
                }
            }
        }
        Self { tools }
    }

    fn flags(&self, agent: &str, tools: &[Option<&str>]) -> (Option<&str>, Option<&str>) {
        if self.tools.is_empty() {
            return (None, None);
        }
        tools
            .iter()
            .flatten()
            .find_map(|t| self.tools.get(&(agent.to_string(), (*t).to_string())))
            .map_or((None, None), |(a, o)| (a.as_deref(), o.as_deref()))
    }
}

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
        let engine = engine().ok_or_else(build_error)?;
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
        let canonical = crate::ledger::canonical_json(value).unwrap_or_default();
        stats.add("withheld");
        serde_json::json!({
            "withheld": why,
            "hmac8": self.token(canonical.as_bytes()),
        })
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
                    } else {
                        self.redact_json(v, stats);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
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
                if let (Some(why), false) = (args, d.arguments.is_null()) {
                    d.arguments = self.withheld(why, &d.arguments, stats);
                } else {
                    self.redact_json(&mut d.arguments, stats);
                }
                for s in [&mut d.session, &mut d.correlation_id, &mut d.user_request]
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
                    self.redact_string(&mut v.message, stats);
                }
            }
            LedgerEvent::Outcome(o) => {
                let (_, output) = self.withholding.flags(&o.agent, &[Some(&o.tool)]);
                if let (Some(why), false) = (output, o.output.is_null()) {
                    o.output = self.withheld(why, &o.output, stats);
                } else {
                    self.redact_json(&mut o.output, stats);
                }
                if let Some(c) = o.correlation_id.as_mut() {
                    self.redact_string(c, stats);
                }
            }
            // A read Warden ran for a held call: its arguments come from the agent, its
            // result from a tool.
            LedgerEvent::SnapshotRead(r) => {
                let (args, output) = self.withholding.flags(&r.agent, &[Some(&r.tool)]);
                if let (Some(why), false) = (args, r.arguments.is_null()) {
                    r.arguments = self.withheld(why, &r.arguments, stats);
                } else {
                    self.redact_json(&mut r.arguments, stats);
                }
                if let (Some(why), false) = (output, r.before_state.is_null()) {
                    r.before_state = self.withheld(why, &r.before_state, stats);
                } else {
                    self.redact_json(&mut r.before_state, stats);
                }
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

fn is_marker(s: &str) -> bool {
    s.starts_with(MARKER_PREFIX) && s.ends_with(']') && !s.contains(' ')
}

/// Whether a JSON member name says its value is a secret (`password`, `db_password`,
/// `apiKey`, `Authorization`, `client-secret`, …).
pub fn is_secret_field(name: &str) -> bool {
    if name.len() > 64 {
        return false;
    }
    let norm: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_FIELD_SUFFIXES.iter().any(|s| norm.ends_with(s))
}

#[cfg(test)]
mod tests;
