// `warden mcp stdio` between the official TypeScript SDK client and the official
// server-everything reference server. Run by scripts/test.sh with WARDEN_BIN set.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, appendFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const here = dirname(fileURLToPath(import.meta.url));
const warden = process.env.WARDEN_BIN;
const everything = join(here, "node_modules/.bin/mcp-server-everything");
let dir;

function connect(cmd, args) {
  const client = new Client({ name: "warden-e2e", version: "0" });
  const transport = new StdioClientTransport({ command: cmd, args, stderr: "ignore" });
  return client.connect(transport).then(() => client);
}

before(() => {
  assert.ok(warden, "WARDEN_BIN must point at the warden binary");
  dir = join(mkdtempSync(join(tmpdir(), "warden-mcp-")), "proj");
  execFileSync(warden, ["init", dir], { stdio: "ignore" });
  appendFileSync(join(dir, "warden.toml"), `\n[upstreams.everything]\ncommand = ["${everything}", "stdio"]\n[upstreams.everything.env]\nMODE = "from-config"\n`);
  writeFileSync(join(dir, "agents/mcp-tester.toml"), `
purpose = "Exercises the MCP gate against the reference server."
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

[[tools]]
server = "everything"
name = "get-sum"
access = "write"
impact = "high"
approval = "approve"
[tools.args.a]
type = "number"
[tools.args.b]
type = "number"
`);
});

after(() => {
  if (dir) rmSync(dirname(dir), { recursive: true, force: true });
});

test("the gate lists only granted tools and gates every call", async () => {
  const direct = await connect(everything, ["stdio"]);
  const directEcho = await direct.callTool({ name: "echo", arguments: { message: "hi" } });
  const allDirect = (await direct.listTools()).tools.map((t) => t.name);
  await direct.close();

  const client = await connect(warden, ["mcp", "stdio", "-p", dir, "--agent", "mcp-tester", "--server", "everything"]);
  const tools = (await client.listTools()).tools;
  assert.deepEqual(tools.map((t) => t.name).sort(), ["echo", "get-env", "get-sum"]);
  assert.ok(allDirect.length > 3, "the upstream has more tools than the card grants");
  const echoDef = tools.find((t) => t.name === "echo");
  assert.equal(echoDef.description.length > 0, true, "descriptions pass through as the upstream gave them");

  // Allowed: the upstream's result, unchanged.
  const echo = await client.callTool({ name: "echo", arguments: { message: "hi" } });
  assert.deepEqual(echo, directEcho);

  // An argument outside its constraint: refused with the reason, as a tool result.
  const long = await client.callTool({ name: "echo", arguments: { message: "x".repeat(50) } });
  assert.equal(long.isError, true);
  assert.match(long.content[0].text, /longer than the 20 allowed/);

  // Not on the card: neither listed nor callable.
  const other = await client.callTool({ name: "get-tiny-image", arguments: {} });
  assert.equal(other.isError, true);
  assert.match(other.content[0].text, /not on the scope card/);

  // The server gets the environment warden.toml gives it.
  const env = await client.callTool({ name: "get-env", arguments: {} });
  assert.match(env.content[0].text, /"MODE": ?"from-config"/);

  // A high-impact tool at tier approve is held, not run.
  const sum = await client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } });
  assert.equal(sum.isError, true);
  assert.match(sum.content[0].text, /holding this call .* for approval \(tier approve\)/);
  await client.close();

  // Every case is in the ledger, and the chain verifies.
  const verify = execFileSync(warden, ["audit", "verify", "-p", dir]).toString();
  assert.match(verify, /^ok: \d+ records verified/);
  const records = execFileSync(warden, ["audit", "search", "-p", dir, "--agent", "mcp-tester", "--json"])
    .toString().trim().split("\n").map((l) => JSON.parse(l));
  const decisions = records.filter((r) => r.event.kind === "decision").map((r) => r.event.decision.decision);
  assert.deepEqual(decisions, ["allow", "deny", "deny", "allow", "approval_required"]);
  assert.equal(records.filter((r) => r.event.kind === "outcome").length, 2);
  assert.ok(records.every((r) => r.event.kind !== "decision" || r.event.mcp_request_id !== undefined));
  // Every tool the upstream announced was pinned on first sight.
  const pinned = execFileSync(warden, ["audit", "search", "-p", dir, "--json"]).toString()
    .trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.event.kind === "tool_pinned");
  assert.deepEqual(pinned.map((r) => r.event.tool).sort(), [...allDirect].sort());
});
