//! Cost of the verifiable ledger's hashing, each beside a baseline measured in the same run:
//!
//! - extending the tree (`Frontier::push`) and taking its root, against hashing the same
//!   number of leaves with bare SHA-256 (the chain already pays one leaf hash per record; the
//!   tree adds about one node hash per record);
//! - an inclusion proof and a consistency proof over the whole tree (`warden audit prove`,
//!   `verify --checkpoint`), against the same bare SHA-256 pass;
//! - signing and verifying a checkpoint note (Ed25519);
//! - `verify_export` over an export of ~600-byte records, against a bare SHA-256 chain over the
//!   same bytes.
//!
//! Run: `cargo bench -p warden-verify --bench merkle` (`WARDEN_BENCH_LEAVES=N`, default 1,000,000).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Instant;

use sha2::{Digest, Sha256};
use warden_verify::chain::GENESIS_HASH;
use warden_verify::encoding::hex_encode;
use warden_verify::merkle::{consistency_proof, inclusion_proof, leaf_hash};
use warden_verify::{verify_export, Checkpoint, Frontier, NoteSigner};

fn per_sec(n: u64, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n: u64 = std::env::var("WARDEN_BENCH_LEAVES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();

    let start = Instant::now();
    let mut acc = [0u8; 32];
    for l in &leaves {
        acc = Sha256::digest(l).into();
    }
    black_box(acc);
    let bare = per_sec(n, start);

    let start = Instant::now();
    let mut f = Frontier::new();
    for l in &leaves {
        f.push(*l);
    }
    let root = f.root();
    let push = per_sec(n, start);
    println!("merkle, {n} leaves (leaves/s):");
    println!("  baseline: bare SHA-256 of each leaf hash:   {bare:>12.0}/s");
    println!(
        "  Frontier::push + root:                      {push:>12.0}/s  ratio {:.2}",
        push / bare
    );

    let start = Instant::now();
    let p = inclusion_proof(&leaves, n / 3).unwrap();
    let incl = start.elapsed();
    let start = Instant::now();
    let c = consistency_proof(&leaves, n / 2 + 7).unwrap();
    let cons = start.elapsed();
    black_box((p, c));
    let bare_pass = n as f64 / bare;
    println!(
        "  inclusion proof over the whole tree: {:.1} ms ({:.2}x a bare SHA-256 pass of {:.1} ms); consistency proof: {:.1} ms",
        incl.as_secs_f64() * 1e3,
        incl.as_secs_f64() / bare_pass,
        bare_pass * 1e3,
        cons.as_secs_f64() * 1e3
    );

    let signer = NoteSigner::from_seed("bench.example/ledger", &[9u8; 32]).unwrap();
    let key = signer.verifier();
    let cp = Checkpoint {
        origin: "bench.example/ledger".into(),
        size: n,
        root,
        extensions: vec![],
    };
    let rounds = 2000u64;
    let start = Instant::now();
    let mut note = String::new();
    for _ in 0..rounds {
        note = cp.sign(&signer).unwrap();
    }
    let sign = per_sec(rounds, start);
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(Checkpoint::open(&note, &key).unwrap());
    }
    let open = per_sec(rounds, start);
    println!("  checkpoint note: sign {sign:>8.0}/s, parse+verify {open:>8.0}/s");

    // An export of records shaped like Warden's (canonical layout, ~600 bytes).
    let records = (n / 5).max(1);
    let mut log = Vec::with_capacity(usize::try_from(records).unwrap() * 620);
    let mut prev = GENESIS_HASH.to_string();
    let mut f = Frontier::new();
    let pad = "x".repeat(480);
    for seq in 1..=records {
        let rec = format!(
            r#"{{"event":{{"kind":"outcome","note":"{pad}"}},"prev_hash":"{prev}","seq":{seq},"ts":"2026-11-26T00:00:00.000Z"}}"#
        );
        let h = leaf_hash(rec.as_bytes());
        f.push(h);
        prev = hex_encode(&h);
        log.extend_from_slice(rec.as_bytes());
        log.push(b'\n');
    }
    let cp = Checkpoint {
        origin: "bench.example/ledger".into(),
        size: records,
        root: f.root(),
        extensions: vec![],
    }
    .sign(&signer)
    .unwrap();
    let mean = log.len() as u64 / records;
    let start = Instant::now();
    let report = verify_export(&key, &log[..], &cp, None, None).unwrap();
    let verify = per_sec(report.records, start);
    let start = Instant::now();
    let mut prev = [0u8; 32];
    for line in log.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(prev);
        h.update(line);
        prev = h.finalize().into();
    }
    black_box(prev);
    let chain = per_sec(records, start);
    println!(
        "verify_export, {records} records of {mean} bytes: {verify:>10.0}/s; bare SHA-256 chain over the same bytes {chain:>10.0}/s; ratio {:.2}",
        verify / chain
    );
}
