//! `warden_gateway::project_store` as a library user sees it: open a project's store as its
//! writer, close it and find the final checkpoint at the witness; the read-only opens refuse
//! what is not there.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use warden_gateway::project_store::{
    key_path, open_existing, read_config, ProjectStore, ProjectStoreError,
};

/// The example project of `warden init`, with a directory witness.
fn example_project(dir: &Path) {
    for (rel, text) in warden_core::example::render(|a| format!("{:0<64}", a.len())) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let toml = dir.join("warden.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n[[ledger.witnesses]]\ndir = \"witness\"\n");
    std::fs::write(toml, text).unwrap();
}

#[tokio::test]
async fn a_closed_store_has_delivered_its_final_checkpoint_to_the_witness() {
    let dir = tempfile::tempdir().unwrap();
    example_project(dir.path());
    let config = read_config(dir.path(), None).unwrap();

    // Nothing recorded yet: the read-only open refuses rather than creating a store.
    let err = open_existing(dir.path(), &config).await.unwrap_err();
    assert!(matches!(err, ProjectStoreError::NoLedger { .. }), "{err}");
    assert!(
        err.to_string().contains("nothing has been recorded yet"),
        "{err}"
    );

    let store = ProjectStore::open(dir.path(), &config).await.unwrap();
    let key = key_path(dir.path(), &config.ledger);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the signing key is private");
    }
    let verifier = store.signer().verifier();
    // One record (a token issue), so there is a tree to checkpoint.
    let project = warden_gateway::project_store::load_project(dir.path(), None).unwrap();
    warden_gateway::identity::issue_token(
        store.store(),
        &project.policy,
        &project.config.identity,
        warden_gateway::identity::TokenRequest {
            agent: "support-triage",
            ttl: Some(60),
            tools: None,
            issued_by: "test",
            break_glass: false,
            now: warden_gateway::identity::unix_now(),
        },
    )
    .await
    .unwrap();
    store.close().await;

    // close waited for the witness: its checkpoints are there, signed by the store's key.
    let notes: Vec<_> = std::fs::read_dir(dir.path().join("witness"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(!notes.is_empty(), "the witness received no checkpoint");
    for note in &notes {
        warden_verify::Checkpoint::open(note, &verifier).unwrap();
    }

    // Now the store exists: the read-only open works, and reopening as a writer reuses the key.
    let ledger = open_existing(dir.path(), &config).await.unwrap();
    ledger.close().await;
    let again = ProjectStore::open_existing(dir.path(), &config)
        .await
        .unwrap();
    assert_eq!(again.signer().verifier().to_vkey(), verifier.to_vkey());
    again.close().await;
}

#[test]
fn a_region_the_project_does_not_declare_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    example_project(dir.path());
    let err = read_config(dir.path(), Some("eu")).unwrap_err();
    assert!(matches!(err, ProjectStoreError::Region(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "--region `eu`: warden.toml declares no [regions]"
    );
}

#[test]
fn a_missing_warden_toml_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_config(dir.path(), None).unwrap_err();
    let ProjectStoreError::ReadConfig { path, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(path, &dir.path().join("warden.toml"));
}
