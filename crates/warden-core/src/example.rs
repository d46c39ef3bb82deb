//! The example project `warden init` writes and `warden demo` runs: a read-only support-triage
//! agent and a CRM writer with a high-impact refund tool. The files live in
//! `examples/project/` at the repository root.

/// `(relative path, text)` of each file. Agent key hashes appear as `{{agent-id}}` in
/// `warden.toml`; see [`render`].
pub const FILES: &[(&str, &str)] = &[
    (
        "warden.toml",
        include_str!("../../../examples/project/warden.toml"),
    ),
    (
        "agents/support-triage.toml",
        include_str!("../../../examples/project/agents/support-triage.toml"),
    ),
    (
        "agents/crm-writer.toml",
        include_str!("../../../examples/project/agents/crm-writer.toml"),
    ),
    (
        "policies/finance.cedar",
        include_str!("../../../examples/project/policies/finance.cedar"),
    ),
    (
        "tests/smoke.toml",
        include_str!("../../../examples/project/tests/smoke.toml"),
    ),
];

/// The agents of the example project.
pub const AGENTS: &[&str] = &["support-triage", "crm-writer"];

/// The example files with each agent's key hash (hex SHA-256) filled in.
pub fn render(key_hash_of: impl Fn(&str) -> String) -> Vec<(String, String)> {
    FILES
        .iter()
        .map(|(path, text)| {
            let mut text = text.to_string();
            for agent in AGENTS {
                text = text.replace(&format!("{{{{{agent}}}}}"), &key_hash_of(agent));
            }
            (path.to_string(), text)
        })
        .collect()
}

/// The example as project sources, with the given key hashes.
pub fn sources(key_hash_of: impl Fn(&str) -> String) -> crate::project::ProjectSources {
    let files = render(key_hash_of);
    let get = |prefix: &str| {
        files
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(p, t)| crate::SourceFile {
                path: p.clone(),
                text: t.clone(),
            })
            .collect::<Vec<_>>()
    };
    crate::project::ProjectSources {
        config: get("warden.toml")
            .into_iter()
            .next()
            .unwrap_or(crate::SourceFile {
                path: "warden.toml".into(),
                text: String::new(),
            }),
        cards: get("agents/"),
        policies: get("policies/"),
    }
}
