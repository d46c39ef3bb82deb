//! `warden migrate`: bring a store's schema up to this version's, or (`--dry-run`) say what
//! that would do.

use std::process::ExitCode;

use crate::context::Context;

/// List the store's migrations and apply the missing ones (none with `dry_run`).
pub async fn migrate(
    ctx: &Context,
    url: Option<String>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let url = match url {
        Some(u) => u,
        None => ctx.read_config()?.store.url,
    };
    let report = warden_store::migrate(&url, ctx.dir(), dry_run).await?;
    let pending = report.pending();
    println!(
        "{} store: {} migrations known to this version",
        report.backend,
        report.steps.len()
    );
    for s in &report.steps {
        let state = match (s.applied, dry_run) {
            (true, _) => "applied",
            (false, true) => "pending",
            (false, false) => "applied now",
        };
        println!("  {:>4}  {:<28} {state}", s.version, s.description);
    }
    if dry_run {
        println!("dry run: {pending} would be applied; nothing was changed");
    } else {
        println!("ok: {} applied, the schema is current", report.applied_now);
    }
    Ok(ExitCode::SUCCESS)
}
