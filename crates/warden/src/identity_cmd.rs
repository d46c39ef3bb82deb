//! `warden token|user|access|secret`: identities, access review, the secret store.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use sha2::{Digest, Sha256};
use warden_core::access::review_agent;
use warden_core::identity::parse_duration;
use warden_core::ledger::{CertificationEvent, LedgerEvent};
use warden_gateway::identity::{self as ident, rfc3339, TokenRequest};
use warden_gateway::logins::{self, Role};
use warden_gateway::secrets::{self, MasterKey};
use warden_store::Store;

use warden_gateway::project_store;

use crate::context::Context;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue a short-lived token for an agent, bound to its card's environment. Printed once.
    ///
    /// Example: warden token issue --agent crm-writer --ttl 15m --tools get_account,update_account
    Issue {
        #[arg(long)]
        agent: String,
        /// Lifetime: 90s, 15m, 1h, 1d (default [identity] token_ttl_secs; at most
        /// token_ttl_max_secs).
        #[arg(long)]
        ttl: Option<String>,
        /// Only these tools of the card (names or server/name, comma-separated).
        #[arg(long, value_delimiter = ',')]
        tools: Option<Vec<String>>,
        /// Print only the token (for scripts).
        #[arg(long)]
        quiet: bool,
    },
    /// List active tokens (ids, agents, expiry; never the tokens).
    List {
        /// Also expired and revoked ones.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a token by id; its next call is refused.
    Revoke { id: String },
    /// Create an OAuth 2.0 client (client-credentials grant at POST /oauth/token) for an
    /// agent. The secret is printed once and stored only as an Argon2id hash.
    ClientAdd {
        #[arg(long)]
        agent: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Enrol a person: prints a one-time password (or reads one from stdin with
    /// --password-stdin) and the TOTP secret as an otpauth:// URI and a QR code.
    Add {
        name: String,
        #[arg(long, value_parser = ["admin", "approver", "auditor", "owner"])]
        role: String,
        /// Read the password from stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// No second factor (auditor and owner only; refused for admin and approver).
        #[arg(long)]
        no_mfa: bool,
    },
    /// List people, roles, MFA and lock-out state.
    List,
    /// Disable a person and end their sessions.
    Disable { name: String },
    /// Seal a new break-glass admin credential (printed once; earlier ones stop working).
    /// Using it (POST /v1/login {"break_glass": …} or as a bearer on the admin API) raises
    /// a high-severity alert record and marks every record it causes.
    BreakGlassSeal,
}

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// For each agent: granted tools, tools used in the window (from the ledger), unused
    /// permissions and the scope-card edit that removes each.
    Review {
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Only this agent.
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Record an owner's sign-off on an agent's access (identity, time, card hash, tools).
    Certify {
        #[arg(long)]
        agent: String,
        /// The enrolled user who signs off (role owner or admin).
        #[arg(long)]
        by: String,
        /// Their current TOTP code (required when they have MFA).
        #[arg(long)]
        totp: Option<String>,
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store an upstream credential, read from stdin, encrypted at rest. Reference it in
    /// warden.toml as `{ secret = "NAME" }` in [upstreams.X.env] or [upstreams.X.headers].
    Set { name: String },
    /// Names of stored secrets (never values).
    List,
    /// Generate a new master key, re-wrap every secret under it and replace the key file.
    RotateMaster,
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

async fn project_and_store(
    ctx: &Context,
) -> Result<(warden_core::project::Project, Store), ExitCode> {
    let project = ctx.load()?;
    match project_store::open_store(ctx.dir(), &project.config).await {
        Ok(l) => Ok((project, l)),
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

macro_rules! open_or_exit {
    ($ctx:expr) => {
        match project_and_store($ctx).await {
            Ok(x) => x,
            Err(code) => return Ok(code),
        }
    };
}

pub async fn token(ctx: &Context, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let (project, store) = open_or_exit!(ctx);
    let now = store.clock().unix();
    match cmd {
        TokenCommand::Issue {
            agent,
            ttl,
            tools,
            quiet,
        } => {
            crate::region::check_agent(&project.policy, &project.config, &agent)?;
            let ttl = match ttl {
                None => None,
                Some(t) => Some(parse_duration(&t).with_context(|| {
                    format!("--ttl {t}: use a number and a unit: 90s, 15m, 1h, 1d")
                })?),
            };
            let t = ident::issue_token(
                &store,
                &project.policy,
                &project.config.identity,
                TokenRequest {
                    agent: &agent,
                    ttl,
                    tools,
                    issued_by: &actor(),
                    break_glass: false,
                    now,
                },
            )
            .await?;
            if quiet {
                println!("{}", t.token);
            } else {
                println!(
                    "token {} for {} ({}), expires {}",
                    t.id,
                    t.agent,
                    t.environment,
                    rfc3339(t.expires_at)
                );
                if let Some(tools) = &t.tools {
                    println!("tools: {}", tools.join(", "));
                }
                println!("{}", t.token);
                eprintln!("Shown once: Warden keeps only its SHA-256. Send it as `Authorization: Bearer <token>`.");
            }
        }
        TokenCommand::List { all } => {
            let rows = store.identities().tokens(now, all).await?;
            println!(
                "{:<16}  {:<16}  {:<5}  {:<20}  {:<8}  tools",
                "id", "agent", "env", "expires", "state"
            );
            for t in rows {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at <= now {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<16}  {:<16}  {:<5}  {:<20}  {:<8}  {}",
                    t.id,
                    t.agent,
                    t.environment,
                    rfc3339(t.expires_at),
                    state,
                    t.tools
                        .map_or_else(|| "(all of the card)".to_string(), |v| v.join(","))
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let row = ident::revoke_token(&store, &id, &actor(), false, now).await?;
            println!(
                "revoked token {id} of {}; its next call is refused",
                row.agent
            );
        }
        TokenCommand::ClientAdd { agent } => {
            crate::region::check_agent(&project.policy, &project.config, &agent)?;
            let c = ident::add_client(&store, &project.policy, &agent, &actor(), now).await?;
            println!("client_id:     {}", c.client_id);
            println!("client_secret: {}", c.secret);
            eprintln!("Shown once: Warden keeps only an Argon2id hash. Exchange them at POST /oauth/token (grant_type=client_credentials).");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn print_qr(uri: &str) {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let img = code
                .render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build();
            println!("{img}");
        }
        Err(e) => eprintln!("(no QR code: {e}; type the URI into the app instead)"),
    }
}

pub async fn user(ctx: &Context, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let dir = ctx.dir();
    let (project, store) = open_or_exit!(ctx);
    let now = store.clock().unix();
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            no_mfa,
        } => {
            let role = Role::parse(&role).context("unknown role")?;
            let password = if password_stdin {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the password from stdin")?;
                Some(s.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let (key, created) = secrets::load_or_create_master_key(dir, &project.config.identity)?;
            if created {
                eprintln!(
                    "created the master key {} (mode 0600); keep it out of version control",
                    secrets::master_key_path(dir, &project.config.identity).display()
                );
            }
            let e = logins::add_user(&store, &key, &name, role, password, !no_mfa, &actor(), now)
                .await?;
            println!("user {name} ({}) enrolled. Shown once:", role.as_str());
            if !password_stdin {
                println!("password: {}", e.password);
            }
            if let Some(uri) = &e.otpauth_uri {
                println!("TOTP:     {uri}");
                print_qr(uri);
                println!("Scan it with an authenticator app; log in with POST /v1/login {{\"user\",\"password\",\"totp\"}}.");
            }
        }
        UserCommand::List => {
            println!(
                "{:<20}  {:<8}  {:<4}  {:<8}  failed",
                "user", "role", "mfa", "state"
            );
            for u in store.identities().users().await? {
                let state = if u.disabled {
                    "disabled"
                } else if u.locked_until > now {
                    "locked"
                } else {
                    "active"
                };
                println!(
                    "{:<20}  {:<8}  {:<4}  {:<8}  {}",
                    u.name,
                    u.role,
                    if u.mfa { "totp" } else { "none" },
                    state,
                    u.failed_logins
                );
            }
        }
        UserCommand::Disable { name } => {
            logins::disable_user(&store, &name, &actor(), now).await?;
            println!("user {name} disabled; their sessions are ended");
        }
        UserCommand::BreakGlassSeal => {
            let (cred, id) = ident::seal_break_glass(&store, &actor(), now).await?;
            println!("break-glass credential {id} (earlier ones no longer work). Shown once:");
            println!("{cred}");
            eprintln!("Seal it away (envelope, safe, password manager with two-person access). Every use raises a high-severity alert in the ledger.");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Usage per agent: agent → (tool as recorded → decisions in the window).
async fn usage(
    store: &Store,
    days: u32,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, u64>>> {
    let since = time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
    let since = warden_gateway::identity::rfc3339(since.unix_timestamp());
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (agent, tool, n) in store.ledger().decision_usage(&since).await? {
        *out.entry(agent).or_default().entry(tool).or_default() += n;
    }
    Ok(out)
}

pub async fn access(ctx: &Context, cmd: AccessCommand) -> anyhow::Result<ExitCode> {
    let dir = ctx.dir();
    let (project, store) = open_or_exit!(ctx);
    match cmd {
        AccessCommand::Review { days, agent, json } => {
            let used = usage(&store, days).await?;
            let empty = BTreeMap::new();
            let mut reviews = Vec::new();
            for (id, card) in &project.policy.cards {
                if agent.as_ref().is_some_and(|a| a != id) {
                    continue;
                }
                let text = std::fs::read_to_string(dir.join(&card.path)).unwrap_or_default();
                reviews.push(review_agent(card, &text, used.get(id).unwrap_or(&empty)));
            }
            if let Some(a) = &agent {
                if reviews.is_empty() {
                    bail!("no scope card for agent `{a}`");
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reviews)?);
            } else {
                println!("Access review: the last {days} days of the ledger");
                for r in &reviews {
                    println!();
                    println!("{} ({})", r.agent, r.card_path);
                    println!("  granted: {}", r.granted.join(", "));
                    let used: Vec<String> =
                        r.used.iter().map(|(t, n)| format!("{t} ×{n}")).collect();
                    println!(
                        "  used:    {}",
                        if used.is_empty() {
                            "(nothing)".to_string()
                        } else {
                            used.join(", ")
                        }
                    );
                    if r.unused.is_empty() {
                        println!("  unused:  none");
                    }
                    for u in &r.unused {
                        println!("  unused:  {}  →  {}", u.tool, u.edit);
                    }
                    for (t, n) in &r.ungranted_attempts {
                        println!("  refused: {t} ×{n} (not on the card)");
                    }
                }
            }
        }
        AccessCommand::Certify {
            agent,
            by,
            totp,
            days,
        } => {
            crate::region::check_agent(&project.policy, &project.config, &agent)?;
            let card = project
                .policy
                .cards
                .get(&agent)
                .with_context(|| format!("no scope card for agent `{agent}`"))?;
            let user = store
                .identities()
                .user(&by)
                .await?
                .filter(|u| !u.disabled)
                .with_context(|| {
                    format!("no enabled user `{by}` (`warden user add {by} --role owner`)")
                })?;
            if !matches!(Role::parse(&user.role), Some(Role::Owner | Role::Admin)) {
                bail!(
                    "{by} is {}; only an owner or an admin certifies access",
                    user.role
                );
            }
            if user.mfa {
                let Some(code) = totp else {
                    bail!("{by} has MFA: pass their current code with --totp");
                };
                let key = secrets::load_master_key(dir, &project.config.identity)?
                    .context("no master key: the TOTP seed cannot be read")?;
                if !logins::check_totp(&store, &key, &by, &code, store.clock().unix()).await? {
                    bail!("the one-time code is wrong, expired or already used");
                }
            }
            let text = std::fs::read(dir.join(&card.path))
                .with_context(|| format!("reading {}", card.path))?;
            let used = usage(&store, days).await?;
            let empty = BTreeMap::new();
            let review = review_agent(
                card,
                &String::from_utf8_lossy(&text),
                used.get(&agent).unwrap_or(&empty),
            );
            let event = CertificationEvent {
                agent: agent.clone(),
                by: by.clone(),
                role: user.role.clone(),
                card_hash: hex::encode(Sha256::digest(&text)),
                tools: review.granted.clone(),
                unused: review.unused.iter().map(|u| u.tool.clone()).collect(),
                window_days: days,
                mfa: user.mfa,
            };
            let rec = store
                .ledger()
                .append(store.clock().rfc3339(), LedgerEvent::AccessCertified(event))
                .await?;
            println!(
                "{by} certified the access of {agent}: {} tools, card sha256 {} (ledger record {})",
                review.granted.len(),
                hex::encode(Sha256::digest(&text))
                    .chars()
                    .take(16)
                    .collect::<String>(),
                rec.seq
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn secret(ctx: &Context, cmd: SecretCommand) -> anyhow::Result<ExitCode> {
    let dir = ctx.dir();
    let (project, store) = open_or_exit!(ctx);
    let cfg = &project.config.identity;
    let now = store.clock().unix();
    match cmd {
        SecretCommand::Set { name } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("reading the value from stdin")?;
            let value = value.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                bail!("no value on stdin; e.g. `printf %s \"$TOKEN\" | warden secret set {name}`");
            }
            let (key, created) = secrets::load_or_create_master_key(dir, cfg)?;
            if created {
                eprintln!(
                    "created the master key {} (mode 0600); keep it out of version control",
                    secrets::master_key_path(dir, cfg).display()
                );
            }
            secrets::set_secret(&store, &key, &name, value.as_bytes(), &actor(), now).await?;
            println!(
                "secret {name} stored (XChaCha20-Poly1305, master key {})",
                key.id()
            );
        }
        SecretCommand::List => {
            for s in store.identities().secrets().await? {
                if let Some(user) = s.name.strip_prefix("totp/") {
                    println!(
                        "{:<24}  master key {}  (TOTP seed of {user})",
                        s.name, s.master_id
                    );
                } else {
                    println!(
                        "{:<24}  master key {}  updated {}",
                        s.name,
                        s.master_id,
                        rfc3339(s.updated_at)
                    );
                }
            }
        }
        SecretCommand::RotateMaster => {
            let old = secrets::load_master_key(dir, cfg)?.context("no master key to rotate")?;
            let from_env = std::env::var(secrets::MASTER_KEY_ENV).is_ok();
            let path = secrets::master_key_path(dir, cfg);
            let new = MasterKey::generate();
            // The new key is on disk before any secret depends on it.
            let staged = path.with_extension("new");
            secrets::save_master_key(&staged, &new)?;
            // The ledger's payload keys first: they fail as a whole if one does not open.
            let payload_keys = store
                .lifecycle()
                .rewrap_vault_keys(old.bytes(), new.bytes())
                .await?;
            println!("re-wrapped {payload_keys} ledger payload keys (no record changed)");
            let n = secrets::rotate_master(&store, &old, &new, &actor(), now).await?;
            if from_env {
                println!(
                    "re-wrapped {n} secrets under master key {}; it is in {} — put it into {} and delete the file",
                    new.id(),
                    staged.display(),
                    secrets::MASTER_KEY_ENV
                );
            } else {
                std::fs::rename(&staged, &path)
                    .with_context(|| format!("replacing {}", path.display()))?;
                println!(
                    "re-wrapped {n} secrets under master key {} ({})",
                    new.id(),
                    path.display()
                );
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The values of every `{ secret = "NAME" }` that warden.toml's upstreams and `[telemetry]
/// otlp_headers` reference, opened with the master key (for `serve` and `mcp stdio`). Fails if
/// one is missing or the key is.
pub async fn upstream_secrets(
    dir: &Path,
    config: &warden_core::config::WardenConfig,
    store: &Store,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let mut names = std::collections::BTreeSet::new();
    let upstream_values = config
        .upstreams
        .values()
        .flat_map(|u| u.get_ref().env.values().chain(u.get_ref().headers.values()));
    for v in upstream_values.chain(config.telemetry.otlp_headers.values()) {
        if let warden_core::config::EnvValue::Secret { secret } = v {
            names.insert(secret.clone());
        }
    }
    let mut out = std::collections::HashMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let key = secrets::load_master_key(dir, &config.identity)?.with_context(|| {
        format!(
            "warden.toml references secrets ({}) but there is no master key: set {} or provide {}",
            names.iter().cloned().collect::<Vec<_>>().join(", "),
            secrets::MASTER_KEY_ENV,
            secrets::master_key_path(dir, &config.identity).display()
        )
    })?;
    for name in names {
        let v = secrets::get_secret(store, &key, &name).await?;
        out.insert(name, v);
    }
    Ok(out)
}
