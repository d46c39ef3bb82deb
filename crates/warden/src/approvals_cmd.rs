//! `warden approvals list|show|approve|deny|stats`, and the expiry sweeper of `warden serve`.
//!
//! The CLI works on the project's store directly (it runs where the gateway runs, with the
//! store and the master key). `approve` and `deny` act as the person named by `--by`, who
//! must be an enabled approver or admin and prove it with a fresh TOTP code (`--totp`); the
//! vote goes through the same checks and signing as the HTTP API and the web UI: it is signed
//! with the ledger's key (`[ledger] key_file`), the key that signs the checkpoints.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use serde_json::json;
use warden_gateway::approvals::{vote, Verdict2};
use warden_gateway::logins::{check_totp, HumanSession, Role};
use warden_gateway::AppState;

use warden_gateway::project_store;

use crate::context::Context;

/// Expire overdue requests every few seconds, so expiry is recorded even when nobody looks.
pub fn spawn_sweeper(state: AppState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            if let Err(error) = warden_gateway::approvals::sweep_expired(&state).await {
                tracing::warn!(message = "approval expiry sweep failed", %error);
            }
            if let Err(error) = sweep_reviews(&state).await {
                tracing::warn!(message = "review deadline sweep failed", %error);
            }
        }
    });
}

/// Record a `review_overdue` alert for each call at tier `review` past its deadline.
async fn sweep_reviews(state: &AppState) -> Result<u32, warden_store::StoreError> {
    state
        .store()
        .pins()
        .alert_overdue_reviews(
            state.now(),
            state.approvals_config().review_deadline_hours,
            &state.clock().rfc3339(),
        )
        .await
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// Calls that ran at tier `review` and wait for an after-the-fact review (oldest first),
    /// with their deadline ([approvals] review_deadline_hours).
    Reviews {
        /// Also list reviewed calls.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Review a call that ran at tier `review`, as `--by` (an approver) with a fresh TOTP
    /// code: `ok`, or `flagged` when it should not have run.
    Review {
        /// The decision id.
        id: String,
        #[arg(long, env = "USER")]
        by: String,
        #[arg(long)]
        totp: String,
        #[arg(long, value_parser = ["ok", "flagged"])]
        verdict: String,
        /// What was checked, or why it is flagged (required).
        #[arg(long)]
        note: String,
    },
    /// List approval requests, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        tool: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one request: the call, reasons, what the agent saw, before-state, signed votes.
    ///
    /// Values are shown redacted (secrets and personal data as `[REDACTED:kind:hmac]`). An
    /// approver who needs the real values asks for them with `--reveal --by USER --totp CODE`;
    /// who saw them, and when, is recorded in the ledger.
    Show {
        id: String,
        /// Show the values as the agent sent them (needs --by and --totp; recorded).
        #[arg(long, requires_all = ["by", "totp"])]
        reveal: bool,
        /// The approver or admin asking to see the values.
        #[arg(long)]
        by: Option<String>,
        /// A fresh one-time code of that person.
        #[arg(long)]
        totp: Option<String>,
    },
    /// Approve a request as `--by` (an approver), proven with a fresh TOTP code.
    Approve {
        id: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        totp: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a request as `--by`, with a reason.
    Deny {
        id: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        totp: String,
        #[arg(long)]
        reason: String,
    },
    /// Approval-fatigue figures per approver and per agent; `--alert` records rubber-stamp
    /// alerts in the ledger.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

async fn state_for(ctx: &Context) -> anyhow::Result<Option<AppState>> {
    let dir = ctx.dir();
    let project = match ctx.load() {
        Ok(p) => p,
        Err(_) => return Ok(None),
    };
    let store = project_store::open_store(dir, &project.config).await?;
    let master = warden_gateway::secrets::load_master_key(dir, &project.config.identity)?;
    let listen = project.config.gateway.listen.clone();
    Ok(Some(
        AppState::new(&project.config, Arc::new(project.policy), store)
            .with_master_key(master)
            .with_ledger_signer(Some(project_store::signer(dir, &project.config)?))
            .with_public_url(format!("http://{listen}")),
    ))
}

pub async fn run(ctx: &Context, command: ApprovalsCommand) -> anyhow::Result<ExitCode> {
    let Some(state) = state_for(ctx).await? else {
        return Ok(ExitCode::FAILURE);
    };
    warden_gateway::approvals::sweep_expired(&state).await?;
    sweep_reviews(&state).await?;
    let code = match command {
        ApprovalsCommand::Reviews { all, limit } => {
            let deadline = state.approvals_config().review_deadline_hours;
            let rows = state.store().pins().reviews(all, limit).await?;
            println!(
                "{:<36}  {:<14}  {:<24}  {:<24}  review",
                "decision", "agent", "tool", "due"
            );
            let now = state.now();
            for r in &rows {
                let due = r.created_at + i64::try_from(deadline * 3600).unwrap_or(i64::MAX);
                let status = match (&r.verdict, &r.reviewer) {
                    (Some(v), Some(by)) => format!("{v} by {by}"),
                    _ if due <= now => "OVERDUE".to_string(),
                    _ => "open".to_string(),
                };
                println!(
                    "{:<36}  {:<14}  {:<24}  {:<24}  {status}",
                    r.decision_id,
                    r.agent,
                    r.tool,
                    warden_gateway::identity::rfc3339(due)
                );
            }
            println!(
                "{} review{}",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        ApprovalsCommand::Review {
            id,
            by,
            totp,
            verdict,
            note,
        } => review(&state, &id, &by, &totp, &verdict, &note).await?,
        ApprovalsCommand::List {
            state: st,
            agent,
            tool,
            limit,
            json,
        } => {
            let rows = state
                .store()
                .approvals()
                .list_approvals(&warden_store::ApprovalFilter {
                    state: st,
                    agent,
                    tool,
                    limit,
                })
                .await?;
            if json {
                let items: Vec<_> = rows.iter().map(|r| json!({"id": r.id, "state": r.state, "agent": r.agent, "tool": r.qualified_tool, "tier": r.tier, "created_at": r.created_at, "expires_at": r.expires_at})).collect();
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                println!(
                    "{:<36}  {:<8}  {:<14}  {:<24}  {:<10}  expires",
                    "id", "state", "agent", "tool", "tier"
                );
                for r in &rows {
                    println!(
                        "{:<36}  {:<8}  {:<14}  {:<24}  {:<10}  {}",
                        r.id,
                        r.state,
                        r.agent,
                        r.qualified_tool,
                        r.tier,
                        warden_gateway::identity::rfc3339(r.expires_at)
                    );
                }
            }
            ExitCode::SUCCESS
        }
        ApprovalsCommand::Show {
            id,
            reveal,
            by,
            totp,
        } => {
            let shown = match (reveal, by.as_deref(), totp.as_deref()) {
                (true, Some(by), Some(totp)) => reveal_to(&state, &id, by, totp).await?,
                _ => warden_gateway::approvals::detail_json(&state, &id).await?,
            };
            let Some(v) = shown else {
                bail!("no approval request `{id}`");
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
            ExitCode::SUCCESS
        }
        ApprovalsCommand::Approve {
            id,
            by,
            totp,
            reason,
        } => {
            cast(
                &state,
                &id,
                &by,
                &totp,
                Verdict2::Approve,
                reason.as_deref(),
            )
            .await?
        }
        ApprovalsCommand::Deny {
            id,
            by,
            totp,
            reason,
        } => cast(&state, &id, &by, &totp, Verdict2::Deny, Some(&reason)).await?,
        ApprovalsCommand::Stats { json } => {
            let v = warden_gateway::approvals::stats(&state).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_stats(&v);
            }
            ExitCode::SUCCESS
        }
    };
    Ok(code)
}

fn print_stats(v: &serde_json::Value) {
    for (title, key) in [("per approver", "by_approver"), ("per agent", "by_agent")] {
        println!("{title}:");
        println!(
            "  {:<20} {:>6} {:>9} {:>14} {:>12}  alert",
            "name", "votes", "approved", "median secs", "under quick"
        );
        if let Some(map) = v.get(key).and_then(serde_json::Value::as_object) {
            for (name, s) in map {
                let f = |k: &str| s.get(k).cloned().unwrap_or_default();
                println!(
                    "  {:<20} {:>6} {:>8.0}% {:>14} {:>12}  {}",
                    name,
                    f("votes"),
                    f("approval_rate").as_f64().unwrap_or(0.0) * 100.0,
                    f("median_secs_to_decide"),
                    f("quick_approvals"),
                    if f("rubber_stamping").as_bool() == Some(true) {
                        "RUBBER-STAMPING"
                    } else {
                        ""
                    }
                );
            }
        }
    }
}

/// Let an approver or admin, proven with a fresh TOTP code, see a request's values as the
/// agent sent them; recorded (`approval_values_revealed`) before anything is shown, by the
/// same code as the UI's and the API's reveal.
async fn reveal_to(
    state: &AppState,
    id: &str,
    by: &str,
    totp: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let now = state.now();
    let Some(user) = state.store().identities().user(by).await? else {
        bail!("no user `{by}`");
    };
    let role = Role::parse(&user.role).context("the user has an unknown role")?;
    if user.disabled || !matches!(role, Role::Approver | Role::Admin) {
        bail!("only an enabled approver or admin may see a request's values unredacted");
    }
    let key = state
        .master_key_ref()
        .context("no master key: the TOTP seed cannot be read")?;
    if !check_totp(state.store(), key, by, totp, now).await? {
        bail!("the one-time code is wrong, expired or already used");
    }
    let shown = warden_gateway::approvals::reveal_json(state, by, role, id).await?;
    if shown.is_some() {
        eprintln!("recorded: {by} was shown the unredacted values of request {id}");
    }
    Ok(shown)
}

/// An approver's after-the-fact review, proven with a fresh TOTP code.
async fn review(
    state: &AppState,
    id: &str,
    by: &str,
    totp: &str,
    verdict: &str,
    note: &str,
) -> anyhow::Result<ExitCode> {
    if note.trim().is_empty() {
        bail!("--note must say what was checked or why the call is flagged");
    }
    let now = state.now();
    let Some(user) = state.store().identities().user(by).await? else {
        bail!("no user `{by}`");
    };
    let role = Role::parse(&user.role).context("the user has an unknown role")?;
    if user.disabled || !matches!(role, Role::Approver | Role::Admin) {
        bail!("user `{by}` may not review calls (approvers and admins only)");
    }
    let Some(row) = state.store().pins().review(id).await? else {
        bail!("no call `{id}` in the review queue (only calls allowed at tier `review` are)");
    };
    let dir_key = state
        .master_key_ref()
        .context("no master key: the TOTP seed cannot be read")?;
    if !check_totp(state.store(), dir_key, by, totp, now).await? {
        bail!("the one-time code is wrong, expired or already used");
    }
    let event = warden_core::ledger::ReviewEvent {
        decision_id: row.decision_id.clone(),
        agent: row.agent.clone(),
        tool: row.tool.clone(),
        reviewer: by.to_string(),
        verdict: verdict.to_string(),
        note: note.to_string(),
        mfa_at: now,
    };
    match state
        .store()
        .pins()
        .record_review(event, now, state.clock().rfc3339())
        .await?
    {
        Some(seq) => {
            println!("recorded: {by} reviewed {id} as {verdict} (ledger #{seq})");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("refused: {id} was already reviewed");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn cast(
    state: &AppState,
    id: &str,
    by: &str,
    totp: &str,
    verdict: Verdict2,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = state.now();
    let Some(user) = state.store().identities().user(by).await? else {
        bail!("no user `{by}`");
    };
    let role = Role::parse(&user.role).context("the user has an unknown role")?;
    if user.disabled {
        bail!("user `{by}` is disabled");
    }
    let dir_key = state
        .master_key_ref()
        .context("no master key: the TOTP seed cannot be read")?;
    if !check_totp(state.store(), dir_key, by, totp, now).await? {
        bail!("the one-time code is wrong, expired or already used");
    }
    let who = HumanSession {
        user: by.to_string(),
        role,
        session_id: None,
        totp_verified_at: Some(now),
        break_glass: false,
    };
    match vote(state, &who, id, verdict, reason, None).await {
        Ok(v) => {
            println!(
                "recorded: {by} voted to {} request {id}; it is now {} (ledger #{}, signed with key {})",
                if verdict == Verdict2::Approve { "approve" } else { "deny" },
                v.get("state").and_then(serde_json::Value::as_str).unwrap_or("?"),
                v.get("ledger").and_then(|l| l.get("seq")).cloned().unwrap_or_default(),
                v.get("key_id").and_then(serde_json::Value::as_str).unwrap_or("?"),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("refused: {}", e.external);
            Ok(ExitCode::FAILURE)
        }
    }
}
