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
//!    once; its validator (Luhn, ISO 7064 mod-97, Verhoeff, national check digits, Shannon
//!    entropy, placeholders, documentation examples, token boundaries) accepts or rejects each
//!    match.
//! 3. Values in transformed forms are scanned again one level down: URL-encoded stretches
//!    decoded (`%40`, `%2F`), lines a wrapper split joined again (a token wrapped at 64 or 76
//!    columns, a shell `\` continuation), and base64 values decoded where the context says
//!    they hold credentials (a Kubernetes Secret's `data`; `Basic`, SMTP `AUTH PLAIN` and
//!    Docker's `"auth"` are decoded by their validators). What is found maps back to the
//!    original bytes. This is bounded: [`MAX_DECODE_DEPTH`] levels, [`MAX_DECODED_VALUE`]
//!    bytes per base64 value, four times the input in all; a base64 value past a bound is
//!    redacted whole, never decoded.
//! 4. Where accepted matches overlap, the more specific rule wins.
//!
//! Clean text therefore costs one automaton scan, one digit scan and a scan for `%` and line
//! ends. A match becomes
//! `[REDACTED:<kind>:<hmac8>]`, where `hmac8` is the first 8 hex digits of
//! HMAC-SHA256(key, value) (RFC 2104): the same value gives the same token under one key, so
//! records can be correlated, and the value cannot be recovered or confirmed without the key.
//! Markers already in the text are left as they are, so redacting twice changes nothing.
//!
//! JSON is walked value by value ([`Redactor::redact_json`]): every string (and member name)
//! goes through the text engine, and the whole value of a member named like a secret
//! (`password`, `api_key`, `client_secret`, `authorization`, …) is redacted whatever it looks
//! like.
//!
//! Where things are: `rules.rs` (the rule table), `validate.rs` (the validators),
//! `engine.rs` (the compiled rules and the scan), `redactor.rs` ([`Redactor`]: keyed markers
//! over text, JSON and ledger events), `withholding.rs` ([`Withholding`]: what is never stored).

mod engine;
mod redactor;
mod rules;
mod validate;
mod withholding;

use std::collections::BTreeMap;

use rules::{RULES, SECRET_FIELD_SUFFIXES};

pub use redactor::Redactor;
pub use withholding::Withholding;

#[cfg(test)]
use engine::{engine, Engine};

/// The kind given to values redacted because of their JSON member name.
pub const SECRET_FIELD_KIND: &str = "secret_field";

/// The kind given to base64 values whose decoded text holds something redacted.
pub const ENCODED_SECRET_KIND: &str = "encoded_secret";

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

/// Most scans of one text by [`Redactor::redact_text`].
pub const MAX_PASSES: usize = 8;

/// Decode-and-rescan nests at most this deep (the text itself is level 0): a base64 value
/// inside a decoded value inside … is decoded this many times, no more; a value that would
/// need one more level is redacted whole.
pub const MAX_DECODE_DEPTH: usize = 4;

/// Largest base64 value decoded (encoded bytes); a larger one in a decoding context is
/// redacted whole.
pub const MAX_DECODED_VALUE: usize = 16 * 1024;

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
    let engine = engine::engine()?;
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
