//! The cost of sealing a record's payloads, beside the canonical serialisation every record
//! pays anyway (the baseline).
//!
//! `cargo bench -p warden-core --bench vault`. Input: an outcome record of about 600 bytes of
//! canonical JSON and a decision record with arguments and two reasons; the payload key is
//! derived per record (HKDF with a period and a subject key), as the store does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;
use warden_core::ledger::{canonical_json, LedgerEvent, OutcomeEvent};
use warden_core::vault::{open_event, open_payload, payload_key, seal_event, seal_payload};

fn outcome() -> LedgerEvent {
    LedgerEvent::Outcome(OutcomeEvent {
        decision_id: "0193c1d2-7448-7522-bb17-000000000042".into(),
        agent: "crm-writer".into(),
        tool: "update_account".into(),
        correlation_id: Some("CRM-42".into()),
        status: "success".into(),
        output: json!({"account_id": "ACC-0002", "field": "phone", "before": "+1 555 0000",
            "after": "+1 555 0100", "note": "x".repeat(300)}),
        output_bytes: 420,
        output_truncated: false,
        duration_ms: Some(3),
    })
}

fn bench(c: &mut Criterion) {
    let period = [1u8; 32];
    let subject = [2u8; 32];
    let mut g = c.benchmark_group("vault");
    g.bench_function("canonical_json (baseline)", |b| {
        let e = outcome();
        b.iter(|| black_box(canonical_json(black_box(&e)).unwrap()));
    });
    g.bench_function("seal_then_canonical_json", |b| {
        b.iter(|| {
            let mut e = outcome();
            let key = payload_key(&period, Some(&subject), "p-20261126-aa", Some("s-01-1"));
            seal_event(&mut e, |field, plain| {
                seal_payload(&key, "p-20261126-aa", Some("s-01-1"), field, plain, [7; 24])
            });
            black_box(canonical_json(&e).unwrap())
        });
    });
    let mut sealed = outcome();
    let key = payload_key(&period, Some(&subject), "p-20261126-aa", Some("s-01-1"));
    seal_event(&mut sealed, |field, plain| {
        seal_payload(&key, "p-20261126-aa", Some("s-01-1"), field, plain, [7; 24])
    });
    g.bench_function("open", |b| {
        b.iter(|| {
            let mut e = sealed.clone();
            open_event(&mut e, |field, r| {
                let k = payload_key(&period, Some(&subject), r.period, r.subject);
                open_payload(&k, r, field).map_err(|_| warden_core::vault::Unreadable::Unavailable)
            });
            black_box(e)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
