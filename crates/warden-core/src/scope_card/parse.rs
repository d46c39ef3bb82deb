//! [`parse_scope_card`]: a card's text in, a validated [`ScopeCard`] (or every problem found,
//! each located) out.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::constraint::validate_arg;
use super::settings::is_safe_name;
use super::snapshot::validate_snapshot;
use super::{
    Access, ArgNames, Egress, EgressFile, Guard, PromptGrant, PromptGrantFile, ResourceGrant,
    ResourceGrantFile, ScopeCard, ScopeCardFile, SnapshotFile, ToolGrant, ToolGrantFile, Trust,
};
use crate::diagnostic::{from_toml_error, FileError};

/// The hint for a name outside the safe alphabet.
const SAFE_NAME_HINT: &str = "use letters, digits, `-`, `_` and `.` only";

/// Each of `names` — what it names, the name, its offset — must be a safe name.
fn check_names(loc: Located<'_>, names: &[(&str, &str, usize)], errors: &mut Vec<FileError>) {
    for (what, value, span) in names {
        if !is_safe_name(value) {
            errors.push(
                loc.at(*span, format!("{what} `{value}` is not valid"))
                    .with_hint(SAFE_NAME_HINT),
            );
        }
    }
}

/// Where a card's errors are located: its path and text.
#[derive(Clone, Copy)]
struct Located<'a> {
    path: &'a str,
    source: &'a str,
}

impl Located<'_> {
    fn at(&self, offset: usize, message: impl Into<String>) -> FileError {
        FileError::at(self.path, self.source, offset, message)
    }
}

/// Parse and validate one scope card. `path` is used in errors (e.g. `agents/crm-writer.toml`);
/// the agent id is the file stem unless the card names one, and then they must agree.
pub fn parse_scope_card(path: &str, source: &str) -> Result<ScopeCard, Vec<FileError>> {
    let file: ScopeCardFile =
        toml::from_str(source).map_err(|e| vec![from_toml_error(path, source, &e)])?;
    let loc = Located { path, source };
    let mut errors = Vec::new();
    let id = agent_id(loc, file.id.as_ref(), &mut errors);
    if file.purpose.trim().is_empty() {
        errors.push(
            FileError::whole(path, "`purpose` is empty")
                .with_hint("say in one sentence what the agent is for; auditors read it"),
        );
    }
    let tools = parse_tools(loc, file.tools, &mut errors);
    let resources = parse_resources(loc, file.resources, &mut errors);
    let prompts = parse_prompts(loc, file.prompts, &mut errors);
    let retention = parse_retention(loc, file.retention.as_ref(), &mut errors);
    check_region(loc, file.region.as_ref(), &mut errors);
    check_subject_args(loc, &file.subject_args, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ScopeCard {
        id,
        path: path.to_string(),
        purpose: file.purpose,
        owners: file.owners,
        environment: file.environment,
        data_classes: file.data_classes,
        retention,
        region_span: file.region.as_ref().map_or(0, |r| r.span().start),
        region: file.region.map(Spanned::into_inner),
        subject_args: file
            .subject_args
            .into_iter()
            .map(|s| s.into_inner())
            .collect(),
        model: file.model,
        rate_limits: file.rate_limits,
        failure_modes: file.failure_modes,
        tools,
        resources,
        prompts,
        spotlight: file.spotlight,
    })
}

/// The agent id: the file stem, which an `id` in the card must equal; a safe name.
fn agent_id(loc: Located<'_>, id: Option<&Spanned<String>>, errors: &mut Vec<FileError>) -> String {
    let path = loc.path;
    let stem = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".toml")
        .to_string();
    if let Some(id) = id.filter(|id| id.get_ref() != &stem) {
        errors.push(
            loc.at(
                id.span().start,
                format!(
                    "agent id `{}` does not match the file name `{stem}.toml`",
                    id.get_ref()
                ),
            )
            .with_hint(format!(
                "rename the file to `{}.toml` or remove the `id` key",
                id.get_ref()
            )),
        );
    }
    let id = stem;
    if !is_safe_name(&id) {
        errors.push(
            FileError::whole(path, format!("agent id `{id}` is not a valid name"))
                .with_hint(SAFE_NAME_HINT),
        );
    }
    id
}

/// The tool grants, each checked, then their snapshot reads (which refer to other grants).
fn parse_tools(
    loc: Located<'_>,
    grants: Vec<ToolGrantFile>,
    errors: &mut Vec<FileError>,
) -> Vec<ToolGrant> {
    let mut tools = Vec::new();
    let mut seen = BTreeSet::new();
    let mut snapshots: Vec<(usize, SnapshotFile)> = Vec::new();
    for t in grants {
        if let Some(snap) = t.snapshot.clone() {
            snapshots.push((tools.len(), snap));
        }
        tools.push(parse_tool(loc, t, &mut seen, errors));
    }
    for (i, snap) in snapshots {
        match validate_snapshot(loc.path, loc.source, &tools, i, snap) {
            Ok(v) => {
                if let Some(t) = tools.get_mut(i) {
                    t.snapshot = Some(v);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    tools
}

/// One tool grant: safe names, listed once (`seen` holds `server/name` of the grants before
/// it), guards defaulted by access, egress and argument constraints checked.
fn parse_tool(
    loc: Located<'_>,
    mut t: ToolGrantFile,
    seen: &mut BTreeSet<String>,
    errors: &mut Vec<FileError>,
) -> ToolGrant {
    let name = t.name.get_ref().clone();
    let server = t.server.get_ref().clone();
    check_names(
        loc,
        &[
            ("tool name", &name, t.name.span().start),
            ("server name", &server, t.server.span().start),
        ],
        errors,
    );
    if !seen.insert(format!("{server}/{name}")) {
        errors.push(
            loc.at(
                t.name.span().start,
                format!("tool `{name}` of server `{server}` is listed twice"),
            )
            .with_hint("merge the two `[[tools]]` entries"),
        );
    }
    let write = t.access == Access::Write;
    let by_access = |g: Option<Guard>, write_default: Guard| {
        g.unwrap_or(if write { write_default } else { Guard::Auto })
    };
    let egress = t
        .egress
        .take()
        .map(|e| parse_egress(loc, &t, &name, e, errors));
    let mut args = BTreeMap::new();
    for (arg_name, spanned) in t.args {
        let span = spanned.span().start;
        match validate_arg(loc.path, loc.source, span, &arg_name, spanned.into_inner()) {
            Ok(c) => {
                args.insert(arg_name, c);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    ToolGrant {
        qualified: format!("{server}/{name}"),
        server,
        name,
        access: t.access,
        impact: t.impact,
        approval: t.approval,
        output_trust: t.output_trust.unwrap_or(if write {
            Trust::Trusted
        } else {
            Trust::Untrusted
        }),
        output_trust_declared: t.output_trust,
        data_classes: t.data_classes,
        after_untrusted: by_access(t.after_untrusted, Guard::Approve),
        after_suspicious: by_access(t.after_suspicious, Guard::Deny),
        untrusted_args: by_access(t.untrusted_args, Guard::Approve),
        egress,
        description: t.description,
        allow_unlisted_args: t.allow_unlisted_args,
        store_arguments: t.store_arguments,
        store_output: t.store_output,
        args,
        snapshot: None,
        server_span: t.server.span().start,
    }
}

/// A grant's egress allowlist: at least one argument, each among the grant's arguments, and
/// a non-empty list (entries trimmed and lower-cased).
fn parse_egress(
    loc: Located<'_>,
    t: &ToolGrantFile,
    name: &str,
    e: EgressFile,
    errors: &mut Vec<FileError>,
) -> Egress {
    let at = t.name.span().start;
    let names = match e.arg {
        ArgNames::One(a) => vec![a],
        ArgNames::Many(v) => v,
    };
    if names.is_empty() || e.allow.is_empty() {
        errors.push(
            loc.at(
                at,
                format!("tool `{name}`: `egress` needs an `arg` and a non-empty `allow` list"),
            )
            .with_hint("egress = { arg = \"to\", allow = [\"@example.com\", \"#support\"] }"),
        );
    }
    for a in &names {
        if !t.args.contains_key(a) && !t.allow_unlisted_args {
            errors.push(
                loc.at(
                    at,
                    format!("tool `{name}`: `egress` names argument `{a}`, which is not among its arguments"),
                )
                .with_hint("list the argument under [tools.args] or fix the name"),
            );
        }
    }
    Egress {
        args: names,
        allow: e
            .allow
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .collect(),
        off_list: e.off_list,
        sensitive: e.sensitive,
    }
}

/// The resource grants: a safe server name and one URI or a prefix ending in `*`.
fn parse_resources(
    loc: Located<'_>,
    grants: Vec<ResourceGrantFile>,
    errors: &mut Vec<FileError>,
) -> Vec<ResourceGrant> {
    let mut resources = Vec::new();
    for r in grants {
        let server = r.server.get_ref().clone();
        let uri = r.uri.get_ref().clone();
        check_names(
            loc,
            &[("server name", &server, r.server.span().start)],
            errors,
        );
        let body = uri.strip_suffix('*').unwrap_or(&uri);
        if body.is_empty() || body.contains('*') || uri.chars().any(char::is_control) {
            errors.push(
                loc.at(r.uri.span().start, format!("resource uri `{uri}` is not valid"))
                    .with_hint("write one URI (`docs://handbook/intro`) or a prefix ending in `*` (`docs://handbook/*`); `*` may appear only at the end"),
            );
        }
        resources.push(ResourceGrant {
            server,
            uri,
            server_span: r.server.span().start,
        });
    }
    resources
}

/// The prompt grants: safe prompt and server names.
fn parse_prompts(
    loc: Located<'_>,
    grants: Vec<PromptGrantFile>,
    errors: &mut Vec<FileError>,
) -> Vec<PromptGrant> {
    let mut prompts = Vec::new();
    for p in grants {
        let server = p.server.get_ref().clone();
        let name = p.name.get_ref().clone();
        check_names(
            loc,
            &[
                ("prompt name", &name, p.name.span().start),
                ("server name", &server, p.server.span().start),
            ],
            errors,
        );
        prompts.push(PromptGrant {
            server,
            name,
            server_span: p.server.span().start,
        });
    }
    prompts
}

/// The card's `retention`, in days (`Some(None)`: forever; `None`: not set or invalid).
fn parse_retention(
    loc: Located<'_>,
    retention: Option<&Spanned<String>>,
    errors: &mut Vec<FileError>,
) -> Option<Option<u32>> {
    let r = retention?;
    match crate::config::parse_retention(r.get_ref()) {
        Ok(days) => Some(days),
        Err(e) => {
            errors.push(
                loc.at(r.span().start, format!("retention: {e}"))
                    .with_hint("retention periods: 7d, 30d, 12w, 1y, or forever"),
            );
            None
        }
    }
}

/// The card's `region` must be a region name (its declaration is checked against
/// `warden.toml` when the project compiles).
fn check_region(loc: Located<'_>, region: Option<&Spanned<String>>, errors: &mut Vec<FileError>) {
    let Some(r) = region else {
        return;
    };
    if !is_safe_name(r.get_ref()) {
        errors.push(
            loc.at(
                r.span().start,
                format!("region `{}` is not a region name", r.get_ref()),
            )
            .with_hint("name a region declared in warden.toml [regions] (`eu`, `us-east`)"),
        );
    }
}

/// Each of `subject_args` must be an argument name or a dotted path into one.
fn check_subject_args(
    loc: Located<'_>,
    subject_args: &[Spanned<String>],
    errors: &mut Vec<FileError>,
) {
    for s in subject_args {
        let (at, s) = (s.span().start, s.get_ref());
        if s.is_empty() || !s.split('.').all(is_safe_name) {
            errors.push(
                loc.at(at, format!("subject_args: `{s}` is not an argument path"))
                    .with_hint("name an argument, or a dotted path into one (`customer.email`)"),
            );
        }
    }
}
