//! `[ledger]` in `warden.toml`: signed checkpoints of the ledger and where they are published.

use serde::Deserialize;

use crate::diagnostic::FileError;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Sign a checkpoint after this many new records...
    #[serde(default = "default_every_records")]
    pub checkpoint_every_records: u64,
    /// ... or after this many seconds when any record is new.
    #[serde(default = "default_every_secs")]
    pub checkpoint_every_secs: u64,
    /// The Ed25519 ledger signing key (C2SP signed-note format), relative to the project
    /// directory; generated with mode 0600 on first start when missing.
    #[serde(default = "default_key_file")]
    pub key_file: String,
    /// The log's name (checkpoint origin line and key name) used when the key is generated;
    /// a unique name such as `acme.example/warden/prod`. Default: `warden-ledger-<random>`.
    pub origin: Option<String>,
    /// Where every checkpoint is also written, so a rewrite of the store cannot rewrite them.
    #[serde(default)]
    pub witnesses: Vec<WitnessConfig>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            checkpoint_every_records: default_every_records(),
            checkpoint_every_secs: default_every_secs(),
            key_file: default_key_file(),
            origin: None,
            witnesses: Vec::new(),
        }
    }
}

fn default_every_records() -> u64 {
    1000
}
fn default_every_secs() -> u64 {
    10
}
fn default_key_file() -> String {
    ".warden/ledger.key".to_string()
}

/// One witness: exactly one of `file`, `dir`, `url`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// A file replaced by each new checkpoint (the latest one).
    pub file: Option<String>,
    /// A directory that gets one file per checkpoint (`<tree size>.checkpoint`).
    pub dir: Option<String>,
    /// An HTTP(S) endpoint each checkpoint is POSTed to (`text/plain`).
    pub url: Option<String>,
}

/// Checks beyond the types; errors name the setting.
pub(crate) fn check(path: &str, source: &str, cfg: &LedgerConfig) -> Vec<FileError> {
    let mut errors = Vec::new();
    // Point at the section (or the witness) so the error reads `file:line:col`: the offsets of
    // lines that open a table with this header (comments are skipped).
    let headers = |header: &'static str| {
        let mut at = 0usize;
        source.split_inclusive('\n').filter_map(move |line| {
            let start = at;
            at += line.len();
            let trimmed = line.trim_start();
            trimmed
                .starts_with(header)
                .then_some(start + (line.len() - trimmed.len()))
        })
    };
    let section = headers("[ledger]").next().unwrap_or(0);
    let witness_at = |i: usize| headers("[[ledger.witnesses]]").nth(i).unwrap_or(section);
    if cfg.checkpoint_every_records == 0 {
        errors.push(
            FileError::at(
                path,
                source,
                section,
                "[ledger] checkpoint_every_records must be at least 1",
            )
            .with_hint("the default is 1000"),
        );
    }
    if cfg.checkpoint_every_secs == 0 {
        errors.push(
            FileError::at(
                path,
                source,
                section,
                "[ledger] checkpoint_every_secs must be at least 1",
            )
            .with_hint("the default is 10"),
        );
    }
    if let Some(o) = &cfg.origin {
        if !origin_ok(o) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    section,
                    format!("[ledger] origin `{o}` may not be empty or hold spaces or `+`"),
                )
                .with_hint("use a unique name such as `acme.example/warden/prod`"),
            );
        }
    }
    for (i, w) in cfg.witnesses.iter().enumerate() {
        for problem in witness_problems(w) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    witness_at(i),
                    format!("[[ledger.witnesses]] number {} {problem}", i + 1),
                )
                .with_hint("file = \"witness/latest.checkpoint\", dir = \"witness/\", or url = \"https://...\""),
            );
        }
    }
    errors
}

/// Whether a log name can be a checkpoint origin line (and a signed-note key name).
pub(crate) fn origin_ok(origin: &str) -> bool {
    !origin.is_empty() && !origin.chars().any(|c| c.is_whitespace() || c == '+')
}

/// What is wrong with one witness, in words that follow its name.
pub(crate) fn witness_problems(w: &WitnessConfig) -> Vec<String> {
    let mut out = Vec::new();
    let set = [w.file.is_some(), w.dir.is_some(), w.url.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set != 1 {
        out.push("must have exactly one of `file`, `dir`, `url`".to_string());
    }
    if let Some(u) = &w.url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            out.push(format!("url `{u}` must start with http:// or https://"));
        }
    }
    out
}
