//! `warden redact [FILE]`: the ledger's redaction engine, with the project's key
//! (`warden_gateway::project_store::redactor_for`).

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use warden_core::redact::RedactionStats;

/// `warden redact [FILE] [--json] [--stats]`.
pub fn run(dir: &Path, file: Option<&Path>, json: bool, stats: bool) -> anyhow::Result<ExitCode> {
    let redactor = warden_gateway::project_store::redactor_for(dir)?;
    let mut input = Vec::new();
    match file {
        Some(p) if p != Path::new("-") => {
            input = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut input)
                .context("reading standard input")?;
        }
    }
    let text = String::from_utf8_lossy(&input);
    let mut counts = RedactionStats::default();
    let mut out = std::io::stdout().lock();
    if json {
        // One JSON document, or JSON Lines.
        let mut docs = Vec::new();
        for item in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
            docs.push(item.context("the input is not JSON (drop --json for text)")?);
        }
        for mut v in docs {
            redactor.redact_json(&mut v, &mut counts);
            serde_json::to_writer(&mut out, &v)?;
            writeln!(out)?;
        }
    } else {
        out.write_all(redactor.redact_text(&text, &mut counts).as_bytes())?;
    }
    out.flush()?;
    if stats {
        let mut err = std::io::stderr().lock();
        writeln!(err, "redacted {} values", counts.total())?;
        for (kind, n) in &counts.counts {
            writeln!(err, "  {kind:<24} {n}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
