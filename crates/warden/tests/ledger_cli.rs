//! The verifiable ledger from the command line: checkpoints, proofs, `verify --checkpoint`,
//! exports checked by the standalone `warden-verify` binary in a directory with no Warden
//! store, and OCSF.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{block_on, connect, text, Peer, Project};
use serde_json::{json, Value};

/// The standalone verifier: built beside `warden` by `cargo test --workspace`; built here
/// (in its own target directory) when only this package's tests run.
fn warden_verify() -> PathBuf {
    let beside = Path::new(env!("CARGO_BIN_EXE_warden")).with_file_name("warden-verify");
    if beside.exists() {
        return beside;
    }
    let target = Path::new(env!("CARGO_BIN_EXE_warden"))
        .parent()
        .unwrap()
        .join("nested-warden-verify");
    let st = Command::new(env!("CARGO"))
        .args(["build", "-p", "warden-verify", "--target-dir"])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(st.success(), "building warden-verify");
    target.join("debug").join("warden-verify")
}

/// A project with `n` decisions recorded by a gateway that was stopped cleanly (SIGTERM).
fn project_with_decisions(n: usize) -> Project {
    project_with(n, "")
}

/// `warden init` with `extra_config`, then `n` allowed ticket reads and one denied one by
/// support-triage through a gateway stopped cleanly (SIGTERM).
fn project_with(n: usize, extra_config: &str) -> Project {
    let project = Project::with_config(extra_config);
    let gateway = project.serve();
    let key = project.agent_key("support-triage");
    for i in 0..n {
        let v = gateway.propose(
            &key,
            &json!({"tool": "get_ticket", "arguments": {"ticket_id": format!("T-{:04}", 1000 + i)}}),
        );
        assert_eq!(v["decision"], "allow");
    }
    // The one denied call, for the OCSF export.
    let v = gateway.propose(
        &key,
        &json!({"tool": "get_ticket", "arguments": {"ticket_id": "not-a-ticket"}}),
    );
    assert_eq!(v["decision"], "deny", "{v}");
    gateway.stop();
    project
}

#[test]
fn clean_shutdown_checkpoints_and_proofs_and_verify_against_an_older_checkpoint() {
    let project = project_with_decisions(20);

    let note = project.stdout(&["audit", "checkpoint"]);
    let lines: Vec<&str> = note.lines().collect();
    assert!(lines[0].starts_with("warden-ledger-"), "{note}");
    assert_eq!(
        lines[1], "21",
        "the clean shutdown checkpointed all 21 records: {note}"
    );
    assert!(lines[4].starts_with("\u{2014} warden-ledger-"), "{note}");
    let older = project.scratch("older.checkpoint");
    std::fs::write(&older, &note).unwrap();
    let older = older.to_str().unwrap();

    let key_file = project.path(".warden/ledger.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let vkey = project.stdout(&["audit", "pubkey"]);
    assert!(vkey.starts_with(lines[0]), "{vkey}");
    assert!(!vkey.contains("PRIVATE"));

    let proof: Value =
        serde_json::from_str(&project.stdout(&["audit", "prove", "7", "--json"])).unwrap();
    assert_eq!(proof["tree_size"], 21);
    assert_eq!(proof["inclusion_proof"].as_array().unwrap().len(), 5);

    let out = project.ok(&["audit", "verify", "--checkpoint", older]);
    assert!(out.contains("extends the checkpoint"), "{out}");

    // Grow the log (a new checkpoint via --now), then truncate it back past the older
    // checkpoint and drop the stored checkpoints as an intruder would: the chain of what is
    // left verifies, the older checkpoint does not.
    project.ok(&["audit", "checkpoint", "--now"]);
    assert!(project.sql("DELETE FROM ledger WHERE seq >= 15") > 0);
    let o = project.run(&["audit", "verify"]);
    assert!(
        !o.status.success(),
        "the stored checkpoint still covers 21: {}",
        text(&o)
    );
    assert!(text(&o).contains("records were removed"), "{}", text(&o));
    project.sql("DELETE FROM ledger_checkpoints");
    let o = project.run(&["audit", "verify"]);
    assert!(
        o.status.success(),
        "a truncated chain alone verifies: {}",
        text(&o)
    );
    let out = project.fails(&["audit", "verify", "--checkpoint", older]);
    assert!(out.contains("truncated"), "{out}");
}

/// `warden-verify --key ledger.vkey --log ledger.jsonl --checkpoint checkpoint.txt <extra>`
/// in `dir`.
fn verify_in(dir: &Path, extra: &[&str]) -> Output {
    Command::new(warden_verify())
        .current_dir(dir)
        .args([
            "--key",
            "ledger.vkey",
            "--log",
            "ledger.jsonl",
            "--checkpoint",
            "checkpoint.txt",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn an_export_verifies_with_the_standalone_verifier_and_no_store() {
    let project = project_with_decisions(12);
    let vkey = String::from_utf8(project.run(&["audit", "pubkey"]).stdout).unwrap();
    let out = project.scratch("bundle");
    let o = project.ok(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.contains("exported records 1..13 (13)"), "{o}");

    // An auditor's machine: only the exported files and the public key, no project, no store.
    let auditor = tempfile::tempdir().unwrap();
    let at = |f: &str| auditor.path().join(f);
    for f in ["ledger.jsonl", "checkpoint.txt"] {
        std::fs::copy(out.join(f), at(f)).unwrap();
    }
    std::fs::write(at("ledger.vkey"), &vkey).unwrap();
    let verify = |extra: &[&str]| verify_in(auditor.path(), extra);
    let o = verify(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("ok: records 1..13 (13 records)"),
        "{}",
        text(&o)
    );

    // A changed byte in one record is refused.
    let log = std::fs::read_to_string(at("ledger.jsonl")).unwrap();
    std::fs::write(
        at("ledger.jsonl"),
        log.replacen("\"allow\"", "\"allaw\"", 1),
    )
    .unwrap();
    let o = verify(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // A dropped last record is refused.
    let mut lines: Vec<&str> = log.lines().collect();
    lines.pop();
    std::fs::write(at("ledger.jsonl"), lines.join("\n") + "\n").unwrap();
    let o = verify(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("ends at record 12"), "{}", text(&o));
    // Another key does not open the checkpoint.
    std::fs::write(at("ledger.jsonl"), &log).unwrap();
    std::fs::write(
        at("ledger.vkey"),
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
    )
    .unwrap();
    let o = verify(&[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    std::fs::write(at("ledger.vkey"), &vkey).unwrap();

    // A range export (records from the 6th on) verifies with its proof.
    let sixth: Value = serde_json::from_str(log.lines().nth(5).unwrap()).unwrap();
    let since = sixth["ts"].as_str().unwrap();
    let range = project.scratch("range");
    project.ok(&[
        "audit",
        "export",
        "--since",
        since,
        "--out",
        range.to_str().unwrap(),
    ]);
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(range.join("ledger.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(first["seq"].as_u64().unwrap() >= 2, "{first}");
    for f in ["ledger.jsonl", "checkpoint.txt", "proof.json"] {
        std::fs::copy(range.join(f), at(f)).unwrap();
    }
    let o = verify(&["--proof", "proof.json"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = verify(&[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a range without its proof: {}",
        text(&o)
    );
}

#[test]
fn ocsf_export_maps_decisions_to_api_activity_with_security_control() {
    let project = project_with_decisions(3);
    let events: Vec<Value> = project
        .stdout(&["audit", "export", "--format", "ocsf"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 4);
    for e in &events {
        assert_eq!(e["class_uid"], 6003);
        assert_eq!(e["category_uid"], 6);
        assert_eq!(e["type_uid"], 600_399);
        assert_eq!(e["metadata"]["profiles"], json!(["security_control"]));
        assert_eq!(e["actor"]["user"]["uid"], "support-triage");
        assert!(e["time"].as_i64().unwrap() > 1_700_000_000_000);
        assert!(e["src_endpoint"].is_object() && e["api"]["operation"] == "get_ticket");
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action_id"] == 1 && e["disposition_id"] == 1)
            .count(),
        3
    );
    let denied: Vec<&Value> = events.iter().filter(|e| e["action_id"] == 2).collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["disposition"], "Blocked");
}

#[test]
fn checkpoints_reach_every_kind_of_witness() {
    // An HTTP witness: answers 200 to every POST and keeps the bodies.
    let witness = Peer::start(200, "");
    let config = format!(
        "\n[ledger]\ncheckpoint_every_records = 5\n\n[[ledger.witnesses]]\nfile = \"witness/latest.checkpoint\"\n\n[[ledger.witnesses]]\ndir = \"witness/all\"\n\n[[ledger.witnesses]]\nurl = \"http://{}/add\"\n",
        witness.addr
    );
    let project = project_with(12, &config);
    let latest = String::from_utf8(project.run(&["audit", "checkpoint"]).stdout).unwrap();
    assert!(
        latest.contains("\n13\n"),
        "the final checkpoint covers all 13 records: {latest}"
    );
    let vkey = String::from_utf8(project.run(&["audit", "pubkey"]).stdout).unwrap();
    let key = warden_verify::NoteVerifier::parse(vkey.trim()).unwrap();

    // The file witness holds the latest checkpoint; the directory one file per checkpoint.
    assert_eq!(project.read("witness/latest.checkpoint"), latest);
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(project.path("witness/all")).unwrap() {
        let note = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        sizes.push(warden_verify::Checkpoint::open(&note, &key).unwrap().size);
    }
    sizes.sort_unstable();
    assert!(sizes.len() >= 2 && sizes.last() == Some(&13), "{sizes:?}");
    // The HTTP witness was sent each checkpoint, the last being the latest.
    let requests = witness.requests();
    for r in &requests {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/add"),
            "{r:?}"
        );
    }
    let posted: Vec<String> = requests.iter().map(|r| r.body_text()).collect();
    assert_eq!(posted.len(), sizes.len(), "{posted:?}");
    assert_eq!(posted.last().unwrap(), &latest);
}

#[test]
fn a_witness_with_two_targets_is_a_located_config_error() {
    let project = Project::init();
    let line = project.read("warden.toml").lines().count() + 3;
    project.append_config("\n[ledger]\n[[ledger.witnesses]]\nfile = \"a\"\ndir = \"b\"\n");
    let out = project.fails(&["check"]);
    assert!(
        out.contains(&format!(
            "warden.toml:{line}:1: error: [[ledger.witnesses]] number 1 must have exactly one of"
        )),
        "{out}"
    );
}

/// Every byte of the project's SQLite files.
fn store_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for name in ["warden.db", "warden.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            out.extend(b);
        }
    }
    out
}

/// Three account reads by support-triage through a gateway (the card's
/// `subject_args = ["account_id"]`), stopped cleanly; then a checkpoint taken, written beside
/// the project: its path.
fn read_accounts_and_checkpoint(project: &Project) -> PathBuf {
    let gateway = project.serve();
    let key = project.agent_key("support-triage");
    for account in ["ACC-0417", "ACC-0417", "ACC-0932"] {
        let v = gateway.propose(
            &key,
            &json!({"tool": "get_account", "arguments": {"account_id": account}}),
        );
        assert_eq!(v["decision"], "allow", "{v}");
    }
    gateway.stop();
    assert!(
        !store_bytes(project.dir())
            .windows(8)
            .any(|w| w == b"ACC-0417"),
        "arguments are sealed at rest"
    );
    let older = project.scratch("before-erasure.checkpoint");
    std::fs::write(&older, project.stdout(&["audit", "checkpoint", "--now"])).unwrap();
    older
}

/// Export what is held about ACC-0417, erase it, and check the chain against `older`.
fn export_then_erase_a_subject(project: &Project, older: &str) {
    // What is held about the subject, opened.
    let out = project.stdout(&["data", "export", "--subject", "acc-0417"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("\"account_id\":\"ACC-0417\""), "{out}");
    assert!(!out.contains("ACC-0932"), "{out}");

    // Erase it: the chain verifies, also against the checkpoint taken before.
    let erase =
        |reason: &str| project.run(&["data", "erase", "--subject", "ACC-0417", "--reason", reason]);
    let o = erase("DSAR-118");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 key destroyed, 2 records unreadable"),
        "{}",
        text(&o)
    );
    let o = project.run(&["data", "export", "--subject", "ACC-0417"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!out.contains("\"account_id\""), "{out}");
    assert_eq!(
        out.matches("\"arguments\":\"[erased: data subject]\"")
            .count(),
        2,
        "{out}"
    );
    assert!(out.contains("\"subject_erased\""), "{out}");
    let out = project.ok(&["audit", "verify", "--checkpoint", older]);
    assert!(out.contains("extends the checkpoint"), "{out}");
    assert!(!erase(" ").status.success(), "a reason is required");
}

/// Retention: nothing is due today; 92 days on (the 90d default), the day key of the four
/// decisions (three account reads, the denied ticket read of `project_with`) is. The chain
/// still verifies against `older`.
fn purge_past_retention(project: &Project, older: &str) {
    let out = project.ok(&["retention", "run"]);
    assert!(out.contains(": 0 keys destroyed"), "{out}");
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(92))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let out = project.ok(&["retention", "run", "--dry-run", "--as-of", &later]);
    assert!(
        out.contains("1 key due, 4 records with payloads to purge"),
        "{out}"
    );
    let out = project.ok(&["retention", "run", "--as-of", &later]);
    assert!(out.contains("recorded as ledger record"), "{out}");
    let o = project.run(&["audit", "search", "--agent", "support-triage", "--json"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("[purged: past retention]"), "{out}");
    assert!(!out.contains("ACC-0932"), "{out}");
    project.ok(&["audit", "verify", "--checkpoint", older]);
    let o = project.run(&["audit", "tail", "-n", "3", "--json"]);
    assert!(text(&o).contains("retention_purged"), "{}", text(&o));
    assert!(text(&o).contains("subject_erased"), "{}", text(&o));
}

#[test]
fn retention_and_erasure_from_the_command_line_leave_the_ledger_verifiable() {
    let project = project_with(0, "");
    let older = read_accounts_and_checkpoint(&project);
    let older = older.to_str().unwrap();
    export_then_erase_a_subject(&project, older);
    purge_past_retention(&project, older);
}

/// Rows of the ledger as stored: (seq, hash, record).
fn ledger_rows(db: &Path) -> Vec<(i64, String, String)> {
    block_on(async {
        use sqlx::Row;
        sqlx::query("SELECT seq, hash, record FROM ledger ORDER BY seq")
            .fetch_all(&mut connect(db).await)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    })
}

/// Write rows back (same seq), in one transaction.
fn rewrite_rows(db: &Path, rows: &[(i64, String, String)]) {
    block_on(async {
        use sqlx::Connection;
        let mut c = connect(db).await;
        let mut tx = c.begin().await.unwrap();
        for (seq, hash, record) in rows {
            sqlx::query("UPDATE ledger SET hash = ?, record = ? WHERE seq = ?")
                .bind(hash)
                .bind(record)
                .bind(seq)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    });
}

/// Change one base64 digit of the vote's signature in row `at` (same length, still base64),
/// and recompute every hash from it on, so the chain stays consistent.
fn forge_vote_and_rechain(rows: &mut [(i64, String, String)], at: usize, sig: &str) {
    let mut forged: Vec<char> = sig.chars().collect();
    forged[10] = if forged[10] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    rows[at].2 = rows[at].2.replace(sig, &forged);
    let mut prev = if at == 0 {
        warden_core::ledger::GENESIS_HASH.to_string()
    } else {
        rows[at - 1].1.clone()
    };
    for row in rows.iter_mut().skip(at) {
        let mut rec: Value = serde_json::from_str(&row.2).unwrap();
        rec["prev_hash"] = Value::String(prev.clone());
        row.2 = warden_core::ledger::canonical_json(&rec).unwrap();
        row.1 = warden_core::ledger::leaf_hash(row.2.as_bytes());
        prev = row.1.clone();
    }
}

#[test]
fn a_forged_vote_signature_is_named_by_audit_verify_even_with_the_chain_recomputed() {
    // The demo's scripted approver votes through the same API a browser uses.
    let (project, o) = Project::demo();
    assert!(o.status.success(), "{}", text(&o));
    // Stored checkpoints would catch a rewritten chain on their own; remove them so only the
    // signature check is left to catch the forgery.
    project.sql("DELETE FROM ledger_checkpoints");
    let out = project.ok(&["audit", "verify"]);
    assert!(
        out.contains("ok: 1 approval vote signatures verified with the ledger key"),
        "{out}"
    );
    // The vote names the ledger key: the same key id `warden audit pubkey` shows.
    let vkey = project.stdout(&["audit", "pubkey"]).trim().to_string();
    let key_id = vkey.split('+').nth(1).unwrap().to_string();

    let mut rows = ledger_rows(&project.db());
    let at = rows
        .iter()
        .position(|(_, _, r)| r.contains(r#""kind":"approval_vote""#))
        .expect("the demo's approval vote is in the ledger");
    let vote_seq = rows[at].0;
    let record: Value = serde_json::from_str(&rows[at].2).unwrap();
    assert_eq!(record["event"]["key_id"], key_id.as_str(), "{record}");
    let sig = record["event"]["signature"].as_str().unwrap().to_string();
    forge_vote_and_rechain(&mut rows, at, &sig);
    rewrite_rows(&project.db(), &rows[at..]);

    let t = project.fails(&["audit", "verify"]);
    assert!(
        t.contains("records verified") && !t.contains("broken"),
        "the recomputed chain still verifies, so only the signature check catches it:\n{t}"
    );
    assert!(
        t.contains(&format!("FAILED: approval vote record {vote_seq} ")),
        "the forged vote is named:\n{t}"
    );
    assert!(t.contains("signature does not verify"), "{t}");
}

#[test]
fn a_failing_audit_verify_does_not_end_with_an_ok_line() {
    // The chain rewritten from the vote on with its hashes recomputed, the stored checkpoints
    // kept: the checkpoint check fails while the vote's own signature (untouched) still
    // verifies. Before, the output then ended with "ok: 1 approval vote signatures verified".
    let (project, o) = Project::demo();
    assert!(o.status.success(), "{}", text(&o));
    let mut rows = ledger_rows(&project.db());
    let at = rows
        .iter()
        .position(|(_, _, r)| r.contains(r#""kind":"approval_vote""#))
        .expect("the demo's approval vote is in the ledger");
    let before = rows[at - 1].2.clone();
    let mut rec: Value = serde_json::from_str(&before).unwrap();
    rec["ts"] = Value::String("2001-01-01T00:00:00.000Z".into());
    rows[at - 1].2 = warden_core::ledger::canonical_json(&rec).unwrap();
    rows[at - 1].1 = warden_core::ledger::leaf_hash(rows[at - 1].2.as_bytes());
    let mut prev = rows[at - 1].1.clone();
    for row in rows.iter_mut().skip(at) {
        let mut rec: Value = serde_json::from_str(&row.2).unwrap();
        rec["prev_hash"] = Value::String(prev.clone());
        row.2 = warden_core::ledger::canonical_json(&rec).unwrap();
        row.1 = warden_core::ledger::leaf_hash(row.2.as_bytes());
        prev = row.1.clone();
    }
    rewrite_rows(&project.db(), &rows[at - 1..]);
    let o = project.run(&["audit", "verify"]);
    assert!(!o.status.success(), "{}", text(&o));
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    let last = t
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last.starts_with("FAILED:"),
        "the last line is the verdict:\n{t}"
    );
    assert!(!last.contains("ok:"), "{t}");
}

/// Records in a store (a `sqlite://` database of the project) that name an agent.
fn records_naming(db: &Path, agent: &str) -> u64 {
    block_on(async {
        use sqlx::Row;
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM ledger WHERE record LIKE ?")
            .bind(format!("%\"agent\":\"{agent}\"%"))
            .fetch_one(&mut connect(db).await)
            .await
            .unwrap()
            .get(0);
        u64::try_from(n).unwrap()
    })
}

/// A project that declares a region `eu` (its own store under `eu/`), with support-triage's
/// card put in region `card_region`.
fn project_with_region_eu(card_region: &str) -> Project {
    let project = Project::with_config("\n[regions.eu]\nurl = \"sqlite://eu/warden.db\"\n");
    let original = project.read("agents/support-triage.toml");
    project.write(
        "agents/support-triage.toml",
        &format!("region = \"{card_region}\"\n{original}"),
    );
    project
}

#[test]
fn check_names_an_undeclared_region_and_lists_the_records_of_each_store() {
    // A region the project does not declare is a located error with a suggestion.
    let project = project_with_region_eu("ue");
    let out = project.fails(&["check"]);
    assert!(
        out.contains("agents/support-triage.toml:1:10: error: region `ue` is not declared"),
        "{out}"
    );
    assert!(out.contains("did you mean `eu`?"), "{out}");
    let project = project_with_region_eu("eu");
    let out = project.ok(&["check"]);
    assert!(
        out.contains("records of region `eu`: support-triage"),
        "{out}"
    );
    assert!(
        out.contains("records of the home store: crm-writer"),
        "{out}"
    );
    let out = project.fails(&["--region", "us", "audit", "pubkey"]);
    assert!(out.contains("regions: eu"), "{out}");
}

#[test]
fn an_agent_of_a_region_is_served_and_recorded_only_by_that_region() {
    let project = project_with_region_eu("eu");
    // The home gateway and the gateway of region eu, side by side.
    let home = project.serve();
    let eu = project.serving().region("eu").start();
    let triage = project.agent_key("support-triage");
    let writer = project.agent_key("crm-writer");
    let read = json!({"tool": "get_account", "arguments": {"account_id": "ACC-0417"}});
    let (status, v) = home.propose_status(&triage, &read);
    assert_eq!(status, 421, "{v}");
    assert!(v.to_string().contains("region `eu`"), "{v}");
    let v = eu.propose(&triage, &read);
    assert_eq!(v["decision"], "allow", "{v}");
    let (status, v) = eu.propose_status(&writer, &read);
    assert_eq!(status, 421, "{v}");
    assert!(v.to_string().contains("home store"), "{v}");
    let v = home.propose(&writer, &read);
    assert_eq!(v["decision"], "allow", "{v}");
    home.stop();
    eu.stop();

    // Each agent's records are in its own store only.
    let home_db = project.db();
    let eu_db = project.path("eu/warden.db");
    assert_eq!(records_naming(&home_db, "support-triage"), 0);
    assert_eq!(records_naming(&home_db, "crm-writer"), 1);
    assert_eq!(records_naming(&eu_db, "support-triage"), 1);
    assert_eq!(records_naming(&eu_db, "crm-writer"), 0);
    // A search by agent looks in the agent's region without being told.
    let o = project.run(&["audit", "search", "--agent", "support-triage", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ACC-0417"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("searching region `eu`"), "{}", text(&o));

    // Two logs, two keys; `audit verify` without --region checks every store.
    let home_key = project.run(&["audit", "pubkey"]);
    let eu_key = project.run(&["--region", "eu", "audit", "pubkey"]);
    assert!(home_key.status.success() && eu_key.status.success());
    assert_ne!(home_key.stdout, eu_key.stdout);
    let out = project.ok(&["audit", "verify"]);
    assert!(out.contains("== region `eu` =="), "{out}");
    assert_eq!(out.matches("records verified").count(), 2, "{out}");

    // Nothing about the agent can be written to the wrong store from the command line either.
    let out = project.fails(&["token", "issue", "--agent", "support-triage"]);
    assert!(out.contains("--region eu"), "{out}");
    project.ok(&[
        "--region",
        "eu",
        "token",
        "issue",
        "--agent",
        "support-triage",
    ]);
    assert_eq!(records_naming(&home_db, "support-triage"), 0);

    // A subject's data is exported and erased in every store.
    project.ok(&[
        "data",
        "erase",
        "--subject",
        "ACC-0417",
        "--reason",
        "DSAR-7",
    ]);
    let out = project.stdout(&["data", "export", "--subject", "ACC-0417"]);
    assert!(!out.contains("\"account_id\""), "{out}");
    assert_eq!(
        out.matches("\"arguments\":\"[erased: data subject]\"")
            .count(),
        2,
        "{out}"
    );
    assert_eq!(out.matches("\"region\":\"eu\"").count(), 2, "{out}");
    project.ok(&["audit", "verify"]);
}
