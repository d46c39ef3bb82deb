//! The verifiable ledger from the command line: the ledger signing key, signed checkpoints and
//! their witnesses, `warden audit checkpoint|prove|export|pubkey` and
//! `warden audit verify --checkpoint`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rand::RngCore as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use warden_core::config::{parse_config, WardenConfig};
use warden_core::ledger::{LedgerEvent, LedgerRecord};
use warden_core::ledger_config::{LedgerConfig, WitnessConfig};
use warden_store::{CheckpointOptions, Ledger, LedgerOptions, StoredCheckpoint};
use warden_verify::encoding::{base64_encode, hex_encode};
use warden_verify::merkle::{self, consistency_proof, inclusion_proof, verify_consistency};
use warden_verify::{Checkpoint, Frontier, NoteSigner, NoteVerifier, RangeProof};

/// warden.toml alone (auditing must work even when a card or policy does not compile).
fn read_config(dir: &Path) -> anyhow::Result<WardenConfig> {
    let path = dir.join("warden.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (pass --project DIR)", path.display()))?;
    let mut config = parse_config("warden.toml", &text)
        .map_err(|e| anyhow::anyhow!("{}", warden_core::FileErrors(e)))?;
    crate::region::apply(&mut config).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config)
}

fn key_path(dir: &Path, cfg: &LedgerConfig) -> PathBuf {
    let p = PathBuf::from(&cfg.key_file);
    if p.is_absolute() {
        p
    } else {
        dir.join(p)
    }
}

/// Load the ledger signing key, creating it (mode 0600, in a 0700 directory) when missing.
pub fn load_or_create_key(dir: &Path, cfg: &LedgerConfig) -> anyhow::Result<NoteSigner> {
    let path = key_path(dir, cfg);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    bail!(
                        "the ledger key {} is readable by others (mode {:o}); run `chmod 600 {}`",
                        path.display(),
                        mode & 0o777,
                        path.display()
                    );
                }
            }
            NoteSigner::parse(text.trim())
                .map_err(|e| anyhow::anyhow!("{} ([ledger] key_file): {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = match &cfg.origin {
                Some(o) => o.clone(),
                None => {
                    let mut id = [0u8; 8];
                    rand::rngs::OsRng.fill_bytes(&mut id);
                    format!("warden-ledger-{}", hex_encode(&id))
                }
            };
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            let signer = NoteSigner::from_seed(&name, &seed)
                .map_err(|e| anyhow::anyhow!("[ledger] origin `{name}`: {e}"))?;
            if let Some(parent) = path.parent() {
                create_private_dir(parent)?;
            }
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                open.mode(0o600);
            }
            let mut f = open
                .open(&path)
                .with_context(|| format!("creating the ledger key {}", path.display()))?;
            writeln!(f, "{}", signer.to_skey())?;
            f.sync_all()?;
            tracing::info!(message = "ledger signing key created", path = %path.display(), key = %signer.verifier().to_vkey());
            Ok(signer)
        }
        Err(e) => Err(e).with_context(|| format!("reading the ledger key {}", path.display())),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// The verifier key of the project's ledger. Never creates a key: a reading command that
/// found none has nothing to check against.
fn verifier(dir: &Path, cfg: &LedgerConfig) -> anyhow::Result<NoteVerifier> {
    let path = key_path(dir, cfg);
    if !path.exists() {
        bail!(
            "no ledger key at {} ([ledger] key_file); it is created when the gateway first starts, or by `warden audit pubkey`",
            path.display()
        );
    }
    Ok(load_or_create_key(dir, cfg)?.verifier())
}

/// The ledger's signing key (created on first use). It signs the checkpoints and the
/// approval votes, so one public key (`warden audit pubkey`) checks both.
pub fn signer(dir: &Path, config: &WardenConfig) -> anyhow::Result<Arc<NoteSigner>> {
    Ok(Arc::new(load_or_create_key(dir, &config.ledger)?))
}

/// Open the project's ledger as a writer does: with the signing key, checkpoints every N
/// records or T seconds, and the configured witnesses.
pub async fn open_signing(dir: &Path, config: &WardenConfig) -> anyhow::Result<Ledger> {
    open_signing_with(dir, config, signer(dir, config)?).await
}

/// [`open_signing`] with a key already loaded (the gateway also signs votes with it).
pub async fn open_signing_with(
    dir: &Path,
    config: &WardenConfig,
    signer: Arc<NoteSigner>,
) -> anyhow::Result<Ledger> {
    let publish = if config.ledger.witnesses.is_empty() {
        None
    } else {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(witness_task(
            dir.to_path_buf(),
            config.ledger.witnesses.clone(),
            rx,
        ));
        if let Ok(mut w) = WITNESS_TASKS.lock() {
            w.push(task);
        }
        Some(tx)
    };
    let (vault, residency) = crate::lifecycle_cmd::store_options(dir, true)?;
    let opts = LedgerOptions {
        durability: config.store.durability,
        checkpoints: Some(CheckpointOptions {
            signer,
            every_records: config.ledger.checkpoint_every_records,
            every: Duration::from_secs(config.ledger.checkpoint_every_secs),
            publish,
        }),
        redactor: Some(crate::redact_cmd::redactor_for(dir)?),
        vault,
        residency,
        ..Default::default()
    };
    Ledger::open_url(&config.store.url, dir, opts)
        .await
        .with_context(|| {
            format!(
                "opening the ledger `{}` (warden.toml [store] url)",
                config.store.url
            )
        })
}

/// Witness tasks of the ledgers this process opened; they end once their ledger's last handle
/// is gone and every checkpoint is delivered.
static WITNESS_TASKS: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Close a ledger opened with [`open_signing`]: its final checkpoint is signed and, once every
/// other handle is gone, delivered to the witnesses before this returns (at most 10 s).
pub async fn close(ledger: Ledger) {
    ledger.close().await;
    let tasks: Vec<_> = WITNESS_TASKS
        .lock()
        .map(|mut w| w.drain(..).collect())
        .unwrap_or_default();
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .is_err()
        {
            tracing::warn!(message = "a checkpoint witness did not finish within 10 s");
        }
    }
}

/// Writes every new checkpoint to each witness. A witness that fails is logged and retried with
/// the next checkpoint; it never holds up the ledger.
async fn witness_task(
    dir: PathBuf,
    witnesses: Vec<WitnessConfig>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<StoredCheckpoint>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok();
    while let Some(cp) = rx.recv().await {
        for w in &witnesses {
            if let Err(error) = publish_one(&dir, w, &cp, client.as_ref()).await {
                tracing::warn!(message = "checkpoint witness failed", %error, size = cp.size);
            }
        }
    }
}

async fn publish_one(
    dir: &Path,
    w: &WitnessConfig,
    cp: &StoredCheckpoint,
    client: Option<&reqwest::Client>,
) -> anyhow::Result<()> {
    let resolve = |p: &str| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    };
    if let Some(file) = &w.file {
        let path = resolve(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &cp.note)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("witness file {}", path.display()))?;
    } else if let Some(d) = &w.dir {
        let d = resolve(d);
        std::fs::create_dir_all(&d)?;
        let path = d.join(format!("{:012}.checkpoint", cp.size));
        if !path.exists() {
            std::fs::write(&path, &cp.note)
                .with_context(|| format!("witness file {}", path.display()))?;
        }
    } else if let Some(url) = &w.url {
        let Some(client) = client else {
            bail!("no HTTP client");
        };
        let resp = client
            .post(url)
            .header("content-type", "text/plain; charset=utf-8")
            .body(cp.note.clone())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        if !resp.status().is_success() {
            bail!("POST {url}: HTTP {}", resp.status());
        }
    }
    Ok(())
}

async fn open_for_write(dir: &Path) -> anyhow::Result<Ledger> {
    let config = read_config(dir)?;
    let path = warden_store::sqlite_path(&config.store.url, dir)?;
    if !path.exists() {
        bail!(
            "no ledger at {} (warden.toml [store] url = \"{}\"); nothing has been recorded yet",
            path.display(),
            config.store.url
        );
    }
    open_signing(dir, &config).await
}

/// `warden audit pubkey`
pub fn pubkey(dir: &Path) -> anyhow::Result<ExitCode> {
    let config = read_config(dir)?;
    // Creates the key when missing, so it can be given to witnesses before the first start.
    println!(
        "{}",
        load_or_create_key(dir, &config.ledger)?
            .verifier()
            .to_vkey()
    );
    Ok(ExitCode::SUCCESS)
}

/// `warden audit checkpoint [--now]`
pub async fn checkpoint(dir: &Path, now: bool) -> anyhow::Result<ExitCode> {
    let ledger = open_for_write(dir).await?;
    let cp = if now {
        ledger.checkpoint_now().await?
    } else {
        ledger.latest_checkpoint().await?
    };
    close(ledger).await;
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
async fn covering_checkpoint(ledger: &Ledger, seq: u64) -> anyhow::Result<StoredCheckpoint> {
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
pub async fn prove(dir: &Path, seq: u64, json: bool) -> anyhow::Result<ExitCode> {
    let ledger = open_for_write(dir).await?;
    let count = ledger.count().await?;
    if seq == 0 || seq > count {
        close(ledger).await;
        bail!("record {seq} does not exist (the ledger holds records 1..{count})");
    }
    let cp = covering_checkpoint(&ledger, seq).await?;
    let leaves = ledger.leaf_hashes(cp.size).await?;
    close(ledger).await;
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

/// `warden audit verify --checkpoint FILE`, after the chain verified: the current log extends
/// the older checkpoint (consistency proof), and the latest stored checkpoint matches too.
/// Check the signature of every approval vote in the ledger with the ledger's public key
/// (votes are signed with the key that signs the checkpoints). Prints one line per bad record
/// (naming its seq) and a summary; `false` when any vote fails.
pub async fn verify_votes(dir: &Path, ledger: &Ledger) -> anyhow::Result<bool> {
    let records = ledger.vote_records().await?;
    if records.is_empty() {
        return Ok(true);
    }
    let config = read_config(dir)?;
    if !key_path(dir, &config.ledger).exists() {
        println!(
            "FAILED: {} approval vote records cannot be checked: there is no ledger key ([ledger] key_file)",
            records.len()
        );
        return Ok(false);
    }
    let key = verifier(dir, &config.ledger)?;
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

pub async fn verify_extends(
    dir: &Path,
    ledger: &Ledger,
    verified: u64,
    older_file: Option<&Path>,
) -> anyhow::Result<bool> {
    let config = read_config(dir)?;
    let key_file = key_path(dir, &config.ledger);
    if older_file.is_none() && !key_file.exists() {
        return Ok(true);
    }
    let key = verifier(dir, &config.ledger)?;
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
    crate::audit::since_to_ts(text, now).with_context(|| format!("--{what}"))
}

/// `warden audit export`
pub async fn export(
    dir: &Path,
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
    let ledger = open_for_write(dir).await?;
    // A checkpoint that covers every record exported.
    let cp = ledger
        .checkpoint_now()
        .await?
        .context("the ledger could not be checkpointed")?;
    let range = if since.is_none() && until.is_none() {
        (cp.size > 0).then_some((1, cp.size))
    } else {
        ledger
            .seq_range(since.as_deref(), until.as_deref())
            .await?
            .map(|(a, b)| (a, b.min(cp.size)))
            .filter(|(a, b)| a <= b)
    };
    let Some((first, last)) = range else {
        close(ledger).await;
        eprintln!("no records in that period");
        return Ok(ExitCode::SUCCESS);
    };
    let result = match format {
        ExportFormat::Jsonl => export_jsonl(dir, &ledger, &cp, first, last, out.as_deref()).await,
        ExportFormat::Ocsf => {
            let window = Window {
                since: since.as_deref(),
                until: until.as_deref(),
            };
            export_ocsf(&ledger, first, last, window, out.as_deref()).await
        }
        ExportFormat::Otel => {
            let window = Window {
                since: since.as_deref(),
                until: until.as_deref(),
            };
            export_otel(dir, &ledger, first, last, window, out.as_deref()).await
        }
    };
    close(ledger).await;
    result
}

fn sink(out: Option<&Path>) -> anyhow::Result<Box<dyn std::io::Write + Send>> {
    Ok(match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

/// Write records `first..=last`, one per line, exactly as stored.
async fn write_records(
    ledger: &Ledger,
    first: u64,
    last: u64,
    out: Option<&Path>,
) -> anyhow::Result<u64> {
    let w = Arc::new(std::sync::Mutex::new(sink(out)?));
    let writer = Arc::clone(&w);
    let n = ledger
        .export_raw(first, last, move |_, rec| {
            let mut w = writer
                .lock()
                .map_err(|_| std::io::Error::other("writer poisoned"))?;
            w.write_all(rec)?;
            w.write_all(b"\n")
        })
        .await?;
    w.lock()
        .map_err(|_| anyhow::anyhow!("writer poisoned"))?
        .flush()?;
    Ok(n)
}

async fn export_jsonl(
    dir: &Path,
    ledger: &Ledger,
    cp: &StoredCheckpoint,
    first: u64,
    last: u64,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let Some(out_dir) = out else {
        // Records only, to stdout (pipe to a SIEM); the bundle needs --out.
        write_records(ledger, first, last, None).await?;
        eprintln!(
            "records {first}..{last}; for a verifiable bundle (records, checkpoint, key, proof) use --out DIR"
        );
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let config = read_config(dir)?;
    let key = verifier(dir, &config.ledger)?;
    let log_path = out_dir.join("ledger.jsonl");
    let n = write_records(ledger, first, last, Some(&log_path)).await?;
    std::fs::write(out_dir.join("checkpoint.txt"), &cp.note)?;
    std::fs::write(out_dir.join("ledger.vkey"), format!("{}\n", key.to_vkey()))?;
    let mut proof_arg = String::new();
    if first > 1 || last < cp.size {
        let leaves = ledger.leaf_hashes(cp.size).await?;
        if merkle::root(&leaves) != cp.root {
            bail!(
                "the stored leaves do not produce the checkpoint's root; run `warden audit verify`"
            );
        }
        let before = leaves
            .get(..usize::try_from(first - 1).unwrap_or(usize::MAX))
            .context("range out of bounds")?;
        let proof = RangeProof {
            first_seq: first,
            left: Frontier::from_leaves(before).hashes().to_vec(),
            consistency: consistency_proof(&leaves, last)?,
        };
        let p = out_dir.join("proof.json");
        std::fs::write(&p, proof.to_json())?;
        proof_arg = format!(" --proof {}", p.display());
    }
    println!(
        "exported records {first}..{last} ({n}) to {}; checkpoint of size {} to {}",
        log_path.display(),
        cp.size,
        out_dir.join("checkpoint.txt").display()
    );
    println!(
        "check anywhere with: warden-verify --key {} --log {} --checkpoint {}{proof_arg}",
        out_dir.join("ledger.vkey").display(),
        log_path.display(),
        out_dir.join("checkpoint.txt").display()
    );
    println!("(give the auditor the public key out of band: `warden audit pubkey`)");
    Ok(ExitCode::SUCCESS)
}

/// The `--since`/`--until` window, as ledger timestamps (`since <= ts < until`).
#[derive(Debug, Clone, Copy)]
struct Window<'a> {
    since: Option<&'a str>,
    until: Option<&'a str>,
}

impl Window<'_> {
    /// Records are numbered in append order and stamped just before; two calls can stamp in
    /// one order and append in the other, so the seq range of a window may hold a record
    /// stamped a moment outside it. Event exports keep to the window exactly.
    fn holds(&self, ts: &str) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u)
    }
}

/// The records a blocking task reads off the store, as (seq, leaf bytes).
type RecordStream = tokio::sync::mpsc::Receiver<(u64, Vec<u8>)>;
/// The task reading them; its result is the number read.
type RecordReader = tokio::task::JoinHandle<Result<u64, warden_store::StoreError>>;

/// Records `first..=last`, read off the store in a blocking task.
fn read_records(ledger: &Ledger, first: u64, last: u64) -> (RecordStream, RecordReader) {
    let (tx, rx) = tokio::sync::mpsc::channel::<(u64, Vec<u8>)>(1024);
    let ledger = ledger.clone();
    let reader = tokio::spawn(async move {
        ledger
            .export_raw(first, last, move |seq, rec| {
                tx.blocking_send((seq, rec.to_vec()))
                    .map_err(|_| std::io::Error::other("export stopped"))
            })
            .await
    });
    (rx, reader)
}

fn parse_record(seq: u64, rec: &[u8]) -> anyhow::Result<LedgerRecord> {
    serde_json::from_slice(rec)
        .with_context(|| format!("ledger record {seq} is not a record; run `warden audit verify`"))
}

async fn export_ocsf(
    ledger: &Ledger,
    first: u64,
    last: u64,
    window: Window<'_>,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let mut w = sink(out)?;
    let (mut rx, reader) = read_records(ledger, first, last);
    let (mut events, mut skipped) = (0u64, 0u64);
    while let Some((seq, rec)) = rx.recv().await {
        let record = parse_record(seq, &rec)?;
        let LedgerEvent::Decision(d) = &record.event else {
            skipped += 1;
            continue;
        };
        if !window.holds(&record.ts) {
            continue;
        }
        let time_ms = OffsetDateTime::parse(&record.ts, &Rfc3339)
            .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
            .unwrap_or(0);
        let hash = warden_core::ledger::leaf_hash(&rec);
        let event = warden_core::ocsf::decision_event(
            d,
            time_ms,
            warden_core::ocsf::LedgerPosition {
                seq,
                hash: &hash,
                ts: &record.ts,
            },
        );
        serde_json::to_writer(&mut w, &event)?;
        w.write_all(b"\n")?;
        events += 1;
    }
    reader.await??;
    w.flush()?;
    eprintln!(
        "{events} OCSF API Activity events (class 6003) from decision records {first}..{last}; {skipped} other records not mapped"
    );
    Ok(ExitCode::SUCCESS)
}

async fn export_otel(
    dir: &Path,
    ledger: &Ledger,
    first: u64,
    last: u64,
    window: Window<'_>,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    use warden_core::otel::{otlp_json, Resource, ToolCallSpan};
    let config = read_config(dir)?;
    let resource = Resource {
        service_name: config.telemetry.service_name.clone(),
        service_version: env!("CARGO_PKG_VERSION").to_string(),
        environment: config.gateway.environment.to_string(),
    };
    let nanos = |ts: &str| {
        OffsetDateTime::parse(ts, &Rfc3339)
            .ok()
            .and_then(|t| u64::try_from(t.unix_timestamp_nanos()).ok())
            .unwrap_or(0)
    };
    let mut w = sink(out)?;
    let (mut rx, reader) = read_records(ledger, first, last);
    // Allowed calls wait for their outcome record to end their span.
    let mut running: std::collections::HashMap<String, (warden_core::ledger::DecisionEvent, u64)> =
        std::collections::HashMap::new();
    let mut batch: Vec<ToolCallSpan> = Vec::new();
    let mut spans = 0u64;
    let mut flush = |batch: &mut Vec<ToolCallSpan>| -> anyhow::Result<()> {
        if !batch.is_empty() {
            serde_json::to_writer(&mut w, &otlp_json(&resource, batch))?;
            w.write_all(b"\n")?;
            batch.clear();
        }
        Ok(())
    };
    while let Some((seq, rec)) = rx.recv().await {
        let record = parse_record(seq, &rec)?;
        match record.event {
            LedgerEvent::Decision(d) if window.holds(&record.ts) => {
                let at = nanos(&record.ts);
                if d.decision.decision == warden_core::Verdict::Allow {
                    running.insert(d.decision_id.clone(), (*d, at));
                } else if let Some(span) = ToolCallSpan::from_ledger(&d, at, None) {
                    batch.push(span);
                }
            }
            LedgerEvent::Outcome(o) => {
                if let Some((d, at)) = running.remove(&o.decision_id) {
                    let end = nanos(&record.ts);
                    if let Some(span) = ToolCallSpan::from_ledger(&d, at, Some((&o, end))) {
                        batch.push(span);
                    }
                }
            }
            _ => {}
        }
        if batch.len() >= 512 {
            spans += batch.len() as u64;
            flush(&mut batch)?;
        }
    }
    reader.await??;
    spans += batch.len() as u64;
    flush(&mut batch)?;
    w.flush()?;
    eprintln!(
        "{spans} execute_tool spans (OTLP JSON) from records {first}..{last}; {} allowed calls without an outcome in the range not exported",
        running.len()
    );
    Ok(ExitCode::SUCCESS)
}
