//! `warden retention` and `warden data`: the data lifecycle of the ledger's payloads.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use warden_gateway::project_store::ProjectStore;
use warden_store::Store;

use crate::context::Context;

#[derive(Subcommand, Debug, Clone)]
pub enum RetentionCommand {
    /// Destroy the keys of payloads past their retention (crypto-shredding) and record it.
    ///
    /// Payloads (arguments, outputs, the user's request) are sealed with a key per day, agent
    /// and data classes; a key is destroyed once its day is older than the retention of that
    /// agent (`retention` on the scope card) and those classes (`[retention.classes]` in
    /// warden.toml), else `[retention] default`. Records are kept, so `warden audit verify`
    /// still passes; their payloads read `[purged: past retention]`. `warden serve` runs this
    /// every `[retention] run_every_mins`.
    Run {
        /// Only print what is due.
        #[arg(long)]
        dry_run: bool,
        /// Evaluate retention as of this RFC 3339 time instead of now (to preview a future
        /// run with --dry-run; without it the run destroys what would be due then, and the
        /// record says so).
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum DataCommand {
    /// Erase a data subject (DSAR, offboarding): destroy the subject's key, so every payload
    /// sealed for it is unreadable, and record the erasure. The chain still verifies.
    ///
    /// A call's subject is the value of the first of its scope card's `subject_args` present
    /// in its arguments (trimmed, lower-cased).
    Erase {
        /// The subject as it appears in arguments (a customer id, an e-mail address).
        #[arg(long)]
        subject: String,
        /// Why: a ticket, "DSAR 2026-118", "offboarding".
        #[arg(long)]
        reason: String,
    },
    /// Print what the ledger holds about a data subject, as JSON Lines (payloads opened where
    /// their keys still exist), for a data subject access request.
    Export {
        #[arg(long)]
        subject: String,
    },
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn now_ts() -> String {
    warden_gateway::now_rfc3339()
}

async fn open(ctx: &Context) -> anyhow::Result<ProjectStore> {
    let project = match ctx.load() {
        Ok(p) => p,
        Err(_) => anyhow::bail!("the project in {} does not load", ctx.dir().display()),
    };
    let writer = ProjectStore::open(ctx.dir(), &project.config).await?;
    anyhow::ensure!(
        writer.store().ledger().seals_payloads(),
        "payload sealing is off for this ledger (no master key)"
    );
    Ok(writer)
}

pub async fn retention(ctx: &Context, command: RetentionCommand) -> anyhow::Result<ExitCode> {
    let RetentionCommand::Run { dry_run, as_of } = command;
    let at = match &as_of {
        Some(t) => OffsetDateTime::parse(t, &Rfc3339)
            .with_context(|| format!("--as-of `{t}`: use an RFC 3339 time"))?,
        None => OffsetDateTime::now_utc(),
    };
    let at_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let at_text = at.format(&Rfc3339).unwrap_or_default();
    let writer = open(ctx).await?;
    let report = writer
        .store()
        .lifecycle()
        .retention_run(at_ms, &at_text, &actor(), now_ts(), dry_run)
        .await;
    writer.close().await;
    let report = report?;
    let verb = if dry_run { "due" } else { "destroyed" };
    for k in &report.keys {
        println!(
            "{verb}: {}  agent {}  day {}  classes [{}]  retention {}d",
            k.key_id,
            k.agent,
            k.day,
            k.classes.join(", "),
            k.retention_days
        );
    }
    println!(
        "retention as of {at_text}: {} key{} {verb}, {} record{} with payloads {}, {} key{} kept{}",
        report.keys.len(),
        if report.keys.len() == 1 { "" } else { "s" },
        report.records,
        if report.records == 1 { "" } else { "s" },
        if dry_run { "to purge" } else { "purged" },
        report.kept,
        if report.kept == 1 { "" } else { "s" },
        report
            .recorded_seq
            .map(|s| format!("; recorded as ledger record {s}"))
            .unwrap_or_default(),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn data(ctx: &Context, command: DataCommand) -> anyhow::Result<ExitCode> {
    let writer = open(ctx).await?;
    let lifecycle = writer.store().lifecycle();
    let result = match command {
        DataCommand::Erase { subject, reason } => {
            anyhow::ensure!(!reason.trim().is_empty(), "--reason must say why");
            lifecycle
                .erase_subject(&subject, &actor(), &reason, now_ts())
                .await
                .map(|r| {
                    println!(
                        "erased subject {}: {} key{} destroyed, {} record{} unreadable; recorded as ledger record {}",
                        r.subject_ref,
                        r.keys.len(),
                        if r.keys.len() == 1 { "" } else { "s" },
                        r.records,
                        if r.records == 1 { "" } else { "s" },
                        r.recorded_seq
                    );
                })
        }
        DataCommand::Export { subject } => {
            lifecycle
                .subject_records(&subject)
                .await
                .map(|(sref, recs)| {
                    eprintln!(
                        "subject {sref}: {} record{}",
                        recs.len(),
                        if recs.len() == 1 { "" } else { "s" }
                    );
                    // With regions, each line says which store (log) its seq and hash belong to.
                    let region = ctx.region();
                    for r in recs {
                        let mut line =
                            serde_json::json!({"seq": r.seq, "hash": r.hash, "record": r.record});
                        if let (Some(region), Some(obj)) = (&region, line.as_object_mut()) {
                            obj.insert("region".into(), (*region).into());
                        }
                        println!("{line}");
                    }
                })
        }
    };
    writer.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// The retention job of `warden serve`: every `every_mins` minutes (none when 0, or when the
/// ledger does not seal payloads). A failed run is logged and retried at the next tick; keys
/// it destroyed but could not record are recorded then.
pub fn spawn_retention_job(store: Store, every_mins: u64) -> Option<tokio::task::JoinHandle<()>> {
    if every_mins == 0 || !store.ledger().seals_payloads() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(every_mins * 60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = OffsetDateTime::now_utc();
            let at_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
            let at_text = now.format(&Rfc3339).unwrap_or_default();
            match store
                .lifecycle()
                .retention_run(at_ms, &at_text, "serve", now_ts(), false)
                .await
            {
                Ok(r) if !r.keys.is_empty() => tracing::info!(
                    message = "retention run",
                    keys = r.keys.len(),
                    records = r.records,
                    seq = ?r.recorded_seq
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(message = "retention run failed; retried at the next run", %error)
                }
            }
        }
    }))
}
