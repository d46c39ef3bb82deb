//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers.
//!
//! Every documented handler carries a `#[utoipa::path]` attribute; `api::documented_routes`
//! builds the router and the document from one list of those handlers (utoipa-axum's
//! `routes!`), so a route cannot be added there without its description. This module holds what
//! is common to the whole document: the title, the authentication schemes and the tags
//! (`/openapi.json` itself is served by `api.rs`). The schemas of bodies that handlers build by hand are in
//! [`schemas`].
//!
//! The HTML pages under `/ui` are not part of the API and are not described; the route
//! coverage test in `tests/api.rs` lists them as deliberately left out.

pub(crate) mod schemas;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as Document;

/// Agent authentication: the agent's own key or a token.
pub(crate) const AGENT_KEY: &str = "agentKey";
/// A person's session cookie.
pub(crate) const SESSION: &str = "session";
/// The CSRF token that goes with the session cookie on state-changing requests.
pub(crate) const CSRF: &str = "csrfToken";
/// The sealed break-glass credential.
pub(crate) const BREAK_GLASS: &str = "breakGlass";

/// What the document says before any path: title, description, tags, and that agent
/// authentication applies unless an operation says otherwise.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Warden API",
        description = "Propose a tool call, get allow / deny / approval_required with reasons; report the outcome of allowed calls. Every decision is durable in the ledger before it is returned; if it cannot be recorded the answer is 503 with decision deny.\n\nAgents authenticate with their key or a token (`agentKey`). People log in (`POST /v1/login`) and use the session cookie; state-changing requests also need the session's CSRF token in `X-CSRF-Token`. Errors are `{\"error\": {\"code\", \"message\", \"source\"}}` unless an operation says otherwise (OAuth errors follow RFC 6749 §5.2). A request body over `gateway.max_request_bytes` is refused with 413."
    ),
    modifiers(&SecuritySchemes),
    security(("agentKey" = [])),
    tags(
        (name = "decisions", description = "Decisions on tool calls that a framework runs itself, and their outcomes"),
        (name = "mcp", description = "MCP streamable HTTP: Warden as the agent's MCP server, in front of the upstream tools"),
        (name = "approvals", description = "Held calls and people's votes on them"),
        (name = "logins", description = "People's sessions: password + TOTP, step-up, break-glass"),
        (name = "tokens", description = "Agent tokens: OAuth 2.0 client credentials and the admin token API"),
        (name = "meta", description = "Health, readiness and this document")
    )
)]
pub(crate) struct ApiDoc;

/// The security schemes named by the operations.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_string());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            AGENT_KEY,
            bearer("The agent's own key (warden.toml [agent_keys] holds its SHA-256), or a token (wdn_at_…) from `warden token issue`, `POST /v1/tokens` or `POST /oauth/token`."),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::logins::SESSION_COOKIE,
                "A person's session from POST /v1/login (Secure, HttpOnly, SameSite=Strict). State-changing requests also need the CSRF token (csrfToken).",
            ))),
        );
        components.add_security_scheme(
            CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's CSRF token (csrf_token of the login answer); required with the session cookie on every request that is not GET, HEAD or OPTIONS.",
            ))),
        );
        components.add_security_scheme(
            BREAK_GLASS,
            bearer("The sealed break-glass credential (wdn_bg_…), accepted as an admin; every use is a high-severity alert record."),
        );
    }
}
