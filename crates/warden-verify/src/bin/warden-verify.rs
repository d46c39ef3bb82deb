//! `warden-verify`: check an exported Warden ledger against a signed checkpoint with only the
//! log's public key. No Warden store, configuration or network is needed.
//!
//! ```text
//! warden-verify --key ledger.vkey --log ledger.jsonl --checkpoint checkpoint.txt
//!               [--older OLD_CHECKPOINT] [--proof proof.json]
//! ```
//! Exit status: 0 verified, 1 verification failed, 2 bad usage or unreadable input.

use std::process::ExitCode;

use warden_verify::encoding::{base64_encode, hex_encode};
use warden_verify::{verify_export, NoteVerifier, RangeProof};

const USAGE: &str = "usage: warden-verify --key KEY.vkey --log EXPORT.jsonl --checkpoint CHECKPOINT [--older OLD_CHECKPOINT] [--proof PROOF.json]

Checks, with only the log's public key (a C2SP verifier key: name+keyid+base64):
  - the checkpoint (a C2SP tlog-checkpoint signed note) is signed by the key;
  - every record's RFC 6962 leaf hash, and the hash chain linking each record to the one before;
  - the records produce the checkpoint's Merkle root (a range export: with PROOF.json);
  - with --older: the older checkpoint's tree is a prefix of this one (nothing rewritten or
    removed since it was taken).";

struct Args {
    key: String,
    log: String,
    checkpoint: String,
    older: Option<String>,
    proof: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut key, mut log, mut checkpoint, mut older, mut proof) = (None, None, None, None, None);
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--key" => &mut key,
            "--log" => &mut log,
            "--checkpoint" => &mut checkpoint,
            "--older" => &mut older,
            "--proof" => &mut proof,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        };
        *slot = Some(it.next().ok_or_else(|| format!("`{a}` needs a value"))?);
    }
    Ok(Args {
        key: key.ok_or("--key is required")?,
        log: log.ok_or("--log is required")?,
        checkpoint: checkpoint.ok_or("--checkpoint is required")?,
        older,
        proof,
    })
}

fn read(path: &str, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {what} {path}: {e}"))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            if msg.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let key = NoteVerifier::parse(read(&args.key, "the key")?.trim())
        .map_err(|e| format!("{}: {e}", args.key))?;
    let checkpoint = read(&args.checkpoint, "the checkpoint")?;
    let older = args
        .older
        .as_deref()
        .map(|p| read(p, "the older checkpoint"))
        .transpose()?;
    let proof = args
        .proof
        .as_deref()
        .map(|p| RangeProof::from_json(&read(p, "the proof")?).map_err(|e| format!("{p}: {e}")))
        .transpose()?;
    let file =
        std::fs::File::open(&args.log).map_err(|e| format!("reading the log {}: {e}", args.log))?;
    let log = std::io::BufReader::with_capacity(1 << 20, file);
    match verify_export(&key, log, &checkpoint, older.as_deref(), proof.as_ref()) {
        Ok(r) => {
            println!(
                "ok: records {}..{} ({} records) verified against the checkpoint of {} signed by {} (key id {})",
                r.first_seq,
                r.last_seq,
                r.records,
                r.checkpoint.origin,
                key.name(),
                hex_encode(&key.key_id())
            );
            println!(
                "  tree size {}, root {}",
                r.checkpoint.size,
                base64_encode(&r.checkpoint.root)
            );
            if let Some(o) = r.older {
                println!(
                    "  the older checkpoint (tree size {}) is a prefix of this log: nothing it covered was changed or removed",
                    o.size
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAILED: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
