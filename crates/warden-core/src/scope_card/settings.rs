//! The values a scope card's settings take, shared by the card as written and as validated:
//! owners, environment, model register, rate limits, failure modes, and per tool its access,
//! impact, approval tier, output trust, guards, egress policy and argument types.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who answers for the agent.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Owners {
    pub product: String,
    pub security: String,
    pub on_call: String,
}

/// The environment an agent is bound to; a gateway serves one environment.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Dev,
    Staging,
    Prod,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The model and vendor register entry for the agent (SOC 2 CC9.2).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelRegister {
    pub provider: String,
    pub model: String,
    pub data_sharing: DataSharing,
    #[serde(default)]
    pub sub_processors: Vec<String>,
}

/// What the model provider may do with the data it is sent.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DataSharing {
    /// Zero data retention.
    None,
    /// Retained for abuse monitoring, never used for training.
    NoTraining,
    /// The provider may train on it.
    TrainingAllowed,
}

/// Call-rate limits; enforced by the gateway.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    pub calls_per_minute: Option<u32>,
    pub writes_per_hour: Option<u32>,
}

/// A known way the agent can fail and the agreed response.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FailureMode {
    pub scenario: String,
    pub response: String,
}

/// Whether a tool reads or changes the world.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// How bad a wrong call of the tool would be.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Low,
    Medium,
    High,
}

impl Impact {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// Who must agree before a call runs. Ordered from least to most oversight.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Runs at once.
    Auto,
    /// Runs at once; queued for a human to look at afterwards.
    Review,
    /// Waits for one human approval.
    Approve,
    /// Waits for two different humans.
    TwoPerson,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Review => "review",
            Self::Approve => "approve",
            Self::TwoPerson => "two_person",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "review" => Some(Self::Review),
            "approve" => Some(Self::Approve),
            "two_person" => Some(Self::TwoPerson),
            _ => None,
        }
    }

    /// Whether a call at this tier waits for a human before it runs.
    pub fn holds_call(self) -> bool {
        matches!(self, Self::Approve | Self::TwoPerson)
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a tool's output may be treated as instructions or only as data.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Trust {
    Trusted,
    #[default]
    Untrusted,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trusted => "trusted",
            Self::Untrusted => "untrusted",
        }
    }
}

/// A guard on calls after untrusted input: a tier to raise the call to, or `deny`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    Auto,
    Review,
    Approve,
    TwoPerson,
    Deny,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        self.tier().map_or("deny", Tier::as_str)
    }

    /// The tier it raises a call to, `None` for `deny`.
    pub fn tier(self) -> Option<Tier> {
        match self {
            Self::Auto => Some(Tier::Auto),
            Self::Review => Some(Tier::Review),
            Self::Approve => Some(Tier::Approve),
            Self::TwoPerson => Some(Tier::TwoPerson),
            Self::Deny => None,
        }
    }
}

/// What happens to a destination that is not on an egress allowlist.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OffList {
    /// Always denied.
    #[default]
    Deny,
    /// Held for one approval.
    Approve,
    /// Held for approval, but denied once the session has read a sensitive data class.
    ApproveUnlessSensitive,
}

impl OffList {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::Approve => "approve",
            Self::ApproveUnlessSensitive => "approve_unless_sensitive",
        }
    }
}

/// JSON type of an argument.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ArgType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
}

impl ArgType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Object => "object",
        }
    }
}

/// Names of servers, tools and arguments become Cedar identifiers and schema keys; keep them
/// to a safe alphabet.
pub(crate) fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
