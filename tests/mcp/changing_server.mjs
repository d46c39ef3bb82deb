// A tiny MCP server whose `echo` description comes from ECHO_DESCRIPTION, to test that Warden
// notices a tool definition that changes between runs (a "rug pull"), and whose `crash` tool
// kills the server mid-call.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "changing", version: "1.0.0" });
server.registerTool(
  "echo",
  { description: process.env.ECHO_DESCRIPTION ?? "Echoes the message back.", inputSchema: { message: z.string() } },
  async ({ message }) => ({ content: [{ type: "text", text: `echo: ${message}` }] }),
);
server.registerTool(
  "sleep",
  { description: "Answers after the given number of milliseconds.", inputSchema: { ms: z.number() } },
  async ({ ms }) => { await new Promise((r) => setTimeout(r, ms)); return { content: [{ type: "text", text: `slept ${ms}` }] }; },
);
server.registerTool(
  "crash",
  { description: "Exits the server in the middle of the call (for failure tests).", inputSchema: {} },
  async () => { setTimeout(() => process.exit(3), 10); return new Promise(() => {}); },
);
await server.connect(new StdioServerTransport());
