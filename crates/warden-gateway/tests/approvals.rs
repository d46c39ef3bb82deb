//! Human approvals through the router (no socket), with a movable clock: held calls become
//! requests, people vote (session + CSRF + recent TOTP), votes are signed ledger records, and an
//! approval runs exactly one call with exactly the approved arguments.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use warden_core::approval::verify_vote;
use warden_core::ledger::LedgerEvent;
use warden_gateway::app;
use warden_gateway::logins::Role;

use common::*;

fn refund(amount: f64) -> Value {
    json!({"account_id": "ACC-0001", "amount": amount, "reason": "charged twice"})
}

async fn held(e: &Env, token: &str, args: Value) -> String {
    let r = e
        .propose(token, json!({"tool": "issue_refund", "arguments": args, "session": "s-1", "on_behalf_of": "olivia"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.body["decision"], "approval_required", "{}", r.raw);
    assert_eq!(r.body["approval"]["state"], "pending");
    r.body["approval"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn approved_call_runs_once_with_the_same_arguments_and_the_vote_is_signed() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;

    // Not approved yet: executing is refused.
    let early = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(early.body["decision"], "deny", "{}", early.raw);

    let v = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.raw);
    assert_eq!(v.body["state"], "approved");
    let polled = e.poll(&token, &id).await;
    assert_eq!(
        polled.body["approval"]["state"], "approved",
        "{}",
        polled.raw
    );

    let run = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "allow", "{}", run.raw);
    assert!(run.body["policies"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "warden/approval"));

    // Replay: the same approval id for the same call, or for another call, is refused.
    let replay = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(replay.body["decision"], "deny", "{}", replay.raw);
    assert!(replay.raw.contains("already used"), "{}", replay.raw);

    // The ledger: proposal → signed vote (approver, MFA) → execution bound to the approval.
    let records = e.store.ledger().records_of_decision(&id).await.unwrap();
    let vote = records
        .iter()
        .find_map(|r| match &r.record.event {
            LedgerEvent::ApprovalVote(v) => Some(v.clone()),
            _ => None,
        })
        .expect("a vote record");
    assert_eq!(vote.vote.statement.approver, "ann");
    assert!(vote.vote.statement.mfa.verified);
    // Signed with the ledger's key: the one that signs checkpoints.
    assert_eq!(vote.vote.statement.key_name, "test.example/ledger");
    assert!(verify_vote(&vote.vote, &e.signer.verifier()));
    let mut forged = vote.vote.clone();
    forged.statement.approver = "mallory".into();
    assert!(!verify_vote(&forged, &e.signer.verifier()));
    let key = send(
        &e.state,
        Request::get("/v1/approvals/key")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(key.body["verifier_key"], e.signer.verifier().to_vkey());
    let tail = e.store.ledger().tail(50).await.unwrap();
    let exec = tail.iter().find(|r| matches!(&r.record.event, LedgerEvent::Decision(d) if d.approval_id.as_deref() == Some(id.as_str()) && d.decision.decision == warden_core::Verdict::Allow));
    assert!(exec.is_some(), "the execution decision names the approval");
    assert!(e
        .store
        .ledger()
        .verify(Box::new(|_| {}))
        .await
        .unwrap()
        .first_break
        .is_none());
}

#[tokio::test]
async fn changed_arguments_need_a_new_approval() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    assert_eq!(
        e.vote(&ann, &id, "approve", json!({}), true).await.status,
        StatusCode::OK
    );
    let changed = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(99.0), "approval_id": id}),
        )
        .await;
    assert_eq!(changed.body["decision"], "deny", "{}", changed.raw);
    assert!(changed.raw.contains("new approval"), "{}", changed.raw);
    // Member order does not matter (canonical JSON): the approved call still runs.
    let same = e
        .propose(&token, json!({"tool": "issue_refund", "arguments": {"reason": "charged twice", "amount": 49.5, "account_id": "ACC-0001"}, "approval_id": id}))
        .await;
    assert_eq!(same.body["decision"], "allow", "{}", same.raw);
}

#[tokio::test]
async fn an_approval_cannot_be_used_by_another_agent_or_tool() {
    let e = setup("").await;
    let crm = e.agent_token("crm-writer").await;
    let triage = e.agent_token("support-triage").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &crm, refund(49.5)).await;
    assert_eq!(
        e.vote(&ann, &id, "approve", json!({}), true).await.status,
        StatusCode::OK
    );
    let other = e
        .propose(
            &triage,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_ne!(other.body["decision"], "allow", "{}", other.raw);
    // The owner can still use it once.
    let run = e
        .propose(
            &crm,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "allow", "{}", run.raw);
}

#[tokio::test]
async fn expiry_is_an_explicit_outcome_recorded_and_returned() {
    let e = setup("\n[approvals]\nexpiry_secs = 600\n").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    e.advance(601);
    let polled = e.poll(&token, &id).await;
    assert_eq!(
        polled.body["approval"]["state"], "expired",
        "{}",
        polled.raw
    );
    assert_eq!(polled.body["approval"]["outcome"], "expired, not approved");
    let records = e.store.ledger().records_of_decision(&id).await.unwrap();
    assert!(records.iter().any(|r| matches!(&r.record.event, LedgerEvent::ApprovalExpired(x) if x.outcome == "expired, not approved")));
    // Nobody can approve it any more, and it cannot be executed.
    let late = e
        .vote(
            &ann,
            &id,
            "approve",
            json!({"totp": code_at(&ann.seed, e.now())}),
            true,
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.raw);
    let run = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "deny");
    assert!(run.raw.contains("expired, not approved"), "{}", run.raw);
}

#[tokio::test]
async fn self_approval_is_refused() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let olivia = e.person("olivia", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await; // on behalf of olivia
    let r = e.vote(&olivia, &id, "approve", json!({}), true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    assert!(r.raw.contains("self_approval"), "{}", r.raw);
    // Where not configured, the same vote counts.
    let e2 = setup("\n[approvals]\nforbid_self_approval = false\n").await;
    let token2 = e2.agent_token("crm-writer").await;
    let olivia2 = e2.person("olivia", Role::Approver).await;
    let id2 = held(&e2, &token2, refund(49.5)).await;
    let ok = e2.vote(&olivia2, &id2, "approve", json!({}), true).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
}

#[tokio::test]
async fn two_person_needs_two_distinct_people_and_reasons() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let bob = e.person("bob", Role::Approver).await;
    let id = held(&e, &token, refund(800.0)).await;
    let no_reason = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(
        no_reason.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_reason.raw
    );
    let first = e
        .vote(
            &ann,
            &id,
            "approve",
            json!({"reason": "customer verified"}),
            true,
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.raw);
    assert_eq!(first.body["state"], "pending");
    let again = e
        .vote(&ann, &id, "approve", json!({"reason": "me again"}), true)
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.raw);
    let early = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(800.0), "approval_id": id}),
        )
        .await;
    assert_eq!(early.body["decision"], "deny", "one approval is not enough");
    let second = e
        .vote(&bob, &id, "approve", json!({"reason": "finance ok"}), true)
        .await;
    assert_eq!(second.body["state"], "approved", "{}", second.raw);
    let run = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(800.0), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "allow", "{}", run.raw);
}

#[tokio::test]
async fn approval_without_recent_mfa_is_refused() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    e.advance(301); // login TOTP now older than 5 minutes
    let stale = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "{}", stale.raw);
    assert!(stale.raw.contains("mfa_required"), "{}", stale.raw);
    let wrong = e
        .vote(&ann, &id, "approve", json!({"totp": "000000"}), true)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.raw);
    let fresh = e
        .vote(
            &ann,
            &id,
            "approve",
            json!({"totp": code_at(&ann.seed, e.now())}),
            true,
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.raw);
    let records = e.store.ledger().records_of_decision(&id).await.unwrap();
    let mfa_at = records.iter().find_map(|r| match &r.record.event {
        LedgerEvent::ApprovalVote(v) => Some(v.vote.statement.mfa.verified_at),
        _ => None,
    });
    assert_eq!(mfa_at, Some(e.now()), "the vote carries the step-up time");
}

#[tokio::test]
async fn missing_csrf_token_is_refused() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    let r = e.vote(&ann, &id, "approve", json!({}), false).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    assert!(r.raw.contains("csrf"), "{}", r.raw);
    // The UI form post without its hidden token is refused the same way.
    let form = send(
        &e.state,
        Request::post(format!("/ui/approvals/{id}/vote"))
            .header("cookie", &ann.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("action=approve&reason=ok"))
            .unwrap(),
    )
    .await;
    assert_eq!(form.status, StatusCode::FORBIDDEN, "{}", form.raw);
    let still = e.store.approvals().approval(&id).await.unwrap().unwrap();
    assert_eq!(still.state, "pending");
    assert!(e
        .store
        .approvals()
        .approval_votes(&id)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn denial_reaches_the_agent_with_its_reason() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    let no_reason = e.vote(&ann, &id, "deny", json!({}), true).await;
    assert_eq!(no_reason.status, StatusCode::BAD_REQUEST);
    let d = e
        .vote(
            &ann,
            &id,
            "deny",
            json!({"reason": "duplicate of refund R-17"}),
            true,
        )
        .await;
    assert_eq!(d.body["state"], "denied", "{}", d.raw);
    let polled = e.poll(&token, &id).await;
    assert_eq!(polled.body["approval"]["state"], "denied");
    assert!(polled.raw.contains("duplicate of refund R-17"));
    // An auditor may look but not vote.
    let aud = e.person("audrey", Role::Auditor).await;
    let id2 = held(&e, &token, refund(12.0)).await;
    let r = e.vote(&aud, &id2, "approve", json!({}), true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    let list = send(
        &e.state,
        Request::get("/v1/approvals?state=pending")
            .header("cookie", &aud.cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.raw);
    assert_eq!(list.body["approvals"].as_array().unwrap().len(), 1);
    let _ = &ann.name;
}

#[tokio::test]
async fn ui_pages_escape_and_show_what_the_agent_saw() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    // An earlier call in the session and its (untrusted) output.
    let read = e
        .propose(&token, json!({"tool": "get_account", "arguments": {"account_id": "ACC-0001"}, "session": "s-1"}))
        .await;
    let rid = read.body["id"].as_str().unwrap();
    let out = send(
        &e.state,
        Request::post(format!("/v1/decisions/{rid}/outcome"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(json!({"status": "success", "output": {"note": "<script>alert(1)</script> refund me"}}).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.raw);
    let r = e
        .propose(&token, json!({"tool": "issue_refund", "arguments": refund(49.5), "session": "s-1", "before_state": {"balance": 120}}))
        .await;
    let id = r.body["approval"]["id"].as_str().unwrap().to_string();
    let page = send(
        &e.state,
        Request::get(format!("/ui/approvals/{id}"))
            .header(
                "cookie",
                format!("{}; warden_csrf={}", ann.cookie, ann.csrf),
            )
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.raw.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.raw.contains("<script>"));
    assert!(
        page.raw.contains("&quot;balance&quot;: 120"),
        "{}",
        page.raw
    );
    assert!(page.raw.contains(&format!("value=\"{}\"", ann.csrf)));
    // Without a session the UI sends people to the login page.
    let anon = app(e.state.clone())
        .oneshot(Request::get("/ui/approvals").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(anon.headers()["location"], "/ui/login");
}

/// The example card with a snapshot read on `issue_refund`: `payments/get_balance` (a read
/// tool on the same upstream, granted on the card) with the held call's `account_id`.
fn with_snapshot(card: &str) -> String {
    let held =
        "name = \"issue_refund\"\naccess = \"write\"\nimpact = \"high\"\napproval = \"approve\"\n";
    assert!(card.contains(held), "the example card changed");
    let mut out = card.replace(
        held,
        &format!("{held}snapshot = {{ tool = \"get_balance\", args = {{ account_id = \"$account_id\" }} }}\n"),
    );
    out.push_str(
        "\n[[tools]]\nserver = \"payments\"\nname = \"get_balance\"\naccess = \"read\"\nimpact = \"low\"\napproval = \"auto\"\n[tools.args.account_id]\ntype = \"string\"\nrequired = true\npattern = \"ACC-[0-9]{4}\"\n",
    );
    out
}

async fn show(e: &Env, p: &Person, id: &str) -> Resp {
    send(
        &e.state,
        Request::get(format!("/v1/approvals/{id}"))
            .header("cookie", &p.cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn ui_page(e: &Env, p: &Person, id: &str) -> Resp {
    send(
        &e.state,
        Request::get(format!("/ui/approvals/{id}"))
            .header("cookie", format!("{}; warden_csrf={}", p.cookie, p.csrf))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_failed_snapshot_read_still_holds_the_call_and_says_why() {
    // No upstream is connected to this gateway, so the configured read cannot run.
    let e = setup_with("", with_snapshot).await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    // What the caller reports does not replace a configured snapshot read.
    let r = e
        .propose(&token, json!({"tool": "issue_refund", "arguments": refund(49.5), "session": "s-1", "before_state": {"balance_eur": 1_000_000}}))
        .await;
    assert_eq!(r.body["decision"], "approval_required", "{}", r.raw);
    let id = r.body["approval"]["id"].as_str().unwrap().to_string();
    let d = show(&e, &ann, &id).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.raw);
    assert_eq!(d.body["state"], "pending");
    assert_eq!(d.body["before_state"], Value::Null, "{}", d.raw);
    assert_eq!(d.body["before_state_source"], "snapshot");
    assert!(
        d.body["before_state_error"]
            .as_str()
            .unwrap()
            .contains("upstream `payments` is not connected"),
        "{}",
        d.raw
    );
    let page = ui_page(&e, &ann, &id).await;
    assert!(
        page.raw
            .contains("before-state unavailable: upstream `payments` is not connected"),
        "{}",
        page.raw
    );
    assert!(
        !page.raw.contains("1000000"),
        "the caller's report is not shown"
    );
    // The read is in the ledger, after the proposal, with its arguments and why it failed.
    let records = e.store.ledger().records_of_decision(&id).await.unwrap();
    let kinds: Vec<&str> = records.iter().map(|r| r.record.event.kind()).collect();
    assert_eq!(kinds, vec!["decision", "snapshot_read"], "{kinds:?}");
    let LedgerEvent::SnapshotRead(read) = &records[1].record.event else {
        panic!("not a snapshot read");
    };
    assert_eq!(read.tool, "payments/get_balance");
    assert_eq!(read.arguments, json!({"account_id": "ACC-0001"}));
    assert_eq!(read.status, "error");
    assert!(read.error.as_deref().unwrap().contains("not connected"));
    // The request can be decided as usual.
    let v = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(v.body["state"], "approved", "{}", v.raw);
}

#[tokio::test]
async fn a_reported_before_state_is_labelled_and_redacted_and_diffed() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    let r = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "session": "s-1",
            "before_state": {"account_id": "ACC-0001", "balance_eur": 120, "api_key": secret}}),
        )
        .await;
    let id = r.body["approval"]["id"].as_str().unwrap().to_string();
    let d = show(&e, &ann, &id).await;
    assert_eq!(d.body["before_state_source"], "caller", "{}", d.raw);
    assert!(!d.raw.contains(secret), "{}", d.raw);
    let diff = d.body["before_state_diff"].as_array().unwrap();
    let row = |f: &str| diff.iter().find(|r| r["field"] == f).unwrap().clone();
    assert_eq!(row("account_id")["change"], "same");
    assert_eq!(row("balance_eur")["change"], "kept");
    assert_eq!(row("amount")["change"], "new");
    assert_eq!(row("amount")["proposed"], 49.5);
    let page = ui_page(&e, &ann, &id).await;
    assert!(page.raw.contains(r#"<table id="diff">"#), "{}", page.raw);
    assert!(page.raw.contains("Reported by the agent"), "{}", page.raw);
}

#[tokio::test]
async fn owners_and_the_requesting_principal_cannot_approve() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    // The card's [owners] product is crm-product@example.com.
    let owner = e.person("crm-product@example.com", Role::Approver).await;
    let principal = e.person("CRM-Writer", Role::Approver).await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    let r = e.vote(&owner, &id, "approve", json!({}), true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    assert!(
        r.raw.contains("self_approval") && r.raw.contains("owner"),
        "{}",
        r.raw
    );
    let r = e.vote(&principal, &id, "approve", json!({}), true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    assert!(r.raw.contains("requesting principal"), "{}", r.raw);
    assert!(e
        .store
        .approvals()
        .approval_votes(&id)
        .await
        .unwrap()
        .is_empty());
    let ok = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(ok.body["state"], "approved", "{}", ok.raw);

    // Without forbid_self_approval an owner may vote; the requesting principal never may.
    let e2 = setup("\n[approvals]\nforbid_self_approval = false\n").await;
    let token2 = e2.agent_token("crm-writer").await;
    let owner2 = e2.person("crm-product@example.com", Role::Approver).await;
    let principal2 = e2.person("crm-writer", Role::Approver).await;
    let id2 = held(&e2, &token2, refund(49.5)).await;
    let r = e2.vote(&principal2, &id2, "approve", json!({}), true).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.raw);
    let ok = e2.vote(&owner2, &id2, "approve", json!({}), true).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.raw);
}

#[tokio::test]
async fn malformed_vote_bodies_and_forms_are_refused_without_a_vote() {
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    let extra = e
        .vote(&ann, &id, "approve", json!({"approver": "bob"}), true)
        .await;
    assert_eq!(extra.status, StatusCode::BAD_REQUEST, "{}", extra.raw);
    // Two actions in one form: ambiguous, refused before anything is checked or counted.
    let form = send(
        &e.state,
        Request::post(format!("/ui/approvals/{id}/vote"))
            .header("cookie", &ann.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "csrf={}&action=deny&action=approve&reason=x",
                ann.csrf
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(form.status, StatusCode::BAD_REQUEST, "{}", form.raw);
    assert!(form.raw.contains("repeated"), "{}", form.raw);
    assert!(e
        .store
        .approvals()
        .approval_votes(&id)
        .await
        .unwrap()
        .is_empty());
}

/// A local HTTP receiver standing in for Slack's incoming-webhook endpoint: every POST body
/// and its content type.
async fn webhook_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send((ct, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), rx)
}

#[tokio::test]
async fn the_webhook_names_the_request_and_links_to_it_without_argument_values() {
    let (url, mut rx) = webhook_receiver().await;
    let e = setup(&format!(
        "\n[approvals]\nwebhook_url = \"{url}\"\npublic_url = \"https://warden.example/\"\n"
    ))
    .await;
    let token = e.agent_token("crm-writer").await;
    let secret = "ghp_R2fG7tK9wQ4mZ8xV1bN6cJ3hL5pS0dA7yU2e";
    let args = json!({"account_id": "ACC-4821", "amount": 317.25, "reason": format!("customer sent {secret}")});
    let id = held(&e, &token, args).await;
    let (content_type, body) = tokio::time::timeout(std::time::Duration::from_secs(60), rx.recv())
        .await
        .expect("the webhook is posted")
        .unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let msg: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        msg.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["text"],
        "a Slack-compatible message: {body}"
    );
    let text = msg["text"].as_str().unwrap();
    for needle in [
        "payments/issue_refund",
        "`crm-writer`",
        "tier `approve`",
        id.as_str(),
        &format!("https://warden.example/ui/approvals/{id}"),
    ] {
        assert!(text.contains(needle), "`{needle}` missing from {text}");
    }
    for leak in ["ACC-4821", "317.25", secret, "customer sent"] {
        assert!(!body.contains(leak), "`{leak}` leaked into {body}");
    }
}

#[tokio::test]
async fn approval_used_up_with_no_record_a_malformed_execution_leaves_it_unused() {
    // Issue 15, item 6: the approval used to be claimed before the `on_behalf_of` length
    // check, so a 400 left it consumed by a decision the ledger never saw. Input bounds are now
    // the pipeline's first step, before approval binding.
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let id = held(&e, &token, refund(49.5)).await;
    let v = e.vote(&ann, &id, "approve", json!({}), true).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.raw);
    let records_before = e.store.ledger().count().await.unwrap();

    for (field, value) in [
        ("on_behalf_of", "o".repeat(300)),
        ("correlation_id", "c".repeat(5000)),
    ] {
        let mut body =
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id});
        body[field] = json!(value);
        let bad = e.propose(&token, body).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{field}: {}", bad.raw);
    }
    assert_eq!(
        e.store.ledger().count().await.unwrap(),
        records_before,
        "a malformed execution is not recorded"
    );
    let polled = e.poll(&token, &id).await;
    assert_eq!(
        polled.body["approval"]["state"], "approved",
        "{}",
        polled.raw
    );

    let run = e
        .propose(
            &token,
            json!({"tool": "issue_refund", "arguments": refund(49.5), "approval_id": id}),
        )
        .await;
    assert_eq!(run.body["decision"], "allow", "{}", run.raw);
}

#[tokio::test]
async fn approver_ui_and_api_show_values_redacted_and_a_reveal_is_recorded_first() {
    // Before: the detail page and `GET /v1/approvals/{id}` showed the arguments as sent (a
    // card number here) with no record of who saw them.
    let e = setup("").await;
    let token = e.agent_token("crm-writer").await;
    let ann = e.person("ann", Role::Approver).await;
    let audrey = e.person("audrey", Role::Auditor).await;
    let card = "4111 1111 1111 1111";
    let args = json!({"account_id": "ACC-0001", "amount": 12.5, "reason": format!("charged twice on {card}")});
    let id = held(&e, &token, args.clone()).await;
    let revealed = |who: &'static str| {
        let store = e.store.clone();
        async move {
            store
                .ledger()
                .tail(50)
                .await
                .unwrap()
                .iter()
                .filter(|r| {
                    matches!(&r.record.event, LedgerEvent::Identity(i)
                    if i.action == "approval_values_revealed" && i.actor == who)
                })
                .map(|r| match &r.record.event {
                    LedgerEvent::Identity(i) => i.details["via"].as_str().unwrap_or("").to_string(),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
        }
    };

    let d = show(&e, &ann, &id).await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.raw);
    assert!(
        !d.raw.contains(card),
        "the API shows values redacted: {}",
        d.raw
    );
    let page = ui_page(&e, &ann, &id).await;
    assert!(!page.raw.contains(card), "the page shows values redacted");
    assert!(
        page.raw
            .contains(&format!("action=\"/ui/approvals/{id}/reveal\"")),
        "{}",
        page.raw
    );
    assert!(
        revealed("ann").await.is_empty(),
        "looking at redacted values is not a reveal"
    );

    let reveal = |p: &Person, csrf: Option<&str>| {
        let mut req =
            Request::post(format!("/v1/approvals/{id}/reveal")).header("cookie", &p.cookie);
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        send(&e.state, req.body(Body::empty()).unwrap())
    };
    let no_csrf = reveal(&ann, None).await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.raw);
    let auditor = reveal(&audrey, Some(&audrey.csrf)).await;
    assert_eq!(auditor.status, StatusCode::FORBIDDEN, "{}", auditor.raw);
    assert!(!auditor.raw.contains(card));
    assert!(revealed("audrey").await.is_empty());

    let api = reveal(&ann, Some(&ann.csrf)).await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.raw);
    assert_eq!(api.body["arguments"], args, "shown exactly as sent");
    assert_eq!(revealed("ann").await, vec!["api".to_string()]);

    let ui = send(
        &e.state,
        Request::post(format!("/ui/approvals/{id}/reveal"))
            .header(
                "cookie",
                format!("{}; warden_csrf={}", ann.cookie, ann.csrf),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={}", ann.csrf)))
            .unwrap(),
    )
    .await;
    assert_eq!(ui.status, StatusCode::OK, "{}", ui.raw);
    assert!(ui.raw.contains(card), "{}", ui.raw);
    assert!(ui.raw.contains("your view is recorded"), "{}", ui.raw);
    assert_eq!(
        revealed("ann").await,
        vec!["api".to_string(), "ui".to_string()]
    );
}
