//! The verifiable ledger from the command line: `warden audit checkpoint|prove|export|pubkey`
//! and the checkpoint and vote checks of `warden audit verify`. Opening the store, the keys,
//! the witnesses and the exports themselves are in the library
//! (`warden_gateway::project_store`, `warden_gateway::ledger_export`); this file reads the
//! arguments and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use time::OffsetDateTime;
use warden_core::ledger::{LedgerEvent, LedgerRecord};
use warden_gateway::ledger_export::{self, CheckpointedRange, Window};
use warden_gateway::project_store::{key_path, load_or_create_key, verifier};
use warden_store::{LedgerLog, Store, StoredCheckpoint};
use warden_verify::encoding::{base64_encode, hex_encode};
use warden_verify::merkle::{self, consistency_proof, inclusion_proof, verify_consistency};
use warden_verify::Checkpoint;

use crate::context::Context;

/// `warden audit pubkey`
pub fn pubkey(ctx: &Context) -> anyhow::Result<ExitCode> {
    let config = ctx.read_config()?;
    // Creates the key when missing, so it can be given to witnesses before the first start.
    println!(
        "{}",
        load_or_create_key(ctx.dir(), &config.ledger)?
            .verifier()
            .to_vkey()
    );
    Ok(ExitCode::SUCCESS)
}

/// `warden audit checkpoint [--now]`
pub async fn checkpoint(ctx: &Context, now: bool) -> anyhow::Result<ExitCode> {
    let (_, writer) = ctx.open_existing_signing().await?;
    let ledger = writer.store().ledger();
    let cp = if now {
        ledger.checkpoint_now().await?
    } else {
        ledger.latest_checkpoint().await?
    };
    writer.close().await;
    match cp {
        Some(cp) => {
            print!("{}", cp.note);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("no checkpoint yet; make one with `warden audit checkpoint --now`");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The latest checkpoint, made now if it does not cover `seq` (or every record).
async fn covering_checkpoint(ledger: &dyn LedgerLog, seq: u64) -> anyhow::Result<StoredCheckpoint> {
    if let Some(cp) = ledger.latest_checkpoint().await? {
        if cp.size >= seq && seq > 0 {
            return Ok(cp);
        }
    }
    ledger
        .checkpoint_now()
        .await?
        .context("the ledger could not be checkpointed")
}

/// `warden audit prove SEQ`
pub async fn prove(ctx: &Context, seq: u64, json: bool) -> anyhow::Result<ExitCode> {
    let (_, writer) = ctx.open_existing_signing().await?;
    let ledger = writer.store().ledger();
    let count = ledger.count().await?;
    if seq == 0 || seq > count {
        writer.close().await;
        bail!("record {seq} does not exist (the ledger holds records 1..{count})");
    }
    let cp = covering_checkpoint(ledger, seq).await?;
    let leaves = ledger.leaf_hashes(cp.size).await?;
    writer.close().await;
    let index = seq - 1;
    let proof = inclusion_proof(&leaves, index)?;
    let leaf = leaves
        .get(usize::try_from(index).unwrap_or(usize::MAX))
        .copied()
        .context("leaf out of range")?;
    // Check before printing: a proof that does not verify is a store fault, not output.
    merkle::verify_inclusion(index, cp.size, &leaf, &proof, &cp.root)
        .context("the stored leaves do not match the checkpoint; run `warden audit verify`")?;
    if json {
        let out = serde_json::json!({
            "seq": seq,
            "leaf_index": index,
            "leaf_hash": hex_encode(&leaf),
            "tree_size": cp.size,
            "root_hash": base64_encode(&cp.root),
            "inclusion_proof": proof.iter().map(|h| base64_encode(h)).collect::<Vec<_>>(),
            "checkpoint": cp.note,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "record {seq} (leaf index {index}) is in the tree of size {}",
            cp.size
        );
        println!("leaf hash:  {}", hex_encode(&leaf));
        println!("root hash:  {}", base64_encode(&cp.root));
        println!(
            "inclusion proof (RFC 9162 §2.1.3, {} hashes, base64, leaf to root):",
            proof.len()
        );
        for h in &proof {
            println!("  {}", base64_encode(h));
        }
        println!("checkpoint:");
        print!("{}", cp.note);
    }
    Ok(ExitCode::SUCCESS)
}

/// Check the signature of every approval vote in the ledger with the ledger's public key
/// (votes are signed with the key that signs the checkpoints). Prints one line per bad record
/// (naming its seq) and a summary; `false` when any vote fails.
pub async fn verify_votes(ctx: &Context, ledger: &dyn LedgerLog) -> anyhow::Result<bool> {
    let records = ledger.vote_records().await?;
    if records.is_empty() {
        return Ok(true);
    }
    let config = ctx.read_config()?;
    if !key_path(ctx.dir(), &config.ledger).exists() {
        println!(
            "FAILED: {} approval vote records cannot be checked: there is no ledger key ([ledger] key_file)",
            records.len()
        );
        return Ok(false);
    }
    let key = verifier(ctx.dir(), &config.ledger)?;
    let mut bad = 0usize;
    for (seq, text) in &records {
        let record: Result<LedgerRecord, _> = serde_json::from_str(text);
        match record.map(|r| r.event) {
            Ok(LedgerEvent::ApprovalVote(v)) => {
                if !warden_core::approval::verify_vote(&v.vote, &key) {
                    bad += 1;
                    println!(
                        "FAILED: approval vote record {seq} (approval {}, approver {}, {}): its signature does not verify with the ledger key {}",
                        v.vote.statement.approval_id,
                        v.vote.statement.approver,
                        v.vote.statement.verdict,
                        key.name()
                    );
                }
            }
            _ => {
                bad += 1;
                println!("FAILED: approval vote record {seq} cannot be read as a signed vote");
            }
        }
    }
    if bad == 0 {
        println!(
            "ok: {} approval vote signatures verified with the ledger key {}",
            records.len(),
            key.name()
        );
    }
    Ok(bad == 0)
}

/// `warden audit verify [--checkpoint FILE]`, after the chain verified: the latest stored
/// checkpoint matches the records and, with a file, the current log extends that older
/// checkpoint (consistency proof). Prints what it checked; `false` when a check fails.
pub async fn verify_extends(
    ctx: &Context,
    ledger: &dyn LedgerLog,
    verified: u64,
    older_file: Option<&Path>,
) -> anyhow::Result<bool> {
    let config = ctx.read_config()?;
    let key_file = key_path(ctx.dir(), &config.ledger);
    if older_file.is_none() && !key_file.exists() {
        return Ok(true);
    }
    let key = verifier(ctx.dir(), &config.ledger)?;
    let leaves = ledger.leaf_hashes(verified).await?;
    let new_root = merkle::root(&leaves);
    let mut ok = true;
    if let Some(latest) = ledger.latest_checkpoint().await? {
        match Checkpoint::open(&latest.note, &key) {
            Err(e) => {
                println!(
                    "FAILED: the latest stored checkpoint does not verify with the ledger key: {e}"
                );
                ok = false;
            }
            Ok(cp) if cp.size > verified => {
                println!(
                    "FAILED: the latest stored checkpoint covers {} records but the ledger holds {verified}: records were removed",
                    cp.size
                );
                ok = false;
            }
            Ok(cp) => {
                let prefix = leaves
                    .get(..usize::try_from(cp.size).unwrap_or(usize::MAX))
                    .unwrap_or(&[]);
                if merkle::root(prefix) == cp.root {
                    println!(
                        "ok: the latest stored checkpoint (size {}) matches the records",
                        cp.size
                    );
                } else {
                    println!("FAILED: the records do not produce the latest stored checkpoint's root (size {})", cp.size);
                    ok = false;
                }
            }
        }
    }
    let Some(file) = older_file else {
        return Ok(ok);
    };
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the checkpoint {}", file.display()))?;
    let older = match Checkpoint::open(&text, &key) {
        Ok(c) => c,
        Err(e) => {
            println!("FAILED: {}: {e} (key {})", file.display(), key.name());
            return Ok(false);
        }
    };
    if older.origin != key.name() {
        println!(
            "FAILED: {} is a checkpoint of `{}`, not of this ledger (`{}`)",
            file.display(),
            older.origin,
            key.name()
        );
        return Ok(false);
    }
    if older.size > verified {
        println!(
            "FAILED: the checkpoint covers {} records but the ledger now holds {verified}: the log was truncated",
            older.size
        );
        return Ok(false);
    }
    let proof = consistency_proof(&leaves, older.size)?;
    match verify_consistency(older.size, verified, &older.root, &new_root, &proof) {
        Ok(()) => {
            println!(
                "ok: the ledger (size {verified}, root {}) extends the checkpoint {} (size {}); consistency proof of {} hashes verified",
                base64_encode(&new_root),
                file.display(),
                older.size,
                proof.len()
            );
            Ok(ok)
        }
        Err(e) => {
            println!(
                "FAILED: the ledger does not extend the checkpoint {} (size {}): {e} — records it covered were rewritten, removed or reordered",
                file.display(),
                older.size
            );
            Ok(false)
        }
    }
}

/// Output of `warden audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One canonical record per line, exactly as hashed, plus the checkpoint (warden-verify).
    Jsonl,
    /// OCSF API Activity (6003) events with the security_control profile, for decisions.
    Ocsf,
    /// OpenTelemetry GenAI `execute_tool` spans rebuilt from decisions and outcomes, as
    /// OTLP/HTTP JSON (one ExportTraceServiceRequest per line, as the collector's
    /// otlpjsonfile receiver reads).
    Otel,
}

fn ts_bound(text: &str, what: &str) -> anyhow::Result<String> {
    let now = OffsetDateTime::now_utc();
    crate::since::since_to_ts(text, now).with_context(|| format!("--{what}"))
}

/// `--out FILE`, or standard output.
fn sink(out: Option<&Path>) -> anyhow::Result<Box<dyn std::io::Write + Send>> {
    Ok(match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

/// `warden audit export`
pub async fn export(
    ctx: &Context,
    format: ExportFormat,
    since: Option<String>,
    until: Option<String>,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let since = since.map(|s| ts_bound(&s, "since")).transpose()?;
    let until = until.map(|s| ts_bound(&s, "until")).transpose()?;
    if let (Some(a), Some(b)) = (&since, &until) {
        if a >= b {
            bail!("--since ({a}) must be before --until ({b})");
        }
    }
    let window = Window {
        since: since.as_deref(),
        until: until.as_deref(),
    };
    let (config, writer) = ctx.open_existing_signing().await?;
    let store = writer.store();
    // A checkpoint that covers every record exported.
    let range = match ledger_export::checkpointed_range(store, window).await {
        Ok(Some(range)) => range,
        Ok(None) => {
            writer.close().await;
            eprintln!("no records in that period");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let result = write_export(ctx, &config, store, &range, format, window, out.as_deref()).await;
    writer.close().await;
    result
}

/// The export itself, between opening and closing the store.
async fn write_export(
    ctx: &Context,
    config: &warden_core::config::WardenConfig,
    store: &Store,
    range: &CheckpointedRange,
    format: ExportFormat,
    window: Window<'_>,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let (first, last) = (range.first, range.last);
    match format {
        ExportFormat::Jsonl => return export_jsonl(ctx, config, store, range, out).await,
        ExportFormat::Ocsf => {
            let s = ledger_export::write_ocsf(store, first, last, window, sink(out)?).await?;
            eprintln!(
                "{} OCSF API Activity events (class 6003) from decision records {first}..{last}; {} other records not mapped",
                s.events, s.skipped
            );
        }
        ExportFormat::Otel => {
            let resource = warden_core::otel::Resource {
                service_name: config.telemetry.service_name.clone(),
                service_version: env!("CARGO_PKG_VERSION").to_string(),
                environment: config.gateway.environment.to_string(),
            };
            let s = ledger_export::write_otel(store, first, last, window, &resource, sink(out)?)
                .await?;
            eprintln!(
                "{} execute_tool spans (OTLP JSON) from records {first}..{last}; {} allowed calls without an outcome in the range not exported",
                s.spans, s.without_outcome
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export_jsonl(
    ctx: &Context,
    config: &warden_core::config::WardenConfig,
    store: &Store,
    range: &CheckpointedRange,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let (first, last) = (range.first, range.last);
    let Some(out_dir) = out else {
        // Records only, to stdout (pipe to a SIEM); the bundle needs --out.
        let stdout = std::io::BufWriter::new(std::io::stdout());
        ledger_export::write_records(store, first, last, stdout).await?;
        eprintln!(
            "records {first}..{last}; for a verifiable bundle (records, checkpoint, key, proof) use --out DIR"
        );
        return Ok(ExitCode::SUCCESS);
    };
    let key = verifier(ctx.dir(), &config.ledger)?;
    let bundle = ledger_export::write_bundle(store, range, &key, out_dir).await?;
    let proof_arg = bundle
        .proof
        .map(|p| format!(" --proof {}", p.display()))
        .unwrap_or_default();
    println!(
        "exported records {first}..{last} ({}) to {}; checkpoint of size {} to {}",
        bundle.records,
        bundle.log.display(),
        range.checkpoint.size,
        bundle.checkpoint.display()
    );
    println!(
        "check anywhere with: warden-verify --key {} --log {} --checkpoint {}{proof_arg}",
        bundle.key.display(),
        bundle.log.display(),
        bundle.checkpoint.display()
    );
    println!("(give the auditor the public key out of band: `warden audit pubkey`)");
    Ok(ExitCode::SUCCESS)
}
