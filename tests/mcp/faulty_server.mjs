// An MCP server that misbehaves on request, for the fault tests: `hang` never answers,
// `garbage` writes lines that are not JSON-RPC (and a malformed answer) instead of its result,
// `huge` answers with BYTES bytes of text, `echo` works normally.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "faulty", version: "1.0.0" });
server.registerTool(
  "echo",
  { description: "Echoes the message back.", inputSchema: { message: z.string() } },
  async ({ message }) => ({ content: [{ type: "text", text: `echo: ${message}` }] }),
);
server.registerTool(
  "hang",
  { description: "Never answers.", inputSchema: {} },
  async () => new Promise(() => {}),
);
server.registerTool(
  "garbage",
  { description: "Writes garbage instead of an answer.", inputSchema: {} },
  async (_args, extra) => {
    process.stdout.write("this is not JSON\n{\"jsonrpc\": \"2.0\", \"id\": \n\u0000\u00ff binary\n");
    process.stdout.write(`${JSON.stringify({ jsonrpc: "2.0", id: extra.requestId, result: { content: "not a list", isError: 7 } })}\n`);
    return new Promise(() => {});
  },
);
server.registerTool(
  "huge",
  { description: "Answers with `bytes` bytes of text.", inputSchema: { bytes: z.number() } },
  async ({ bytes }) => ({ content: [{ type: "text", text: "x".repeat(bytes) }] }),
);
await server.connect(new StdioServerTransport());
