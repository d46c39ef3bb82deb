//! The policy set of a project: the generated policies and the hand-written `policies/*.cedar`
//! parsed into one set, each policy's annotations read (`@id`, `@approval`, `@auto_approve`,
//! `@reason`), and the set validated in strict mode against the generated schema.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};

use super::{PolicyMeta, SourceFile};
use crate::diagnostic::FileError;
use crate::scope_card::Tier;

/// The path shown for generated policies.
const GENERATED: &str = "(generated)";

/// The parsed policy set, with what each policy is and where it came from.
pub(super) struct ParsedPolicies {
    pub(super) all: PolicySet,
    pub(super) meta: HashMap<PolicyId, PolicyMeta>,
    /// Policy id -> index into `sources`, for locating validation errors.
    origin: HashMap<PolicyId, usize>,
    /// (path, text) of each parsed source: the generated policies, then the policy files.
    sources: Vec<(String, String)>,
}

/// Parse the generated policies and the policy files (sorted by path) into one set.
///
/// Generated policies are parsed one by one: Cedar keeps the source text it parsed with every
/// policy's locations, so parsing thousands at once costs memory quadratic in their number.
pub(super) fn parse_policies(
    generated: Vec<String>,
    files: &[&SourceFile],
) -> Result<ParsedPolicies, Vec<FileError>> {
    let mut errors = Vec::new();
    let mut sources: Vec<(String, String)> = generated
        .into_iter()
        .map(|text| (GENERATED.to_string(), text))
        .collect();
    sources.extend(files.iter().map(|p| (p.path.clone(), p.text.clone())));
    let mut set = ParsedPolicies {
        all: PolicySet::new(),
        meta: HashMap::new(),
        origin: HashMap::new(),
        sources: Vec::new(),
    };
    for (source_index, (path, text)) in sources.iter().enumerate() {
        let parsed = match PolicySet::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                errors.push(cedar_error(path, text, &e, "Cedar syntax error"));
                continue;
            }
        };
        if parsed.templates().next().is_some() {
            errors.push(
                FileError::whole(path, "policy templates are not supported")
                    .with_hint("write static policies; Warden links agents through scope cards"),
            );
            continue;
        }
        set.add_file(&sources, source_index, &parsed, &mut errors);
    }
    set.sources = sources;
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

impl ParsedPolicies {
    /// Add the policies of one parsed source, in the file's order so `file#N` ids are stable.
    /// `sources` are all the sources being parsed (`self.sources` is filled in at the end).
    fn add_file(
        &mut self,
        sources: &[(String, String)],
        source_index: usize,
        parsed: &PolicySet,
        errors: &mut Vec<FileError>,
    ) {
        let Some((path, text)) = sources.get(source_index) else {
            return;
        };
        let (path, text) = (path.as_str(), text.as_str());
        let mut in_file: Vec<&Policy> = parsed.policies().collect();
        in_file.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        for (n, p) in in_file.into_iter().enumerate() {
            let id = match p.annotation("id") {
                Some(id) => id.to_string(),
                None => format!("{path}#{n}"),
            };
            let pid = PolicyId::new(&id);
            let offset = if path == GENERATED {
                0
            } else {
                policy_offset(text, p)
            };
            let at = |message: String| FileError::at(path, text, offset, message);
            let tier = approval_tier(p, &id, &at, errors);
            if path != GENERATED && (id.starts_with("card/") || id.starts_with("warden/")) {
                errors.push(
                    at(format!(
                        "policy id `{id}` uses a prefix reserved for generated policies"
                    ))
                    .with_hint("choose an @id that does not start with `card/` or `warden/`"),
                );
                continue;
            }
            let auto_approve = p.annotation("auto_approve").map(str::to_string);
            if let Some(problem) = auto_approve_problem(p, auto_approve.as_deref()) {
                errors.push(
                    at(format!("policy `{id}`: {problem}"))
                        .with_hint("write @auto_approve(\"why these calls are low-risk\") on a permit that narrows the calls (amount, repeat of an approved call)"),
                );
            }
            self.meta
                .insert(pid.clone(), policy_meta(p, &id, tier, auto_approve));
            if let Some(other) = self
                .origin
                .get(&pid)
                .and_then(|i| sources.get(*i))
                .map(|(p, _)| p.clone())
            {
                errors.push(
                    at(format!("policy id `{id}` is already used in {other}"))
                        .with_hint("every @id must be unique across policies/"),
                );
                continue;
            }
            self.origin.insert(pid.clone(), source_index);
            if let Err(e) = self.all.add(p.new_id(pid)) {
                errors.push(FileError::whole(path, format!("policy `{id}`: {e}")));
            }
        }
    }

    /// Validate the set in strict mode against the schema; warnings are appended to
    /// `warnings`, errors are located in their policy's file.
    pub(super) fn validate(
        &self,
        schema: &Schema,
        warnings: &mut Vec<String>,
    ) -> Result<(), Vec<FileError>> {
        let validation = Validator::new(schema.clone()).validate(&self.all, ValidationMode::Strict);
        let mut errors = Vec::new();
        for e in validation.validation_errors() {
            let (path, text) = self
                .origin
                .get(e.policy_id())
                .and_then(|i| self.sources.get(*i))
                .cloned()
                .unwrap_or_else(|| (GENERATED.to_string(), String::new()));
            let offset = first_label(e).unwrap_or(0);
            errors.push(
                FileError::at(&path, &text, offset, format!("policy `{}`: {e}", e.policy_id()))
                    .with_hint(help_text(e).unwrap_or_else(|| {
                        "policies are checked in strict mode against the schema `warden check --schema` prints".to_string()
                    })),
            );
        }
        for w in validation.validation_warnings() {
            warnings.push(format!("policy `{}`: {w}", w.policy_id()));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The tier of `@approval("…")` (`auto` without one). On a forbid, or with an unknown tier, an
/// error is recorded and the tier is `auto`.
fn approval_tier(
    p: &Policy,
    id: &str,
    at: &dyn Fn(String) -> FileError,
    errors: &mut Vec<FileError>,
) -> Tier {
    let Some(t) = p.annotation("approval") else {
        return Tier::Auto;
    };
    match Tier::parse(t) {
        Some(t) if p.effect() == Effect::Permit => t,
        Some(_) => {
            errors.push(
                at(format!(
                    "policy `{id}`: @approval on a forbid has no effect"
                ))
                .with_hint("put @approval on a permit policy to escalate the calls it matches"),
            );
            Tier::Auto
        }
        None => {
            errors.push(
                at(format!("policy `{id}`: unknown approval tier `{t}`"))
                    .with_hint("use one of `auto`, `review`, `approve`, `two_person`"),
            );
            Tier::Auto
        }
    }
}

/// What is wrong with a policy's `@auto_approve`, if anything.
fn auto_approve_problem(p: &Policy, auto_approve: Option<&str>) -> Option<&'static str> {
    let reason = auto_approve?;
    if p.effect() == Effect::Forbid {
        Some("@auto_approve on a forbid has no effect: nothing lowers a forbid")
    } else if p.annotation("approval").is_some() {
        Some("@auto_approve and @approval on one policy contradict each other")
    } else if reason.trim().is_empty() {
        Some("@auto_approve needs the reason the calls it matches are low-risk")
    } else {
        None
    }
}

/// What a policy is, for reasons: its id, tier, auto-approval and the sentence that cites it.
fn policy_meta(p: &Policy, id: &str, tier: Tier, auto_approve: Option<String>) -> PolicyMeta {
    let reason = p
        .annotation("reason")
        .map_or_else(|| format!("policy `{id}`"), str::to_string);
    let verb = match p.effect() {
        Effect::Permit => "permitted",
        Effect::Forbid => "forbidden",
    };
    PolicyMeta {
        id: id.to_string(),
        tier,
        auto_approve,
        because: format!("{verb} by `{id}`: {reason}"),
    }
}

/// Byte offset of a policy inside its file, from its source location if Cedar kept one.
fn policy_offset(text: &str, p: &Policy) -> usize {
    let src = p.to_string();
    let first_line = src.lines().next().unwrap_or_default().trim();
    if first_line.is_empty() {
        return 0;
    }
    text.find(first_line).unwrap_or(0)
}

fn first_label(e: &dyn miette::Diagnostic) -> Option<usize> {
    e.labels().and_then(|mut l| l.next()).map(|l| l.offset())
}

fn help_text(e: &dyn miette::Diagnostic) -> Option<String> {
    e.help().map(|h| h.to_string())
}

fn cedar_error(path: &str, text: &str, e: &cedar_policy::ParseErrors, what: &str) -> FileError {
    let offset = first_label(e).unwrap_or(0);
    let mut msg = e.to_string();
    if let Some(first) = e.iter().next() {
        msg = first.to_string();
    }
    let mut fe = FileError::at(path, text, offset, format!("{what}: {msg}"));
    if let Some(h) = help_text(e) {
        fe = fe.with_hint(h);
    }
    fe
}
