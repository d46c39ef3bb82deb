//! Approval fatigue: per approver and per agent, how many votes, how fast, how many quick
//! approvals, and whether an approver looks like they are rubber-stamping.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ApprovalsConfig;

/// One vote, for fatigue statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteSample {
    pub approver: String,
    pub agent: String,
    pub approved: bool,
    /// Seconds from the request (or from when the approver first could see it) to the vote.
    pub secs_to_decide: f64,
}

/// Fatigue figures for one approver or one agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FatigueStats {
    pub votes: u32,
    pub approvals: u32,
    /// approvals / votes.
    pub approval_rate: f64,
    pub median_secs_to_decide: f64,
    /// Approvals made faster than the quick threshold.
    pub quick_approvals: u32,
}

fn stats_of(samples: &[&VoteSample], quick_secs: f64) -> FatigueStats {
    let votes = u32::try_from(samples.len()).unwrap_or(u32::MAX);
    let approvals = u32::try_from(samples.iter().filter(|s| s.approved).count()).unwrap_or(0);
    let quick = samples
        .iter()
        .filter(|s| s.approved && s.secs_to_decide < quick_secs)
        .count();
    let mut times: Vec<f64> = samples.iter().map(|s| s.secs_to_decide).collect();
    times.sort_by(f64::total_cmp);
    let median = match times.len() {
        0 => 0.0,
        n if n % 2 == 1 => times.get(n / 2).copied().unwrap_or(0.0),
        n => {
            let a = times.get(n / 2 - 1).copied().unwrap_or(0.0);
            let b = times.get(n / 2).copied().unwrap_or(0.0);
            (a + b) / 2.0
        }
    };
    FatigueStats {
        votes,
        approvals,
        approval_rate: if votes == 0 {
            0.0
        } else {
            f64::from(approvals) / f64::from(votes)
        },
        median_secs_to_decide: median,
        quick_approvals: u32::try_from(quick).unwrap_or(u32::MAX),
    }
}

/// Per-approver and per-agent fatigue statistics.
pub fn fatigue(
    samples: &[VoteSample],
    quick_secs: u64,
) -> (
    BTreeMap<String, FatigueStats>,
    BTreeMap<String, FatigueStats>,
) {
    let q = quick_secs as f64;
    let mut by_approver: BTreeMap<String, Vec<&VoteSample>> = BTreeMap::new();
    let mut by_agent: BTreeMap<String, Vec<&VoteSample>> = BTreeMap::new();
    for s in samples {
        by_approver.entry(s.approver.clone()).or_default().push(s);
        by_agent.entry(s.agent.clone()).or_default().push(s);
    }
    (
        by_approver
            .into_iter()
            .map(|(k, v)| (k, stats_of(&v, q)))
            .collect(),
        by_agent
            .into_iter()
            .map(|(k, v)| (k, stats_of(&v, q)))
            .collect(),
    )
}

/// Whether an approver's figures look like rubber-stamping under the configured thresholds.
pub fn rubber_stamping(stats: &FatigueStats, cfg: &ApprovalsConfig) -> bool {
    stats.votes >= cfg.fatigue_min_votes
        && stats.approvals > 0
        && f64::from(stats.quick_approvals) / f64::from(stats.approvals.max(1))
            >= cfg.fatigue_quick_share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatigue_figures() {
        let s = |who: &str, ok: bool, t: f64| VoteSample {
            approver: who.into(),
            agent: "crm".into(),
            approved: ok,
            secs_to_decide: t,
        };
        let samples = vec![
            s("ann", true, 1.0),
            s("ann", true, 2.0),
            s("ann", true, 1.5),
            s("ann", true, 1.0),
            s("ann", true, 30.0),
            s("bob", false, 60.0),
            s("bob", true, 120.0),
        ];
        let (by_approver, by_agent) = fatigue(&samples, 3);
        let ann = by_approver.get("ann").unwrap();
        assert_eq!(ann.quick_approvals, 4);
        assert!((ann.median_secs_to_decide - 1.5).abs() < 1e-9);
        assert!(rubber_stamping(ann, &ApprovalsConfig::default()));
        let bob = by_approver.get("bob").unwrap();
        assert!((bob.approval_rate - 0.5).abs() < 1e-9);
        assert!(!rubber_stamping(bob, &ApprovalsConfig::default()));
        assert_eq!(by_agent.get("crm").unwrap().votes, 7);
    }
}
