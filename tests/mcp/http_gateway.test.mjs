// `warden serve` as an MCP gateway: the official TypeScript SDK client over streamable HTTP at
// /mcp, with server-everything (stdio) supervised by Warden as the upstream.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { newProject, removeProject, appendConfig, addAgent, grant, startGateway, connectHttp, records as ledgerRecords, verify, everything } from "./helpers.mjs";

const key = "mcp-http-test-key-0123456789abcdef";
let dir, server, base;

before(async () => {
  dir = newProject("http");
  appendConfig(dir,
    `[upstreams.everything]\ncommand = ["${everything}", "stdio"]\n` +
    `[upstreams.everything.env]\nUPSTREAM_TOKEN = { from_env = "WARDEN_TEST_UPSTREAM_TOKEN" }\nMODE = "test"`);
  addAgent(dir, "http-tester",
    grant("everything", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\nmax_length = 20\n` }) +
    grant("everything", "get-env"),
    key);
  ({ server, base } = await startGateway(dir, {
    WARDEN_TEST_UPSTREAM_TOKEN: "upstream-secret-42", WARDEN_UNRELATED_SECRET: "must-not-leak",
  }));
});

after(() => {
  server?.kill("SIGKILL");
  removeProject(dir);
});

const connect = (withKey = key) => connectHttp(base, withKey);

test("agents list and call tools through /mcp, gated and recorded", async () => {
  const client = await connect();
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(names, ["echo", "get-env"]);
  const echo = await client.callTool({ name: "echo", arguments: { message: "hi" } });
  assert.deepEqual(echo.content, [{ type: "text", text: "Echo: hi" }]);
  const long = await client.callTool({ name: "echo", arguments: { message: "x".repeat(40) } });
  assert.equal(long.isError, true);
  assert.match(long.content[0].text, /longer than the 20 allowed/);
  const other = await client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } });
  assert.equal(other.isError, true);
  assert.match(other.content[0].text, /not on the scope card/);

  // Credentials: the upstream gets what warden.toml gives it, and nothing else of Warden's
  // environment; the agent's own key never reaches it.
  const env = await client.callTool({ name: "get-env", arguments: {} });
  const text = env.content[0].text;
  assert.match(text, /upstream-secret-42/);
  assert.match(text, /"MODE": ?"test"/);
  assert.doesNotMatch(text, /must-not-leak/);
  assert.doesNotMatch(text, new RegExp(key));
  await client.close();

  const records = ledgerRecords(dir, "http-tester");
  assert.deepEqual(records.filter((r) => r.event.kind === "decision").map((r) => r.event.decision.decision), ["allow", "deny", "deny", "allow"]);
  assert.equal(records.filter((r) => r.event.kind === "outcome").length, 2);
  assert.ok(records.filter((r) => r.event.kind === "decision").every((r) => r.event.source === "mcp-http"));
  assert.match(verify(dir), /^ok: /);
});

test("requests without a valid key or session are refused", async () => {
  await assert.rejects(connect("not-a-key"));
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${key}`, "mcp-session-id": "nope" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  assert.equal(res.status, 404);
  const bad = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: "{not json",
  });
  assert.equal(bad.status, 400);
});
