//! The Model Context Protocol side of Warden.
//!
//! - [`gate`]: deciding, recording and pinning, shared by both transports;
//! - [`stdio`]: `warden mcp stdio`, a gate between a desktop MCP client and one stdio server;
//! - [`upstream`]: stdio servers spawned and supervised by `warden serve`;
//! - [`http_upstream`]: streamable-HTTP servers Warden connects to;
//! - [`http`]: the `/mcp` streamable-HTTP endpoint for agents;
//! - `backoff`: the delays between attempts to reach an upstream, for both kinds.

mod backoff;
pub mod gate;
pub mod http;
pub mod http_upstream;
pub mod stdio;
pub mod upstream;
