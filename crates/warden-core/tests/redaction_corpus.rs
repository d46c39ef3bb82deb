#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The planted-secret corpus (tests/redaction/corpus.jsonl, made by generate.py there): every
//! document goes through the redaction engine; a planted value counts as found when none of
//! its parts (the pieces it is written in: one, or several where a wrapper split it or it has
//! words) is left in the output, nor the first or last 12 characters of a part of 24 or more
//! (a value cut short by the redaction); a decoy counts as kept when it is still verbatim.
//! Prints recall per family and per form, decoy-keep per family, and asserts the floors.

use std::collections::BTreeMap;

use serde::Deserialize;
use warden_core::redact::{RedactionStats, Redactor};

#[derive(Deserialize)]
struct Value {
    kind: String,
    value: String,
    #[serde(default)]
    form: Option<String>,
    #[serde(default)]
    parts: Vec<String>,
}

impl Value {
    fn parts(&self) -> Vec<&str> {
        if self.parts.is_empty() {
            vec![self.value.as_str()]
        } else {
            self.parts.iter().map(String::as_str).collect()
        }
    }

    /// Whether any of the value is left in `out` (see the module comment).
    fn leaked(&self, out: &str) -> bool {
        self.parts().iter().any(|p| {
            out.contains(p)
                || (p.chars().count() >= 24 && {
                    let chars: Vec<char> = p.chars().collect();
                    let head: String = chars[..12].iter().collect();
                    let tail: String = chars[chars.len() - 12..].iter().collect();
                    out.contains(&head) || out.contains(&tail)
                })
        })
    }
}

#[derive(Deserialize)]
struct Doc {
    id: String,
    format: String,
    text: String,
    planted: Vec<Value>,
    decoys: Vec<Value>,
}

fn corpus() -> Vec<Doc> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/redaction/corpus.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[derive(Default)]
struct Score {
    hit: usize,
    total: usize,
}

fn report(title: &str, scores: &BTreeMap<String, Score>) -> f64 {
    println!("{title}");
    let (mut hit, mut total) = (0, 0);
    for (family, s) in scores {
        println!(
            "  {family:<26} {:>3}/{:<3} {:.3}",
            s.hit,
            s.total,
            s.hit as f64 / s.total as f64
        );
        hit += s.hit;
        total += s.total;
    }
    let rate = hit as f64 / total as f64;
    println!("  {:<26} {hit:>3}/{total:<3} {rate:.3}", "ALL");
    rate
}

#[test]
fn planted_corpus_recall_and_decoy_keep() {
    let r = Redactor::new(b"corpus test key, 32 bytes long!!").unwrap();
    let docs = corpus();
    let mut recall: BTreeMap<String, Score> = BTreeMap::new();
    let mut by_form: BTreeMap<String, Score> = BTreeMap::new();
    let mut keep: BTreeMap<String, Score> = BTreeMap::new();
    let mut misses = Vec::new();
    let (mut json_checked, mut json_missed) = (0usize, 0usize);
    for d in &docs {
        let mut stats = RedactionStats::default();
        let out = r.redact_text(&d.text, &mut stats);
        for p in &d.planted {
            let leaked = p.leaked(&out);
            for s in [
                recall.entry(p.kind.clone()).or_default(),
                by_form
                    .entry(p.form.clone().unwrap_or_else(|| "plain".into()))
                    .or_default(),
            ] {
                s.total += 1;
                s.hit += usize::from(!leaked);
            }
            if leaked {
                misses.push(format!("MISSED {} {}: {}", d.id, p.kind, out.trim()));
            }
        }
        for k in &d.decoys {
            let s = keep.entry(k.kind.clone()).or_default();
            s.total += 1;
            if out.contains(&k.value) {
                s.hit += 1;
            } else {
                misses.push(format!(
                    "DECOY REDACTED {} {}: {}",
                    d.id,
                    k.kind,
                    out.trim()
                ));
            }
        }
        // JSON documents also go through the structured walk: the same values must go.
        if d.format == "json" {
            if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&d.text) {
                r.redact_json(&mut v, &mut stats);
                let text = v.to_string();
                for p in &d.planted {
                    json_checked += 1;
                    let left = p.parts().iter().any(|part| {
                        let escaped = serde_json::to_string(part).unwrap();
                        text.contains(escaped.trim_matches('"'))
                    });
                    if left {
                        misses.push(format!("JSON WALK MISSED {} {}: {text}", d.id, p.kind));
                        json_missed += 1;
                    }
                }
            }
        }
    }
    for m in &misses {
        println!("{m}");
    }
    let families = recall.len();
    let planted: usize = recall.values().map(|s| s.total).sum();
    let decoys: usize = keep.values().map(|s| s.total).sum();
    println!("{planted} planted values in {families} families, {decoys} decoys");
    println!(
        "JSON walk: {}/{json_checked} planted values in JSON documents redacted",
        json_checked - json_missed
    );
    let rec = report("recall (planted value gone from the output)", &recall);
    report("recall by form", &by_form);
    let kept = report("decoy-keep (decoy still verbatim in the output)", &keep);
    assert!(planted >= 300 && families >= 20);
    assert!(
        json_checked > 50 && json_missed * 50 <= json_checked,
        "JSON walk missed {json_missed}"
    );
    // The targets of issue 15.
    assert!(rec >= 0.99, "recall {rec}");
    assert!(kept >= 0.98, "decoy-keep {kept}");
    for (family, s) in recall.iter().chain(&by_form) {
        assert!(
            s.hit as f64 / s.total as f64 >= 0.9,
            "recall of {family} below 0.9"
        );
    }
}
