//! `warden migrate` underneath: the same migrations on SQLite and PostgreSQL, a dry run that
//! changes nothing, applying only what is missing, and refusing a store from a newer build.
//!
//! The PostgreSQL half runs when `WARDEN_TEST_POSTGRES` names a server
//! (`postgres://USER@HOST:PORT`; `scripts/test.sh` sets it): each test creates a database of its
//! own and drops it, so runs cannot collide.

// Test code: a panic is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use sqlx::{Connection as _, Executor as _};
use warden_store::{migrate, Store, StoreError, StoreOptions};

#[tokio::test]
async fn sqlite_dry_run_changes_nothing_then_migrate_applies_only_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let url = "sqlite://w.db";
    let dry = migrate(url, dir.path(), true).await.unwrap();
    assert_eq!(dry.backend, "sqlite");
    assert!(dry.steps.len() >= 9);
    assert_eq!(dry.pending(), dry.steps.len());
    assert!(
        !dir.path().join("w.db").exists(),
        "a dry run creates no file"
    );

    let first = migrate(url, dir.path(), false).await.unwrap();
    assert_eq!(first.applied_now, first.steps.len());
    let again = migrate(url, dir.path(), true).await.unwrap();
    assert_eq!(again.pending(), 0);
    assert_eq!(
        migrate(url, dir.path(), false).await.unwrap().applied_now,
        0
    );

    // The gateway opens what `warden migrate` made, and `migrate` accepts what the gateway made.
    let store = Store::open(url, dir.path(), StoreOptions::default())
        .await
        .unwrap();
    store.close().await;
    let other = tempfile::tempdir().unwrap();
    Store::open(url, other.path(), StoreOptions::default())
        .await
        .unwrap()
        .close()
        .await;
    assert_eq!(migrate(url, other.path(), true).await.unwrap().pending(), 0);
}

#[tokio::test]
async fn a_store_migrated_by_a_newer_warden_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    migrate("sqlite://w.db", dir.path(), false).await.unwrap();
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("w.db").display()))
            .await
            .unwrap();
    conn.execute("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'future', 1, x'00', 0)")
        .await
        .unwrap();
    conn.close().await.unwrap();
    for dry_run in [true, false] {
        let err = migrate("sqlite://w.db", dir.path(), dry_run)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::UnknownMigration(9999)), "{err}");
        assert!(err.to_string().contains("does not know"), "{err}");
    }
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_showing_a_password() {
    let err = migrate("mysql://warden:s3cret@db/w", Path::new("/"), true)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedScheme(_)), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

/// A fresh database on the test server, dropped when the guard goes.
struct PgDb {
    server: String,
    name: String,
}

impl PgDb {
    async fn create() -> Option<Self> {
        let Ok(server) = std::env::var("WARDEN_TEST_POSTGRES") else {
            eprintln!("SKIPPED: WARDEN_TEST_POSTGRES is not set (scripts/test.sh sets it)");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("warden_t_{}_{nanos}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(Self { server, name })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    async fn drop_it(self) {
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", self.server))
            .await
            .unwrap();
        admin
            .execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn postgres_dry_run_changes_nothing_then_migrate_applies_every_table() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let url = db.url();
    let dry = migrate(&url, Path::new("/"), true).await.unwrap();
    assert_eq!(dry.backend, "postgres");
    assert_eq!(dry.pending(), dry.steps.len());
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "a dry run creates nothing");

    let first = migrate(&url, Path::new("/"), false).await.unwrap();
    assert_eq!(first.applied_now, first.steps.len());
    assert_eq!(
        migrate(&url, Path::new("/"), true).await.unwrap().pending(),
        0
    );
    assert_eq!(
        migrate(&url, Path::new("/"), false)
            .await
            .unwrap()
            .applied_now,
        0
    );
    // Every table of the SQLite schema exists, with the same columns.
    let sqlite_dir = tempfile::tempdir().unwrap();
    migrate("sqlite://w.db", sqlite_dir.path(), false)
        .await
        .unwrap();
    let mut lite = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        sqlite_dir.path().join("w.db").display()
    ))
    .await
    .unwrap();
    let lite_cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name != '_sqlx_migrations' ORDER BY 1, 2",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap();
    let pg_cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name != '_sqlx_migrations' ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut lite_cols = lite_cols;
    lite_cols.sort();
    let mut pg_cols = pg_cols;
    pg_cols.sort();
    assert_eq!(
        pg_cols, lite_cols,
        "both dialects define the same tables and columns"
    );
    conn.close().await.unwrap();
    db.drop_it().await;
}
