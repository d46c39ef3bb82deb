//! `[regions.NAME]`: data residency, one store and one checkpoint key per region, and the
//! selection of the region a process serves (`--region`).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{Durability, WardenConfig};
use crate::diagnostic::FileError;
use crate::scope_card::is_safe_name;

/// `[regions.NAME]`: the store of one region and the key that signs its checkpoints. Each
/// region is its own log (its own chain, checkpoints, payload keys and approvals).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// The region's store, `sqlite://PATH` (relative to the project directory).
    pub url: Spanned<String>,
    /// Default: `[store] durability`.
    pub durability: Option<Durability>,
    /// The region's checkpoint signing key. Default: `.warden/ledger-<region>.key`.
    pub key_file: Option<String>,
    /// The region's log name (checkpoint origin), used when its key is generated. Default:
    /// `[ledger] origin` + `/<region>`, or a random name.
    pub origin: Option<String>,
    /// Where the region's checkpoints are also written. Default: none (the home store's
    /// witnesses are not shared: two logs must not overwrite each other's checkpoints).
    #[serde(default)]
    pub witnesses: Vec<crate::ledger_config::WitnessConfig>,
}

impl WardenConfig {
    /// Serve region `name`: its store and checkpoint key replace `[store]` and `[ledger]`'s.
    /// Errors name the configured regions.
    pub fn select_region(&mut self, name: &str) -> Result<(), String> {
        let Some(region) = self.regions.get(name).map(|r| r.get_ref().clone()) else {
            let known: Vec<&str> = self.regions.keys().map(String::as_str).collect();
            return Err(if known.is_empty() {
                format!("--region `{name}`: warden.toml declares no [regions]")
            } else {
                let near = crate::diagnostic::closest(name, known.iter().copied())
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                format!(
                    "--region `{name}` is not declared in warden.toml{near}; regions: {}",
                    known.join(", ")
                )
            });
        };
        self.store.url = region.url.into_inner();
        if let Some(d) = region.durability {
            self.store.durability = d;
        }
        self.ledger.key_file = region
            .key_file
            .unwrap_or_else(|| format!(".warden/ledger-{name}.key"));
        self.ledger.origin = region
            .origin
            .or_else(|| self.ledger.origin.as_ref().map(|o| format!("{o}/{name}")));
        self.ledger.witnesses = region.witnesses;
        self.region = Some(name.to_string());
        Ok(())
    }

    /// Every store this project writes to: the home store (`None`) and each region's.
    pub fn store_regions(&self) -> Vec<Option<String>> {
        std::iter::once(None)
            .chain(self.regions.keys().cloned().map(Some))
            .collect()
    }
}

/// Region names are safe names; each region's store and key are its own (two regions, or a
/// region and the home store, sharing a database or a key would mix their logs).
pub(super) fn check_regions(
    path: &str,
    source: &str,
    cfg: &WardenConfig,
    errors: &mut Vec<FileError>,
) {
    let mut urls: BTreeMap<String, String> = BTreeMap::new();
    urls.insert(cfg.store.url.clone(), "[store]".to_string());
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    keys.insert(cfg.ledger.key_file.clone(), "[ledger]".to_string());
    for (name, region) in &cfg.regions {
        let at = region.span().start;
        let r = region.get_ref();
        if !is_safe_name(name) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    at,
                    format!("region name `{name}` is not valid"),
                )
                .with_hint("use letters, digits, `-`, `_` and `.` only (`eu`, `us-east`)"),
            );
        }
        let url = r.url.get_ref();
        if !url.starts_with("sqlite://") || url.len() == "sqlite://".len() {
            errors.push(
                FileError::at(
                    path,
                    source,
                    r.url.span().start,
                    format!("[regions.{name}] url `{url}` is not a `sqlite://PATH` store"),
                )
                .with_hint(
                    "each region needs its own store, e.g. \"sqlite://.warden/eu/ledger.db\"",
                ),
            );
        } else if let Some(other) = urls.insert(url.clone(), format!("[regions.{name}]")) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    r.url.span().start,
                    format!("[regions.{name}] url `{url}` is also {other}'s store"),
                )
                .with_hint("a region's records must not land in another region's store: give each its own url"),
            );
        }
        let key = r
            .key_file
            .clone()
            .unwrap_or_else(|| format!(".warden/ledger-{name}.key"));
        if let Some(other) = keys.insert(key.clone(), format!("[regions.{name}]")) {
            errors.push(
                FileError::at(
                    path,
                    source,
                    at,
                    format!("[regions.{name}] key_file `{key}` is also {other}'s key"),
                )
                .with_hint("each region is its own log with its own checkpoint key"),
            );
        }
        if let Some(o) = r
            .origin
            .as_deref()
            .filter(|o| !crate::ledger_config::origin_ok(o))
        {
            errors.push(FileError::at(
                path,
                source,
                at,
                format!("[regions.{name}] origin `{o}` may not be empty or hold spaces or `+`"),
            ));
        }
        for (i, w) in r.witnesses.iter().enumerate() {
            for problem in crate::ledger_config::witness_problems(w) {
                errors.push(FileError::at(
                    path,
                    source,
                    at,
                    format!("[regions.{name}] witness number {} {problem}", i + 1),
                ));
            }
        }
    }
}
