// `warden serve` as an MCP gateway: the official TypeScript SDK client over streamable HTTP at
// /mcp, with server-everything (stdio) supervised by Warden as the upstream.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, appendFileSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const here = dirname(fileURLToPath(import.meta.url));
const warden = process.env.WARDEN_BIN;
const everything = join(here, "node_modules/.bin/mcp-server-everything");
let dir, server, base, key;

before(async () => {
  assert.ok(warden, "WARDEN_BIN must point at the warden binary");
  dir = join(mkdtempSync(join(tmpdir(), "warden-http-")), "proj");
  execFileSync(warden, ["init", dir], { stdio: "ignore" });
  key = "mcp-http-test-key-0123456789abcdef";
  const hash = execFileSync("sha256sum", { input: key }).toString().split(" ")[0];
  appendFileSync(join(dir, "warden.toml"),
    `\n[upstreams.everything]\ncommand = ["${everything}", "stdio"]\n` +
    `[upstreams.everything.env]\nUPSTREAM_TOKEN = { from_env = "WARDEN_TEST_UPSTREAM_TOKEN" }\nMODE = "test"\n`);
  // The agent's key goes under [agent_keys], which init wrote last.
  const toml = readFileSync(join(dir, "warden.toml"), "utf8").replace("[agent_keys]\n", `[agent_keys]\nhttp-tester = "sha256:${hash}"\n`);
  writeFileSync(join(dir, "warden.toml"), toml);
  writeFileSync(join(dir, "agents/http-tester.toml"), `
purpose = "Exercises the /mcp endpoint against the reference server."
environment = "prod"
[owners]
product = "p@example.com"
security = "s@example.com"
on_call = "o@example.com"
[[tools]]
server = "everything"
name = "echo"
access = "read"
impact = "low"
approval = "auto"
[tools.args.message]
type = "string"
required = true
max_length = 20
[[tools]]
server = "everything"
name = "get-env"
access = "read"
impact = "low"
approval = "auto"
`);
  server = spawn(warden, ["serve", "-p", dir, "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "ignore"],
    env: { ...process.env, WARDEN_TEST_UPSTREAM_TOKEN: "upstream-secret-42", WARDEN_UNRELATED_SECRET: "must-not-leak" },
  });
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: server.stdout }).once("line", resolve);
    server.once("exit", (code) => reject(new Error(`warden serve exited with ${code} before listening`)));
  });
  base = first.replace("listening on ", "").trim();
});

after(() => {
  server?.kill("SIGKILL");
  if (dir) rmSync(dirname(dir), { recursive: true, force: true });
});

function connect(withKey = key) {
  const client = new Client({ name: "warden-http-e2e", version: "0" });
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${withKey}` } },
  });
  return client.connect(transport).then(() => client);
}

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

  const records = execFileSync(warden, ["audit", "search", "-p", dir, "--agent", "http-tester", "--json"])
    .toString().trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(records.filter((r) => r.event.kind === "decision").map((r) => r.event.decision.decision), ["allow", "deny", "deny", "allow"]);
  assert.equal(records.filter((r) => r.event.kind === "outcome").length, 2);
  assert.ok(records.filter((r) => r.event.kind === "decision").every((r) => r.event.source === "mcp-http"));
  assert.match(execFileSync(warden, ["audit", "verify", "-p", dir]).toString(), /^ok: /);
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
