//! Plain-text tables and one-line renderings of decisions for the terminal.

use warden_core::Decision;

/// Render rows as a left-aligned table with a header rule. Cells are cut to `max` characters.
pub fn render(header: &[&str], rows: &[Vec<String>], max: &[usize]) -> String {
    let cut = |s: &str, m: usize| -> String {
        let one_line = s.replace('\n', " ");
        if one_line.chars().count() > m {
            let mut t: String = one_line.chars().take(m.saturating_sub(1)).collect();
            t.push('…');
            t
        } else {
            one_line
        }
    };
    let cols = header.len();
    let mut cells: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    cells.push(
        header
            .iter()
            .enumerate()
            .map(|(i, h)| cut(h, max.get(i).copied().unwrap_or(40)))
            .collect(),
    );
    for r in rows {
        cells.push(
            (0..cols)
                .map(|i| {
                    cut(
                        r.get(i).map_or("", String::as_str),
                        max.get(i).copied().unwrap_or(40),
                    )
                })
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, r) in cells.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths.get(i).copied().unwrap_or(0);
                format!("{c:<w$}")
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

/// A decision for people: verdict, tier, reasons, policies.
pub fn explain(d: &Decision) -> String {
    let mut s = format!("decision: {}", d.decision.as_str());
    if d.decision != warden_core::Verdict::Deny {
        s.push_str(&format!(" (tier {})", d.tier));
    }
    s.push('\n');
    if let Some(t) = &d.tool {
        s.push_str(&format!("tool:     {t}\n"));
    }
    s.push_str("reasons:\n");
    for r in &d.reasons {
        s.push_str(&format!("  - {r}\n"));
    }
    if !d.policies.is_empty() {
        s.push_str(&format!("policies: {}\n", d.policies.join(", ")));
    }
    s.push_str(&format!("policy version: {}\n", d.policy_version));
    s
}
