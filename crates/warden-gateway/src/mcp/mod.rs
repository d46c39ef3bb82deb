//! The Model Context Protocol side of Warden.
//!
//! - [`stdio`]: `warden mcp stdio`, a gate between a desktop MCP client and one stdio server.

pub mod gate;
pub mod stdio;
