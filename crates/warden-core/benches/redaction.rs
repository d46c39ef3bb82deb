//! Redaction throughput, with baselines measured in the same run.
//!
//! Inputs:
//! - `corpus`: every document of the planted-secret corpus (tests/redaction/corpus.jsonl),
//!   concatenated — dense with secrets and look-alikes (the worst case);
//! - `clean_mix`: ~4 MB of mostly clean text: log lines, JSON records, prose and code with
//!   timestamps, ids, hashes, UUIDs and numbers, and one planted secret per ~64 KB;
//! - `clean_json`: the JSON records of that mix as one `serde_json::Value`, through the
//!   structured walk.
//!
//! Baselines on the same bytes: SHA-256 (what the ledger already spends per record byte), and
//! `naive_all_rules`: every rule's regex run over the whole text, with no keyword prefilter
//! (what a straightforward engine does).
//!
//! Run: `cargo bench -p warden-core --bench redaction`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use sha2::{Digest, Sha256};
use warden_core::redact::{RedactionStats, Redactor};

fn corpus_text() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/redaction/corpus.jsonl"
    );
    let mut out = String::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        out.push_str(v["text"].as_str().unwrap());
        out.push('\n');
    }
    out
}

/// A small deterministic generator (xorshift), so the mix is the same in every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[(self.next() % 16) as usize]))
            .collect()
    }
}

const WORDS: &[&str] = &[
    "the",
    "customer",
    "asked",
    "about",
    "their",
    "invoice",
    "refund",
    "was",
    "approved",
    "by",
    "support",
    "agent",
    "ticket",
    "escalated",
    "because",
    "payment",
    "failed",
    "twice",
    "order",
    "shipped",
    "tracking",
    "number",
    "update",
    "account",
    "settings",
    "please",
    "confirm",
    "address",
    "changed",
    "yesterday",
    "meeting",
    "notes",
    "summary",
    "next",
    "steps",
    "review",
    "quarterly",
    "report",
    "pipeline",
    "lead",
    "qualified",
    "contract",
    "renewal",
    "discount",
];

/// Returns (text, JSON records).
fn clean_mix(target: usize) -> (String, serde_json::Value) {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut text = String::with_capacity(target + 1024);
    let mut records = Vec::new();
    let mut next_secret = 64 * 1024;
    while text.len() < target {
        match r.next() % 4 {
            0 => {
                let _ = writeln!(
                    text,
                    "2026-11-25T10:{:02}:{:02}.{:03}Z INFO  worker[{}] {} {} {} request_id={}-{}-4{} duration_ms={}",
                    r.next() % 60,
                    r.next() % 60,
                    r.next() % 1000,
                    r.next() % 10000,
                    r.pick(WORDS),
                    r.pick(WORDS),
                    r.pick(WORDS),
                    r.hex(8),
                    r.hex(4),
                    r.hex(3),
                    r.next() % 5000
                );
            }
            1 => {
                let rec = serde_json::json!({
                    "id": format!("ORD-2026-{:08}", r.next() % 100_000_000),
                    "status": r.pick(&["open", "shipped", "refunded", "pending"]),
                    "amount": (r.next() % 100_000) as f64 / 100.0,
                    "commit": r.hex(40),
                    "note": (0..12).map(|_| r.pick(WORDS)).collect::<Vec<_>>().join(" "),
                    "items": [{"sku": format!("SKU-{}", r.next() % 99_999), "qty": r.next() % 5 + 1}],
                    "version": format!("{}.{}.{}", r.next() % 10, r.next() % 40, r.next() % 200),
                });
                let _ = writeln!(text, "{rec}");
                records.push(rec);
            }
            2 => {
                let n = 20 + (r.next() % 30) as usize;
                let words: Vec<&str> = (0..n).map(|_| r.pick(WORDS)).collect();
                let _ = writeln!(text, "{}.", words.join(" "));
            }
            _ => {
                let _ = writeln!(
                    text,
                    "fn {}_{}(input: &str) -> Result<u64, Error> {{ let total = input.len() * {}; Ok(total as u64) }}",
                    r.pick(WORDS),
                    r.pick(WORDS),
                    r.next() % 100
                );
            }
        }
        if text.len() >= next_secret {
            let _ = writeln!(text, "GITHUB_TOKEN=ghp_{}{}", r.hex(20), r.hex(16));
            next_secret += 64 * 1024;
        }
    }
    (text, serde_json::Value::Array(records))
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    let redactor = Redactor::new(b"bench key, thirty-two bytes long").unwrap();
    let naive: Vec<regex::bytes::Regex> = warden_core::redact::rule_patterns()
        .iter()
        .map(|p| {
            regex::bytes::RegexBuilder::new(p)
                .unicode(false)
                .size_limit(8 * 1024 * 1024)
                .build()
                .unwrap()
        })
        .collect();
    let corpus = corpus_text();
    let (mix, json) = clean_mix(4 * 1024 * 1024);
    let json_bytes = json.to_string().len();
    for (name, text) in [("corpus", &corpus), ("clean_mix", &mix)] {
        let mut g = c.benchmark_group(format!("redaction/{name}"));
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function("warden_redact_text", |b| {
            b.iter(|| {
                let mut st = RedactionStats::default();
                black_box(redactor.redact_text(black_box(text), &mut st).len())
            });
        });
        g.bench_function("baseline_sha256", |b| {
            b.iter(|| black_box(Sha256::digest(black_box(text.as_bytes()))));
        });
        g.bench_function("baseline_naive_all_rules", |b| {
            b.iter(|| {
                let mut n = 0usize;
                for re in &naive {
                    n += re.find_iter(black_box(text.as_bytes())).count();
                }
                black_box(n)
            });
        });
        g.finish();
    }
    let mut g = c.benchmark_group("redaction/clean_json");
    g.throughput(Throughput::Bytes(json_bytes as u64));
    g.bench_function("warden_redact_json", |b| {
        b.iter_batched(
            || json.clone(),
            |mut v| {
                let mut st = RedactionStats::default();
                redactor.redact_json(&mut v, &mut st);
                black_box(v)
            },
            criterion::BatchSize::LargeInput,
        );
    });
    g.bench_function("baseline_clone_and_serialise", |b| {
        b.iter_batched(
            || json.clone(),
            |v| black_box(serde_json::to_string(&v).unwrap().len()),
            criterion::BatchSize::LargeInput,
        );
    });
    g.finish();
    c.final_summary();
}
