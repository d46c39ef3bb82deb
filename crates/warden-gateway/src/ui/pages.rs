//! The pages' content: the login form, the queue with its filters, and a request's detail
//! page with the vote form. Every value is escaped by `maud`; nothing here is pre-escaped.

use maud::{html, Markup};
use serde_json::Value;
use warden_store::{ApprovalFilter, ApprovalRow};

use super::layout::message;

pub(super) fn login_form(error: Option<&str>, csrf: &str) -> Markup {
    html! {
        @if let Some(e) = error {
            (message(e, false))
        }
        form method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(csrf);
            label for="user" { "User name" }
            input #user name="user" autocomplete="username" required;
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required;
            label for="totp" { "One-time code (authenticator app)" }
            input #totp name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required;
            p { button type="submit" { "Log in" } }
        }
    }
}

/// The filter form and the table of requests.
pub(super) fn queue(filter: &ApprovalFilter, rows: &[ApprovalRow]) -> Markup {
    let selected = |v: &str| filter.state.as_deref() == Some(v);
    html! {
        form method="get" action="/ui/approvals" aria-label="Filter the queue" {
            label for="f-state" { "State" }
            select #f-state name="state" {
                option value="" { "any" }
                @for s in ["pending", "approved", "denied", "expired"] {
                    option value=(s) selected[selected(s)] { (s) }
                }
            }
            label for="f-agent" { "Agent" }
            input #f-agent name="agent" value=(filter.agent.as_deref().unwrap_or_default());
            label for="f-tool" { "Tool" }
            input #f-tool name="tool" value=(filter.tool.as_deref().unwrap_or_default());
            p { button type="submit" { "Filter" } }
        }
        table {
            caption { (rows.len()) " request(s)" }
            thead {
                tr {
                    @for h in ["Request", "State", "Agent", "Tool", "Tier", "Requested", "Expires"] {
                        th scope="col" { (h) }
                    }
                }
            }
            tbody {
                @for r in rows {
                    tr {
                        th scope="row" { a href={ "/ui/approvals/" (r.id) } { (r.id) } }
                        td { (r.state) }
                        td { (r.agent) }
                        td { (r.qualified_tool) }
                        td { (r.tier) }
                        td { (crate::identity::rfc3339(r.created_at)) }
                        td { (crate::identity::rfc3339(r.expires_at)) }
                    }
                }
            }
        }
    }
}

/// A JSON value as a table cell's text: strings as they are, `null` as a dash, anything else
/// as JSON.
fn opt(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One row of a two-column table: a heading cell and a value.
fn row(label: &str, v: &Value) -> Markup {
    html! { tr { th scope="row" { (label) } td { (opt(v)) } } }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The before-state → proposed change table: one row per field, matched by name.
fn diff_table(rows: &Value) -> Markup {
    let Some(rows) = rows.as_array().filter(|r| !r.is_empty()) else {
        return html! {};
    };
    let cell = |v: Option<&Value>| match v {
        None | Some(Value::Null) => html! { "—" },
        Some(v) => html! { code { (v.to_string()) } },
    };
    html! {
        h3 { "Before-state → proposed change" }
        table #diff {
            caption { "Fields of the before-state and the call's arguments, matched by name" }
            thead {
                tr {
                    @for h in ["Field", "Before", "Proposed", "Change"] {
                        th scope="col" { (h) }
                    }
                }
            }
            tbody {
                @for r in rows {
                    @let change = r.get("change").and_then(Value::as_str).unwrap_or_default();
                    tr class=(change) {
                        th scope="row" { (r.get("field").and_then(Value::as_str).unwrap_or_default()) }
                        td { (cell(r.get("before"))) }
                        td { (cell(r.get("proposed"))) }
                        td {
                            (match change {
                                "changes" => "changes",
                                "same" => "unchanged",
                                "kept" => "not in the call",
                                "new" => "only in the call",
                                other => other,
                            })
                        }
                    }
                }
            }
        }
    }
}

/// Where the before-state came from, when there is one.
fn provenance(d: &Value) -> Markup {
    if d.get("before_state_error").is_some_and(|e| !e.is_null()) {
        return html! {};
    }
    match d.get("before_state_source").and_then(Value::as_str) {
        Some("snapshot") => html! {
            p #before-state-source { "Read by Warden through the scope card's snapshot read, with Warden's credentials, when the call was held (redacted)." }
        },
        Some("caller") => html! {
            p #before-state-source { "Reported by the agent's framework; Warden did not read it." }
        },
        _ => html! {},
    }
}

/// The detail page's content: the call, what it will do, why it is held, what the agent saw
/// before, the votes, and (while pending) the vote form. `message` is the outcome of a vote
/// just cast: (text, accepted).
pub(super) fn detail(
    d: &Value,
    csrf: &str,
    id: &str,
    outcome: Option<(&str, bool)>,
    revealed: bool,
) -> Markup {
    let s = |k: &str| d.get(k).cloned().unwrap_or(Value::Null);
    let saw = s("what_the_agent_saw")
        .as_array()
        .cloned()
        .unwrap_or_default();
    let votes = s("signed_votes").as_array().cloned().unwrap_or_default();
    html! {
        @if let Some((m, ok)) = outcome {
            (message(m, ok))
        }
        section aria-labelledby="h-call" {
            h2 #h-call { "The call" }
            table {
                tbody {
                    tr { th scope="row" { "State" } td #state { (opt(&s("state"))) } }
                    (row("Outcome", &s("outcome")))
                    (row("Agent", &s("agent")))
                    (row("On behalf of", &s("on_behalf_of")))
                    tr { th scope="row" { "Tool" } td #tool { (opt(&s("qualified_tool"))) } }
                    (row("Upstream", &s("upstream")))
                    tr {
                        th scope="row" { "Tier" }
                        td { (opt(&s("tier"))) " (" (opt(&s("required_approvals"))) " approval(s) needed)" }
                    }
                    tr {
                        th scope="row" { "Argument hash (SHA-256, RFC 8785)" }
                        td { code { (opt(&s("arguments_hash"))) } }
                    }
                    (row("Correlation id", &s("correlation_id")))
                    (row("Session", &s("session")))
                    (row("Requested", &s("created_at")))
                    (row("Expires", &s("expires_at")))
                }
            }
        }
        section aria-labelledby="h-change" {
            h2 #h-change { "What it will do" }
            (diff_table(&s("before_state_diff")))
            div.cols {
                div {
                    h3 { "Before-state" }
                    (provenance(d))
                    @match (s("before_state"), s("before_state_error")) {
                        (_, Value::String(e)) => {
                            p #before-state-unavailable role="status" { "before-state unavailable: " (e) }
                        }
                        (Value::Null, _) => { p { "No before-state was read for this call." } }
                        (v, _) => { pre #before-state { (pretty(&v)) } }
                    }
                }
                div {
                    @if revealed {
                        h3 { "Arguments (exactly as proposed)" }
                        p #values-revealed role="status" { "Shown as the agent sent them; your view is recorded in the ledger." }
                    } @else {
                        h3 { "Arguments (redacted)" }
                        form method="post" action={ "/ui/approvals/" (id) "/reveal" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" #reveal { "Show the values as sent (recorded in the ledger)" }
                        }
                    }
                    pre #arguments { (pretty(&s("arguments"))) }
                }
            }
        }
        section aria-labelledby="h-reasons" {
            h2 #h-reasons { "Why it is held (policy reasons)" }
            ul #reasons {
                @for r in s("reasons").as_array().into_iter().flatten() {
                    li { (opt(r)) }
                }
            }
        }
        section aria-labelledby="h-saw" {
            h2 #h-saw { "What the agent saw before this call" }
            @if saw.is_empty() {
                p { "No earlier tool outputs in this session." }
            } @else {
                table #agent-saw {
                    thead {
                        tr {
                            @for h in ["Ledger #", "Time", "Tool", "Status", "Output (as recorded, redacted)"] {
                                th scope="col" { (h) }
                            }
                        }
                    }
                    tbody {
                        @for o in &saw {
                            @let g = |k: &str| o.get(k).cloned().unwrap_or(Value::Null);
                            tr {
                                td { (opt(&g("seq"))) }
                                td { (opt(&g("ts"))) }
                                td { (opt(&g("tool"))) }
                                td { (opt(&g("status"))) }
                                td { pre { (pretty(&g("output"))) } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="h-votes" {
            h2 #h-votes { "Votes" }
            @if votes.is_empty() {
                p { "No votes yet." }
            } @else {
                table #votes {
                    thead {
                        tr {
                            @for h in ["Approver", "Vote", "MFA verified at", "Key id", "Signature valid"] {
                                th scope="col" { (h) }
                            }
                        }
                    }
                    tbody {
                        @for v in &votes {
                            @let g = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
                            @let mfa_at = v
                                .get("mfa")
                                .and_then(|m| m.get("verified_at"))
                                .and_then(Value::as_i64)
                                .map(crate::identity::rfc3339)
                                .unwrap_or_default();
                            tr {
                                td { (opt(&g("approver"))) }
                                td { (opt(&g("verdict"))) }
                                td { (mfa_at) }
                                td { (opt(&g("key_id"))) }
                                td { (opt(&g("signature_valid"))) }
                            }
                        }
                    }
                }
            }
        }
        @if s("state").as_str() == Some("pending") {
            section aria-labelledby="h-decide" {
                h2 #h-decide { "Decide" }
                form method="post" action={ "/ui/approvals/" (id) "/vote" } {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="reason" { "Reason (required to deny, and for two-person approvals)" }
                    textarea #reason name="reason" rows="3" cols="60" maxlength="2000" {}
                    label for="step-up" { "One-time code (step-up; may be left empty if you logged in or verified a code in the last 5 minutes)" }
                    input #step-up name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}";
                    p {
                        button type="submit" name="action" value="approve" { "Approve" }
                        " "
                        button type="submit" name="action" value="deny" { "Deny" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLANTED: &str = "<script>alert(\"x\")</script>&";

    /// Every text, attribute and table cell gets the planted string: none of it comes out raw.
    #[test]
    fn planted_markup_never_comes_out_raw() {
        let d = json!({
            "state": "pending", "outcome": PLANTED, "agent": PLANTED, "on_behalf_of": PLANTED,
            "qualified_tool": PLANTED, "upstream": PLANTED, "tier": PLANTED,
            "required_approvals": PLANTED, "arguments_hash": PLANTED, "correlation_id": PLANTED,
            "session": PLANTED, "created_at": PLANTED, "expires_at": PLANTED,
            "arguments": {PLANTED: PLANTED},
            "before_state": {PLANTED: PLANTED}, "before_state_source": "caller",
            "before_state_diff": [{"field": PLANTED, "before": PLANTED, "proposed": PLANTED, "change": PLANTED}],
            "reasons": [PLANTED],
            "what_the_agent_saw": [{"seq": PLANTED, "ts": PLANTED, "tool": PLANTED, "status": PLANTED, "output": PLANTED}],
            "signed_votes": [{"approver": PLANTED, "verdict": PLANTED, "key_id": PLANTED, "signature_valid": PLANTED}],
        });
        let html = detail(&d, PLANTED, PLANTED, Some((PLANTED, false)), true).into_string();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert(\"x\")"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;"));
        assert!(
            html.contains(r#"action="/ui/approvals/&lt;script&gt;"#),
            "{html}"
        );
        let err = json!({"state": "approved", "before_state_error": PLANTED});
        let html = detail(&err, "", "id", None, false).into_string();
        assert!(!html.contains("<script"), "{html}");
        let filter = ApprovalFilter {
            agent: Some(PLANTED.into()),
            tool: Some(PLANTED.into()),
            ..ApprovalFilter::default()
        };
        let html = queue(&filter, &[]).into_string();
        assert!(!html.contains("<script"), "{html}");
        let html = login_form(Some(PLANTED), "0f").into_string();
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn the_queue_marks_the_chosen_state() {
        let filter = ApprovalFilter {
            state: Some("denied".into()),
            ..ApprovalFilter::default()
        };
        let html = queue(&filter, &[]).into_string();
        assert!(
            html.contains(r#"<option value="denied" selected>denied</option>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="pending">pending</option>"#),
            "{html}"
        );
        assert!(html.contains("<caption>0 request(s)</caption>"), "{html}");
    }
}
