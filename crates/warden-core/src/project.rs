//! A project — `warden.toml`, `agents/*.toml`, `policies/*.cedar` — from its files' text.

use crate::config::{parse_config, WardenConfig};
use crate::diagnostic::FileErrors;
use crate::policy::{compile, CompiledPolicy, SourceFile};
use crate::scope_card::parse_scope_card;

/// The files of a project, already read.
#[derive(Debug, Clone)]
pub struct ProjectSources {
    pub config: SourceFile,
    pub cards: Vec<SourceFile>,
    pub policies: Vec<SourceFile>,
}

/// A loaded project: its settings and its compiled policy.
#[derive(Debug)]
pub struct Project {
    pub config: WardenConfig,
    pub policy: CompiledPolicy,
}

/// Parse, validate and compile a project. Reports every problem found, each located.
pub fn load_project(sources: &ProjectSources) -> Result<Project, FileErrors> {
    let mut errors = Vec::new();
    let config = match parse_config(&sources.config.path, &sources.config.text) {
        Ok(c) => Some(c),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    };
    let mut cards = Vec::new();
    for f in &sources.cards {
        match parse_scope_card(&f.path, &f.text) {
            Ok(card) => cards.push((card, f.text.clone())),
            Err(mut e) => errors.append(&mut e),
        }
    }
    let Some(config) = config else {
        return Err(FileErrors(errors));
    };
    if !errors.is_empty() {
        return Err(FileErrors(errors));
    }
    let policy = compile(
        &sources.config.path,
        &sources.config.text,
        &config,
        cards,
        &sources.policies,
    )
    .map_err(FileErrors)?;
    Ok(Project { config, policy })
}
