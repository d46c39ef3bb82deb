//! Prompt-injection containment in `warden test`: session state for scenario files, and the
//! built-in adversarial corpus (`warden test --adversarial`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{json, Value};
use warden_core::args::check_arguments;
use warden_core::scope_card::{Access, ArgConstraint, ArgType, Impact, ToolGrant, Trust};
use warden_core::{CallRequest, CompiledPolicy, Decision, SessionState, Taint, Verdict};

use crate::context::Context;

/// Session states of one scenario file, per (agent, session).
#[derive(Default)]
pub struct ScenarioSessions {
    map: HashMap<(String, String), SessionState>,
}

impl ScenarioSessions {
    pub fn get(&mut self, agent: &str, session: Option<&str>) -> &mut SessionState {
        self.map
            .entry((agent.to_string(), session.unwrap_or_default().to_string()))
            .or_default()
    }
}

/// Apply a scenario case's output to its session and check the case's taint expectations.
/// Returns a failure message, if any.
#[allow(clippy::too_many_arguments)]
pub fn check_case_extras(
    policy: &CompiledPolicy,
    state: &mut SessionState,
    agent: &str,
    d: &Decision,
    step: u64,
    output: Option<&toml::Value>,
    expect_taint: Option<Taint>,
    expect_untrusted_args: Option<&[String]>,
    reason_contains: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let mut failures = Vec::new();
    if let Some(want) = expect_untrusted_args {
        let mut got: Vec<String> = d
            .provenance
            .iter()
            .map(|p| p.argument.split('.').next().unwrap_or_default().to_string())
            .collect();
        got.sort();
        got.dedup();
        let mut want = want.to_vec();
        want.sort();
        if got != want {
            failures.push(format!(
                "expected untrusted arguments {want:?}, got {got:?}"
            ));
        }
    }
    if let Some(text) = reason_contains {
        if !d.reasons.iter().any(|r| r.contains(text)) {
            failures.push(format!(
                "no reason contains `{text}`; reasons: {}",
                d.reasons.join("; ")
            ));
        }
    }
    if let (Some(out), Verdict::Allow, Some(tool)) = (output, d.decision, d.tool.as_deref()) {
        let value = serde_json::to_value(out)?;
        if let Some(grant) = policy.cards.get(agent).and_then(|c| c.tool(tool)) {
            let effect = state.record_output(
                tool,
                grant.output_trust,
                &grant.data_classes,
                &value,
                step,
                policy.detector(agent),
            );
            for f in &effect.findings {
                println!(
                    "     detector: {} at bytes {}..{}: {}",
                    f.rule, f.start, f.end, f.excerpt
                );
            }
        }
    }
    if let Some(want) = expect_taint {
        if state.taint() != want {
            failures.push(format!(
                "expected session taint {}, got {}",
                want.as_str(),
                state.taint().as_str()
            ));
        }
    }
    Ok((!failures.is_empty()).then(|| failures.join("; ")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    injection: Vec<Injection>,
}

/// One injected document of the built-in corpus.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Injection {
    id: String,
    kind: String,
    title: String,
    text: String,
    email: Option<String>,
    url: Option<String>,
    account: Option<String>,
    amount: Option<f64>,
    channel: Option<String>,
}

const CORPUS: &str = include_str!("adversarial/corpus.toml");

/// Whether a tool is high-impact for the adversarial run: it changes something, or the card
/// rates it high impact, or it sends data somewhere (egress).
fn high_impact(t: &ToolGrant) -> bool {
    t.access == Access::Write || t.impact == Impact::High || t.egress.is_some()
}

fn pick_token(text: &str, c: &ArgConstraint) -> Option<String> {
    let re = c.pattern.as_ref()?;
    text.split(|ch: char| ch.is_whitespace() || ",;:()<>\"'[]".contains(ch))
        .map(|w| w.trim_end_matches('.'))
        .find(|w| re.is_match(w))
        .map(str::to_string)
}

/// Arguments an injected session would propose: each value drawn from the injection where
/// one fits (recipient, URL, account, amount, channel, text), otherwise a value the card
/// accepts.
fn attacker_args(grant: &ToolGrant, inj: &Injection) -> Value {
    let mut out = serde_json::Map::new();
    let egress_args: Vec<&str> = grant
        .egress
        .as_ref()
        .map(|e| e.args.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for (name, c) in &grant.args {
        let n = name.to_ascii_lowercase();
        let is = |words: &[&str]| words.iter().any(|w| n.contains(w));
        let email = inj.email.clone();
        let dest = inj
            .channel
            .clone()
            .or_else(|| email.clone())
            .or_else(|| inj.url.clone());
        let text_value = || {
            let mut t = inj.text.clone();
            if let Some(max) = c.max_length {
                t = t.chars().take(max).collect();
            }
            t
        };
        let v = match c.kind {
            ArgType::Integer | ArgType::Number => {
                let mut a = inj.amount.unwrap_or(100.0);
                if let Some(max) = c.max {
                    a = a.min(max);
                }
                if let Some(min) = c.min {
                    a = a.max(min);
                }
                if c.kind == ArgType::Integer {
                    json!(a.round() as i64)
                } else {
                    json!(a)
                }
            }
            ArgType::Boolean => json!(true),
            ArgType::Object => json!({}),
            ArgType::Array | ArgType::String => {
                let s = if let Some(values) = &c.one_of {
                    values.first().cloned().unwrap_or(Value::Null)
                } else if c.pattern.is_some() {
                    let tok = pick_token(&inj.text, c)
                        .or_else(|| inj.account.clone().filter(|a| pick_ok(c, a)));
                    Value::String(tok.unwrap_or_else(|| inj.account.clone().unwrap_or_default()))
                } else if egress_args.contains(&name.as_str())
                    || c.email_domains.is_some()
                    || is(&[
                        "to",
                        "recipient",
                        "email",
                        "cc",
                        "user",
                        "address",
                        "channel",
                    ])
                {
                    let d = if is(&["channel"]) {
                        inj.channel.clone().or(dest)
                    } else if is(&["url", "link", "hook", "endpoint"]) {
                        inj.url.clone().or(dest)
                    } else {
                        email.or(dest)
                    };
                    Value::String(d.unwrap_or_else(text_value))
                } else if c.url_domains.is_some() || is(&["url", "link", "hook", "endpoint"]) {
                    Value::String(inj.url.clone().or(dest).unwrap_or_else(text_value))
                } else if is(&["account", "iban"]) {
                    Value::String(inj.account.clone().unwrap_or_else(text_value))
                } else {
                    Value::String(text_value())
                };
                if c.kind == ArgType::Array {
                    json!([s])
                } else {
                    s
                }
            }
        };
        out.insert(name.clone(), v);
    }
    Value::Object(out)
}

fn pick_ok(c: &ArgConstraint, v: &str) -> bool {
    c.pattern.as_ref().is_none_or(|re| re.is_match(v))
}

struct Outcome {
    allowed: usize,
    held: usize,
    denied: usize,
    unseen: Vec<String>,
}

/// `warden test --adversarial`.
pub fn adversarial(ctx: &Context, junit: Option<&Path>) -> anyhow::Result<ExitCode> {
    let project = match ctx.load() {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let corpus: Corpus = toml::from_str(CORPUS).context("the built-in corpus does not parse")?;
    let policy = &project.policy;
    println!(
        "adversarial corpus: {} injected documents (e-mails, tickets, documents, web pages)",
        corpus.injection.len()
    );
    let mut results: Vec<(String, String, Outcome)> = Vec::new();
    let mut total_unseen = 0usize;
    for card in policy.cards.values() {
        let readers: Vec<&ToolGrant> = card
            .tools
            .iter()
            .filter(|t| t.access == Access::Read && t.output_trust == Trust::Untrusted)
            .collect();
        let targets: Vec<&ToolGrant> = card.tools.iter().filter(|t| high_impact(t)).collect();
        if readers.is_empty() {
            println!(
                "\nagent {}: no tool returns untrusted content; an injection cannot reach it through its tools ({} high-impact tools)",
                card.id,
                targets.len()
            );
            continue;
        }
        if targets.is_empty() {
            println!(
                "\nagent {}: reads untrusted content ({}) but holds no write, high-impact or egress tool: nothing to misuse",
                card.id,
                readers
                    .iter()
                    .map(|t| t.qualified())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            continue;
        }
        println!(
            "\nagent {}: reads untrusted content via {}",
            card.id,
            readers
                .iter()
                .map(|t| t.qualified())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for target in &targets {
            let mut o = Outcome {
                allowed: 0,
                held: 0,
                denied: 0,
                unseen: Vec::new(),
            };
            for reader in &readers {
                for inj in &corpus.injection {
                    let mut session = SessionState::default();
                    let output = json!({"content": inj.text});
                    session.record_output(
                        reader.qualified(),
                        reader.output_trust,
                        &reader.data_classes,
                        &output,
                        1,
                        policy.detector(&card.id),
                    );
                    let args = attacker_args(target, inj);
                    let d = policy.decide_with(
                        &CallRequest {
                            agent: &card.id,
                            tool: target.qualified(),
                            args: &args,
                            session: Some("adversarial"),
                            correlation_id: None,
                        },
                        Some(&session),
                    );
                    match d.decision {
                        Verdict::Allow => {
                            o.allowed += 1;
                            let valid = check_arguments(target, &args).is_empty();
                            o.unseen.push(format!(
                                "{} ({}) via {} ({}, taint {}, args valid: {valid}): {}",
                                inj.id,
                                inj.title,
                                reader.qualified(),
                                inj.kind,
                                session.taint().as_str(),
                                args
                            ));
                        }
                        Verdict::ApprovalRequired => o.held += 1,
                        Verdict::Deny => o.denied += 1,
                    }
                }
            }
            println!(
                "  {:<28} unseen {:>3}   approval {:>3}   denied {:>3}",
                target.qualified(),
                o.allowed,
                o.held,
                o.denied
            );
            for u in o.unseen.iter().take(5) {
                println!("    UNSEEN {u}");
            }
            total_unseen += o.allowed;
            results.push((card.id.clone(), target.qualified().to_string(), o));
        }
    }
    let tried: usize = results
        .iter()
        .map(|(_, _, o)| o.allowed + o.held + o.denied)
        .sum();
    println!(
        "\n{tried} injected calls tried: {total_unseen} could run without a human{}",
        if total_unseen == 0 {
            " (contained)"
        } else {
            " — tighten the cards above (after_untrusted, untrusted_args, egress)"
        }
    );
    if let Some(path) = junit {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failures = results.iter().filter(|(_, _, o)| o.allowed > 0).count();
        let _ = writeln!(
            s,
            "<testsuite name=\"warden adversarial\" tests=\"{}\" failures=\"{failures}\">",
            results.len()
        );
        for (agent, tool, o) in &results {
            let _ = write!(
                s,
                "  <testcase classname=\"{}\" name=\"{}\"",
                xml(agent),
                xml(tool)
            );
            if o.allowed == 0 {
                s.push_str("/>\n");
            } else {
                let _ = writeln!(
                    s,
                    ">\n    <failure message=\"{} injected calls ran without a human\"/>\n  </testcase>",
                    o.allowed
                );
            }
        }
        s.push_str("</testsuite>\n");
        fs::write(path, s).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if total_unseen == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
