//! Snapshot reads: a `read` tool run when a call of a `write` tool is held for approval, so
//! approvers see the state the write will change. Here: the validated form, the arguments of
//! the read for a held call, and the checks of a grant's `snapshot = { … }`.

use std::collections::BTreeMap;

use toml::Spanned;

use super::{Access, SnapshotFile, ToolGrant};
use crate::diagnostic::{closest, FileError};

/// A validated snapshot read: run when a call of the tool is held for approval, its result
/// is the request's before-state.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The read tool's name on the same server.
    pub tool: String,
    /// `server/name` of the read tool.
    pub qualified: String,
    pub args: BTreeMap<String, SnapshotArg>,
}

/// One argument of a snapshot read.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotArg {
    /// The held call's argument of this name (`"$name"`).
    Call(String),
    /// A fixed value.
    Literal(serde_json::Value),
}

impl Snapshot {
    /// The read's arguments for a held call: each `"$name"` replaced by that argument of the
    /// call. `Err` names an argument the call does not have.
    pub fn arguments(&self, call_args: &serde_json::Value) -> Result<serde_json::Value, String> {
        let mut out = serde_json::Map::new();
        for (name, arg) in &self.args {
            let value = match arg {
                SnapshotArg::Literal(v) => v.clone(),
                SnapshotArg::Call(from) => call_args.get(from).cloned().ok_or_else(|| {
                    format!(
                        "the held call has no argument `{from}` for the snapshot read's `{name}`"
                    )
                })?,
            };
            out.insert(name.clone(), value);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Where a snapshot's errors are located: the card's path and text.
struct Located<'a> {
    path: &'a str,
    source: &'a str,
}

impl Located<'_> {
    fn at(&self, offset: usize, message: String) -> FileError {
        FileError::at(self.path, self.source, offset, message)
    }
}

/// Check a grant's `snapshot`: a `read` tool on the same server granted on this card, on a
/// `write` tool, with arguments the read tool takes and `$names` the held tool takes.
pub(super) fn validate_snapshot(
    path: &str,
    source: &str,
    tools: &[ToolGrant],
    index: usize,
    snap: SnapshotFile,
) -> Result<Snapshot, Vec<FileError>> {
    let mut errors = Vec::new();
    let Some(held) = tools.get(index) else {
        return Err(errors);
    };
    let loc = Located { path, source };
    let at_tool = snap.tool.span().start;
    let name = snap.tool.get_ref().clone();
    let qualified = format!("{}/{name}", held.server);
    let read = check_read_tool(&loc, tools, held, &name, &qualified, at_tool, &mut errors);
    let mut args = BTreeMap::new();
    for (arg, value) in snap.args {
        if let Some(v) = snapshot_arg(&loc, held, read, &qualified, &arg, value, &mut errors) {
            args.insert(arg, v);
        }
    }
    if let Some(r) = read {
        for (req, c) in &r.args {
            if c.required && !args.contains_key(req) {
                errors.push(
                    loc.at(
                        at_tool,
                        format!("snapshot read `{qualified}` needs its required argument `{req}`"),
                    )
                    .with_hint(format!("add it: args = {{ {req} = \"$…\" }}")),
                );
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Snapshot {
        tool: name,
        qualified,
        args,
    })
}

/// The snapshot's read tool, if the card grants it; errors when the held tool is not a write,
/// or the read is missing, not a `read`, or does not store its output.
fn check_read_tool<'t>(
    loc: &Located<'_>,
    tools: &'t [ToolGrant],
    held: &ToolGrant,
    name: &str,
    qualified: &str,
    at_tool: usize,
    errors: &mut Vec<FileError>,
) -> Option<&'t ToolGrant> {
    if held.access != Access::Write {
        errors.push(
            loc.at(
                at_tool,
                format!("tool `{}`: `snapshot` is for `write` tools (it reads the state a write will change)", held.name),
            )
            .with_hint("remove `snapshot`, or set access = \"write\""),
        );
    }
    let read = tools.iter().find(|t| t.qualified == qualified);
    match read {
        None => {
            let same_server = tools
                .iter()
                .filter(|t| t.server == held.server && t.access == Access::Read)
                .map(|t| t.name.as_str());
            let mut e = loc.at(
                at_tool,
                format!("snapshot read `{qualified}` is not granted on this card; it must be a `read` tool of server `{}` listed under [[tools]]", held.server),
            );
            e = match closest(name, same_server) {
                Some(near) => e.with_hint(format!("did you mean `{near}`?")),
                None => e.with_hint(format!(
                    "add [[tools]] server = \"{}\", name = \"{name}\", access = \"read\"",
                    held.server
                )),
            };
            errors.push(e);
        }
        Some(r) if !r.store_output => errors.push(
            loc.at(
                at_tool,
                format!("snapshot read `{qualified}` has store_output = false, so its result could not be shown to approvers"),
            )
            .with_hint("use a read tool whose output may be stored (redacted), or remove `snapshot`"),
        ),
        Some(r) if r.access != Access::Read => errors.push(
            loc.at(
                at_tool,
                format!("snapshot read `{qualified}` must be a `read` tool, but the card grants it as `write`"),
            )
            .with_hint("a snapshot may only read: point it at a tool with access = \"read\""),
        ),
        Some(_) => {}
    }
    read
}

/// One argument of the snapshot read: `"$name"` (the held call's argument), `"$$…"` (a
/// literal `$…`) or a literal. `None` when the value cannot be used at all.
fn snapshot_arg(
    loc: &Located<'_>,
    held: &ToolGrant,
    read: Option<&ToolGrant>,
    qualified: &str,
    arg: &str,
    value: Spanned<toml::Value>,
    errors: &mut Vec<FileError>,
) -> Option<SnapshotArg> {
    let span = value.span().start;
    if let Some(r) = read {
        if !r.allow_unlisted_args && !r.args.contains_key(arg) {
            let mut e = loc.at(
                span,
                format!("snapshot read `{qualified}` takes no argument `{arg}`"),
            );
            if let Some(near) = closest(arg, r.args.keys().map(String::as_str)) {
                e = e.with_hint(format!("did you mean `{near}`?"));
            }
            errors.push(e);
        }
    }
    let v = match value.into_inner() {
        toml::Value::String(text) if text.starts_with("$$") => SnapshotArg::Literal(
            serde_json::Value::String(text.get(1..).unwrap_or_default().to_string()),
        ),
        toml::Value::String(text) if text.starts_with('$') => {
            let from = text.get(1..).unwrap_or_default().to_string();
            if !held.allow_unlisted_args && !held.args.contains_key(&from) {
                let mut e = loc.at(
                    span,
                    format!(
                        "`${from}`: tool `{}` has no argument `{from}` to take the value from",
                        held.name
                    ),
                );
                if let Some(near) = closest(&from, held.args.keys().map(String::as_str)) {
                    e = e.with_hint(format!("did you mean `${near}`?"));
                } else {
                    e = e.with_hint(
                        "write `$name` for an argument of the held call, `$$` for a literal `$`",
                    );
                }
                errors.push(e);
            }
            SnapshotArg::Call(from)
        }
        other => match serde_json::to_value(&other) {
            Ok(j) => SnapshotArg::Literal(j),
            Err(e) => {
                errors.push(loc.at(
                    span,
                    format!("snapshot argument `{arg}` cannot be used: {e}"),
                ));
                return None;
            }
        },
    };
    Some(v)
}
