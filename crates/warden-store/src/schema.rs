//! Schema upgrades (`warden migrate`): which migrations a store at a URL has, which it lacks,
//! and applying the missing ones. SQLite (`migrations/`) and PostgreSQL (`migrations-pg/`, the
//! same versions in PostgreSQL's dialect) carry the same list, so one store can move to the
//! other and `warden migrate --dry-run` reads the same on both.
//!
//! [`crate::Store::open`] also applies missing migrations when it opens a SQLite store; for a
//! PostgreSQL store shared by several replicas an operator runs `warden migrate` once, before
//! upgrading them.

use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::{ConnectOptions as _, Connection as _};

use crate::store::{split_url, sqlite_path};
use crate::StoreError;

static SQLITE: Migrator = sqlx::migrate!("./migrations");
static POSTGRES: Migrator = sqlx::migrate!("./migrations-pg");

/// One migration and whether the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStep {
    pub version: i64,
    pub description: String,
    pub applied: bool,
}

/// What `warden migrate` found, and did.
#[derive(Debug, Clone)]
pub struct MigrationReport {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Every migration this build knows, oldest first, as the store had them before the run.
    pub steps: Vec<MigrationStep>,
    /// Migrations applied by this run (none on a dry run).
    pub applied_now: usize,
}

impl MigrationReport {
    /// Migrations the store lacked before the run.
    pub fn pending(&self) -> usize {
        self.steps.iter().filter(|s| !s.applied).count()
    }
}

/// The migrations of the store at `url` (relative SQLite paths resolved against `base`), and,
/// unless `dry_run`, apply those it lacks. A dry run changes nothing: it does not even create
/// a missing SQLite file. A store holding a migration this build does not know (written by a
/// newer Warden), or one whose text changed, is an error; nothing is applied then.
pub async fn migrate(url: &str, base: &Path, dry_run: bool) -> Result<MigrationReport, StoreError> {
    let (scheme, _) = split_url(url)?;
    match scheme {
        "sqlite" => {
            let path = sqlite_path(url, base)?;
            let exists = path.exists();
            if dry_run && !exists {
                return Ok(report("sqlite", &SQLITE, &[], 0));
            }
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(!dry_run)
                .read_only(dry_run)
                .disable_statement_logging()
                .connect()
                .await?;
            let out = run("sqlite", &SQLITE, &mut conn, dry_run).await;
            let _ = conn.close().await;
            out
        }
        "postgres" | "postgresql" => {
            let mut conn = pg_options(url)?
                .disable_statement_logging()
                .connect()
                .await?;
            let out = run("postgres", &POSTGRES, &mut conn, dry_run).await;
            let _ = conn.close().await;
            out
        }
        _ => Err(StoreError::UnsupportedScheme(
            crate::store::without_password(url),
        )),
    }
}

/// PostgreSQL connect options from a URL; an error names the URL without its password.
fn pg_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions, StoreError> {
    url.parse()
        .map_err(|_| StoreError::BadUrl(crate::store::without_password(url)))
}

async fn run<C>(
    backend: &'static str,
    migrator: &'static Migrator,
    conn: &mut C,
    dry_run: bool,
) -> Result<MigrationReport, StoreError>
where
    C: sqlx::migrate::Migrate + Send,
{
    // A store that was never migrated has no table of applied migrations; a dry run must not
    // create it.
    let applied = if dry_run {
        conn.list_applied_migrations().await.unwrap_or_default()
    } else {
        conn.ensure_migrations_table().await?;
        conn.list_applied_migrations().await?
    };
    for a in &applied {
        match migrator.iter().find(|m| m.version == a.version) {
            None => return Err(StoreError::UnknownMigration(a.version)),
            Some(m) if m.checksum != a.checksum => {
                return Err(StoreError::ChangedMigration(a.version))
            }
            Some(_) => {}
        }
    }
    let versions: Vec<i64> = applied.iter().map(|a| a.version).collect();
    let mut applied_now = 0;
    if !dry_run {
        // PostgreSQL: an advisory lock, so two operators (or replicas) never apply at once.
        conn.lock().await?;
        let mut result = Ok(());
        for m in migrator.iter().filter(|m| !versions.contains(&m.version)) {
            if let Err(e) = conn.apply(m).await {
                result = Err(e);
                break;
            }
            applied_now += 1;
        }
        conn.unlock().await?;
        result?;
    }
    Ok(report(backend, migrator, &versions, applied_now))
}

fn report(
    backend: &'static str,
    migrator: &Migrator,
    applied: &[i64],
    applied_now: usize,
) -> MigrationReport {
    MigrationReport {
        backend,
        steps: migrator
            .iter()
            .map(|m| MigrationStep {
                version: m.version,
                description: m.description.to_string(),
                applied: applied.contains(&m.version),
            })
            .collect(),
        applied_now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_carry_the_same_migrations() {
        let list = |m: &Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(list(&SQLITE), list(&POSTGRES));
        assert!(list(&SQLITE).len() >= 9);
    }
}
