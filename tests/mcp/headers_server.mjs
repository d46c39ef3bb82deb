// A streamable-HTTP MCP server (official SDK, stateless mode) whose `whoami` tool answers with
// the HTTP headers its request arrived with, to check which credentials reach an upstream.
// Prints "listening on PORT" on stderr once it accepts connections.
import { createServer } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

function build() {
  const server = new McpServer({ name: "headers", version: "1.0.0" });
  server.registerTool(
    "whoami",
    { description: "Returns the HTTP request headers this server received.", inputSchema: {} },
    async (_args, extra) => ({
      content: [{ type: "text", text: JSON.stringify(extra.requestInfo?.headers ?? {}) }],
    }),
  );
  return server;
}

const http = createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
  const server = build();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on("close", () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res, body);
});
http.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  process.stderr.write(`listening on ${http.address().port}\n`);
});
