//! `[retention]`: how long payloads are kept, per data class, and which classes are never
//! stored.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::FileError;
use crate::scope_card::is_safe_name;

/// `[retention]`: payloads (arguments, outputs, the user's request) are sealed with a key per
/// (day, agent, data classes) and the key is destroyed when the day is past retention. The
/// records themselves — who, what, when, the decision, the hashes — are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Retention of payloads no class or card shortens: `7d`, `30d`, `12w`, `1y`, `forever`.
    #[serde(default = "default_retention")]
    pub default: Spanned<String>,
    /// Per data class (as scope cards name them): a class's retention caps that of every
    /// record carrying it.
    #[serde(default)]
    pub classes: BTreeMap<String, Spanned<String>>,
    /// How often `warden serve` runs the retention job, in minutes (0 = never; run
    /// `warden retention run` from a scheduler instead).
    #[serde(default = "default_retention_every")]
    pub run_every_mins: u64,
    /// Data classes never stored at all: a call of a tool whose `data_classes` (or whose
    /// card's) include one keeps only an HMAC of its arguments and output.
    #[serde(default)]
    pub not_stored: Vec<Spanned<String>>,
}

impl RetentionConfig {
    /// The names in `not_stored`.
    pub fn not_stored(&self) -> Vec<String> {
        self.not_stored
            .iter()
            .map(|c| c.get_ref().clone())
            .collect()
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            default: default_retention(),
            classes: BTreeMap::new(),
            run_every_mins: default_retention_every(),
            not_stored: Vec::new(),
        }
    }
}

fn default_retention() -> Spanned<String> {
    Spanned::new(0..0, "90d".to_string())
}

fn default_retention_every() -> u64 {
    60
}

/// Retention periods must parse; `not_stored` must name data classes.
pub(super) fn check_retention(
    path: &str,
    source: &str,
    retention: &RetentionConfig,
    errors: &mut Vec<FileError>,
) {
    for (label, text) in std::iter::once(("[retention] default", &retention.default)).chain(
        retention
            .classes
            .values()
            .map(|v| ("[retention.classes]", v)),
    ) {
        if let Err(e) = parse_retention(text.get_ref()) {
            errors.push(
                FileError::at(path, source, text.span().start, format!("{label}: {e}"))
                    .with_hint("retention periods: 7d, 30d, 12w, 1y, or forever"),
            );
        }
    }
    for class in &retention.not_stored {
        if !is_safe_name(class.get_ref()) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    class.span().start,
                    format!(
                        "[retention] not_stored: `{}` is not a data class name",
                        class.get_ref()
                    ),
                )
                .with_hint("name data classes as scope cards do (`health_records`)"),
            );
        }
    }
}

/// Why a retention period does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// Not a number followed by `d`, `w` or `y`, nor `forever` (or too large).
    #[error("`{0}` is not a retention period: use e.g. 7d, 30d, 12w, 1y or forever")]
    NotAPeriod(String),
    /// Zero days.
    #[error("`{0}`: a retention period is at least 1d")]
    Zero(String),
}

/// A retention period: `7d`, `30d`, `12w`, `1y` (365 days), or `forever`. Days, at least 1.
pub fn parse_retention(text: &str) -> Result<Option<u32>, RetentionError> {
    let t = text.trim();
    if t == "forever" {
        return Ok(None);
    }
    let not_a_period = || RetentionError::NotAPeriod(text.to_string());
    let (num, unit) = t.split_at(t.len().saturating_sub(1));
    let n: u32 = num.parse().map_err(|_| not_a_period())?;
    let days = match unit {
        "d" => Some(n),
        "w" => n.checked_mul(7),
        "y" => n.checked_mul(365),
        _ => None,
    }
    .ok_or_else(not_a_period)?;
    if days == 0 {
        return Err(RetentionError::Zero(text.to_string()));
    }
    Ok(Some(days))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bad_retention_periods_are_located() {
        let toml = "[gateway]\nenvironment = \"dev\"\n[retention]\ndefault = \"90days\"\n[retention.classes]\npii = \"0d\"\n";
        let errors = crate::config::parse_config("warden.toml", toml).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{shown:?}");
        assert!(
            shown[0].starts_with("warden.toml:4:11: error: [retention] default"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("warden.toml:6:7: error: [retention.classes]"),
            "{shown:?}"
        );
        assert!(shown[1].contains("at least 1d"), "{shown:?}");
    }
}
