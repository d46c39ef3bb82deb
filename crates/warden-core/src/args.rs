//! Argument constraints: the allowlist of parameters a scope card grants for a tool.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scope_card::{ArgConstraint, ArgType, ToolGrant};

/// One argument that broke its constraint, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub argument: String,
    pub message: String,
}

/// Check `args` (a JSON object, or null for none) against the grant. Returns every violation.
pub fn check_arguments(grant: &ToolGrant, args: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let obj = match args {
        Value::Object(o) => o,
        Value::Null => &empty,
        other => {
            out.push(Violation {
                argument: "(arguments)".into(),
                message: format!(
                    "arguments must be a JSON object of named values, got {}",
                    type_name(other)
                ),
            });
            return out;
        }
    };
    for (name, c) in &grant.args {
        match obj.get(name) {
            None | Some(Value::Null) if c.required => out.push(Violation {
                argument: name.clone(),
                message: format!("argument `{name}` is required by the scope card but missing"),
            }),
            None | Some(Value::Null) => {}
            Some(v) => check_value(name, c, v, &mut out),
        }
    }
    if !grant.allow_unlisted_args {
        let mut unlisted = obj.keys().filter(|name| !grant.args.contains_key(*name));
        for name in unlisted.by_ref().take(MAX_UNLISTED_NAMED) {
            out.push(Violation {
                argument: shorten(name),
                message: format!(
                    "argument `{}` is not on the scope card's list for `{}`",
                    shorten(name),
                    grant.name
                ),
            });
        }
        let more = unlisted.count();
        if more > 0 {
            out.push(Violation {
                argument: "(unlisted arguments)".into(),
                message: format!(
                    "{more} more arguments are not on the scope card's list for `{}` (the first {MAX_UNLISTED_NAMED} are named)",
                    grant.name
                ),
            });
        }
    }
    out
}

/// Unlisted arguments named one by one in a decision; past them one violation counts the
/// rest, so a call with thousands of made-up arguments makes a record of bounded size.
pub const MAX_UNLISTED_NAMED: usize = 16;

/// Longest argument name quoted in a violation, in characters.
const MAX_NAME_CHARS: usize = 64;

/// An argument name as quoted in a violation: cut to [`MAX_NAME_CHARS`].
fn shorten(name: &str) -> String {
    if name.chars().count() > MAX_NAME_CHARS {
        let cut: String = name.chars().take(MAX_NAME_CHARS - 3).collect();
        format!("{cut}...")
    } else {
        name.to_string()
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn type_ok(kind: ArgType, v: &Value) -> bool {
    match kind {
        ArgType::String => v.is_string(),
        ArgType::Integer => v.is_i64() || v.is_u64(),
        ArgType::Number => v.is_number(),
        ArgType::Boolean => v.is_boolean(),
        ArgType::Array => v.is_array(),
        ArgType::Object => v.is_object(),
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn check_value(name: &str, c: &ArgConstraint, v: &Value, out: &mut Vec<Violation>) {
    let mut push = |message: String| {
        out.push(Violation {
            argument: name.to_string(),
            message,
        })
    };
    if !type_ok(c.kind, v) {
        push(format!(
            "argument `{name}` must be {} but is {}",
            match c.kind {
                ArgType::String => "a string",
                ArgType::Integer => "an integer",
                ArgType::Number => "a number",
                ArgType::Boolean => "a boolean",
                ArgType::Array => "an array",
                ArgType::Object => "an object",
            },
            type_name(v)
        ));
        return;
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = c.min {
            if n < min {
                push(format!(
                    "argument `{name}` is {}, below the minimum {min} allowed by the scope card",
                    show(v)
                ));
            }
        }
        if let Some(max) = c.max {
            if n > max {
                push(format!(
                    "argument `{name}` is {}, above the maximum {max} allowed by the scope card",
                    show(v)
                ));
            }
        }
    }
    if let Some(max_len) = c.max_length {
        let len = match v {
            Value::String(s) => s.chars().count(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        if len > max_len {
            push(format!(
                "argument `{name}` has length {len}, longer than the {max_len} allowed by the scope card"
            ));
        }
    }
    if let Some(one_of) = &c.one_of {
        if !one_of.iter().any(|allowed| json_eq(allowed, v)) {
            let list: Vec<String> = one_of.iter().map(show).collect();
            push(format!(
                "argument `{name}` is {}, not one of the values the scope card allows ({})",
                show(v),
                list.join(", ")
            ));
        }
    }
    // String checks apply to a string, or to each string of an array.
    let strings: Vec<&str> = match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for s in strings {
        if let (Some(re), Some(src)) = (&c.pattern, &c.pattern_src) {
            if !re.is_match(s) {
                push(format!(
                    "argument `{name}` is {}, which does not match the pattern `{src}` required by the scope card",
                    show(&Value::String(s.to_string()))
                ));
            }
        }
        if let Some(domains) = &c.email_domains {
            match email_domain(s) {
                Some(d) if domain_allowed(&d, domains) => {}
                Some(d) => push(format!(
                    "argument `{name}` sends to `{s}` at domain `{d}`, which is not among the domains the scope card allows ({})",
                    domains.join(", ")
                )),
                None => push(format!(
                    "argument `{name}` is `{s}`, which is not an e-mail address"
                )),
            }
        }
        if let Some(domains) = &c.url_domains {
            match url_host(s) {
                Some(h) if domain_allowed(&h, domains) => {}
                Some(h) => push(format!(
                    "argument `{name}` points to host `{h}`, which is not among the hosts the scope card allows ({})",
                    domains.join(", ")
                )),
                None => push(format!(
                    "argument `{name}` is `{s}`, which is not an http(s) URL"
                )),
            }
        }
    }
}

/// Numbers compare by value (so `5` equals `5.0`); everything else structurally.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A domain is allowed if it equals an entry or is a subdomain of one.
fn domain_allowed(domain: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        domain == a
            || domain
                .strip_suffix(a.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

/// The domain of a plain address or of `Name <addr>`, lower-cased; `None` if it is not one.
fn email_domain(s: &str) -> Option<String> {
    let addr = match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s.get(a + 1..b)?,
        _ => s,
    }
    .trim();
    let (local, domain) = addr.rsplit_once('@')?;
    let ok_domain = !domain.is_empty()
        && domain.contains('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if local.is_empty() || local.contains(char::is_whitespace) || !ok_domain {
        return None;
    }
    Some(domain.trim_end_matches('.').to_ascii_lowercase())
}

/// The host of an http(s) URL, lower-cased, without user info or port.
fn url_host(s: &str) -> Option<String> {
    let lower = s.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if host_port.starts_with('[') {
        host_port.split(']').next()?.trim_start_matches('[')
    } else {
        host_port.split(':').next()?
    };
    if host.is_empty() || host.contains('\\') {
        return None;
    }
    Some(host.trim_end_matches('.').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domains_parse_plain_and_named_addresses() {
        assert_eq!(
            email_domain("a@Example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            email_domain("Ann <ann@corp.example.com>").as_deref(),
            Some("corp.example.com")
        );
        assert_eq!(email_domain("not an address"), None);
        assert_eq!(email_domain("a@b"), None);
    }

    #[test]
    fn url_hosts_ignore_userinfo_and_ports() {
        assert_eq!(
            url_host("https://user@api.example.com:8443/x").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(url_host("ftp://example.com"), None);
    }

    #[test]
    fn subdomains_are_allowed_but_lookalikes_are_not() {
        let allowed = vec!["example.com".to_string()];
        assert!(domain_allowed("example.com", &allowed));
        assert!(domain_allowed("mail.example.com", &allowed));
        assert!(!domain_allowed("evilexample.com", &allowed));
        assert!(!domain_allowed("example.com.evil.io", &allowed));
    }
}
