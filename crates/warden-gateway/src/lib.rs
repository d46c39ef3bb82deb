//! Warden's HTTP surface: the decision API, health checks and the OpenAPI document, plus the
//! loading of a project directory from disk, the opening of its store ([`project_store`]) and
//! the exports of its ledger ([`ledger_export`]).
//!
//! [`app`] builds the router from an [`AppState`]; tests drive it without a socket
//! (`app(state).oneshot(request)`), `warden serve` binds it to a listener.

pub mod abuse;
mod api;
pub mod approvals;
mod auth;
pub mod demo_tools;
mod error;
pub mod identity;
mod identity_api;
pub mod ledger_export;
pub mod logins;
pub mod mcp;
mod openapi;
pub mod password;
mod pipeline;
pub mod project;
pub mod project_store;
mod rate;
pub mod secrets;
mod state;
pub mod taint;
pub mod telemetry;
pub mod tls;
mod ui;

pub use abuse::{ClientAddr, PeerAddr};
pub use api::{app, openapi};
pub use auth::hash_key;
pub use error::ApiError;
pub use state::{now_rfc3339, AppState};
/// The clock moved to `warden_core::clock`; re-exported here so `warden_gateway::Clock` stays.
pub use warden_core::clock::Clock;

/// A new time-ordered id (UUIDv7), as used for decisions and sessions.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Serve the router on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<PeerAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Serve the router over TLS on a bound listener until `shutdown` resolves.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tls::TlsListener::new(listener, tls)?;
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<PeerAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
