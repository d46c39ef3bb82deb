//! Schemas of the bodies the handlers build by hand with `json!` (and of core types that do not
//! derive `ToSchema`, since `warden-core` stays free of HTTP concerns).
//!
//! These types only describe: no handler constructs them, so the responses stay exactly as the
//! handlers write them. Their `///` comments are the document's descriptions; a `//` line above
//! a type names the function whose JSON it describes. `tests/openapi.rs` checks real answers
//! against them, so a field added to a handler's `json!` without its schema fails there.
#![expect(
    dead_code,
    reason = "schema-only types: they describe hand-built JSON bodies"
)]

use serde_json::Value;
use utoipa::ToSchema;

// ---- errors -------------------------------------------------------------------------------

/// The error body of the API (`ApiError`): what went wrong, in words, and whose fault it was.
#[derive(ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine-readable code, e.g. `unauthenticated`, `bad_request`, `not_found`,
    /// `conflict`, `forbidden`, `csrf`, `no_session`, `wrong_agent`, `wrong_region`,
    /// `ledger_unavailable`.
    code: String,
    /// Safe to show: never secrets, never internals.
    message: String,
    /// Whose fault it was: the caller's (`agent`) or Warden's (`warden`).
    source: Fault,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Fault {
    Agent,
    Warden,
}

// `identity_api::oauth_error`.
/// An RFC 6749 §5.2 error of `POST /oauth/token`.
#[derive(ToSchema)]
pub(crate) struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type` or `invalid_scope`.
    error: String,
    error_description: String,
}

/// A bare error message (`GET /v1/approvals/key` without a signing key).
#[derive(ToSchema)]
pub(crate) struct MessageError {
    error: String,
}

// ---- decisions ----------------------------------------------------------------------------

/// A reference to a ledger record.
#[derive(ToSchema)]
pub(crate) struct LedgerRef {
    /// Sequence number of the record in the ledger.
    #[schema(minimum = 1)]
    seq: u64,
    /// RFC 6962 leaf hash (hex) of the record.
    hash: String,
}

/// The verdict of a decision.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    Allow,
    Deny,
    ApprovalRequired,
}

/// Who must agree before a call runs, from least to most oversight.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Tier {
    Auto,
    Review,
    Approve,
    TwoPerson,
}

/// How far a session's inputs can be trusted.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Taint {
    Clean,
    Untrusted,
    Suspicious,
}

/// One argument that broke its constraint.
#[derive(ToSchema)]
pub(crate) struct Violation {
    argument: String,
    message: String,
}

/// Where one argument value came from (`warden_core::session::ArgProvenance`).
#[derive(ToSchema)]
pub(crate) struct ArgProvenance {
    /// The argument's name (for nested values, `name.path`).
    argument: String,
    /// The value (or the part of it) found in untrusted content.
    value: String,
    /// Whether `value` is the argument's whole value or a part of it.
    whole: bool,
    source: UntrustedSource,
}

/// An untrusted output the session read.
#[derive(ToSchema)]
pub(crate) struct UntrustedSource {
    /// The tool as `server/name`.
    tool: String,
    /// The ledger sequence number of the outcome record that carried it.
    seq: u64,
}

// `api::propose`: the core's `Decision`, then `approval`, `id`, `agent` and `ledger`.
/// A decision on a proposed call, durable in the ledger.
#[derive(ToSchema)]
pub(crate) struct DecisionAnswer {
    decision: Verdict,
    /// `auto`/`review` for allowed calls, `approve`/`two_person` for held ones; for denied
    /// calls, the tier the card would have applied (`auto` if none).
    tier: Tier,
    /// Why, in words a person understands.
    reasons: Vec<String>,
    /// Ids of the Cedar policies that determined the outcome.
    policies: Vec<String>,
    /// The argument constraints the call broke.
    violations: Vec<Violation>,
    /// `server/name` of the tool when the scope card grants it.
    #[schema(required = true)]
    tool: Option<String>,
    /// SHA-256 of warden.toml, every scope card and every policy file.
    policy_version: String,
    /// The session's taint when the call was decided (absent when clean or no session).
    #[serde(skip_serializing_if = "Option::is_none")]
    taint: Option<Taint>,
    /// Argument values that came from untrusted content the session read (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    provenance: Vec<ArgProvenance>,
    /// Destinations off the tool's egress allowlist (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    egress_off_list: Vec<String>,
    /// Present when the decision is `approval_required`: the request people vote on.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<ApprovalTicket>,
    /// Decision id (UUIDv7): poll it, report the outcome of an allowed call under it.
    id: String,
    agent: String,
    ledger: LedgerRef,
}

/// The approval request a held call opened or joined.
#[derive(ToSchema)]
pub(crate) struct ApprovalTicket {
    id: String,
    /// `pending`, `approved`, `denied` or `expired`.
    state: String,
    required_approvals: u32,
    /// SHA-256 (hex) of the RFC 8785 canonical JSON of the arguments the approval binds.
    arguments_hash: String,
    /// RFC 3339.
    expires_at: String,
    /// Where to long-poll for votes, e.g. `/v1/decisions/{id}?wait=30`.
    poll: String,
    /// How to run the call once approved.
    execute: String,
}

/// The `503` of `POST /v1/decisions` when the ledger could not record the decision: the call
/// is denied (fail closed).
#[derive(ToSchema)]
pub(crate) struct DecisionUnrecorded {
    /// Always null: nothing was recorded.
    #[schema(value_type = Option<String>, required = true)]
    id: Value,
    /// Always `deny`.
    decision: Verdict,
    tier: Tier,
    reasons: Vec<String>,
    policies: Vec<String>,
    policy_version: String,
    error: UnrecordedError,
}

#[derive(ToSchema)]
pub(crate) struct UnrecordedError {
    /// `ledger_unavailable`.
    code: String,
    /// `warden`.
    source: Fault,
}

/// `503` of `POST /v1/decisions`: a deny decision that could not be recorded, or an approval
/// request that could not be queued.
#[derive(ToSchema)]
#[serde(untagged)]
pub(crate) enum DecisionUnavailable {
    Unrecorded(DecisionUnrecorded),
    Error(ErrorBody),
}

// `api::show`.
/// The ledger records of one decision.
#[derive(ToSchema)]
pub(crate) struct DecisionRecords {
    id: String,
    /// The decision record, and the outcome and approval records that refer to it.
    records: Vec<DecisionRecord>,
    /// The approval request of a held decision (the agent's view, without argument values),
    /// or null.
    #[schema(required = true)]
    approval: Option<AgentApprovalView>,
}

#[derive(ToSchema)]
pub(crate) struct DecisionRecord {
    seq: u64,
    /// RFC 6962 leaf hash (hex).
    hash: String,
    /// RFC 3339 time of the record.
    ts: String,
    /// The ledger event, tagged by `kind` (`decision`, `outcome`, `approval_vote`, ...).
    #[schema(value_type = Object)]
    event: Value,
}

// `api::record_outcome`.
/// An outcome, recorded.
#[derive(ToSchema)]
pub(crate) struct OutcomeRecorded {
    id: String,
    /// The output was cut to `gateway.max_output_bytes` before it was recorded.
    output_truncated: bool,
    ledger: LedgerRef,
}

// ---- health -------------------------------------------------------------------------------

/// `GET /healthz`.
#[derive(ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: String,
}

/// `GET /readyz` when ready.
#[derive(ToSchema)]
pub(crate) struct Ready {
    /// `ready`.
    status: String,
    policy_version: String,
    /// Number of agents with a scope card.
    agents: u64,
}

/// `GET /readyz` when the ledger is not writable.
#[derive(ToSchema)]
pub(crate) struct NotReady {
    /// `not_ready`.
    status: String,
    reason: String,
}

// ---- approvals ----------------------------------------------------------------------------

/// A vote on an approval request.
#[derive(ToSchema)]
pub(crate) struct ApprovalVote {
    approver: String,
    /// `approve` or `deny`.
    verdict: String,
    reason: Option<String>,
    /// RFC 3339.
    at: String,
    /// RFC 3339 time of the approver's last TOTP verification.
    mfa_verified_at: String,
    ledger_seq: u64,
}

// `approvals::agent_view`.
/// An approval request as its agent sees it: without `arguments`.
#[derive(ToSchema)]
pub(crate) struct AgentApprovalView {
    id: String,
    /// `pending`, `approved`, `denied` or `expired`.
    state: String,
    /// The state in words, e.g. `approved: execute the call with this approval_id and the
    /// same arguments`.
    outcome: String,
    agent: String,
    /// The person the agent acts for; they cannot approve the call.
    on_behalf_of: Option<String>,
    tool: String,
    qualified_tool: String,
    upstream: String,
    /// SHA-256 (hex) of the RFC 8785 canonical JSON of the arguments the approval binds.
    arguments_hash: String,
    reasons: Vec<String>,
    policies: Vec<String>,
    tier: Tier,
    required_approvals: u32,
    session: Option<String>,
    correlation_id: Option<String>,
    /// The door the call came through: `api`, `mcp_http`, `mcp_stdio`.
    source: String,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    expires_at: String,
    /// RFC 3339.
    decided_at: Option<String>,
    deny_reason: Option<String>,
    used_by: Option<String>,
    votes: Vec<ApprovalVote>,
}

// `approvals::approval_json`.
/// An approval request.
#[derive(ToSchema)]
pub(crate) struct Approval {
    #[serde(flatten)]
    request: AgentApprovalView,
    /// The call's arguments, exactly as they must be executed.
    #[schema(value_type = Object)]
    arguments: Value,
}

/// `GET /v1/approvals`.
#[derive(ToSchema)]
pub(crate) struct ApprovalList {
    approvals: Vec<Approval>,
}

/// A tool output the session read before the held call.
#[derive(ToSchema)]
pub(crate) struct SessionOutput {
    seq: u64,
    ts: String,
    tool: String,
    status: String,
    #[schema(value_type = Value)]
    output: Value,
    output_truncated: bool,
}

/// A signed vote record and the check of its signature.
#[derive(ToSchema)]
pub(crate) struct SignedVote {
    seq: u64,
    approver: String,
    verdict: String,
    mfa: MfaAssertion,
    /// Hex id of the signing key.
    key_id: String,
    /// Ed25519 signature (base64).
    signature: String,
    /// Null when this gateway has no signing key loaded.
    signature_valid: Option<bool>,
}

/// The second factor a vote relies on.
#[derive(ToSchema)]
pub(crate) struct MfaAssertion {
    /// `totp` (RFC 6238).
    method: String,
    verified: bool,
    /// Unix seconds of the TOTP verification the vote relies on.
    verified_at: i64,
    /// Seconds between that verification and the vote.
    age_secs: i64,
}

/// One field of the before-state → proposed change diff.
#[derive(ToSchema)]
pub(crate) struct DiffRow {
    field: String,
    #[schema(value_type = Value)]
    before: Option<Value>,
    #[schema(value_type = Value)]
    proposed: Option<Value>,
    /// `changes`, `same`, `kept` (before-state only) or `new` (call only).
    change: String,
}

// `approvals::detail`.
/// An approval request with what an approver needs to decide.
#[derive(ToSchema)]
pub(crate) struct ApprovalDetail {
    #[serde(flatten)]
    request: Approval,
    /// The outputs the agent read earlier in the session (at most 20).
    what_the_agent_saw: Vec<SessionOutput>,
    /// The state the call will change: read through the card's snapshot read, or reported by
    /// the caller; null when there is none.
    #[schema(value_type = Value)]
    before_state: Value,
    /// `snapshot` or `caller`.
    before_state_source: Option<String>,
    /// Why a configured snapshot read gave no before-state.
    before_state_error: Option<String>,
    before_state_diff: Vec<DiffRow>,
    signed_votes: Vec<SignedVote>,
    /// The approval page in the UI.
    link: String,
}

// `warden_core::approval::parse_vote_json`.
/// A vote's reason and TOTP code; an empty body is taken as `{}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VoteBody {
    /// Why; required to deny, and to approve a two-person request. At most 2000 characters.
    reason: Option<String>,
    /// A fresh TOTP code, when the session's last verification is too old.
    totp: Option<String>,
}

// `approvals::vote`.
/// A vote, signed and recorded.
#[derive(ToSchema)]
pub(crate) struct VoteRecorded {
    /// The approval request.
    id: String,
    /// The request's state after this vote.
    state: String,
    /// `approve` or `deny`.
    vote: String,
    approver: String,
    arguments_hash: String,
    /// Ed25519 signature of the vote by Warden's key (see `GET /v1/approvals/key`).
    signature: String,
    key_id: String,
    ledger: LedgerRef,
}

/// `GET /v1/approvals/key`: how to verify vote signatures.
#[derive(ToSchema)]
pub(crate) struct VerifierKey {
    /// The verifier key in signed-note form.
    verifier_key: String,
    key_id: String,
    /// `Ed25519`.
    algorithm: String,
    key: String,
    /// What exactly is signed.
    signed: String,
}

// ---- identity -----------------------------------------------------------------------------

// `warden_core::identity::parse_token_request`.
/// A client-credentials token request (RFC 6749 §4.4.2).
#[derive(ToSchema)]
pub(crate) struct ClientCredentialsForm {
    /// `client_credentials`.
    grant_type: String,
    /// Space-separated tool names of the agent's card; the token is limited to them.
    scope: Option<String>,
    /// With `client_secret`, instead of HTTP Basic.
    client_id: Option<String>,
    client_secret: Option<String>,
}

// `identity_api::token_endpoint`.
/// An access token (RFC 6749 §5.1).
#[derive(ToSchema)]
pub(crate) struct AccessToken {
    /// `wdn_at_…`: send as `Authorization: Bearer`.
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Seconds.
    expires_in: i64,
    /// The tools the token is limited to, when a scope was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

// `identity_api::issue_handler`.
/// A token just issued; its secret is in this answer only.
#[derive(ToSchema)]
pub(crate) struct TokenIssued {
    /// `wdn_at_…`.
    token: String,
    id: String,
    agent: String,
    environment: String,
    /// The tools the token is limited to; null for all of the card's.
    tools: Option<Vec<String>>,
    /// RFC 3339.
    expires_at: String,
}

/// An active token, without its secret.
#[derive(ToSchema)]
pub(crate) struct TokenInfo {
    id: String,
    agent: String,
    environment: String,
    tools: Option<Vec<String>>,
    issued_at: String,
    expires_at: String,
    issued_by: String,
}

/// `GET /v1/tokens`.
#[derive(ToSchema)]
pub(crate) struct TokenList {
    tokens: Vec<TokenInfo>,
}

// `logins::session_response`.
/// A session just opened; the cookie comes in `Set-Cookie`.
#[derive(ToSchema)]
pub(crate) struct SessionOpened {
    user: String,
    /// `admin`, `approver`, `auditor` or `owner`.
    role: String,
    break_glass: bool,
    /// Send it in the `X-CSRF-Token` header with every state-changing request.
    csrf_token: String,
    /// `X-CSRF-Token`.
    csrf_header: String,
    idle_timeout_secs: u64,
    absolute_timeout_secs: u64,
}

// `logins::whoami_handler`.
/// The person of the session.
#[derive(ToSchema)]
pub(crate) struct SessionInfo {
    user: String,
    role: String,
    break_glass: bool,
    /// RFC 3339 time of the last TOTP verification (login or step-up).
    totp_verified_at: Option<String>,
}

/// `POST /v1/session/step-up`.
#[derive(ToSchema)]
pub(crate) struct SteppedUp {
    /// RFC 3339.
    totp_verified_at: String,
}

// ---- MCP ----------------------------------------------------------------------------------

/// One JSON-RPC 2.0 message (batches are refused).
#[derive(ToSchema)]
pub(crate) struct JsonRpcMessage {
    /// `2.0`.
    jsonrpc: String,
    /// Absent for notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    id: Option<Value>,
    /// `initialize`, `ping`, `tools/list`, `tools/call`, `resources/list`,
    /// `resources/templates/list`, `resources/read`, `prompts/list`, `prompts/get`, or a
    /// notification.
    method: String,
    /// For `tools/call`, `_meta` may carry `warden/correlation_id`, `warden/user_request`,
    /// `warden/on_behalf_of` and a `progressToken`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    params: Option<Value>,
}

/// A JSON-RPC 2.0 response: `result`, or `error` for a protocol error. A refused tool call is a
/// result with `isError: true` and the reasons as text.
#[derive(ToSchema)]
pub(crate) struct JsonRpcResponse {
    jsonrpc: String,
    #[schema(value_type = Value, required = true)]
    id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JsonRpcError>,
}

#[derive(ToSchema)]
pub(crate) struct JsonRpcError {
    code: i64,
    message: String,
}
