//! Votes from the network: the JSON body of the API and the form of the web UI, parsed and
//! checked. Errors never quote the body.

use serde::{Deserialize, Serialize};

/// Largest vote body accepted (JSON or form), in bytes.
pub const MAX_VOTE_BODY: usize = 16 * 1024;
/// Longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 2000;

/// `approve` or `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteVerdict {
    Approve,
    Deny,
}

impl VoteVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Self::Approve),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }
}

/// What a person sends with a vote, checked: a reason (trimmed, at most
/// [`MAX_REASON_CHARS`] characters, no control or bidirectional-override characters besides
/// line breaks and tabs) and a step-up one-time code (6 to 8 ASCII digits). Empty means absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VoteInput {
    pub reason: Option<String>,
    pub totp: Option<String>,
}

/// The approve/deny form of the web UI, parsed. The CSRF field and the action are checked by
/// the caller (the session check comes first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoteForm {
    pub csrf: Option<String>,
    pub action: Option<VoteVerdict>,
    pub input: VoteInput,
}

/// Why a vote body was refused; the text is safe to show (it never quotes the body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteParseError {
    #[error("the vote body is larger than {MAX_VOTE_BODY} bytes")]
    TooLarge,
    #[error("the body must be JSON: {{\"reason\": \"…\", \"totp\": \"123456\"}} ({0})")]
    Json(String),
    #[error("the form field `{0}` is repeated")]
    Repeated(String),
    #[error("the form has an unknown field `{0}`")]
    UnknownField(String),
    #[error("`action` must be `approve` or `deny`")]
    BadAction,
    #[error("the reason may have at most {MAX_REASON_CHARS} characters")]
    ReasonTooLong,
    #[error("the reason may not hold control or bidirectional-override characters")]
    ReasonCharacters,
    #[error("the one-time code must be 6 to 8 digits")]
    BadTotp,
}

fn check_reason(raw: Option<String>) -> Result<Option<String>, VoteParseError> {
    let Some(raw) = raw else { return Ok(None) };
    let r = raw.trim();
    if r.is_empty() {
        return Ok(None);
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(VoteParseError::ReasonTooLong);
    }
    let bad = |c: char| {
        (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if r.chars().any(bad) {
        return Err(VoteParseError::ReasonCharacters);
    }
    Ok(Some(r.to_string()))
}

fn check_totp(raw: Option<String>) -> Result<Option<String>, VoteParseError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if !(6..=8).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VoteParseError::BadTotp);
    }
    Ok(Some(t.to_string()))
}

/// Parse the JSON body of `POST /v1/approvals/{id}/approve|deny`: empty, or
/// `{"reason": …, "totp": …}` (both optional strings or null; no other members).
pub fn parse_vote_json(body: &[u8]) -> Result<VoteInput, VoteParseError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        totp: Option<String>,
    }
    if body.len() > MAX_VOTE_BODY {
        return Err(VoteParseError::TooLarge);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(VoteInput::default());
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| {
        // Say what was wrong without quoting the body.
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                "only `reason` and `totp` are accepted, each once, as strings"
            }
            _ => "not valid JSON",
        };
        VoteParseError::Json(format!(
            "{what}, at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    Ok(VoteInput {
        reason: check_reason(b.reason)?,
        totp: check_totp(b.totp)?,
    })
}

/// Parse the UI's vote form (`application/x-www-form-urlencoded`): `csrf`, `action`,
/// `reason`, `totp`, each at most once and nothing else.
pub fn parse_vote_form(body: &[u8]) -> Result<VoteForm, VoteParseError> {
    if body.len() > MAX_VOTE_BODY {
        return Err(VoteParseError::TooLarge);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut form = VoteForm::default();
    let (mut reason, mut totp) = (None, None);
    for (k, v) in form_urlencoded::parse(body) {
        if seen.iter().any(|s| s == k.as_ref()) {
            return Err(VoteParseError::Repeated(printable(&k)));
        }
        seen.push(k.to_string());
        match k.as_ref() {
            "csrf" => form.csrf = Some(v.into_owned()),
            "action" => {
                form.action = Some(VoteVerdict::parse(&v).ok_or(VoteParseError::BadAction)?);
            }
            "reason" => reason = Some(v.into_owned()),
            "totp" => totp = Some(v.into_owned()),
            other => return Err(VoteParseError::UnknownField(printable(other))),
        }
    }
    form.input = VoteInput {
        reason: check_reason(reason)?,
        totp: check_totp(totp)?,
    };
    Ok(form)
}

/// A field name for an error message: at most 32 characters, control characters dropped.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_json_bodies() {
        assert_eq!(parse_vote_json(b"").unwrap(), VoteInput::default());
        assert_eq!(parse_vote_json(b"{}").unwrap(), VoteInput::default());
        let v = parse_vote_json(br#"{"reason": "  ok  ", "totp": "123456"}"#).unwrap();
        assert_eq!(v.reason.as_deref(), Some("ok"));
        assert_eq!(v.totp.as_deref(), Some("123456"));
        assert_eq!(
            parse_vote_json(br#"{"reason": "", "totp": null}"#).unwrap(),
            VoteInput::default()
        );
        assert!(matches!(
            parse_vote_json(br#"{"reason": "x", "approver": "mallory"}"#),
            Err(VoteParseError::Json(_))
        ));
        assert!(matches!(
            parse_vote_json(br#"{"reason": "a", "reason": "b"}"#),
            Err(VoteParseError::Json(_))
        ));
        assert_eq!(
            parse_vote_json(br#"{"totp": "12a456"}"#),
            Err(VoteParseError::BadTotp)
        );
        assert_eq!(
            parse_vote_json(br#"{"reason": "ok \u202e evil"}"#),
            Err(VoteParseError::ReasonCharacters)
        );
        let long = format!(r#"{{"reason": "{}"}}"#, "é".repeat(2001));
        assert_eq!(
            parse_vote_json(long.as_bytes()),
            Err(VoteParseError::ReasonTooLong)
        );
        assert_eq!(
            parse_vote_json(&vec![b' '; MAX_VOTE_BODY + 1]),
            Err(VoteParseError::TooLarge)
        );
        // The error never quotes the body.
        let e = parse_vote_json(br#"{"reason": "secret-value"#).unwrap_err();
        assert!(!e.to_string().contains("secret-value"));
    }

    #[test]
    fn vote_forms() {
        let f = parse_vote_form(b"csrf=abc&reason=line+one%0Aline+two&totp=&action=deny").unwrap();
        assert_eq!(f.csrf.as_deref(), Some("abc"));
        assert_eq!(f.action, Some(VoteVerdict::Deny));
        assert_eq!(f.input.reason.as_deref(), Some("line one\nline two"));
        assert_eq!(f.input.totp, None);
        assert_eq!(
            parse_vote_form(b"action=approve&action=deny"),
            Err(VoteParseError::Repeated("action".into()))
        );
        assert_eq!(
            parse_vote_form(b"action=maybe"),
            Err(VoteParseError::BadAction)
        );
        assert_eq!(
            parse_vote_form(b"approver=mallory"),
            Err(VoteParseError::UnknownField("approver".into()))
        );
        assert_eq!(
            parse_vote_form(b"reason=%00"),
            Err(VoteParseError::ReasonCharacters)
        );
        assert_eq!(parse_vote_form(b"").unwrap(), VoteForm::default());
    }
}
