//! What a door hands the pipeline ([`Proposal`]), what it gets back ([`Decided`] or a
//! [`Refusal`]), and the bounds on the caller's free text. Kept apart from the steps so the
//! approval modules the pipeline calls can name these types without importing the pipeline.

use serde_json::Value;
use warden_core::{Decision, ReadTarget, Verdict};
use warden_store::{Appended, ApprovalRow, StoreError};

use super::outcome::Ran;
use super::span::CallSpan;
use crate::error::ApiError;
use crate::identity::AgentPrincipal;

/// Longest `on_behalf_of` name accepted, in characters.
pub(crate) const MAX_LABEL_CHARS: usize = 256;

/// Longest correlation id accepted, in characters: room for a ticket link with context, and a
/// bound on what every record of the call (and an MCP session's default) carries.
pub(crate) const MAX_CORRELATION_CHARS: usize = 4096;

/// Most (top-level) arguments one call may have. Tools take a handful; a call with thousands
/// of made-up names is refused before anything else runs, so it costs neither CPU nor ledger.
pub(crate) const MAX_ARGUMENTS: usize = 256;

/// Which door a proposal came in by; recorded as the decision's `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Api,
    McpHttp,
    McpStdio,
}

impl Source {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::McpHttp => "mcp-http",
            Self::McpStdio => "mcp-stdio",
        }
    }
}

/// What is proposed.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A tool, as the agent named it (`name` or `server/name`); over MCP, the upstream the
    /// gateway resolved it to.
    Tool {
        name: String,
        server: Option<String>,
    },
    /// `resources/read` of `what` (a URI) or `prompts/get` of `what` (a prompt name) on
    /// `server`.
    Read {
        method: &'static str,
        server: String,
        what: String,
    },
}

impl Target {
    /// The tool as recorded: its name as the agent gave it, or the MCP method of a read.
    pub(crate) fn recorded_name(&self) -> &str {
        match self {
            Self::Tool { name, .. } => name,
            Self::Read { method, .. } => method,
        }
    }

    /// The name the core decides on: `server/name` when the upstream is known.
    pub(super) fn core_name(&self) -> String {
        match self {
            Self::Tool {
                name,
                server: Some(server),
            } => format!("{server}/{name}"),
            Self::Tool { name, server: None } => name.clone(),
            Self::Read { method, .. } => (*method).to_string(),
        }
    }

    pub(super) fn read_target(&self) -> Option<ReadTarget<'_>> {
        match self {
            Self::Read {
                method: "resources/read",
                server,
                what,
            } => Some(ReadTarget::Resource { server, uri: what }),
            Self::Read { server, what, .. } => Some(ReadTarget::Prompt { server, name: what }),
            Self::Tool { .. } => None,
        }
    }
}

/// A proposed call, as every entry point hands it to [`super::decide`].
#[derive(Debug, Clone)]
pub(crate) struct Proposal {
    /// The authenticated agent and what its credential narrows.
    pub caller: AgentPrincipal,
    pub source: Source,
    pub target: Target,
    pub arguments: Value,
    /// The session; calls without one share the agent's default session.
    pub session: Option<String>,
    /// The ticket or request the call serves.
    pub correlation_id: Option<String>,
    /// The user's own request, declared trusted by the caller.
    pub user_request: Option<String>,
    /// The person the agent acts for (who then cannot approve the call).
    pub on_behalf_of: Option<String>,
    /// The JSON-RPC id of an MCP request.
    pub mcp_request_id: Option<Value>,
    /// Execute the call approved under this id (the held proposal's decision id).
    pub approval_id: Option<String>,
    /// The before-state the caller reported, shown to approvers of a held call.
    pub before_state: Option<Value>,
}

impl Proposal {
    /// A tool call with nothing but its name and arguments set.
    pub(crate) fn tool(
        caller: AgentPrincipal,
        source: Source,
        name: impl Into<String>,
        server: Option<String>,
        arguments: Value,
    ) -> Self {
        Self {
            caller,
            source,
            target: Target::Tool {
                name: name.into(),
                server,
            },
            arguments,
            session: None,
            correlation_id: None,
            user_request: None,
            on_behalf_of: None,
            mcp_request_id: None,
            approval_id: None,
            before_state: None,
        }
    }

    pub(crate) fn agent(&self) -> &str {
        &self.caller.agent
    }
}

/// A proposal decided and recorded.
#[derive(Debug)]
pub(crate) struct Decided {
    /// The decision id (also the approval id of a call held here).
    pub id: String,
    /// Where the decision record landed.
    pub appended: Appended,
    pub decision: Decision,
    /// A held call's approval request: opened for this proposal, or the live request of the
    /// same call (same agent, tool, arguments and principal) that it joined.
    pub approval: Option<ApprovalRow>,
    pub proposal: Proposal,
    pub span: CallSpan,
}

impl Decided {
    /// The tool as `server/name` when the card grants it, else as the agent named it.
    pub(crate) fn qualified_tool(&self) -> String {
        self.decision
            .tool
            .clone()
            .unwrap_or_else(|| self.proposal.target.core_name())
    }

    /// Why the call may not run, in words the model can read (for MCP tool results).
    pub(crate) fn refusal_text(&self) -> String {
        let name = self.proposal.target.recorded_name();
        let reasons = self.decision.reasons.join("\n- ");
        match self.decision.decision {
            Verdict::ApprovalRequired => format!(
                "Warden is holding this call to `{name}` for approval (tier {}); it has not run. Decision id: {}.\n- {reasons}",
                self.decision.tier, self.id
            ),
            _ => format!("Warden denied this call to `{name}`:\n- {reasons}"),
        }
    }

    /// The allowed call, to run and then report with [`super::record_outcome`].
    pub(crate) fn into_ran(self) -> Ran {
        Ran {
            decision_id: self.id,
            agent: self.proposal.caller.agent,
            tool: self.proposal.target.recorded_name().to_string(),
            qualified_tool: self.decision.tool,
            session: self.proposal.session,
            correlation_id: self.proposal.correlation_id,
            started: std::time::Instant::now(),
            span: self.span,
        }
    }

    /// The proposal of the execution of this held call, once approved under `approval_id`.
    pub(crate) fn release(&self, approval_id: &str) -> Proposal {
        let mut p = self.proposal.clone();
        p.approval_id = Some(approval_id.to_string());
        p.before_state = None;
        // Declared once, with the proposal: the session already counts it as trusted.
        p.user_request = None;
        p
    }
}

/// Why a proposal ended without a recorded decision that lets the caller go on.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The proposal is malformed; nothing is recorded.
    BadInput(String),
    /// The agent's records belong to another region's store (`421`); nothing is recorded.
    WrongRegion(ApiError),
    /// The decision could not be recorded, so the call must not run (fail closed); the
    /// store's error is in the log.
    Unrecorded { decision: Box<Decision> },
    /// A held call whose decision is recorded could not be queued for approval.
    NotQueued {
        decided: Box<Decided>,
        error: StoreError,
    },
}

impl Refusal {
    /// The refusal in words, for MCP answers.
    pub(crate) fn text(&self) -> String {
        match self {
            Self::BadInput(why) => why.clone(),
            Self::WrongRegion(e) => e.external.clone(),
            Self::Unrecorded { .. } => "Warden refused this call: the ledger could not record it, so it must not run (fail closed). Try again later.".to_string(),
            Self::NotQueued { error, .. } => format!(
                "the call could not be queued for approval ({error}); it has not run"
            ),
        }
    }
}
