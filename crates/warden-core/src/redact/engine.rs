//! The compiled rule set and the scan: keyword and digit windows, each rule's regex run once
//! per merged window, validators, and the choice among overlapping matches.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use super::rules::{Bound, Check, RuleDef, Trigger, RULES};
use super::{validate, RedactError, MAX_DECODED_VALUE, MAX_DECODE_DEPTH};

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
    /// (rule, fewest digits in the run that triggers it).
    digit_rules: Vec<(usize, usize)>,
    country_rules: Vec<usize>,
    /// `%` and line ends, where the URL-decoded and unwrapped views may start (one vectorised
    /// search for both bytes).
    view_bytes: Regex,
}

/// What decode-and-rescan may still spend in one top-level scan: the nesting depth reached and
/// the bytes left to decode or unwrap. A value that would go past either is redacted whole
/// (fail closed), never decoded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    depth: usize,
    bytes: usize,
}

impl Budget {
    /// For a text of `len` bytes: four times its size, and at least 256 KiB.
    fn top(len: usize) -> Self {
        Self {
            depth: 0,
            bytes: len.saturating_mul(4).max(256 * 1024),
        }
    }

    /// Take `n` bytes for a nested scan one level down, if the bounds allow it.
    fn descend(&mut self, n: usize) -> Option<Budget> {
        if self.depth + 1 >= MAX_DECODE_DEPTH || n > self.bytes {
            return None;
        }
        self.bytes -= n;
        Some(Budget {
            depth: self.depth + 1,
            bytes: self.bytes,
        })
    }

    /// Give back what a nested scan left.
    fn ascend(&mut self, child: Budget) {
        self.bytes = child.bytes;
    }
}

/// A transformed copy of part of a text (URL-decoded, or lines joined where a wrapper split
/// them) and, for each of its bytes, the original bytes it came from.
struct View {
    text: String,
    from: Vec<(usize, usize)>,
}

impl View {
    fn new() -> Self {
        Self {
            text: String::new(),
            from: Vec::new(),
        }
    }

    fn push(&mut self, c: u8, orig: (usize, usize)) {
        self.text.push(char::from(c));
        self.from.push(orig);
    }

    /// The original span of the view's bytes `s..e`.
    fn original(&self, s: usize, e: usize) -> Option<(usize, usize)> {
        let a = self.from.get(s)?.0;
        let b = self.from.get(e.checked_sub(1)?)?.1;
        (a < b).then_some((a, b))
    }
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
                Trigger::Digits(min) => digit_rules.push((i, min)),
                Trigger::CountryDigits => country_rules.push(i),
            }
        }
        let keywords = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)?;
        let view_bytes = RegexBuilder::new(r"[%\n]")
            .unicode(false)
            .build()
            .map_err(|source| EngineError::Rule {
                index: RULES.len(),
                kind: "view_bytes",
                source,
            })?;
        Ok(Self {
            keywords,
            keyword_rules,
            rules,
            digit_rules,
            country_rules,
            view_bytes,
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
        let mut budget = Budget::top(text.len());
        let (kept, refused) = self.scan_with(text, &mut budget);
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

    /// One scan within `budget`: the accepted matches (sorted, disjoint) and the refused
    /// hits. Matches found in a URL-decoded or unwrapped view of the text count as matches
    /// of the original bytes they came from.
    pub(super) fn scan_with(
        &self,
        text: &str,
        budget: &mut Budget,
    ) -> (Vec<Candidate>, Vec<(usize, usize)>) {
        let bytes = text.as_bytes();
        let mut windows = Windows {
            open: vec![None; self.rules.len()],
            found: Vec::new(),
            refused: Vec::new(),
            budget: *budget,
        };
        let mut hits = Vec::new();
        for m in self.keywords.find_overlapping_iter(bytes) {
            hits.push(m.start());
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
        *budget = windows.budget;
        let mut found = windows.found;
        let mut refused = windows.refused;
        let (mut percents, mut newlines) = (Vec::new(), Vec::new());
        if budget.depth + 1 < MAX_DECODE_DEPTH {
            for m in self.view_bytes.find_iter(bytes) {
                if bytes.get(m.start()) == Some(&b'%') {
                    percents.push(m.start());
                } else {
                    newlines.push(m.start());
                }
            }
        }
        let mut views = Vec::new();
        percent_views(bytes, &percents, &mut views);
        wrap_views(bytes, &newlines, &hits, &mut views);
        for view in views {
            let Some(mut child) = budget.descend(view.text.len()) else {
                break;
            };
            let (inner, _) = self.scan_with(&view.text, &mut child);
            budget.ascend(child);
            for c in inner {
                if self
                    .rules
                    .get(c.rule)
                    .is_some_and(|r| r.def.kind.is_empty())
                {
                    continue;
                }
                if let Some((start, end)) = view.original(c.start, c.end) {
                    found.push(Candidate {
                        start,
                        end,
                        rule: c.rule,
                    });
                }
            }
        }
        let kept = resolve(&self.rules, found, &mut refused);
        (kept, refused)
    }

    /// Open windows for the digit-shaped rules: runs of digits joined by single separators
    /// (space, `-`, `.`, `/`, parentheses), each rule from its fewest digits, and two upper-case
    /// letters before two digits.
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
            // Two capitals then two digits, glued (`GB82`, `AB123456C`) or spaced (`AB 12`).
            let country = if start >= 2
                && at(start - 2).is_ascii_uppercase()
                && at(start - 1).is_ascii_uppercase()
            {
                Some(start - 2)
            } else if start >= 3
                && at(start - 1) == b' '
                && at(start - 2).is_ascii_uppercase()
                && at(start - 3).is_ascii_uppercase()
            {
                Some(start - 3)
            } else {
                None
            };
            if let Some(cs) = country.filter(|_| at(start + 1).is_ascii_digit()) {
                for &r in &self.country_rules {
                    if let Some(rule) = self.rules.get(r) {
                        let we = (start + rule.def.fwd).min(n);
                        windows.push(self, text, r, cs, we);
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
                } else if matches!(b, b' ' | b'-' | b'.' | b'/' | b'(' | b')') && j < n {
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
            for &(r, min) in &self.digit_rules {
                if digits >= min {
                    let Some(rule) = self.rules.get(r) else {
                        continue;
                    };
                    if !validate::digit_run_may_fit(rule.def.check, bytes, start, last_end, digits)
                    {
                        continue;
                    }
                    {
                        let ws = start.saturating_sub(rule.def.back);
                        let we = last_end.saturating_add(rule.def.fwd).min(n);
                        windows.push(self, text, r, ws, we);
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
        budget: &mut Budget,
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
            let before = span.0.checked_sub(1).and_then(|k| bytes.get(k)).copied();
            let after = bytes.get(span.1).copied();
            let glued = |b: Option<u8>| match rule.def.bound {
                Bound::Free => false,
                Bound::Token => b.is_some_and(validate::is_token_byte),
                Bound::Glued => {
                    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
                }
            };
            if glued(before) || glued(after) {
                refused.push(whole_span);
                continue;
            }
            let checked = if rule.def.check == Check::Decode {
                // A value that runs past the window is longer than any decoded: whole.
                let b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
                if bytes.get(span.1).is_some_and(b64) {
                    let rest = bytes.get(span.1..).unwrap_or_default();
                    Some((span.0, span.1 + rest.iter().take_while(|b| b64(b)).count()))
                } else {
                    self.decode_and_scan(rule, window, whole.start(), budget)
                        .then_some(span)
                }
            } else {
                validate::check(rule.def.check, bytes, span, whole_span)
            };
            let Some((mut s, mut e)) = checked else {
                refused.push(whole_span);
                continue;
            };
            if bytes
                .get(s..e)
                .is_some_and(validate::is_documentation_example)
            {
                refused.push(whole_span);
                continue;
            }
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

    /// Whether `value`, a base64 string under `key` (a JSON member of a Secret's `data`),
    /// decodes to something the engine redacts; the same rule, bounds and fail-closed cases
    /// as in text.
    pub(super) fn decodes_to_secret(&self, key: &str, value: &str) -> bool {
        let b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
        if value.len() < 4
            || !value.bytes().all(b64)
            || key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return false;
        }
        let text = format!("data:\n  {key}: {value}\n");
        self.scan(&text).iter().any(|c| {
            self.rules
                .get(c.rule)
                .is_some_and(|r| r.def.check == Check::Decode)
        })
    }

    /// A base64 value under a key (group `k`, value group `s`): decoded and scanned again as
    /// `key: decoded`. True (redact the value) when the decoded text holds something to
    /// redact, or when it is too large or too deep to decode within the budget (fail closed).
    /// False when it is not base64 of text.
    fn decode_and_scan(
        &self,
        rule: &CompiledRule,
        window: &[u8],
        at: usize,
        budget: &mut Budget,
    ) -> bool {
        let Some(caps) = rule.re.captures_at(window, at) else {
            return false;
        };
        let (Some(key), Some(value)) = (caps.name("k"), caps.name("s")) else {
            return false;
        };
        let value = value.as_bytes();
        if value.len() > MAX_DECODED_VALUE {
            return true;
        }
        let Some(decoded) = validate::base64_decode(value) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        if decoded.is_empty()
            || decoded
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return false;
        }
        let mut inner = String::with_capacity(key.len() + 2 + decoded.len());
        inner.push_str(&String::from_utf8_lossy(key.as_bytes()));
        inner.push_str(": ");
        inner.push_str(&decoded);
        let Some(mut child) = budget.descend(inner.len()) else {
            return true;
        };
        let (found, _) = self.scan_with(&inner, &mut child);
        budget.ascend(child);
        found.iter().any(|c| {
            self.rules
                .get(c.rule)
                .is_some_and(|r| !r.def.kind.is_empty())
        })
    }
}

/// Per-rule open windows, merged while they overlap.
struct Windows {
    open: Vec<Option<(usize, usize)>>,
    found: Vec<Candidate>,
    /// Regex hits a check refused.
    refused: Vec<(usize, usize)>,
    budget: Budget,
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
                engine.run_rule(
                    text,
                    r,
                    (a, b),
                    &mut self.found,
                    &mut self.refused,
                    &mut self.budget,
                );
            }
            None => *slot = Some((ws, we)),
        }
    }

    fn flush_all(&mut self, engine: &Engine, text: &str) {
        for r in 0..self.open.len() {
            if let Some(Some((a, b))) = self.open.get_mut(r).map(Option::take) {
                engine.run_rule(
                    text,
                    r,
                    (a, b),
                    &mut self.found,
                    &mut self.refused,
                    &mut self.budget,
                );
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

/// A byte of a URL that a percent-decoded view may span (printable ASCII, no space, quote or
/// angle bracket).
fn is_url_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\')
}

/// The shortest line taken to be cut by a wrapper.
const MIN_WRAP_WIDTH: usize = 60;

/// Longest stretch a view reaches either side of what opened it.
const VIEW_REACH: usize = 2048;

/// URL-encoded stretches (`jane%40example.com`, `https%3A%2F%2Fhooks.slack.com%2F…`), decoded:
/// each `%XX` of printable ASCII becomes its character (RFC 3986 §2.1); other bytes stay.
fn percent_views(bytes: &[u8], percents: &[usize], out: &mut Vec<View>) {
    let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
    let escape = |i: usize| -> Option<u8> {
        if bytes.get(i) != Some(&b'%') {
            return None;
        }
        let v = hex(bytes.get(i + 1))? * 16 + hex(bytes.get(i + 2))?;
        let v = u8::try_from(v).ok()?;
        (0x20..0x7f).contains(&v).then_some(v)
    };
    let mut covered = 0;
    for &i in percents {
        if i < covered || escape(i).is_none() {
            continue;
        }
        let mut rs = i;
        while rs > covered
            && i - rs < VIEW_REACH
            && bytes.get(rs - 1).copied().is_some_and(is_url_byte)
        {
            rs -= 1;
        }
        let mut re = i;
        while re < bytes.len()
            && re - i < VIEW_REACH
            && bytes.get(re).copied().is_some_and(is_url_byte)
        {
            re += 1;
        }
        let mut view = View::new();
        let mut k = rs;
        while k < re {
            if let Some(v) = escape(k).filter(|_| k + 3 <= re) {
                view.push(v, (k, k + 3));
                k += 3;
            } else if let Some(&b) = bytes.get(k) {
                view.push(b, (k, k + 1));
                k += 1;
            } else {
                break;
            }
        }
        covered = re;
        out.push(view);
    }
}

/// A byte a wrapped token may hold on either side of the break.
fn is_wrap_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/' | b'=' | b'.' | b'~' | b'%')
}

/// Lines a wrapper split: a line of at least [`MIN_WRAP_WIDTH`] bytes ending in token bytes,
/// the next line (after indentation and
/// e-mail quote marks `>`) starting with more of them (a PEM body, a token wrapped at 64 or
/// 76 columns) — at least 4, or a lone fragment with a digit — where a rule keyword is on the
/// first line's end or both runs are long (16); and shell continuations (`\` at the end of a
/// line). The view joins them; each chain of
/// joined lines is one view, with the rest of the first and last lines for context.
fn wrap_views(bytes: &[u8], newlines: &[usize], hits: &[usize], out: &mut Vec<View>) {
    let n = bytes.len();
    // (cut start, cut end) of each join, in order.
    let mut joins: Vec<(usize, usize)> = Vec::new();
    for &nl in newlines {
        let mut e = nl;
        if e > 0 && bytes.get(e - 1) == Some(&b'\r') {
            e -= 1;
        }
        let continuation = e > 0 && bytes.get(e - 1) == Some(&b'\\');
        let tail_end = if continuation { e - 1 } else { e };
        let mut ts = tail_end;
        while ts > 0 && tail_end - ts < 64 && bytes.get(ts - 1).copied().is_some_and(is_wrap_byte) {
            ts -= 1;
        }
        let mut hs = nl + 1;
        if continuation {
            joins.push((tail_end, nl + 1));
            continue;
        }
        while hs < n && matches!(bytes.get(hs), Some(b' ' | b'\t' | b'>')) {
            hs += 1;
        }
        let mut he = hs;
        while he < n && he - hs < 64 && bytes.get(he).copied().is_some_and(is_wrap_byte) {
            he += 1;
        }
        let (tail, head) = (tail_end - ts, he - hs);
        // A short head counts when it is the whole next line and holds a digit (`5f9`, the
        // end of a wrapped token), not a word (`Ops`).
        let lone = head > 0
            && bytes
                .get(he..)
                .is_some_and(|r| matches!(r.first(), None | Some(b'\n' | b'\r')))
            && bytes
                .get(hs..he)
                .is_some_and(|h| h.iter().any(u8::is_ascii_digit));
        if tail == 0 || (head < 4 && !lone) {
            continue;
        }
        let line_start = bytes
            .get(..ts)
            .and_then(|b| memrchr(b'\n', b))
            .map_or(0, |p| p + 1);
        // Wrappers break at a column (64 for PEM, 76 for MIME, 72–80 for mail and terminals):
        // a shorter line ended where its writer ended it.
        if tail_end - line_start < MIN_WRAP_WIDTH {
            continue;
        }
        let from = line_start.max(ts.saturating_sub(256));
        let i = hits.partition_point(|&h| h < from);
        let keyword_near = hits.get(i).is_some_and(|&h| h < tail_end);
        if keyword_near || (tail >= 16 && (head >= 16 || lone)) {
            joins.push((tail_end, hs));
        }
    }
    let line_start = |at: usize| {
        bytes
            .get(..at)
            .and_then(|b| memrchr(b'\n', b))
            .map_or(0, |p| p + 1)
    };
    let line_end = |at: usize| {
        bytes
            .get(at..)
            .and_then(|b| memchr(b'\n', b))
            .map_or(n, |p| at + p)
    };
    let mut k = 0;
    while let Some(&(first, _)) = joins.get(k) {
        // A chain: each join's continuation line ends in the next join.
        let mut last = k;
        while let (Some(&(_, cont)), Some(&(next_cut, _))) = (joins.get(last), joins.get(last + 1))
        {
            if line_end(cont) >= next_cut && next_cut - cont <= VIEW_REACH * 4 {
                last += 1;
            } else {
                break;
            }
        }
        let mut start = line_start(first).max(first.saturating_sub(VIEW_REACH / 4));
        while bytes.get(start).is_some_and(|&b| (0x80..0xc0).contains(&b)) {
            start += 1;
        }
        let Some(&(_, last_cont)) = joins.get(last) else {
            break;
        };
        let mut end = line_end(last_cont).min(last_cont + VIEW_REACH / 4);
        while end > last_cont && bytes.get(end).is_some_and(|&b| (0x80..0xc0).contains(&b)) {
            end -= 1;
        }
        let mut view = View::new();
        let mut at = start;
        for &(cut, resume) in joins.get(k..=last).unwrap_or_default() {
            view.from.extend((at..cut).map(|p| (p, p + 1)));
            at = resume;
        }
        view.from.extend((at..end).map(|p| (p, p + 1)));
        // Cut only at ASCII bytes and character boundaries, so the copy is UTF-8.
        if let Ok(t) = rebuild_utf8(bytes, &view) {
            view.text = t;
            out.push(view);
        }
        k = last + 1;
    }
}

/// The view's text from the original bytes it maps to (one byte each), as UTF-8.
fn rebuild_utf8(bytes: &[u8], view: &View) -> Result<String, std::string::FromUtf8Error> {
    let v: Vec<u8> = view
        .from
        .iter()
        .filter_map(|&(a, _)| bytes.get(a).copied())
        .collect();
    String::from_utf8(v)
}

fn memrchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().rposition(|&b| b == needle)
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
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
