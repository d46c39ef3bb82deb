// Run by tls.test.mjs in a child process, so that NODE_EXTRA_CA_CERTS (read only when Node
// starts) makes the gateway's test certificate trusted. Connects the official SDK client to
// the gateway over https, lists and calls a tool, and prints the results as one JSON line.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [base, key, message] = process.argv.slice(2);
const client = new Client({ name: "warden-tls-e2e", version: "0" });
await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
}));
const tools = (await client.listTools()).tools.map((t) => t.name).sort();
const echo = await client.callTool({
  name: "echo",
  arguments: { message },
  _meta: { traceparent: "00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01" },
});
const health = await (await fetch(`${base}/healthz`)).json();
await client.close();
process.stdout.write(`${JSON.stringify({ tools, echo, health })}\n`);
