//! The compiled rule set and the scan: keyword and digit windows, each rule's regex run once
//! per merged window, validators, and the choice among overlapping matches.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use super::rules::{RuleDef, Trigger, RULES};
use super::{validate, RedactError};

/// Why the rule set did not compile (a bug in `rules.rs`; the tests catch it).
#[derive(Debug, thiserror::Error)]
pub(super) enum EngineError {
    #[error("redaction rule {index} ({kind}): {source}")]
    Rule {
        index: usize,
        kind: &'static str,
        source: regex::Error,
    },
    #[error("redaction keywords: {0}")]
    Keywords(#[from] aho_corasick::BuildError),
}

pub(super) struct CompiledRule {
    pub(super) def: &'static RuleDef,
    re: Regex,
    secret_group: Option<usize>,
}

/// The compiled rule set; built once per process.
pub(super) struct Engine {
    keywords: AhoCorasick,
    /// For each keyword pattern id, the rules it triggers.
    keyword_rules: Vec<Vec<usize>>,
    pub(super) rules: Vec<CompiledRule>,
    digit_rules: Vec<usize>,
    country_rules: Vec<usize>,
}

/// An accepted match: its byte range and the rule (index into [`Engine::rules`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) rule: usize,
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
    pub(super) fn build() -> Result<Self, EngineError> {
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
                .map_err(|source| EngineError::Rule {
                    index: i,
                    kind: def.kind,
                    source,
                })?;
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
            .build(&keywords)?;
        Ok(Self {
            keywords,
            keyword_rules,
            rules,
            digit_rules,
            country_rules,
        })
    }

    /// Every accepted match in `text`, sorted by start, without overlaps (markers included).
    pub(super) fn scan(&self, text: &str) -> Vec<Candidate> {
        self.scan_in_context(text).0
    }

    /// [`Self::scan`], and whether redacting the matches could change what a second scan of
    /// the result finds: a match touches a token byte (a marker's `[`/`]` would become its
    /// neighbour's context), or a hit that was refused lies next to a match (refused for its
    /// context, which the marker changes).
    pub(super) fn scan_in_context(&self, text: &str) -> (Vec<Candidate>, bool) {
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

/// The engine, built on first use.
pub(super) fn engine() -> Result<&'static Engine, RedactError> {
    // Immutable, lazily built table: the compiled rules and keyword automaton, once per process.
    static ENGINE: OnceLock<Result<Engine, RedactError>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Engine::build().map_err(|e| RedactError::Rules(e.to_string())))
        .as_ref()
        .map_err(Clone::clone)
}
