//! API errors: what the caller sees, what the log keeps, and whose fault it was.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tracing::warn;

/// Which side caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The agent sent a bad or unauthorised request.
    Agent,
    /// Warden itself (its store, its policy) failed.
    Warden,
}

/// An error returned by the HTTP API. A denied call is not an error; it is a decision.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Safe to show the caller: never secrets, never internals.
    pub external: String,
    /// Kept in the log only.
    pub internal: Option<String>,
    pub fault: Fault,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        external: impl Into<String>,
        fault: Fault,
    ) -> Self {
        Self {
            status,
            code,
            external: external.into(),
            internal: None,
            fault,
        }
    }

    #[must_use]
    pub fn internal(mut self, detail: impl Into<String>) -> Self {
        self.internal = Some(detail.into());
        self
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid agent key or token is required: send `Authorization: Bearer <key or token>`",
            Fault::Agent,
        )
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", msg, Fault::Agent)
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", msg, Fault::Agent)
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", msg, Fault::Agent)
    }

    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", msg, Fault::Agent)
    }

    /// The agent's records are kept in another region: its calls go to that region's gateway.
    pub fn misdirected(agent: &str, region: Option<&str>) -> Self {
        let whose = match region {
            Some(r) => format!("region `{r}`; send its calls to the gateway serving that region (`warden --region {r} serve`)"),
            None => "the home store; send its calls to the gateway serving no region (`warden serve` without --region)".to_string(),
        };
        Self::new(
            StatusCode::MISDIRECTED_REQUEST,
            "wrong_region",
            format!("agent `{agent}` keeps its records in {whose}. Nothing was recorded here."),
            Fault::Agent,
        )
    }

    pub fn ledger_unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            "the ledger could not record this request, so nothing may run (fail closed); retry later",
            Fault::Warden,
        )
        .internal(detail)
    }

    /// Too many password checks at once: `503`; the client retries (nothing is recorded).
    pub fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many sign-in attempts are being checked right now; retry shortly",
            Fault::Warden,
        )
    }

    /// Too many failed sign-ins from this address: `429`, retry after the given seconds.
    pub fn throttled(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many failed sign-in attempts from this address; retry in {retry_after_secs} s"
            ),
            Fault::Agent,
        )
    }

    /// The store failed: `503`, fail closed, the store's error in the log only.
    pub fn store_unavailable(e: warden_store::StoreError) -> Self {
        Self::ledger_unavailable(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(detail) = &self.internal {
            warn!(message = "request failed", code = self.code, status = self.status.as_u16(), error = %detail);
        }
        let source = match self.fault {
            Fault::Agent => "agent",
            Fault::Warden => "warden",
        };
        let body =
            json!({"error": {"code": self.code, "message": self.external, "source": source}});
        (self.status, Json(body)).into_response()
    }
}
