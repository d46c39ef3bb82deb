// An MCP server that writes down every execution: `count` appends its `message` as one line to
// the file COUNT_FILE before it answers. The crash and soak suites compare that file with the
// ledger: no call may run without its record.
import { appendFileSync } from "node:fs";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const file = process.env.COUNT_FILE;
if (!file) throw new Error("COUNT_FILE must name the file to count executions in");
const server = new McpServer({ name: "counting", version: "1.0.0" });
server.registerTool(
  "count",
  { description: "Counts one execution under the given message.", inputSchema: { message: z.string() } },
  async ({ message }) => {
    appendFileSync(file, `${message}\n`);
    return { content: [{ type: "text", text: `counted: ${message}` }] };
  },
);
await server.connect(new StdioServerTransport());
