//! `[approvals]` in `warden.toml`: expiry, how long an MCP call is held, who may vote,
//! notifications, fatigue thresholds, the review deadline.

use serde::Deserialize;

/// `[approvals]` in `warden.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// A pending request expires this long after it was made, in seconds (default 1 h).
    #[serde(default = "default_expiry")]
    pub expiry_secs: u64,
    /// How long a held MCP `tools/call` waits for a decision before answering `"pending
    /// approval <id>, retry later"`, in seconds (default 20).
    #[serde(default = "default_hold")]
    pub hold_secs: u64,
    /// An approver's TOTP verification (login or step-up) must be at most this old when they
    /// vote, in seconds (default 300).
    #[serde(default = "default_mfa_max_age")]
    pub mfa_max_age_secs: u64,
    /// When true (default), the person on whose behalf the agent acted (`on_behalf_of`) and
    /// the owners listed on the agent's scope card (`[owners]`) cannot vote on its requests.
    /// The requesting principal itself (a person named like the agent) never can.
    #[serde(default = "default_true")]
    pub forbid_self_approval: bool,
    /// While an MCP `tools/call` that carries a `progressToken` is held, Warden sends a
    /// `notifications/progress` this often, in seconds (default 5; the first at once).
    #[serde(default = "default_progress")]
    pub progress_secs: u64,
    /// A Slack-compatible incoming webhook; each new request is posted as `{"text": …}`
    /// with the tool, agent, id and a link — never argument values.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The gateway's public base URL for links (default `http://<listen>`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Fatigue: a vote faster than this counts as a quick approval (default 3 s).
    #[serde(default = "default_quick")]
    pub quick_secs: u64,
    /// Fatigue: raise an alert when an approver has at least `fatigue_min_votes` votes and
    /// this share or more of their approvals were quick (default 0.5).
    #[serde(default = "default_quick_share")]
    pub fatigue_quick_share: f64,
    #[serde(default = "default_min_votes")]
    pub fatigue_min_votes: u32,
    /// Calls allowed at tier `review` must be reviewed within this many hours; after it, a
    /// `review_overdue` alert is recorded (default 72).
    #[serde(default = "default_review_deadline")]
    pub review_deadline_hours: u64,
}

fn default_review_deadline() -> u64 {
    72
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            expiry_secs: default_expiry(),
            hold_secs: default_hold(),
            mfa_max_age_secs: default_mfa_max_age(),
            forbid_self_approval: true,
            progress_secs: default_progress(),
            webhook_url: None,
            public_url: None,
            quick_secs: default_quick(),
            fatigue_quick_share: default_quick_share(),
            fatigue_min_votes: default_min_votes(),
            review_deadline_hours: default_review_deadline(),
        }
    }
}

fn default_expiry() -> u64 {
    3600
}
fn default_hold() -> u64 {
    20
}
fn default_mfa_max_age() -> u64 {
    300
}
fn default_progress() -> u64 {
    5
}
fn default_true() -> bool {
    true
}
fn default_quick() -> u64 {
    3
}
fn default_quick_share() -> f64 {
    0.5
}
fn default_min_votes() -> u32 {
    5
}
