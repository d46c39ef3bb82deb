//! Issue 15, item 1: unauthenticated password checks must not exhaust memory. Each Argon2id
//! check needs 19 MiB; when every request allocated its own, 40 concurrent wrong passwords
//! left ~760 MB resident for good. Its own test binary, so no other test's memory is counted.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use warden_gateway::logins::Role;

use common::{send, setup};

/// Resident memory of this process, in KiB, from /proc.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_exhaustion_concurrent_wrong_passwords_stay_within_the_password_pool() {
    let e = setup("").await;
    e.enrol("ann", Role::Approver).await;
    // Each attempt from an address of its own, so the per-address budget (which would refuse
    // most of these before hashing) does not hide what the password pool itself bounds.
    let login = |user: String, from: u32| {
        let state = e.state.clone();
        async move {
            let body = json!({"user": user, "password": "wrong password", "totp": "000000"});
            let mut req = Request::post("/v1/login")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let addr =
                std::net::SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + from), 4000));
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(warden_gateway::PeerAddr(addr)));
            send(&state, req).await.status
        }
    };
    // One check first, so the dummy hash and the pool exist before the baseline is taken.
    assert_eq!(login("ann".into(), 0).await, StatusCode::UNAUTHORIZED);
    let before = rss_kib();
    for wave in 0..2u32 {
        let attempts: Vec<_> = (0..40)
            .map(|i| {
                let user = if i % 4 == 0 {
                    "ann".to_string()
                } else {
                    format!("nobody-{wave}-{i}")
                };
                tokio::spawn(login(user, wave * 100 + i + 1))
            })
            .collect();
        for a in attempts {
            assert_eq!(a.await.unwrap(), StatusCode::UNAUTHORIZED);
        }
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!("resident memory grew by {grown_mib} MiB over 80 wrong passwords, 40 at a time");
    // The pool holds at most 4 buffers of 19 MiB; 80 unbounded checks held ~40 × 19 MiB.
    assert!(
        grown_mib < 250,
        "80 wrong passwords (40 at a time) grew resident memory by {grown_mib} MiB"
    );
}
