//! The in-process decision path beside raw Cedar on the same policies.
//!
//! Two synthetic projects: 50 agents × 20 tools (1,000 card policies) and 500 agents × 20 tools
//! (10,000). For each size:
//! - `warden_decide`: `CompiledPolicy::decide` — argument checks, context built directly,
//!   Cedar on the (agent, tool) slice, reasons;
//! - `cedar_sliced`: `Authorizer::is_authorized` alone on the same slice and request;
//! - `cedar_full_set`: `Authorizer::is_authorized` on the whole policy set (what a naive
//!   integration pays).
//!
//! After criterion, p50/p99 of `warden_decide` over 200,000 single calls are printed.
//!
//! Run: `cargo bench -p warden-core --bench decision`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use cedar_policy::Authorizer;
use criterion::{BenchmarkId, Criterion};
use serde_json::{json, Value};
use warden_core::project::{load_project, Project, ProjectSources};
use warden_core::{CallRequest, SourceFile};

const TOOLS_PER_AGENT: usize = 20;
const SERVERS: usize = 10;

fn synthetic(agents: usize) -> Project {
    let mut config = String::from("[gateway]\nenvironment = \"prod\"\n");
    for s in 0..SERVERS {
        let _ = write!(config, "[upstreams.srv{s}]\nbuiltin = \"demo\"\n");
    }
    let mut cards = Vec::new();
    for a in 0..agents {
        let mut t = format!(
            "purpose = \"synthetic agent {a}\"\nenvironment = \"prod\"\n[owners]\nproduct = \"p\"\nsecurity = \"s\"\non_call = \"o\"\n"
        );
        for k in 0..TOOLS_PER_AGENT {
            let tier = ["auto", "review", "approve", "two_person"][k % 4];
            let _ = write!(
                t,
                "[[tools]]\nserver = \"srv{}\"\nname = \"tool{k}\"\naccess = \"write\"\nimpact = \"medium\"\napproval = \"{tier}\"\n\
                 [tools.args.account_id]\ntype = \"string\"\nrequired = true\npattern = \"ACC-[0-9]{{4}}\"\n\
                 [tools.args.amount]\ntype = \"number\"\nmin = 0\nmax = 1000\n",
                k % SERVERS
            );
        }
        cards.push(SourceFile {
            path: format!("agents/agent{a}.toml"),
            text: t,
        });
    }
    let policies = vec![SourceFile {
        path: "policies/extra.cedar".into(),
        text: "@id(\"big-amounts\")\n@approval(\"two_person\")\npermit (principal, action, resource) when { context.tool_access == \"write\" };\n\
               @id(\"no-closing\")\nforbid (principal, action, resource) when { context.session == \"blocked\" };\n\
               @id(\"large-tool0\")\n@approval(\"two_person\")\npermit (principal, action == Action::\"srv0/tool0\", resource) when { context.args has amount && context.args.amount.greaterThan(decimal(\"500.0\")) };\n\
               @id(\"large-tool10\")\n@approval(\"two_person\")\npermit (principal, action == Action::\"srv0/tool10\", resource) when { context.args has amount && context.args.amount.greaterThan(decimal(\"500.0\")) };\n"
            .into(),
    }];
    let sources = ProjectSources {
        config: SourceFile {
            path: "warden.toml".into(),
            text: config,
        },
        cards,
        policies,
    };
    load_project(&sources).unwrap_or_else(|e| panic!("{e}"))
}

fn calls(agents: usize) -> Vec<(String, String, Value)> {
    (0..1024)
        .map(|i| {
            let a = (i * 7919) % agents;
            let k = (i * 31) % TOOLS_PER_AGENT;
            (
                format!("agent{a}"),
                format!("tool{k}"),
                json!({"account_id": "ACC-0042", "amount": 120.5}),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion, agents: usize, project: &Project) {
    let calls = calls(agents);
    let policy = &project.policy;
    let size = format!("{}_policies", agents * TOOLS_PER_AGENT);
    let mut g = c.benchmark_group("decision");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let mut i = 0usize;
    g.bench_function(BenchmarkId::new("warden_decide", &size), |b| {
        b.iter(|| {
            let (a, t, args) = &calls[i % calls.len()];
            i += 1;
            black_box(policy.decide(&CallRequest {
                agent: a,
                tool: t,
                args,
                session: None,
                correlation_id: None,
            }))
        })
    });
    let prepared: Vec<_> = calls
        .iter()
        .map(|(a, t, args)| {
            let call = CallRequest {
                agent: a,
                tool: t,
                args,
                session: None,
                correlation_id: None,
            };
            let (req, _) = policy.cedar_request(&call).unwrap();
            let q = policy.cards[a.as_str()].tool(t).unwrap().qualified();
            (req, policy.slice(a, q).unwrap().clone())
        })
        .collect();
    let auth = Authorizer::new();
    let mut j = 0usize;
    g.bench_function(BenchmarkId::new("cedar_sliced", &size), |b| {
        b.iter(|| {
            let (req, slice) = &prepared[j % prepared.len()];
            j += 1;
            black_box(auth.is_authorized(req, slice, policy.entities()))
        })
    });
    let mut k = 0usize;
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function(BenchmarkId::new("cedar_full_set", &size), |b| {
        b.iter(|| {
            let (req, _) = &prepared[k % prepared.len()];
            k += 1;
            black_box(auth.is_authorized(req, policy.policy_set(), policy.entities()))
        })
    });
    g.finish();
}

fn percentiles(agents: usize, project: &Project) {
    let calls = calls(agents);
    let n = 200_000;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let (a, t, args) = &calls[i % calls.len()];
        let start = Instant::now();
        black_box(project.policy.decide(&CallRequest {
            agent: a,
            tool: t,
            args,
            session: None,
            correlation_id: None,
        }));
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "warden_decide latency, {} policies ({} agents): p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
        agents * TOOLS_PER_AGENT,
        agents,
        p(0.50).as_secs_f64() * 1e6,
        p(0.99).as_secs_f64() * 1e6,
        p(0.999).as_secs_f64() * 1e6
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let sizes: Vec<usize> = std::env::var("WARDEN_BENCH_AGENTS")
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|_| vec![50, 500]);
    let projects: Vec<(usize, Project)> = sizes.iter().map(|&a| (a, synthetic(a))).collect();
    for (a, p) in &projects {
        bench(&mut c, *a, p);
    }
    c.final_summary();
    for (a, p) in &projects {
        percentiles(*a, p);
    }
}
