//! The Model Context Protocol side of Warden. Deciding and recording are the pipeline's
//! (`crate::pipeline`); these files translate MCP to and from it.
//!
//! - [`jsonrpc`]: JSON-RPC messages and the `_meta` fields Warden reads, for both transports;
//! - [`pins`]: announced tool definitions checked against their pins (rug pulls);
//! - [`stdio_gate`]: the message-by-message gate of `warden mcp stdio`;
//! - [`stdio`]: its process I/O between a desktop MCP client and one stdio server;
//! - [`client`]: Warden as an MCP client of its upstreams (protocol version, errors, paging);
//! - [`upstream`]: stdio servers spawned and supervised by `warden serve`;
//! - [`http_upstream`]: streamable-HTTP servers Warden connects to;
//! - [`http`]: the `/mcp` streamable-HTTP endpoint for agents: sessions, dispatch; its calls
//!   (`http_calls.rs`), what an agent may list (`listing.rs`), its shared state ([`hub`]);
//! - `backoff`: the delays between attempts to reach an upstream, for both kinds.

mod backoff;
pub mod client;
pub mod http;
mod http_calls;
pub mod http_upstream;
pub mod hub;
pub mod jsonrpc;
mod listing;
pub(crate) mod pins;
pub mod stdio;
pub mod stdio_gate;
pub mod upstream;
