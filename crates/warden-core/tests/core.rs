//! Golden and property tests of the decision core.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use serde_json::json;
use warden_core::example;
use warden_core::ledger::{
    seal, ChainVerifier, DecisionEvent, LedgerEvent, LedgerRecord, GENESIS_HASH,
};
use warden_core::project::{load_project, Project, ProjectSources};
use warden_core::{CallRequest, SourceFile};

/// A distinct stand-in key hash per agent (`check` refuses two agents with one key).
fn key_of(agent: &str) -> String {
    let hex: String = agent.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex:0<64}").chars().take(64).collect()
}

fn example_sources() -> ProjectSources {
    example::sources(key_of)
}

fn example_project() -> Project {
    load_project(&example_sources()).unwrap_or_else(|e| panic!("example project must load:\n{e}"))
}

fn decide(p: &Project, agent: &str, tool: &str, args: serde_json::Value) -> warden_core::Decision {
    p.policy.decide(&CallRequest {
        agent,
        tool,
        args: &args,
        session: Some("s-1"),
        correlation_id: Some("TICKET-1"),
    })
}

#[test]
fn compiled_cedar_policies_are_stable() {
    let p = example_project();
    insta::assert_snapshot!("generated_policies", p.policy.generated_text);
    insta::assert_snapshot!("generated_schema", p.policy.schema_text);
}

#[test]
fn decisions_and_their_reasons_are_stable() {
    let p = example_project();
    let cases = [
        (
            "support-triage",
            "get_ticket",
            json!({"ticket_id": "T-1001"}),
        ),
        (
            "support-triage",
            "list_tickets",
            json!({"status": "open", "limit": 10}),
        ),
        (
            "support-triage",
            "issue_refund",
            json!({"account_id": "ACC-0001", "amount": 20, "reason": "x"}),
        ),
        (
            "support-triage",
            "get_ticket",
            json!({"ticket_id": "1001; DROP"}),
        ),
        (
            "crm-writer",
            "update_account",
            json!({"account_id": "ACC-0002", "field": "tier", "value": "gold"}),
        ),
        (
            "crm-writer",
            "update_account",
            json!({"account_id": "ACC-0002", "field": "status", "value": "closed"}),
        ),
        (
            "crm-writer",
            "issue_refund",
            json!({"account_id": "ACC-0001", "amount": 120, "reason": "double charge"}),
        ),
        (
            "crm-writer",
            "issue_refund",
            json!({"account_id": "ACC-0001", "amount": 800, "reason": "annual plan"}),
        ),
        (
            "crm-writer",
            "issue_refund",
            json!({"account_id": "ACC-0001", "amount": 5000, "reason": "angry"}),
        ),
        (
            "crm-writer",
            "issue_refund",
            json!({"account_id": "ACC-0001", "reason": "no amount"}),
        ),
        (
            "crm-writer",
            "send_email",
            json!({"to": "ann@example.com", "subject": "hi", "body": "hello"}),
        ),
        (
            "crm-writer",
            "send_email",
            json!({"to": "x@attacker.example.net", "subject": "hi", "body": "b", "bcc": "y@evil.io"}),
        ),
        ("ghost-agent", "get_ticket", json!({})),
    ];
    let mut out = Vec::new();
    for (agent, tool, args) in cases {
        let mut d = decide(&p, agent, tool, args.clone());
        d.policy_version = "(version)".into();
        out.push(json!({"agent": agent, "tool": tool, "args": args, "decision": d}));
    }
    insta::assert_json_snapshot!("decisions", out);
}

#[test]
fn requests_built_for_cedar_conform_to_the_schema() {
    let p = example_project();
    for (agent, tool, args) in [
        (
            "crm-writer",
            "issue_refund",
            json!({"account_id": "ACC-0001", "amount": 120.5, "reason": "r"}),
        ),
        ("crm-writer", "issue_refund", json!({"reason": 7})),
        ("support-triage", "list_tickets", json!({})),
        (
            "crm-writer",
            "send_email",
            json!({"to": "a@example.com", "subject": "s", "body": "b"}),
        ),
    ] {
        p.policy
            .request_conforms(&CallRequest {
                agent,
                tool,
                args: &args,
                session: None,
                correlation_id: None,
            })
            .unwrap_or_else(|e| panic!("{agent} {tool}: {e}"));
    }
}

#[test]
fn policy_version_is_a_content_hash() {
    let a = example_project();
    let b = example_project();
    assert_eq!(a.policy.version, b.policy.version);
    let mut s = example_sources();
    s.policies[0]
        .text
        .push_str("\n// a comment changes the version\n");
    let c = load_project(&s).unwrap();
    assert_ne!(a.policy.version, c.policy.version);
}

fn card_error(card_text: &str) -> String {
    let mut s = example_sources();
    s.cards.push(SourceFile {
        path: "agents/broken.toml".into(),
        text: card_text.into(),
    });
    load_project(&s)
        .expect_err("card must be rejected")
        .to_string()
}

const GOOD_CARD: &str = r#"purpose = "test"
environment = "prod"
[owners]
product = "a"
security = "b"
on_call = "c"
[[tools]]
server = "helpdesk"
name = "get_ticket"
access = "read"
impact = "low"
approval = "auto"
[tools.args.ticket_id]
type = "string"
pattern = "T-[0-9]+"
"#;

#[test]
fn a_typod_key_is_located_with_a_hint() {
    let e = card_error(&GOOD_CARD.replace("purpose =", "purpse ="));
    assert!(
        e.starts_with("agents/broken.toml:1:1: error: unknown field `purpse`"),
        "{e}"
    );
    assert!(e.contains("did you mean `purpose`?"), "{e}");
}

#[test]
fn a_bad_regex_is_located_at_the_pattern() {
    let e = card_error(&GOOD_CARD.replace("T-[0-9]+", "T-[0-9+"));
    assert!(e.starts_with("agents/broken.toml:15:11: error: argument `ticket_id`: `pattern` is not a valid regular expression"), "{e}");
}

#[test]
fn an_unknown_tier_is_located_with_the_accepted_values() {
    let e = card_error(&GOOD_CARD.replace("approval = \"auto\"", "approval = \"sometimes\""));
    assert!(
        e.starts_with("agents/broken.toml:12:12: error: unknown variant `sometimes`"),
        "{e}"
    );
    assert!(
        e.contains("`auto`, `review`, `approve`, `two_person`"),
        "{e}"
    );
}

#[test]
fn an_unknown_server_is_located_with_a_suggestion() {
    let e = card_error(&GOOD_CARD.replace("server = \"helpdesk\"", "server = \"helpdsk\""));
    assert!(
        e.starts_with("agents/broken.toml:8:10: error: tool `get_ticket` names server `helpdsk`"),
        "{e}"
    );
    assert!(e.contains("did you mean `helpdesk`?"), "{e}");
}

fn with_card(card_text: &str) -> Project {
    let mut s = example_sources();
    s.cards.push(SourceFile {
        path: "agents/reader.toml".into(),
        text: card_text.into(),
    });
    load_project(&s).unwrap_or_else(|e| panic!("card must load:\n{e}"))
}

const READS: &str = r#"
[[resources]]
server = "helpdesk"
uri = "kb://articles/*"
[[resources]]
server = "helpdesk"
uri = "kb://policies/refunds"
[[prompts]]
server = "helpdesk"
name = "triage"
"#;

#[test]
fn resources_and_prompts_are_read_only_where_granted() {
    use warden_core::{ReadTarget, Verdict};
    let p = with_card(&format!("{GOOD_CARD}{READS}"));
    let read = |server, uri| {
        p.policy
            .decide_read("reader", &ReadTarget::Resource { server, uri })
    };
    let allowed = read("helpdesk", "kb://articles/42");
    assert_eq!(allowed.decision, Verdict::Allow);
    assert_eq!(allowed.policies, vec!["card/reader/resources".to_string()]);
    assert_eq!(
        read("helpdesk", "kb://policies/refunds").decision,
        Verdict::Allow
    );
    for (server, uri) in [
        ("helpdesk", "kb://policies/refunds-v2"), // exact grants are exact
        ("helpdesk", "kb://article"),             // not under the prefix
        ("crm", "kb://articles/42"),              // another server
    ] {
        let d = read(server, uri);
        assert_eq!(d.decision, Verdict::Deny, "{server} {uri}");
        assert!(
            d.reasons[0].contains("not on the scope card"),
            "{:?}",
            d.reasons
        );
    }
    let prompt = |name| {
        p.policy.decide_read(
            "reader",
            &ReadTarget::Prompt {
                server: "helpdesk",
                name,
            },
        )
    };
    assert_eq!(prompt("triage").decision, Verdict::Allow);
    assert_eq!(prompt("escalate").decision, Verdict::Deny);
    // Agents without grants read nothing; unknown agents neither.
    let none = p.policy.decide_read(
        "support-triage",
        &ReadTarget::Resource {
            server: "helpdesk",
            uri: "kb://articles/42",
        },
    );
    assert_eq!(none.decision, Verdict::Deny);
    assert_eq!(
        p.policy
            .decide_read(
                "nobody",
                &ReadTarget::Prompt {
                    server: "helpdesk",
                    name: "triage"
                }
            )
            .decision,
        Verdict::Deny
    );
}

#[test]
fn resource_grant_prefix_is_escaped_by_dot_segments_and_their_encodings() {
    use warden_core::{ReadTarget, Verdict};
    let p = with_card(&format!("{GOOD_CARD}{READS}"));
    for uri in [
        "kb://articles/../secrets/key.pem",
        "kb://articles/%2e%2e/secrets/key.pem",
        "kb://articles/..%2fsecrets/key.pem",
        "kb://articles/%252e%252e/secrets",
        "kb://articles/..\\secrets",
    ] {
        let d = p.policy.decide_read(
            "reader",
            &ReadTarget::Resource {
                server: "helpdesk",
                uri,
            },
        );
        assert_eq!(d.decision, Verdict::Deny, "{uri}");
        assert!(d.reasons[0].contains("path segment"), "{:?}", d.reasons);
        assert_eq!(d.policies, vec!["warden/resource-uri".to_string()]);
    }
}

#[test]
fn bad_resource_grants_are_located() {
    let e = card_error(&format!(
        "{GOOD_CARD}{}",
        READS.replace("kb://articles/*", "kb://*/x")
    ));
    assert!(
        e.contains("agents/broken.toml:19:7: error: resource uri `kb://*/x` is not valid"),
        "{e}"
    );
    assert!(e.contains("`*` may appear only at the end"), "{e}");
    let e = card_error(&format!(
        "{GOOD_CARD}{}",
        READS.replace(
            "server = \"helpdesk\"\nname = \"triage\"",
            "server = \"helpdsk\"\nname = \"triage\""
        )
    ));
    assert!(
        e.contains("prompt `triage` names server `helpdsk`, which is not an upstream"),
        "{e}"
    );
}

#[test]
fn a_policy_that_does_not_match_the_schema_is_located() {
    let mut s = example_sources();
    s.policies.push(SourceFile {
        path: "policies/bad.cedar".into(),
        text: "// x\npermit (principal, action == Action::\"payments/issue_refund\", resource)\nwhen { context.args.amout > 3 };\n".into(),
    });
    let e = load_project(&s).expect_err("must fail").to_string();
    assert!(e.starts_with("policies/bad.cedar:3:"), "{e}");
}

#[test]
fn a_cedar_syntax_error_is_located() {
    let mut s = example_sources();
    s.policies.push(SourceFile {
        path: "policies/bad.cedar".into(),
        text: "permit (principal, action, resource)\nwhen { ;\n".into(),
    });
    let e = load_project(&s).expect_err("must fail").to_string();
    assert!(e.starts_with("policies/bad.cedar:2:"), "{e}");
}

#[test]
fn forbid_wins_over_any_permit() {
    let mut s = example_sources();
    s.policies.push(SourceFile {
        path: "policies/lockdown.cedar".into(),
        text: "@id(\"no-mail\")\nforbid (principal, action == Action::\"mail/send_email\", resource);\n@id(\"mail-ok\")\npermit (principal, action == Action::\"mail/send_email\", resource);\n".into(),
    });
    let p = load_project(&s).unwrap();
    let d = decide(
        &p,
        "crm-writer",
        "send_email",
        json!({"to": "a@example.com", "subject": "s", "body": "b"}),
    );
    assert_eq!(d.decision, warden_core::Verdict::Deny);
    assert_eq!(d.policies, vec!["no-mail".to_string()]);
}

fn record(seq: u64, prev: &str, n: u8) -> LedgerRecord {
    let decision = decide(
        example_project_cached(),
        "support-triage",
        "get_ticket",
        json!({"ticket_id": "T-1001"}),
    );
    LedgerRecord {
        seq,
        prev_hash: prev.to_string(),
        ts: format!("2026-11-25T00:00:{:02}.000Z", n % 60),
        event: LedgerEvent::Decision(Box::new(DecisionEvent {
            decision_id: format!("d{n}"),
            agent: "support-triage".into(),
            environment: "prod".into(),
            tool: "get_ticket".into(),
            qualified_tool: Some("helpdesk/get_ticket".into()),
            arguments: json!({"ticket_id": format!("T-{n:04}")}),
            session: None,
            correlation_id: Some(format!("C-{n}")),
            source: "test".into(),
            mcp_request_id: None,
            user_request: None,
            approval_id: None,
            on_behalf_of: None,
            decision,
        })),
    }
}

fn example_project_cached() -> &'static Project {
    static P: std::sync::OnceLock<Project> = std::sync::OnceLock::new();
    P.get_or_init(example_project)
}

fn chain(ns: &[u8]) -> Vec<(i64, String, Vec<u8>)> {
    let mut prev = GENESIS_HASH.to_string();
    let mut rows = Vec::new();
    for (i, n) in ns.iter().enumerate() {
        let (json, hash) = seal(&record(i as u64 + 1, &prev, *n)).unwrap();
        rows.push((i as i64 + 1, hash.clone(), json.into_bytes()));
        prev = hash;
    }
    rows
}

fn verify(rows: &[(i64, String, Vec<u8>)]) -> Result<u64, u64> {
    let mut v = ChainVerifier::new();
    for (seq, hash, rec) in rows {
        v.push(*seq, hash, rec).map_err(|b| b.seq)?;
    }
    Ok(v.count())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_sequence_of_appends_verifies(ns in proptest::collection::vec(any::<u8>(), 0..40)) {
        let rows = chain(&ns);
        prop_assert_eq!(verify(&rows), Ok(ns.len() as u64));
    }

    #[test]
    fn any_single_changed_byte_is_detected(
        ns in proptest::collection::vec(any::<u8>(), 1..20),
        which in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        in_hash in any::<bool>(),
    ) {
        let mut rows = chain(&ns);
        let r = which.index(rows.len());
        let bad_seq = rows[r].0 as u64;
        if in_hash {
            let mut h = rows[r].1.clone().into_bytes();
            let i = pos.index(h.len());
            h[i] ^= flip;
            rows[r].1 = String::from_utf8_lossy(&h).into_owned();
        } else {
            let i = pos.index(rows[r].2.len());
            rows[r].2[i] ^= flip;
        }
        let result = verify(&rows);
        // A changed hash of the last record is caught at that record (content no longer
        // matches); any other change is caught at the changed record.
        prop_assert_eq!(result, Err(bad_seq));
    }

    #[test]
    fn a_removed_record_is_detected(ns in proptest::collection::vec(any::<u8>(), 3..20), which in any::<prop::sample::Index>()) {
        let mut rows = chain(&ns);
        let r = which.index(rows.len() - 2) ;
        let removed = rows.remove(r).0 as u64;
        prop_assert_eq!(verify(&rows), Err(removed));
    }
}

/// Regression: hex decoding accepts upper case, so `a` → `A` in a stored hash once compared
/// equal. Any changed byte must break the chain.
#[test]
fn upper_casing_a_stored_hash_is_detected() {
    let mut rows = chain(&[1, 2, 3]);
    let h = rows[1].1.clone();
    let i = h
        .find(|c: char| c.is_ascii_lowercase())
        .expect("a hash has a letter");
    let mut bytes = h.into_bytes();
    bytes[i] = bytes[i].to_ascii_uppercase();
    rows[1].1 = String::from_utf8(bytes).unwrap();
    assert_eq!(verify(&rows), Err(2));
}

#[test]
fn an_agent_bound_to_another_environment_is_denied() {
    let mut s = example_sources();
    let card = s
        .cards
        .iter_mut()
        .find(|c| c.path.ends_with("support-triage.toml"))
        .unwrap();
    card.text = card
        .text
        .replace("environment = \"prod\"", "environment = \"dev\"");
    let p = load_project(&s).unwrap();
    assert!(
        p.policy
            .warnings
            .iter()
            .any(|w| w.contains("bound to `dev`")),
        "{:?}",
        p.policy.warnings
    );
    let d = decide(
        &p,
        "support-triage",
        "get_ticket",
        json!({"ticket_id": "T-1001"}),
    );
    assert_eq!(d.decision, warden_core::Verdict::Deny);
    assert_eq!(d.policies, vec!["warden/environment".to_string()]);
}

/// A card with a write tool whose snapshot read is `get_order` on the same server.
const SNAPSHOT_CARD: &str = r#"purpose = "test"
environment = "prod"
[owners]
product = "a"
security = "b"
on_call = "c"
[[tools]]
server = "payments"
name = "get_order"
access = "read"
impact = "low"
approval = "auto"
[tools.args.order_id]
type = "string"
required = true
[[tools]]
server = "payments"
name = "refund_order"
access = "write"
impact = "high"
approval = "approve"
snapshot = { tool = "get_order", args = { order_id = "$order_id" } }
[tools.args.order_id]
type = "string"
required = true
[tools.args.amount]
type = "number"
"#;

#[test]
fn a_snapshot_read_is_compiled_into_the_grant_and_templated() {
    let p = with_card(SNAPSHOT_CARD);
    let card = p.policy.cards.get("reader").unwrap();
    let snap = card
        .tool("payments/refund_order")
        .unwrap()
        .snapshot
        .clone()
        .expect("snapshot");
    assert_eq!(snap.qualified, "payments/get_order");
    assert_eq!(
        snap.arguments(&json!({"order_id": "O-7", "amount": 3}))
            .unwrap(),
        json!({"order_id": "O-7"})
    );
    assert!(snap.arguments(&json!({"amount": 3})).is_err());
    // `$$` is a literal dollar sign.
    let p = with_card(&SNAPSHOT_CARD.replace(
        "args = { order_id = \"$order_id\" }",
        "args = { order_id = \"$$5\" }",
    ));
    let snap = p.policy.cards.get("reader").unwrap().tools[1]
        .snapshot
        .clone()
        .unwrap();
    assert_eq!(
        snap.arguments(&json!({})).unwrap(),
        json!({"order_id": "$5"})
    );
}

#[test]
fn bad_snapshot_reads_are_located() {
    // Not granted on the card (a near name is suggested).
    let e = card_error(&SNAPSHOT_CARD.replace("tool = \"get_order\"", "tool = \"get_ordr\""));
    assert!(
        e.contains("agents/broken.toml:22:21: error: snapshot read `payments/get_ordr` is not granted on this card"),
        "{e}"
    );
    assert!(e.contains("did you mean `get_order`?"), "{e}");
    // A write tool is no snapshot read.
    let e = card_error(&SNAPSHOT_CARD.replacen("access = \"read\"", "access = \"write\"", 1));
    assert!(
        e.contains("agents/broken.toml:22:21: error: snapshot read `payments/get_order` must be a `read` tool"),
        "{e}"
    );
    // `$name` must be an argument of the held call.
    let e = card_error(&SNAPSHOT_CARD.replace("\"$order_id\"", "\"$ordr_id\""));
    assert!(
        e.contains("agents/broken.toml:22:54: error: `$ordr_id`: tool `refund_order` has no argument `ordr_id`"),
        "{e}"
    );
    assert!(e.contains("did you mean `$order_id`?"), "{e}");
    // The read tool must take the argument, and gets its required ones.
    let e = card_error(&SNAPSHOT_CARD.replace("args = { order_id =", "args = { id ="));
    assert!(
        e.contains("agents/broken.toml:22:48: error: snapshot read `payments/get_order` takes no argument `id`"),
        "{e}"
    );
    assert!(
        e.contains("snapshot read `payments/get_order` needs its required argument `order_id`"),
        "{e}"
    );
    // Only write tools have a before-state.
    let read_only = SNAPSHOT_CARD.replace(
        "name = \"refund_order\"\naccess = \"write\"",
        "name = \"refund_order\"\naccess = \"read\"",
    );
    let e = card_error(&read_only);
    assert!(
        e.contains(
            "agents/broken.toml:22:21: error: tool `refund_order`: `snapshot` is for `write` tools"
        ),
        "{e}"
    );
    // Unknown keys inside `snapshot` are refused like anywhere else.
    let e = card_error(&SNAPSHOT_CARD.replace("args = {", "arg = {"));
    assert!(e.contains("unknown field `arg`"), "{e}");
}

fn with_policy(text: &str) -> Result<Project, String> {
    let mut s = example_sources();
    s.policies.push(SourceFile {
        path: "policies/auto.cedar".into(),
        text: text.into(),
    });
    load_project(&s).map_err(|e| e.to_string())
}

#[test]
fn an_explicit_auto_approve_policy_lowers_approve_to_review_and_says_so() {
    let p = with_policy(
        "@id(\"small-refunds-run\")\n@auto_approve(\"refunds of 20 or less are low risk (finance FIN-9)\")\npermit (principal == Agent::\"crm-writer\", action == Action::\"payments/issue_refund\", resource)\nwhen { context.args.amount.lessThanOrEqual(decimal(\"20.0\")) };\n",
    )
    .unwrap();
    let small = decide(
        &p,
        "crm-writer",
        "issue_refund",
        json!({"account_id": "ACC-0001", "amount": 15, "reason": "late delivery"}),
    );
    assert_eq!(small.decision, warden_core::Verdict::Allow, "{small:?}");
    assert_eq!(small.tier, warden_core::Tier::Review);
    assert!(
        small.policies.iter().any(|id| id == "small-refunds-run"),
        "{small:?}"
    );
    assert!(
        small
            .reasons
            .iter()
            .any(|r| r.starts_with("auto-approved by explicit policy `small-refunds-run`")),
        "{:?}",
        small.reasons
    );
    let large = decide(
        &p,
        "crm-writer",
        "issue_refund",
        json!({"account_id": "ACC-0001", "amount": 120, "reason": "late delivery"}),
    );
    assert_eq!(large.decision, warden_core::Verdict::ApprovalRequired);
    // Two-person refunds are never lowered.
    let huge = decide(
        &p,
        "crm-writer",
        "issue_refund",
        json!({"account_id": "ACC-0001", "amount": 900, "reason": "annual plan"}),
    );
    assert_eq!(huge.tier, warden_core::Tier::TwoPerson, "{huge:?}");
}

#[test]
fn auto_approve_on_a_forbid_or_with_approval_is_a_located_error() {
    let e = with_policy(
        "@id(\"x\")\n@auto_approve(\"why\")\nforbid (principal, action == Action::\"payments/issue_refund\", resource);\n",
    )
    .unwrap_err();
    assert!(
        e.contains("policies/auto.cedar:1:1: error: policy `x`: @auto_approve on a forbid"),
        "{e}"
    );
    let e = with_policy(
        "@id(\"y\")\n@approval(\"approve\")\n@auto_approve(\"why\")\npermit (principal, action == Action::\"payments/issue_refund\", resource);\n",
    )
    .unwrap_err();
    assert!(e.contains("contradict"), "{e}");
}

#[test]
fn two_agents_sharing_one_static_key_hash_are_refused_with_the_line() {
    // Before: accepted, and authentication silently picked one of the two agents.
    let s = example::sources(|_| "ab".repeat(32));
    let e = load_project(&s).expect_err("a shared key").to_string();
    assert!(e.contains("has the same key as agent"), "{e}");
    let line = s
        .config
        .text
        .lines()
        .position(|l| l.contains(&"ab".repeat(32)))
        .unwrap();
    // support-triage's line (crm-writer comes first by name, so it keeps the key).
    assert!(e.contains(&format!("warden.toml:{}:", line + 1)), "{e}");
    assert!(
        e.contains("agent `support-triage` has the same key as agent `crm-writer`"),
        "{e}"
    );
}

#[test]
fn regions_must_each_have_their_own_store_and_a_card_must_name_a_declared_one() {
    let mut s = example_sources();
    s.config.text.push_str(
        "\n[regions.eu]\nurl = \"sqlite://eu.db\"\n[regions.us]\nurl = \"sqlite://eu.db\"\n",
    );
    let e = load_project(&s).expect_err("a shared store").to_string();
    assert!(
        e.contains("[regions.us] url `sqlite://eu.db` is also [regions.eu]'s store"),
        "{e}"
    );
    let line = s.config.text.lines().count();
    assert!(e.contains(&format!("warden.toml:{line}:7:")), "{e}");

    let mut s = example_sources();
    s.config
        .text
        .push_str("\n[regions.eu]\nurl = \"sqlite://eu.db\"\n");
    s.cards.push(SourceFile {
        path: "agents/broken.toml".into(),
        text: format!("region = \"us\"\n{GOOD_CARD}"),
    });
    let e = load_project(&s)
        .expect_err("an undeclared region")
        .to_string();
    assert!(
        e.contains(
            "agents/broken.toml:1:10: error: region `us` is not declared in warden.toml [regions]"
        ),
        "{e}"
    );
    s.cards.last_mut().unwrap().text = format!("region = \"eu\"\n{GOOD_CARD}");
    let p = load_project(&s).unwrap();
    assert_eq!(p.policy.cards["broken"].region.as_deref(), Some("eu"));
    let mut config = p.config.clone();
    config.select_region("eu").unwrap();
    assert_eq!(config.store.url, "sqlite://eu.db");
    assert_eq!(config.ledger.key_file, ".warden/ledger-eu.key");
    assert!(config
        .select_region("mars")
        .unwrap_err()
        .contains("regions: eu"));
}

#[test]
fn data_classes_in_retention_not_stored_keep_only_an_hmac_of_payloads() {
    let mut s = example_sources();
    s.config.text = s.config.text.replacen(
        "[retention]\n",
        "[retention]\nnot_stored = [\"support_tickets\"]\n",
        1,
    );
    let p = load_project(&s).unwrap();
    let redactor = warden_core::redact::Redactor::new(&[7u8; 32])
        .unwrap()
        .with_withholding(warden_core::redact::Withholding::from_cards(
            p.policy.cards.values(),
            &p.config.retention.not_stored(),
        ));
    let event = |agent: &str| -> warden_core::ledger::LedgerEvent {
        serde_json::from_value(serde_json::json!({
            "kind": "decision", "decision_id": "d-1", "agent": agent, "environment": "prod",
            "tool": "get_account", "qualified_tool": "crm/get_account",
            "arguments": {"account_id": "ACC-0417"}, "session": null, "correlation_id": null,
            "source": "api",
            "decision": {"decision": "allow", "tier": "auto", "reasons": [], "policies": [],
                         "violations": [], "tool": "crm/get_account", "policy_version": "v"}
        }))
        .unwrap()
    };
    let mut stats = warden_core::redact::RedactionStats::default();
    // support-triage's card carries the class: its payloads are withheld.
    let mut e = event("support-triage");
    redactor.redact_event(&mut e, &mut stats);
    let text = serde_json::to_string(&e).unwrap();
    assert!(!text.contains("ACC-0417"), "{text}");
    assert!(
        text.contains("data class `support_tickets` is not stored ([retention] not_stored)"),
        "{text}"
    );
    assert!(text.contains("\"hmac8\""), "{text}");
    // crm-writer's card does not: its arguments are kept (redacted, and this id is no secret).
    let mut e = event("crm-writer");
    redactor.redact_event(&mut e, &mut stats);
    assert!(serde_json::to_string(&e).unwrap().contains("ACC-0417"));
    // A class name that is not one is a located error.
    let mut bad = example_sources();
    bad.config.text = bad.config.text.replacen(
        "[retention]\n",
        "[retention]\nnot_stored = [\"bad class\"]\n",
        1,
    );
    let e = load_project(&bad).expect_err("bad class").to_string();
    assert!(
        e.contains("[retention] not_stored: `bad class` is not a data class name"),
        "{e}"
    );
}
