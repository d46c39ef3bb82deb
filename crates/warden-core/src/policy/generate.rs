//! The Cedar policies generated from scope cards: the two built-in forbids, one `permit` per
//! tool grant (annotated with its approval tier), and the taint and egress guards of each grant.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::schema::quote;
use crate::scope_card::{Guard, OffList, ScopeCard, Tier, ToolGrant};

/// Every generated policy, one text each, in a fixed order: the built-in forbids, then per card
/// (by agent id) and per grant (in the card's order) the grant's permit and its guards.
pub(super) fn generated_policies(cards: &BTreeMap<String, ScopeCard>) -> Vec<String> {
    let mut out = Vec::new();
    out.push(
        "@id(\"warden/argument-constraints\")\n\
         @reason(\"the call's arguments break the argument constraints of the agent's scope card\")\n\
         forbid (principal, action, resource)\nwhen { !context.args_valid };\n"
            .to_string(),
    );
    out.push(
        "@id(\"warden/environment\")\n\
         @reason(\"the agent's scope card binds it to another environment than this gateway's\")\n\
         forbid (principal, action, resource)\nwhen { principal.environment != context.environment };\n"
            .to_string(),
    );
    for card in cards.values() {
        for t in &card.tools {
            let mut s = String::new();
            let _ = write!(
                s,
                "@id(\"card/{agent}/{action}\")\n@approval(\"{tier}\")\n\
                 @reason(\"scope card {path} grants {agent} {action} ({access}, {impact} impact, tier {tier})\")\n\
                 permit (\n  principal == Agent::{qa},\n  action == Action::{qact},\n  resource == Server::{qs}\n);\n",
                agent = card.id,
                tier = t.approval,
                path = card.path,
                action = t.qualified(),
                access = t.access.as_str(),
                impact = t.impact.as_str(),
                qa = quote(&card.id),
                qact = quote(t.qualified()),
                qs = quote(&t.server),
            );
            out.push(s);
            out.extend(guard_policies(card, t));
        }
    }
    out
}

/// Whether a policy id is one of the generated taint or egress guards (`card/…#…`).
pub(super) fn is_guard_id(id: &str) -> bool {
    id.starts_with("card/") && id.contains('#')
}

/// The taint and egress guards a card's tool grant compiles to.
fn guard_policies(card: &ScopeCard, t: &ToolGrant) -> Vec<String> {
    let mut out = Vec::new();
    let scope = format!(
        "(\n  principal == Agent::{},\n  action == Action::{},\n  resource == Server::{}\n)",
        quote(&card.id),
        quote(t.qualified()),
        quote(&t.server)
    );
    let mut guard = |suffix: &str, g: Guard, when: &str, why: &str, setting: &str| {
        let id = format!("card/{}/{}#{suffix}", card.id, t.qualified());
        let reason = format!(
            "{why}; scope card {} sets {setting} = \\\"{}\\\" for {}",
            card.path,
            g.as_str(),
            t.qualified()
        );
        match g.tier() {
            Some(Tier::Auto) => {}
            Some(tier) => out.push(format!(
                "@id(\"{id}\")\n@approval(\"{tier}\")\n@reason(\"{reason}\")\npermit {scope}\nwhen {{ {when} }};\n"
            )),
            None => out.push(format!(
                "@id(\"{id}\")\n@reason(\"{reason}\")\nforbid {scope}\nwhen {{ {when} }};\n"
            )),
        }
    };
    guard(
        "after-untrusted",
        t.after_untrusted,
        "context.taint != \"clean\"",
        "the session has read untrusted content",
        "after_untrusted",
    );
    guard(
        "after-suspicious",
        t.after_suspicious,
        "context.taint == \"suspicious\"",
        "the injection detector found instructions in content this session read",
        "after_suspicious",
    );
    guard(
        "untrusted-args",
        t.untrusted_args,
        "!context.untrusted_args.isEmpty()",
        "an argument value came from untrusted content, not from the user's request",
        "untrusted_args",
    );
    if let Some(e) = &t.egress {
        let off = "context.egress == \"off_list\"";
        let sensitive = if e.sensitive.is_empty() {
            "!context.read_classes.isEmpty()".to_string()
        } else {
            format!(
                "context.read_classes.containsAny([{}])",
                e.sensitive
                    .iter()
                    .map(|c| quote(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        match e.off_list {
            OffList::Deny => guard(
                "egress",
                Guard::Deny,
                off,
                "a destination is not on the tool's egress allowlist",
                "egress.off_list",
            ),
            OffList::Approve => guard(
                "egress",
                Guard::Approve,
                off,
                "a destination is not on the tool's egress allowlist",
                "egress.off_list",
            ),
            OffList::ApproveUnlessSensitive => {
                guard(
                    "egress",
                    Guard::Approve,
                    off,
                    "a destination is not on the tool's egress allowlist",
                    "egress.off_list",
                );
                guard(
                    "egress-sensitive",
                    Guard::Deny,
                    &format!("{off} && {sensitive}"),
                    "a destination is not on the tool's egress allowlist and the session has read sensitive data",
                    "egress.off_list",
                );
            }
        }
    }
    out
}
