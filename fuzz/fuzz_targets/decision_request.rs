//! A proposed call as it arrives from the network: any bytes as the JSON arguments of every
//! tool of the example project's agents. Deciding must never panic, and a call whose
//! arguments break a constraint must never be allowed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_core::project::{load_project, Project};
use warden_core::{example, CallRequest, Verdict};

fn project() -> &'static Project {
    static P: OnceLock<Project> = OnceLock::new();
    P.get_or_init(|| {
        let sources = example::sources(|_| "11".repeat(32));
        match load_project(&sources) {
            Ok(p) => p,
            Err(e) => panic!("example project must load: {e}"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 16 * 1024 {
        return;
    }
    let Ok(args) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let p = project();
    for card in p.policy.cards.values() {
        for tool in &card.tools {
            let call = CallRequest {
                agent: &card.id,
                tool: &tool.name,
                args: &args,
                session: Some("fuzz"),
                correlation_id: None,
            };
            let d = p.policy.decide(&call);
            if !d.violations.is_empty() {
                assert_eq!(d.decision, Verdict::Deny, "a call with violations was not denied: {d:?}");
            }
        }
    }
});
