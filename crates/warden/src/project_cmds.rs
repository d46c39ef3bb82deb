//! `warden init`, `check`, `decide` and `test`: commands over a project's files.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use rand::RngCore as _;
use serde::Deserialize;
use warden_core::diagnostic::from_toml_error;
use warden_core::{example, CallRequest, Tier, Verdict};

use crate::context::Context;
use crate::table;

/// A fresh random agent key: `wk_` and 32 random bytes in hex.
pub fn new_agent_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("wk_{}", hex::encode(bytes))
}

/// Write the example project into `dir` with fresh keys; returns `(agent, key)` pairs.
pub fn write_example(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    if dir.join("warden.toml").exists() {
        bail!(
            "{} already holds a warden.toml; refusing to overwrite it",
            dir.display()
        );
    }
    let keys: Vec<(String, String)> = example::AGENTS
        .iter()
        .map(|a| (a.to_string(), new_agent_key()))
        .collect();
    let hash_of = |agent: &str| {
        keys.iter()
            .find(|(a, _)| a == agent)
            .map(|(_, k)| {
                warden_gateway::hash_key(k)
                    .trim_start_matches("sha256:")
                    .to_string()
            })
            .unwrap_or_default()
    };
    for (rel, text) in example::render(hash_of) {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let keys_path = dir.join("agent-keys.txt");
    let mut f = open_private(&keys_path)?;
    writeln!(
        f,
        "# Agent keys for the decision API (Authorization: Bearer <key>). Keep secret."
    )?;
    writeln!(f, "# warden.toml holds only their SHA-256 hashes.")?;
    for (agent, key) in &keys {
        writeln!(f, "{agent}={key}")?;
    }
    fs::write(
        dir.join(".gitignore"),
        "agent-keys.txt\nredaction.key\nmaster.key\n.warden/\n*.db\n*.db-wal\n*.db-shm\n",
    )?;
    Ok(keys)
}

/// Create a file only its owner may read (mode 0600), refusing to overwrite one.
pub fn open_private(path: &Path) -> anyhow::Result<fs::File> {
    warden_gateway::project_store::create_private_file(path)
        .with_context(|| format!("creating {}", path.display()))
}

pub fn init(dir: &Path) -> anyhow::Result<ExitCode> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_example(dir)?;
    println!("Created a Warden project in {}:", dir.display());
    for (rel, _) in example::FILES {
        println!("  {rel}");
    }
    println!("  agent-keys.txt      (the agents' keys, mode 0600; warden.toml keeps only hashes)");
    println!();
    println!("Next:");
    println!(
        "  warden check -p {}        validate cards and policies",
        dir.display()
    );
    println!(
        "  warden test -p {}         run the policy scenarios in tests/",
        dir.display()
    );
    println!(
        "  warden serve -p {}        start the gateway on 127.0.0.1:8787",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn check(ctx: &Context, schema: bool, policies: bool) -> anyhow::Result<ExitCode> {
    let dir = ctx.dir();
    let project = match ctx.load() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let p = &project.policy;
    if schema {
        print!("{}", p.schema_text);
        return Ok(ExitCode::SUCCESS);
    }
    if policies {
        print!("{}", p.generated_text);
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for card in p.cards.values() {
        for t in &card.tools {
            rows.push(vec![
                card.id.clone(),
                t.qualified().to_string(),
                format!("{:?}", t.access).to_lowercase(),
                format!("{:?}", t.impact).to_lowercase(),
                t.approval.to_string(),
                t.args.keys().cloned().collect::<Vec<_>>().join(", "),
            ]);
        }
    }
    println!(
        "{}",
        table::render(
            &["agent", "tool", "access", "impact", "tier", "arguments"],
            &rows,
            &[20, 28, 6, 6, 10, 40]
        )
    );
    println!(
        "ok: {} agents, {} tools granted, {} Cedar policies (strict validation passed)",
        p.cards.len(),
        rows.len(),
        p.policy_count()
    );
    println!(
        "environment: {}   policy version: {}",
        p.environment, p.version
    );
    if !project.config.regions.is_empty() {
        // Which store keeps each agent's records (data residency).
        let mut by_store: std::collections::BTreeMap<String, Vec<&str>> = project
            .config
            .store_regions()
            .into_iter()
            .map(|r| (crate::region::describe(r.as_deref()), Vec::new()))
            .collect();
        for card in p.cards.values() {
            by_store
                .entry(crate::region::describe(card.region.as_deref()))
                .or_default()
                .push(&card.id);
        }
        for (store, agents) in by_store {
            let list = if agents.is_empty() {
                "no agents".to_string()
            } else {
                agents.join(", ")
            };
            println!("records of {store}: {list}");
        }
    }
    for w in &p.warnings {
        println!("warning: {w}");
    }
    if project.config.gateway.tls_enabled().is_some() {
        if let Err(code) = crate::serve::tls_config(dir, &project.config) {
            return Ok(code);
        }
        println!("tls: certificate and key load");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn decide(
    ctx: &Context,
    agent: &str,
    tool: &str,
    args: &str,
    session: Option<&str>,
    correlation_id: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let project = match ctx.load() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let args: serde_json::Value = serde_json::from_str(args)
        .context("--args must be a JSON object, e.g. '{\"ticket_id\":\"T-1001\"}'")?;
    let d = project.policy.decide(&CallRequest {
        agent,
        tool,
        args: &args,
        session,
        correlation_id,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print!("{}", table::explain(&d));
        println!("(dry run: nothing was run or recorded)");
    }
    Ok(ExitCode::SUCCESS)
}

/// One scenario step in `tests/*.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    agent: String,
    tool: String,
    #[serde(default)]
    args: toml::Table,
    session: Option<String>,
    /// The user's own request, declared trusted (as the decision API's `user_request`).
    user_request: Option<String>,
    expect: Verdict,
    tier: Option<Tier>,
    /// The tool's output when the call is allowed: it feeds the session state of later cases.
    output: Option<toml::Value>,
    /// The session's taint after this case's output (`clean`/`untrusted`/`suspicious`).
    expect_taint: Option<warden_core::Taint>,
    /// Arguments expected to be traced to untrusted content.
    expect_untrusted_args: Option<Vec<String>>,
    /// Text one of the decision's reasons must contain.
    reason_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

struct CaseResult {
    file: String,
    name: String,
    failure: Option<String>,
}

fn scenario_files(dir: &Path, paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let roots: Vec<PathBuf> = if paths.is_empty() {
        vec![dir.join("tests")]
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for root in roots {
        if root.is_dir() {
            let mut found: Vec<PathBuf> = fs::read_dir(&root)
                .with_context(|| format!("listing {}", root.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        } else if root.is_file() {
            files.push(root);
        } else {
            bail!("{}: no such scenario file or directory", root.display());
        }
    }
    Ok(files)
}

pub fn test(ctx: &Context, paths: &[PathBuf], junit: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = ctx.dir();
    let project = match ctx.load() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let mut results = Vec::new();
    let mut bad_files = false;
    for file in scenario_files(dir, paths)? {
        let shown = file.display().to_string();
        let text = fs::read_to_string(&file).with_context(|| format!("reading {shown}"))?;
        let parsed: ScenarioFile = match toml::from_str(&text) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}", from_toml_error(&shown, &text, &e));
                bad_files = true;
                continue;
            }
        };
        // Session state per (agent, session), fresh for every file.
        let mut sessions = crate::taint_cmds::ScenarioSessions::default();
        for (step, case) in parsed.cases.into_iter().enumerate() {
            let args = serde_json::to_value(&case.args)?;
            let state = sessions.get(&case.agent, case.session.as_deref());
            if let Some(text) = &case.user_request {
                state.declare_user_request(text);
            }
            let d = project.policy.decide_with(
                &CallRequest {
                    agent: &case.agent,
                    tool: &case.tool,
                    args: &args,
                    session: case.session.as_deref(),
                    correlation_id: None,
                },
                Some(state),
            );
            let mut failure = crate::taint_cmds::check_case_extras(
                &project.policy,
                state,
                &case.agent,
                &d,
                step as u64 + 1,
                case.output.as_ref(),
                case.expect_taint,
                case.expect_untrusted_args.as_deref(),
                case.reason_contains.as_deref(),
            )?;
            if failure.is_some() && d.decision == case.expect {
                // An extra expectation failed; report it below.
            } else if d.decision != case.expect {
                failure = Some(format!(
                    "expected {}, got {}: {}",
                    case.expect.as_str(),
                    d.decision.as_str(),
                    d.reasons.join("; ")
                ));
            } else if let Some(t) = case.tier {
                if t != d.tier {
                    failure = Some(format!("expected tier {t}, got {}", d.tier));
                }
            }
            println!(
                "{} {} :: {}{}",
                if failure.is_none() { "PASS" } else { "FAIL" },
                shown,
                case.name,
                failure
                    .as_ref()
                    .map(|f| format!("\n     {f}"))
                    .unwrap_or_default()
            );
            results.push(CaseResult {
                file: shown.clone(),
                name: case.name,
                failure,
            });
        }
    }
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let passed = results.len() - failed;
    if let Some(path) = junit {
        fs::write(path, junit_xml(&results))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("policy scenarios: {passed} passed, {failed} failed");
    Ok(if failed == 0 && !bad_files {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn junit_xml(results: &[CaseResult]) -> String {
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuite name=\"warden policy scenarios\" tests=\"{}\" failures=\"{failed}\">\n",
        results.len()
    ));
    for r in results {
        s.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\"",
            xml_escape(&r.file),
            xml_escape(&r.name)
        ));
        match &r.failure {
            None => s.push_str("/>\n"),
            Some(f) => s.push_str(&format!(
                ">\n    <failure message=\"{}\"/>\n  </testcase>\n",
                xml_escape(f)
            )),
        }
    }
    s.push_str("</testsuite>\n");
    s
}
