//! [`compile`]: a project's parsed parts in, a [`CompiledPolicy`] out, one named step after
//! another. Each step reports every problem it finds; the next step runs only when there were
//! none.

use std::collections::HashMap;

use cedar_policy::Authorizer;
use sha2::{Digest, Sha256};

use super::cards::{check_cards, CheckedCards};
use super::generate::generated_policies;
use super::index::{build_entities, build_index};
use super::policy_set::parse_policies;
use super::schema::build_schema;
use super::{CompiledPolicy, SourceFile};
use crate::config::WardenConfig;
use crate::diagnostic::FileError;
use crate::injection::Detector;
use crate::scope_card::ScopeCard;

/// Compile a project from its parsed parts. `cards` pairs each card with its source, for
/// located errors.
pub fn compile(
    config_path: &str,
    config_text: &str,
    config: &WardenConfig,
    cards: Vec<(ScopeCard, String)>,
    policies: &[SourceFile],
) -> Result<CompiledPolicy, Vec<FileError>> {
    let environment = config.gateway.environment;
    let mut policy_files: Vec<&SourceFile> = policies.iter().collect();
    policy_files.sort_by(|a, b| a.path.cmp(&b.path));
    let version = policy_version(config_path, config_text, &cards, &policy_files);

    let CheckedCards {
        by_id,
        actions,
        mut warnings,
    } = check_cards(config_path, config_text, config, cards)?;
    let (schema_text, schema) = build_schema(config_path, &actions)?;
    let generated = generated_policies(&by_id);
    let generated_text = generated.join("\n");
    let parsed = parse_policies(generated, &policy_files)?;
    parsed.validate(&schema, &mut warnings)?;
    let entities = build_entities(config_path, config, &by_id, &schema)?;
    let index = build_index(&parsed.all, &by_id, environment)?;
    let detectors = by_id
        .values()
        .map(|card| {
            let names: Vec<String> = card.tools.iter().map(|t| t.name.clone()).collect();
            (card.id.clone(), Detector::new(&names))
        })
        .collect::<HashMap<_, _>>();

    Ok(CompiledPolicy {
        detectors,
        default_detector: Detector::default(),
        version,
        environment,
        cards: by_id,
        schema_text,
        generated_text,
        warnings,
        schema,
        all: parsed.all,
        index,
        entities,
        meta: parsed.meta,
        authorizer: Authorizer::new(),
    })
}

/// The policy version: SHA-256 (hex) over every input, in a fixed order — `warden.toml`, the
/// cards by path, the policy files (`sorted_policies`, by path) — each as its path and text,
/// length-prefixed.
fn policy_version(
    config_path: &str,
    config_text: &str,
    cards: &[(ScopeCard, String)],
    sorted_policies: &[&SourceFile],
) -> String {
    let mut hasher = Sha256::new();
    let mut hash_file = |path: &str, text: &str| {
        hasher.update((path.len() as u64).to_be_bytes());
        hasher.update(path.as_bytes());
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    };
    hash_file(config_path, config_text);
    let mut sorted_cards: Vec<&(ScopeCard, String)> = cards.iter().collect();
    sorted_cards.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    for (card, text) in &sorted_cards {
        hash_file(&card.path, text);
    }
    for p in sorted_policies {
        hash_file(&p.path, &p.text);
    }
    hex::encode(hasher.finalize())
}
