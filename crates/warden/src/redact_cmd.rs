//! `warden redact [FILE]` and the redaction key of a project.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use rand::RngCore as _;
use warden_core::config::RedactionConfig;
use warden_core::redact::{RedactionStats, Redactor, Withholding};

/// The project's `[redaction]` settings (defaults when warden.toml has none or is absent).
fn redaction_config(dir: &Path) -> anyhow::Result<Option<RedactionConfig>> {
    let path = dir.join("warden.toml");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    match warden_core::config::parse_config("warden.toml", &text) {
        Ok(c) => Ok(Some(c.redaction)),
        Err(errors) => bail!("{}", warden_core::FileErrors(errors)),
    }
}

fn decode_key(hex_text: &str, origin: &str) -> anyhow::Result<Vec<u8>> {
    let key = hex::decode(hex_text.trim())
        .with_context(|| format!("the redaction key in {origin} is not hex"))?;
    if key.len() < 16 {
        bail!("the redaction key in {origin} is shorter than 16 bytes; generate one with `openssl rand -hex 32`");
    }
    Ok(key)
}

/// The project's redaction key: from the environment variable named by `[redaction]
/// key_env` if set, else from `key_file`, which is created (32 random bytes, mode 0600)
/// when it does not exist.
fn project_key(dir: &Path, cfg: &RedactionConfig) -> anyhow::Result<Vec<u8>> {
    if let Ok(v) = std::env::var(&cfg.key_env) {
        return decode_key(&v, &format!("${}", cfg.key_env));
    }
    let path = dir.join(&cfg.key_file);
    match fs::read_to_string(&path) {
        Ok(text) => decode_key(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut key);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut f = crate::project_cmds::open_private(&path).with_context(|| {
                "warden.toml [redaction] key_file: creating the redaction key".to_string()
            })?;
            writeln!(f, "{}", hex::encode(key))?;
            tracing::info!(message = "redaction key created", path = %path.display());
            Ok(key.to_vec())
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "reading the redaction key {} (warden.toml [redaction] key_file)",
                path.display()
            )
        }),
    }
}

/// What the project says not to store: the cards' `store_arguments` / `store_output`, and
/// `[retention] not_stored` data classes (cards that do not parse are skipped here; loading
/// the project reports them).
fn withholding(dir: &Path) -> Withholding {
    let Ok(sources) = warden_gateway::project::read_sources(dir) else {
        return Withholding::default();
    };
    let cards: Vec<_> = sources
        .cards
        .iter()
        .filter_map(|f| warden_core::scope_card::parse_scope_card(&f.path, &f.text).ok())
        .collect();
    let not_stored = fs::read_to_string(dir.join("warden.toml"))
        .ok()
        .and_then(|text| warden_core::config::parse_config("warden.toml", &text).ok())
        .map(|c| c.retention.not_stored())
        .unwrap_or_default();
    Withholding::from_cards(&cards, &not_stored)
}

/// The redactor for the project in `dir`, with its scope cards' `store_arguments` /
/// `store_output` settings. Without a project, the key comes from `$WARDEN_REDACTION_KEY` or
/// is random for this run.
pub fn redactor_for(dir: &Path) -> anyhow::Result<Redactor> {
    let key = match redaction_config(dir)? {
        Some(cfg) => project_key(dir, &cfg)?,
        None => match std::env::var(RedactionConfig::default().key_env) {
            Ok(v) => decode_key(&v, "$WARDEN_REDACTION_KEY")?,
            Err(_) => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                key.to_vec()
            }
        },
    };
    Ok(Redactor::new(&key)
        .context("starting the redaction engine")?
        .with_withholding(withholding(dir)))
}

/// `warden redact [FILE] [--json] [--stats]`.
pub fn run(dir: &Path, file: Option<&Path>, json: bool, stats: bool) -> anyhow::Result<ExitCode> {
    let redactor = redactor_for(dir)?;
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
