//! Store faults under `warden serve`: a full disk and a store held by another writer. Calls
//! are denied with a reason while the ledger cannot record them (fail closed), and allowed
//! again, on the same chain, once it can.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{block_on, connect, wait_until, Gateway, Http, Project};
use serde_json::{json, Value};

fn ticket(n: usize) -> Value {
    json!({"tool": "get_ticket", "arguments": {"ticket_id": "T-1001"}, "correlation_id": format!("F-{n}")})
}

/// A decision the gateway answered 200: its id and ledger sequence number.
fn acked(v: &Value) -> (String, u64) {
    (
        v["id"].as_str().unwrap().to_string(),
        v["ledger"]["seq"].as_u64().unwrap(),
    )
}

/// Every acknowledged decision is in the ledger at its sequence number, and the chain verifies.
fn all_recorded(project: &Project, acks: &[(String, u64)]) {
    project.ok(&["audit", "verify"]);
    let o = project.run(&["audit", "tail", "-n", "1000000", "--json"]);
    let stored: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (id, seq) in acks {
        assert!(
            stored
                .iter()
                .any(|r| r["event"]["decision_id"] == id.as_str() && r["seq"] == *seq),
            "acknowledged decision {id} (seq {seq}) lost"
        );
    }
}

fn ready(gateway: &Gateway) -> u16 {
    Http::new().get(&gateway.url("/readyz")).status
}

/// A 4 MiB tmpfs mounted on `path` for the test (unmounted when dropped).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` when this process may not mount (not root): the test says so and is skipped.
    fn mount(path: &Path) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(path)
            .status()
            .ok()?;
        st.success().then(|| Self(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_denies_calls_with_a_reason_and_they_resume_when_space_returns() {
    let project = Project::init();
    let disk = project.scratch("disk");
    let Some(_tmpfs) = Tmpfs::mount(&disk) else {
        eprintln!("SKIPPED: mounting a tmpfs needs root (CAP_SYS_ADMIN); run the suite as root to fill a real disk");
        return;
    };
    let config = project.read("warden.toml").replace(
        "url = \"sqlite://warden.db\"",
        &format!("url = \"sqlite://{}/warden.db\"", disk.display()),
    );
    project.write("warden.toml", &config);
    let gateway = project.serve();
    let key = project.agent_key("support-triage");
    let mut acks: Vec<(String, u64)> = (0..5)
        .map(|n| acked(&gateway.propose(&key, &ticket(n))))
        .collect();

    // Fill the disk: one file takes every free block.
    let filler = disk.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    drop(f);

    // Calls go on being acknowledged while the WAL has room, then each is denied with a reason.
    let mut denied = None;
    for n in 5..2000 {
        let (status, v) = gateway.propose_status(&key, &ticket(n));
        match status {
            200 => acks.push(acked(&v)),
            _ => {
                denied = Some((status, v));
                break;
            }
        }
    }
    let (status, v) = denied.expect("a full disk must stop calls");
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["decision"], "deny", "{v}");
    assert!(v["id"].is_null(), "a denied call has no decision id: {v}");
    assert_eq!(v["error"]["code"], "ledger_unavailable", "{v}");
    assert!(
        v["reasons"][0].as_str().unwrap().contains("fail closed"),
        "{v}"
    );
    assert_eq!(
        ready(&gateway),
        503,
        "not ready while the ledger cannot be written"
    );
    assert!(
        gateway.stderr().contains("full"),
        "the log names the cause:\n{}",
        gateway.stderr()
    );

    // Space comes back: calls are recorded again, on the same chain, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let mut n = 3000;
    let recovered = wait_until(Duration::from_secs(20), || {
        n += 1;
        let (status, v) = gateway.propose_status(&key, &ticket(n));
        if status == 200 {
            acks.push(acked(&v));
        }
        status == 200
    });
    assert!(
        recovered,
        "calls must be allowed again once the disk has room"
    );
    assert_eq!(ready(&gateway), 200);
    gateway.stop();
    all_recorded(&project, &acks);
}

#[test]
fn a_store_locked_by_another_writer_denies_calls_with_a_reason_and_they_resume_after() {
    let project = Project::init();
    let gateway = project.serve();
    let key = project.agent_key("support-triage");
    let mut acks = vec![acked(&gateway.propose(&key, &ticket(0)))];

    // Another process holds the write lock longer than the store waits for it (5 s).
    let db = project.db();
    let locker = std::thread::spawn(move || {
        block_on(async {
            let mut c = connect(&db).await;
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(8)).await;
            sqlx::query("COMMIT").execute(&mut c).await.unwrap();
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, v) = gateway.propose_status(&key, &ticket(1));
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["decision"], "deny", "{v}");
    assert_eq!(v["error"]["code"], "ledger_unavailable", "{v}");
    assert!(
        v["reasons"][0].as_str().unwrap().contains("fail closed"),
        "{v}"
    );
    assert!(
        gateway.stderr().contains("locked"),
        "the log names the cause:\n{}",
        gateway.stderr()
    );
    locker.join().unwrap();

    // The lock is released: the next call is recorded, without a restart.
    acks.push(acked(&gateway.propose(&key, &ticket(2))));
    assert_eq!(ready(&gateway), 200);
    gateway.stop();
    all_recorded(&project, &acks);
}
