//! One argument's constraint (`[tools.args.NAME]`) checked: the keys that apply to its type,
//! `min` <= `max`, a pattern that compiles, a non-empty `enum`.

use regex::Regex;

use super::settings::is_safe_name;
use super::{ArgConstraint, ArgConstraintFile, ArgType};
use crate::diagnostic::FileError;

/// Check one argument's constraint as written; `span` locates errors in `source`.
pub(super) fn validate_arg(
    path: &str,
    source: &str,
    span: usize,
    name: &str,
    c: ArgConstraintFile,
) -> Result<ArgConstraint, Vec<FileError>> {
    let mut errors = Vec::new();
    let at = |msg: String| FileError::at(path, source, span, msg);
    if !is_safe_name(name) {
        errors.push(
            at(format!("argument name `{name}` is not valid"))
                .with_hint("use letters, digits, `-`, `_` and `.` only"),
        );
    }
    let numeric = matches!(c.kind, ArgType::Integer | ArgType::Number);
    if (c.min.is_some() || c.max.is_some()) && !numeric {
        errors.push(
            at(format!(
                "argument `{name}`: `min`/`max` apply to integer and number arguments, not {}",
                c.kind.as_str()
            ))
            .with_hint("use `max_length` to bound strings and arrays"),
        );
    }
    if let (Some(min), Some(max)) = (c.min, c.max) {
        if min > max {
            errors.push(at(format!(
                "argument `{name}`: `min` ({min}) is greater than `max` ({max})"
            )));
        }
    }
    if c.max_length.is_some() && !matches!(c.kind, ArgType::String | ArgType::Array) {
        errors.push(at(format!(
            "argument `{name}`: `max_length` applies to strings and arrays, not {}",
            c.kind.as_str()
        )));
    }
    let stringy = matches!(c.kind, ArgType::String | ArgType::Array);
    for (key, set) in [
        ("pattern", c.pattern.is_some()),
        ("email_domains", c.email_domains.is_some()),
        ("url_domains", c.url_domains.is_some()),
    ] {
        if set && !stringy {
            errors.push(at(format!(
                "argument `{name}`: `{key}` applies to strings (or arrays of strings), not {}",
                c.kind.as_str()
            )));
        }
    }
    let mut pattern = None;
    let mut pattern_src = None;
    if let Some(p) = &c.pattern {
        match Regex::new(&format!("^(?:{})$", p.get_ref())) {
            Ok(re) => {
                pattern = Some(re);
                pattern_src = Some(p.get_ref().clone());
            }
            Err(e) => {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .last()
                    .unwrap_or("invalid")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                errors.push(
                    FileError::at(
                        path,
                        source,
                        p.span().start,
                        format!("argument `{name}`: `pattern` is not a valid regular expression: {last}"),
                    )
                    .with_hint("Rust `regex` syntax; the pattern must match the whole value"),
                );
            }
        }
    }
    let one_of = match c.one_of {
        Some(values) => {
            let mut out = Vec::new();
            for v in values {
                match serde_json::to_value(&v) {
                    Ok(j) => out.push(j),
                    Err(e) => errors.push(at(format!(
                        "argument `{name}`: `enum` value cannot be used: {e}"
                    ))),
                }
            }
            if out.is_empty() {
                errors.push(at(format!("argument `{name}`: `enum` is empty")));
            }
            Some(out)
        }
        None => None,
    };
    let lower = |v: Option<Vec<String>>| {
        v.map(|d| {
            d.into_iter()
                .map(|s| s.trim().trim_start_matches('@').to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ArgConstraint {
        kind: c.kind,
        required: c.required,
        min: c.min,
        max: c.max,
        max_length: c.max_length,
        pattern,
        pattern_src,
        one_of,
        email_domains: lower(c.email_domains),
        url_domains: lower(c.url_domains),
    })
}
