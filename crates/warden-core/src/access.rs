//! The access review: what each agent may do (its scope card), what it used in a window (from
//! the ledger's decision records), and the card edit that removes each unused permission.
//!
//! Pure: the caller passes the card, its text and the usage counts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ScopeCard;

/// One agent's review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentReview {
    pub agent: String,
    pub card_path: String,
    /// Tools the card grants (`server/name`), in card order.
    pub granted: Vec<String>,
    /// Granted tools with at least one proposed call in the window, and how many.
    pub used: Vec<(String, u64)>,
    /// Granted tools with no call in the window.
    pub unused: Vec<UnusedGrant>,
    /// Calls in the window to tools the card does not grant (all denied), by name.
    pub ungranted_attempts: Vec<(String, u64)>,
}

/// A permission nobody used, and how to remove it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnusedGrant {
    pub tool: String,
    /// 1-based line of the tool's `[[tools]]` header in the card.
    pub line: usize,
    /// The edit, in words: `agents/x.toml: delete the [[tools]] entry for `y` (line N)`.
    pub edit: String,
}

/// Review one agent. `usage` maps the tool as recorded (`server/name` when granted, else the
/// name the agent used) to its number of decision records in the window.
pub fn review_agent(
    card: &ScopeCard,
    card_text: &str,
    usage: &BTreeMap<String, u64>,
) -> AgentReview {
    let mut granted = Vec::new();
    let mut used = Vec::new();
    let mut unused = Vec::new();
    for grant in &card.tools {
        let q = grant.qualified().to_string();
        granted.push(q.clone());
        match usage.get(&q) {
            Some(n) if *n > 0 => used.push((q, *n)),
            _ => {
                let line = tools_header_line(card_text, grant.server_span);
                unused.push(UnusedGrant {
                    edit: format!(
                        "{}: delete the [[tools]] entry for `{}` (line {line})",
                        card.path, grant.name
                    ),
                    tool: q,
                    line,
                });
            }
        }
    }
    let ungranted_attempts = usage
        .iter()
        .filter(|(t, _)| !granted.contains(t))
        .map(|(t, n)| (t.clone(), *n))
        .collect();
    AgentReview {
        agent: card.id.clone(),
        card_path: card.path.clone(),
        granted,
        used,
        unused,
        ungranted_attempts,
    }
}

/// The line of the last `[[tools]]` header at or before byte `at` (1-based); the line of
/// `at` itself if none is found.
fn tools_header_line(text: &str, at: usize) -> usize {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let mut header = None;
    for (n, line) in before.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with("[[tools]]") {
            header = Some(n + 1);
        }
    }
    header.unwrap_or_else(|| before.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::tools_header_line;

    #[test]
    fn header_line() {
        let text = "a = 1\n\n[[tools]]\nserver = \"x\"\n[[tools]]\nserver = \"y\"\n";
        let at_x = text.find("\"x\"").unwrap_or(0);
        let at_y = text.find("\"y\"").unwrap_or(0);
        assert_eq!(tools_header_line(text, at_x), 3);
        assert_eq!(tools_header_line(text, at_y), 5);
    }
}
