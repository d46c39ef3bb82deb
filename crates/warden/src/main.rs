//! `warden`: the command-line face of Warden.

mod approvals_cmd;
mod audit;
mod context;
mod demo;
mod identity_cmd;
mod ledger_cmd;
mod lifecycle_cmd;
mod mcp_cmd;
mod migrate_cmd;
mod project_cmds;
mod redact_cmd;
mod region;
mod serve;
mod since;
mod table;
mod taint_cmds;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::context::Context;

/// Warden: a security and compliance gateway for AI agents.
///
/// Every tool call an agent proposes is decided by policy (compiled from the agent's scope
/// card plus your Cedar policies), recorded in a tamper-evident ledger before it may run, and
/// explained in words.
///
/// Start with `warden demo`, then `warden init DIR` for a project of your own.
#[derive(Parser, Debug)]
#[command(
    name = "warden",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// The project directory (holds warden.toml, agents/, policies/, tests/).
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "WARDEN_PROJECT",
        default_value = "."
    )]
    project: PathBuf,
    /// With `[regions]` in warden.toml: work on this region's store (its agents' records, keys
    /// and approvals) instead of the home store of `[store]`. `serve --region eu` is the
    /// gateway of region `eu`: it accepts only the calls of agents whose card says
    /// `region = "eu"`. Without it, `audit verify`, `retention run` and `data erase|export`
    /// visit every store in turn.
    #[arg(long, global = true, env = "WARDEN_REGION")]
    region: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole flow on a throw-away project: gateway, scripted agents, ledger check.
    ///
    /// Starts a gateway on a temporary SQLite ledger with two example agents and the built-in
    /// demo tool server, drives ordinary reads, a write that needs approval, calls outside
    /// their constraints and a prompt-injected refund, prints every decision with its reason,
    /// verifies the ledger and exits 0.
    Demo {
        /// Keep the demo project in this directory (it must not exist) instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Write a working example project into DIR: warden.toml, two scope cards, a policy, tests.
    Init {
        /// Where to create the project (created if missing; must not already hold warden.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Validate warden.toml, every scope card and every policy; print what the project grants.
    ///
    /// Errors are reported as `file:line:col: error: ...` with a hint. Exit status 1 on errors.
    Check {
        /// Print the Cedar schema generated from the scope cards.
        #[arg(long)]
        schema: bool,
        /// Print the Cedar policies generated from the scope cards.
        #[arg(long)]
        policies: bool,
    },
    /// Decide one proposed call without running or recording it (a dry run), with reasons.
    ///
    /// Example: warden decide --agent crm-writer --tool issue_refund
    ///          --args '{"account_id":"ACC-0001","amount":120,"reason":"double charge"}'
    Decide {
        #[arg(long)]
        agent: String,
        /// Tool name from the scope card, or server/name.
        #[arg(long)]
        tool: String,
        /// The call's arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        #[arg(long)]
        session: Option<String>,
        /// Ticket or request id that explains the call.
        #[arg(long)]
        correlation_id: Option<String>,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run policy scenarios (tests/*.toml by default) and report which decisions differ.
    Test {
        /// Scenario files or directories.
        paths: Vec<PathBuf>,
        /// Also write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Run the built-in corpus of prompt injections against every agent instead: report
        /// which high-impact calls an injected session could still make without a human
        /// (exit 1 if any).
        #[arg(long)]
        adversarial: bool,
    },
    /// Start the gateway: the decision API, /healthz, /readyz, /openapi.json.
    Serve {
        /// Override [gateway] listen, e.g. 127.0.0.1:0 for any free port.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Put Warden between an MCP client and an MCP server.
    Mcp {
        #[command(subcommand)]
        command: McpCommand,
    },
    /// Review and approve upstream tool definitions (tool pinning).
    Tools {
        #[command(subcommand)]
        command: ToolsCommand,
    },
    /// Redact secrets and personal data from text (FILE, or stdin) with the ledger's engine.
    ///
    /// Values become `[REDACTED:<kind>:<hmac8>]`, keyed with the project's redaction key, so
    /// the same value gets the same token as in the ledger.
    Redact {
        /// The file to redact; standard input when absent or `-`.
        file: Option<PathBuf>,
        /// The input is JSON (one document or JSON Lines): walk it, redacting string values
        /// and the values of secret-named members.
        #[arg(long)]
        json: bool,
        /// Print counts per kind on standard error.
        #[arg(long)]
        stats: bool,
    },
    /// Read and check the ledger.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Agent tokens and OAuth clients: issue, list, revoke, client-add.
    Token {
        #[command(subcommand)]
        command: identity_cmd::TokenCommand,
    },
    /// Human approvals: list, show, approve, deny (as `--by` with `--totp`), fatigue stats.
    Approvals {
        #[command(subcommand)]
        command: approvals_cmd::ApprovalsCommand,
    },
    /// People: add (password + TOTP enrolment), list, disable; the break-glass credential.
    User {
        #[command(subcommand)]
        command: identity_cmd::UserCommand,
    },
    /// Access review (granted vs used, with the edits that remove unused grants) and sign-off.
    Access {
        #[command(subcommand)]
        command: identity_cmd::AccessCommand,
    },
    /// Upstream credentials encrypted at rest (XChaCha20-Poly1305 under a master key).
    Secret {
        #[command(subcommand)]
        command: identity_cmd::SecretCommand,
    },
    /// Retention of payloads: destroy the keys of those past retention, and record it.
    Retention {
        #[command(subcommand)]
        command: lifecycle_cmd::RetentionCommand,
    },
    /// Data subjects: erase one (crypto-shredding), or export what is held about one.
    Data {
        #[command(subcommand)]
        command: lifecycle_cmd::DataCommand,
    },
    /// Bring the store's schema up to this version's, or say what that would do.
    ///
    /// Lists every schema migration this version knows and whether the store has it. Without
    /// --dry-run, applies the missing ones (PostgreSQL: under an advisory lock, so two runs
    /// never apply at once). A store migrated by a newer Warden is refused, not touched.
    ///
    /// Examples: warden migrate --dry-run
    ///           warden migrate --url postgres://warden@db.internal/warden
    Migrate {
        /// Only list what would be applied; change nothing (a missing SQLite file is not created).
        #[arg(long)]
        dry_run: bool,
        /// The store to migrate (default: [store] url of warden.toml). sqlite://PATH or
        /// postgres://USER@HOST[:PORT]/DATABASE.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum McpCommand {
    /// Wrap a stdio MCP server for a desktop client: use this as the server `command` in the
    /// client's MCP config.
    ///
    /// tools/list shows only the tools the agent's scope card grants on SERVER; every
    /// tools/call is decided and recorded first, and a refused call comes back as a tool
    /// result with isError and the reasons. Protocol on stdout, logs on stderr.
    ///
    /// Example: warden mcp stdio -p ./acme --agent support-triage --server helpdesk -- npx -y @modelcontextprotocol/server-everything stdio
    Stdio {
        /// The agent whose scope card applies.
        #[arg(long)]
        agent: String,
        /// The upstream's name in warden.toml ([upstreams.NAME]); inferred when the card's
        /// tools use one server only.
        #[arg(long)]
        server: Option<String>,
        /// The server command and its arguments (after `--`); defaults to the upstream's
        /// `command` in warden.toml.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ToolsCommand {
    /// List pinned tool definitions; blocked ones (changed since approved) first.
    Review,
    /// Scan every pinned (and newly announced) tool definition for hidden characters, HTML
    /// comments and text that instructs the model instead of describing the tool.
    Audit {
        /// Exit 1 when anything is found (for CI).
        #[arg(long)]
        strict: bool,
    },
    /// Approve the new definition of a blocked tool: it becomes the pin and the tool is
    /// offered again. Recorded in the ledger with the approver's name.
    Approve {
        /// The upstream, as named in warden.toml.
        #[arg(long)]
        server: String,
        #[arg(long)]
        tool: String,
        /// Who approves (until human identities land: a name for the record).
        #[arg(long, env = "USER")]
        by: String,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the hash chain over every record. On a break, name the first bad record and
    /// exit 1.
    Verify {
        /// Also prove the ledger extends this older signed checkpoint (consistency proof):
        /// detects truncation or rewriting even when every hash was recomputed.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Print the latest signed checkpoint (a C2SP tlog-checkpoint note).
    Checkpoint {
        /// Sign a checkpoint of every record now.
        #[arg(long)]
        now: bool,
    },
    /// Print an inclusion proof of record SEQ against the latest checkpoint.
    Prove {
        seq: u64,
        #[arg(long)]
        json: bool,
    },
    /// Export records: JSON Lines with a checkpoint and proof for `warden-verify`, or OCSF.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ledger_cmd::ExportFormat,
        /// RFC 3339 time or an age (30m, 12h, 7d): records at or after it.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time or an age: records before it.
        #[arg(long)]
        until: Option<String>,
        /// jsonl: a directory for ledger.jsonl, checkpoint.txt, ledger.vkey (and proof.json);
        /// ocsf: a file. Default: stdout (records only).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the ledger's public key (C2SP verifier key) for auditors and witnesses.
    Pubkey,
    /// Show the last records.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep printing new records as they are appended (Ctrl-C to stop).
        #[arg(long, short = 'f')]
        follow: bool,
        /// One canonical JSON record per line, as stored.
        #[arg(long)]
        json: bool,
    },
    /// Find records by agent, tool and time.
    Search {
        #[arg(long)]
        agent: Option<String>,
        /// Tool name or server/name.
        #[arg(long)]
        tool: Option<String>,
        /// RFC 3339 time (2026-11-25T10:00:00Z) or an age: 30m, 12h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// A decision id: its decision and outcome records.
        #[arg(long)]
        decision: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // `warden audit tail | head` closes our stdout early; end quietly instead of panicking.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Context::new(cli.project, cli.region);
    let ctx = &ctx;
    match cli.command {
        Command::Demo { keep } => demo::run(keep).await,
        Command::Init { dir } => project_cmds::init(&dir),
        Command::Check { schema, policies } => project_cmds::check(ctx, schema, policies),
        Command::Decide {
            agent,
            tool,
            args,
            session,
            correlation_id,
            json,
        } => project_cmds::decide(
            ctx,
            &agent,
            &tool,
            &args,
            session.as_deref(),
            correlation_id.as_deref(),
            json,
        ),
        Command::Test {
            adversarial: true,
            junit,
            ..
        } => taint_cmds::adversarial(ctx, junit.as_deref()),
        Command::Test { paths, junit, .. } => project_cmds::test(ctx, &paths, junit.as_deref()),
        Command::Serve { listen } => serve::run(ctx, listen).await,
        Command::Mcp {
            command:
                McpCommand::Stdio {
                    agent,
                    server,
                    command,
                },
        } => mcp_cmd::stdio(ctx, &agent, server, command).await,
        Command::Tools { command } => match command {
            ToolsCommand::Review => audit::tools_review(ctx).await,
            ToolsCommand::Audit { strict } => audit::tools_audit(ctx, strict).await,
            ToolsCommand::Approve { server, tool, by } => {
                audit::tools_approve(ctx, &server, &tool, &by).await
            }
        },
        Command::Token { command } => identity_cmd::token(ctx, command).await,
        Command::Approvals { command } => approvals_cmd::run(ctx, command).await,
        Command::User { command } => identity_cmd::user(ctx, command).await,
        Command::Access { command } => identity_cmd::access(ctx, command).await,
        Command::Secret { command } => identity_cmd::secret(ctx, command).await,
        Command::Migrate { dry_run, url } => migrate_cmd::migrate(ctx, url, dry_run).await,
        Command::Retention { command } => {
            region::each_store(ctx, |store| {
                let command = command.clone();
                async move { lifecycle_cmd::retention(&store, command).await }
            })
            .await
        }
        Command::Data { command } => {
            region::each_store(ctx, |store| {
                let command = command.clone();
                async move { lifecycle_cmd::data(&store, command).await }
            })
            .await
        }
        Command::Redact { file, json, stats } => {
            redact_cmd::run(ctx.dir(), file.as_deref(), json, stats)
        }
        Command::Audit { command } => match command {
            // A checkpoint belongs to one log: it is checked against the selected store only.
            AuditCommand::Verify { checkpoint } => match checkpoint {
                Some(c) => audit::verify(ctx, Some(&c)).await,
                None => {
                    region::each_store(
                        ctx,
                        |store| async move { audit::verify(&store, None).await },
                    )
                    .await
                }
            },
            AuditCommand::Checkpoint { now } => ledger_cmd::checkpoint(ctx, now).await,
            AuditCommand::Prove { seq, json } => ledger_cmd::prove(ctx, seq, json).await,
            AuditCommand::Export {
                format,
                since,
                until,
                out,
            } => ledger_cmd::export(ctx, format, since, until, out).await,
            AuditCommand::Pubkey => ledger_cmd::pubkey(ctx),
            AuditCommand::Tail {
                lines,
                follow,
                json,
            } => audit::tail(ctx, lines, follow, json).await,
            AuditCommand::Search {
                agent,
                tool,
                since,
                decision,
                limit,
                json,
            } => {
                // An agent's records are in its region's store: search there unless told.
                let ctx = match &agent {
                    Some(a) => region::follow_agent(ctx, a),
                    None => ctx.clone(),
                };
                audit::search(&ctx, agent, tool, since, decision, limit, json).await
            }
        },
    }
}
