//! `--region`: which store of a project with `[regions]` this process reads and writes.
//!
//! Every command finds its store through the project's config; [`apply`] swaps in the
//! selected region's store and checkpoint key right after `warden.toml` is parsed, so no
//! command can open another region's store by accident. Commands that act on one agent
//! check with [`check_agent`] that the agent's records belong to the selected store.

use std::sync::RwLock;

use anyhow::bail;
use warden_core::config::WardenConfig;
use warden_core::policy::CompiledPolicy;

static SELECTED: RwLock<Option<String>> = RwLock::new(None);

/// Select the region of this process (`None`: the home store of `[store]`).
pub fn select(region: Option<String>) {
    if let Ok(mut s) = SELECTED.write() {
        *s = region;
    }
}

/// The region selected with `--region`, if any.
pub fn selected() -> Option<String> {
    SELECTED.read().ok().and_then(|s| s.clone())
}

/// Point a freshly parsed config at the selected region's store.
pub fn apply(config: &mut WardenConfig) -> Result<(), String> {
    match selected() {
        Some(r) => config.select_region(&r),
        None => Ok(()),
    }
}

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
pub fn stores_to_visit(dir: &std::path::Path) -> Vec<(Option<String>, bool)> {
    let selected = selected();
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
/// store on stderr (stdout stays the command's own, JSON Lines included). Stores that hold
/// nothing yet are skipped; the exit status is the worst of the runs.
pub async fn each_store<F, Fut>(
    dir: &std::path::Path,
    mut run: F,
) -> anyhow::Result<std::process::ExitCode>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<std::process::ExitCode>>,
{
    use std::process::ExitCode;
    let stores = stores_to_visit(dir);
    if stores.len() == 1 {
        return run().await;
    }
    let mut failed = false;
    for (region, exists) in stores {
        let name = describe(region.as_deref());
        if !exists {
            eprintln!("== {name}: nothing recorded yet ==");
            continue;
        }
        eprintln!("== {name} ==");
        select(region);
        match run().await {
            Ok(code) if code == ExitCode::SUCCESS => {}
            Ok(_) => failed = true,
            Err(e) => {
                eprintln!("error ({name}): {e:#}");
                failed = true;
            }
        }
    }
    select(None);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The residency guard of the store a loaded project selected: every agent whose card keeps
/// its records elsewhere. `None` when the project declares no regions.
pub fn residency(project: &warden_core::project::Project) -> Option<warden_store::Residency> {
    if project.config.regions.is_empty() {
        return None;
    }
    let region = project.config.region.clone();
    let elsewhere = project
        .policy
        .cards
        .values()
        .filter(|c| c.region != region)
        .map(|c| (c.id.clone(), c.region.clone()))
        .collect();
    Some(warden_store::Residency { region, elsewhere })
}

/// With no `--region`, select the region that keeps `agent`'s records (said on stderr), so a
/// search by agent looks where its records are.
pub fn follow_agent(dir: &std::path::Path, agent: &str) {
    if selected().is_some() {
        return;
    }
    let Ok(project) = crate::project_cmds::load_dir(dir) else {
        return;
    };
    if let Some(r) = project
        .policy
        .cards
        .get(agent)
        .and_then(|c| c.region.clone())
    {
        eprintln!("searching region `{r}`, which keeps the records of `{agent}`");
        select(Some(r));
    }
}
