//! The `execute_tool` span of one call, carried through the pipeline from the moment the
//! proposal arrived to the moment the call ended (refused, held, or answered by its tool).

use warden_core::otel::TraceParent;

use crate::state::AppState;
use crate::telemetry::{now_unix_nano, CallTrace};

/// A call's span while it is open; inert when telemetry is off.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallSpan {
    open: Option<Box<Open>>,
}

#[derive(Debug, Clone)]
struct Open {
    trace: CallTrace,
    parent: Option<TraceParent>,
    start_unix_nano: u64,
    source: &'static str,
}

impl CallSpan {
    /// Start the span of a proposal that arrived just now.
    pub(crate) fn start(
        state: &AppState,
        source: &'static str,
        parent: Option<TraceParent>,
    ) -> Self {
        Self::started_at(state, source, parent, now_unix_nano())
    }

    /// The span of a call whose proposal arrived at `start_unix_nano`.
    pub(crate) fn started_at(
        state: &AppState,
        source: &'static str,
        parent: Option<TraceParent>,
        start_unix_nano: u64,
    ) -> Self {
        if state.telemetry.is_none() {
            return Self::default();
        }
        Self {
            open: Some(Box::new(Open {
                trace: CallTrace::default(),
                parent,
                start_unix_nano,
                source,
            })),
        }
    }

    /// The trace context the span is a child of.
    pub(crate) fn parent(&self) -> Option<TraceParent> {
        self.open.as_ref().and_then(|o| o.parent)
    }

    /// Fill in what is known of the call.
    pub(crate) fn describe(&mut self, fill: impl FnOnce(&mut CallTrace)) {
        if let Some(open) = self.open.as_mut() {
            fill(&mut open.trace);
        }
    }

    /// End the span (`error_type` when the call did not succeed) and send it. Reads of
    /// resources and prompts are not tool calls: their spans (no tool name) are not sent.
    pub(crate) fn end(self, state: &AppState, agent: &str, error_type: Option<&'static str>) {
        let (Some(open), Some(telemetry)) = (self.open, &state.telemetry) else {
            return;
        };
        if open.trace.tool.is_empty() {
            return;
        }
        let mut trace = open.trace;
        trace.error_type = error_type.or(trace.error_type);
        telemetry.record(crate::telemetry::span(
            trace,
            agent,
            open.source,
            open.parent,
            open.start_unix_nano,
        ));
    }
}
