//! `--region`: which store of a project with `[regions]` a command reads and writes.
//!
//! The selected region travels in the command's [`Context`]; every config reader of the CLI
//! (`Context::read_config`, `Context::load_dir`) swaps in that region's store and checkpoint
//! key right after `warden.toml` is parsed, so no command can open another region's store by
//! accident. Commands that act on one agent check with [`check_agent`] that the agent's
//! records belong to the selected store.

use anyhow::bail;
use warden_core::config::WardenConfig;
use warden_core::policy::CompiledPolicy;

use crate::context::Context;

/// The words for a store: `region `eu`` or `the home store`.
pub fn describe(region: Option<&str>) -> String {
    match region {
        Some(r) => format!("region `{r}`"),
        None => "the home store".to_string(),
    }
}

/// Refuse to act for an agent whose records are kept in another region's store.
pub fn check_agent(
    policy: &CompiledPolicy,
    config: &WardenConfig,
    agent: &str,
) -> anyhow::Result<()> {
    let Some(card) = policy.cards.get(agent) else {
        return Ok(());
    };
    if card.region == config.region {
        return Ok(());
    }
    let hint = match &card.region {
        Some(r) => format!("run it with `--region {r}`"),
        None => "run it without --region".to_string(),
    };
    bail!(
        "agent `{agent}` keeps its records in {} ({}), and this command is working on {}; {hint}",
        describe(card.region.as_deref()),
        card.path,
        describe(config.region.as_deref()),
    )
}

/// The stores a whole-project command visits: the selected region's alone, or, with no
/// `--region` in a project with `[regions]`, the home store and every region's, each with
/// whether its database exists yet.
pub fn stores_to_visit(ctx: &Context) -> Vec<(Option<String>, bool)> {
    let dir = ctx.dir();
    let selected = ctx.region().map(str::to_string);
    let config = std::fs::read_to_string(dir.join("warden.toml"))
        .ok()
        .and_then(|text| warden_core::config::parse_config("warden.toml", &text).ok());
    let Some(config) = config.filter(|c| selected.is_none() && !c.regions.is_empty()) else {
        return vec![(selected, true)];
    };
    config
        .store_regions()
        .into_iter()
        .map(|region| {
            let mut c = config.clone();
            let exists = match &region {
                Some(r) => c.select_region(r).is_ok(),
                None => true,
            } && warden_store::sqlite_path(&c.store.url, dir)
                .is_ok_and(|p| p.exists());
            (region, exists)
        })
        .collect()
}

/// Run a whole-project command on each store [`stores_to_visit`] names, with a heading per
/// store on stderr (stdout stays the command's own, JSON Lines included); each run is given
/// the context of its store. Stores that hold nothing yet are skipped; the exit status is the
/// worst of the runs.
pub async fn each_store<F, Fut>(ctx: &Context, mut run: F) -> anyhow::Result<std::process::ExitCode>
where
    F: FnMut(Context) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<std::process::ExitCode>>,
{
    use std::process::ExitCode;
    let stores = stores_to_visit(ctx);
    if stores.len() == 1 {
        return run(ctx.clone()).await;
    }
    let mut failed = false;
    for (region, exists) in stores {
        let name = describe(region.as_deref());
        if !exists {
            eprintln!("== {name}: nothing recorded yet ==");
            continue;
        }
        eprintln!("== {name} ==");
        match run(ctx.in_region(region)).await {
            Ok(code) if code == ExitCode::SUCCESS => {}
            Ok(_) => failed = true,
            Err(e) => {
                eprintln!("error ({name}): {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// With no `--region`, the context of the region that keeps `agent`'s records (said on
/// stderr), so a search by agent looks where its records are.
pub fn follow_agent(ctx: &Context, agent: &str) -> Context {
    if ctx.region().is_some() {
        return ctx.clone();
    }
    let Ok(project) = ctx.load_dir() else {
        return ctx.clone();
    };
    match project
        .policy
        .cards
        .get(agent)
        .and_then(|c| c.region.clone())
    {
        Some(r) => {
            eprintln!("searching region `{r}`, which keeps the records of `{agent}`");
            ctx.in_region(Some(r))
        }
        None => ctx.clone(),
    }
}
