//! `warden audit verify|tail|search`.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use time::OffsetDateTime;
use warden_core::ledger::{canonical_json, LedgerEvent};
use warden_store::{SearchFilter, StoredRecord};

use crate::context::Context;
use crate::table;

pub async fn verify(ctx: &Context, checkpoint: Option<&Path>) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing().await?;
    let ledger = store.ledger();
    let total = ledger.count().await?;
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let report = ledger
        .verify(Box::new(move |n| {
            if tty {
                eprint!("\rverifying: {n} / {total} records");
            }
        }))
        .await?;
    if tty && total >= 50_000 {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    match report.first_break {
        None => {
            println!(
                "ok: {} records verified in {:.2}s; chain head {}",
                report.verified, secs, report.head
            );
            println!(
                "(each record's RFC 6962 leaf hash recomputed and linked to the one before it)"
            );
            let extends =
                crate::ledger_cmd::verify_extends(ctx, ledger, report.verified, checkpoint).await?;
            let votes = crate::ledger_cmd::verify_votes(ctx, ledger).await?;
            if extends && votes {
                return Ok(ExitCode::SUCCESS);
            }
            // The last line is the verdict: a reader (or a script reading the tail) must not
            // see an `ok:` of a later check as the outcome of a failed run.
            let failed = match (extends, votes) {
                (false, false) => "the checkpoint check and the vote signatures",
                (false, true) => "the checkpoint check",
                _ => "the vote signatures",
            };
            println!("FAILED: the ledger does not verify: {failed} failed (see above)");
            Ok(ExitCode::FAILURE)
        }
        Some(b) => {
            println!("FAILED: the ledger chain is broken at record {}", b.seq);
            println!("  reason: {}", b.reason);
            println!(
                "  records 1..{} verify; record {} and everything after it cannot be trusted",
                report.verified, b.seq
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// One line for a record.
fn summary_row(r: &StoredRecord) -> Vec<String> {
    let rec = &r.record;
    match &rec.event {
        LedgerEvent::Decision(d) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "decision".into(),
            d.agent.clone(),
            d.qualified_tool.clone().unwrap_or_else(|| d.tool.clone()),
            format!("{} ({})", d.decision.decision.as_str(), d.decision.tier),
            d.correlation_id.clone().unwrap_or_default(),
            d.decision.reasons.first().cloned().unwrap_or_default(),
        ],
        LedgerEvent::Outcome(o) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "outcome".into(),
            o.agent.clone(),
            o.tool.clone(),
            o.status.clone(),
            o.correlation_id.clone().unwrap_or_default(),
            format!(
                "decision {}{}{}",
                o.decision_id,
                o.duration_ms
                    .map(|d| format!(", {d} ms"))
                    .unwrap_or_default(),
                if o.output_truncated {
                    ", output cut"
                } else {
                    ""
                }
            ),
        ],
        LedgerEvent::Identity(e) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "identity".into(),
            e.actor.clone(),
            e.subject.clone(),
            if e.severity == "high" {
                format!("ALERT: {}", e.action)
            } else {
                e.action.clone()
            },
            if e.break_glass {
                "break-glass".to_string()
            } else {
                String::new()
            },
            e.details.to_string(),
        ],
        LedgerEvent::ApprovalVote(v) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "approval_vote".into(),
            v.vote.statement.approver.clone(),
            v.vote.statement.tool.clone(),
            format!("{} → {}", v.vote.statement.verdict, v.state_after),
            v.vote.statement.approval_id.clone(),
            format!(
                "MFA totp at {}, key {}, {}",
                v.vote.statement.mfa.verified_at,
                v.vote.statement.key_id,
                v.vote.statement.reason.clone().unwrap_or_default()
            ),
        ],
        LedgerEvent::ApprovalExpired(x) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "approval_expired".into(),
            x.agent.clone(),
            x.tool.clone(),
            x.outcome.clone(),
            x.approval_id.clone(),
            String::new(),
        ],
        LedgerEvent::ApprovalFatigue(f) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "approval_fatigue".into(),
            f.approver.clone(),
            String::new(),
            "ALERT: rubber-stamping".into(),
            String::new(),
            format!(
                "{} of {} approvals under the quick threshold",
                f.quick_approvals, f.approvals
            ),
        ],
        LedgerEvent::CallReviewed(v) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "call_reviewed".into(),
            v.agent.clone(),
            v.tool.clone(),
            format!("reviewed: {}", v.verdict),
            String::new(),
            format!("by {} (MFA at {}): {}", v.reviewer, v.mfa_at, v.note),
        ],
        LedgerEvent::ReviewOverdue(v) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "review_overdue".into(),
            v.agent.clone(),
            v.tool.clone(),
            "ALERT: review overdue".into(),
            String::new(),
            format!(
                "decision {} not reviewed within {} h",
                v.decision_id, v.deadline_hours
            ),
        ],
        LedgerEvent::RetentionPurged(p) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "retention_purged".into(),
            p.actor.clone(),
            String::new(),
            format!("{} keys destroyed", p.keys.len()),
            String::new(),
            format!("{} records' payloads purged (as of {})", p.records, p.as_of),
        ],
        LedgerEvent::SubjectErased(e) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "subject_erased".into(),
            e.actor.clone(),
            String::new(),
            format!("subject {} erased", e.subject_ref),
            String::new(),
            format!("{} records unreadable; reason: {}", e.records, e.reason),
        ],
        LedgerEvent::AccessCertified(c) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            "access_certified".into(),
            c.by.clone(),
            c.agent.clone(),
            format!("certified {} tools", c.tools.len()),
            String::new(),
            format!(
                "card sha256 {}",
                c.card_hash.chars().take(16).collect::<String>()
            ),
        ],
        LedgerEvent::InjectionDetected(i) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            rec.event.kind().to_string(),
            i.agent.clone(),
            i.tool.clone(),
            "ALERT: suspicious".to_string(),
            i.session.clone().unwrap_or_default(),
            format!(
                "outcome seq {}: {}",
                i.outcome_seq,
                i.findings
                    .iter()
                    .map(|f| format!("{} [{}..{}]", f.rule, f.start, f.end))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ],
        LedgerEvent::SnapshotRead(s) => vec![
            r.seq.to_string(),
            rec.ts.clone(),
            rec.event.kind().to_string(),
            s.agent.clone(),
            s.tool.clone(),
            s.status.clone(),
            s.approval_id.clone(),
            match &s.error {
                Some(e) => format!("before-state unavailable: {e}"),
                None => "before-state read for the approvers".to_string(),
            },
        ],
        LedgerEvent::ToolPinned(t) | LedgerEvent::ToolChanged(t) | LedgerEvent::ToolApproved(t) => {
            vec![
                r.seq.to_string(),
                rec.ts.clone(),
                rec.event.kind().to_string(),
                t.actor.clone(),
                format!("{}/{}", t.server, t.tool),
                match &rec.event {
                    LedgerEvent::ToolChanged(_) => "ALERT: blocked".to_string(),
                    LedgerEvent::ToolApproved(_) => "approved".to_string(),
                    _ => "pinned".to_string(),
                },
                String::new(),
                match &t.previous_hash {
                    Some(p) => format!("definition {} (was {})", short(&t.hash), short(p)),
                    None => format!("definition {}", short(&t.hash)),
                },
            ]
        }
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn print_records(records: &[StoredRecord], json: bool) -> anyhow::Result<()> {
    if json {
        for r in records {
            println!("{}", canonical_json(&r.record)?);
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records.iter().map(summary_row).collect();
    print!(
        "{}",
        table::render(
            &[
                "seq",
                "time",
                "kind",
                "agent",
                "tool",
                "result",
                "correlation",
                "why"
            ],
            &rows,
            &[8, 24, 8, 16, 26, 26, 14, 70]
        )
    );
    Ok(())
}

pub async fn tail(ctx: &Context, n: u32, follow: bool, json: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing().await?;
    let ledger = store.ledger();
    let records = ledger.tail(n).await?;
    print_records(&records, json)?;
    if follow {
        let mut last = records.last().map_or(0, |r| r.seq);
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let new = ledger.after(last, 1000).await?;
            if let Some(r) = new.last() {
                last = r.seq;
                if json {
                    print_records(&new, true)?;
                } else {
                    for r in &new {
                        println!("{}", summary_row(r).join("  "));
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn search(
    ctx: &Context,
    agent: Option<String>,
    tool: Option<String>,
    since: Option<String>,
    decision: Option<String>,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = since
        .map(|s| crate::since::since_to_ts(&s, OffsetDateTime::now_utc()).context("--since"))
        .transpose()?;
    let store = ctx.open_existing().await?;
    let filter = SearchFilter {
        agent,
        tool,
        since,
        decision_id: decision,
        limit,
    };
    let found = store.ledger().search(&filter).await?;
    print_records(&found, json)?;
    if !json {
        println!(
            "{} record{}",
            found.len(),
            if found.len() == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tools_review(ctx: &Context) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing().await?;
    let pins = store.pins().pins().await?;
    let rows: Vec<Vec<String>> = pins
        .iter()
        .map(|p| {
            vec![
                format!("{}/{}", p.server, p.tool),
                if p.blocked {
                    "BLOCKED: changed".into()
                } else {
                    "approved".into()
                },
                short(&p.hash).to_string(),
                p.new_hash
                    .as_deref()
                    .map(short)
                    .unwrap_or_default()
                    .to_string(),
                p.updated_at.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["tool", "status", "pinned", "announced", "since"],
            &rows,
            &[40, 18, 12, 12, 24]
        )
    );
    let blocked = pins.iter().filter(|p| p.blocked).count();
    println!("{} pinned, {blocked} blocked", pins.len());
    if blocked > 0 {
        println!(
            "approve a reviewed definition with: warden tools approve --server SERVER --tool TOOL"
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tools_audit(ctx: &Context, strict: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing().await?;
    let pins = store.pins().pins().await?;
    let mut found = 0usize;
    for p in &pins {
        let mut versions = vec![("pinned", p.definition.as_str())];
        if let Some(new) = &p.new_definition {
            versions.push(("announced", new.as_str()));
        }
        for (which, text) in versions {
            let Ok(def) = serde_json::from_str::<serde_json::Value>(text) else {
                continue;
            };
            for f in warden_core::tools::audit_definition(&def) {
                found += 1;
                println!(
                    "{}/{} ({which}): {}: \"{}\"",
                    p.server, p.tool, f.rule, f.excerpt
                );
            }
        }
    }
    println!(
        "{} tool definitions scanned, {found} finding{}",
        pins.len(),
        if found == 1 { "" } else { "s" }
    );
    Ok(if strict && found > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn tools_approve(
    ctx: &Context,
    server: &str,
    tool: &str,
    by: &str,
) -> anyhow::Result<ExitCode> {
    let store = ctx.open_existing().await?;
    let now = warden_gateway::now_rfc3339();
    let Some((previous, approved)) = store.pins().approve_pin(server, tool, &now).await? else {
        bail!("{server}/{tool} is not blocked; `warden tools review` lists the tools that are");
    };
    let event = warden_core::ledger::ToolEvent {
        server: server.to_string(),
        tool: tool.to_string(),
        hash: approved.clone(),
        previous_hash: Some(previous),
        actor: by.to_string(),
    };
    let rec = store
        .ledger()
        .append(now, LedgerEvent::ToolApproved(event))
        .await?;
    println!(
        "approved {server}/{tool}: definition {} is now pinned (ledger record {})",
        short(&approved),
        rec.seq
    );
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
