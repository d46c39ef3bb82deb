// Agent tokens at /mcp with the official SDK client: a token narrowed to some tools, revocation
// on the next call, and an upstream credential from Warden's encrypted secret store reaching a
// real MCP server (server-everything's get-env).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { newProject, removeProject, appendConfig, addAgent, grant, startGateway, connectHttp, records as ledgerRecords, verify, everything, warden } from "./helpers.mjs";

const upstreamSecret = "sealed-upstream-credential-9d41c7";
let dir, server, base;

const cli = (args, input) => execFileSync(warden, [...args, "-p", dir], { input, env: { ...process.env, WARDEN_LOG: "warn" } }).toString();
const issue = (extra = []) => cli(["token", "issue", "--agent", "token-tester", "--ttl", "15m", "--quiet", ...extra]).trim();

before(async () => {
  dir = newProject("tokens");
  appendConfig(dir,
    `[upstreams.everything]\ncommand = ["${everything}", "stdio"]\n` +
    `[upstreams.everything.env]\nUPSTREAM_TOKEN = { secret = "EVERYTHING_TOKEN" }`);
  addAgent(dir, "token-tester", grant("everything", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\n` }) + grant("everything", "get-env"));
  cli(["secret", "set", "EVERYTHING_TOKEN"], upstreamSecret);
  ({ server, base } = await startGateway(dir));
});

after(() => {
  server?.kill("SIGKILL");
  removeProject(dir);
});

test("a token narrowed to echo lists and calls echo only", async () => {
  const token = issue(["--tools", "echo"]);
  assert.match(token, /^wdn_at_[0-9a-f]{16}_[0-9a-f]{64}$/);
  const client = await connectHttp(base, token);
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(names, ["echo"]);
  const echo = await client.callTool({ name: "echo", arguments: { message: "hi" } });
  assert.deepEqual(echo.content, [{ type: "text", text: "Echo: hi" }]);
  const env = await client.callTool({ name: "get-env", arguments: {} });
  assert.equal(env.isError, true);
  assert.match(env.content[0].text, /limited to everything\/echo/);
  await client.close();
  const decisions = ledgerRecords(dir, "token-tester").filter((r) => r.event.kind === "decision");
  assert.deepEqual(decisions.slice(-2).map((r) => r.event.decision.policies[0]), ["card/token-tester/everything/echo", "warden/token-scope"]);
});

test("the upstream gets its credential from the encrypted secret store", async () => {
  const client = await connectHttp(base, issue());
  const env = await client.callTool({ name: "get-env", arguments: {} });
  assert.match(env.content[0].text, new RegExp(upstreamSecret));
  await client.close();
  // Listing secrets shows names only. (get-env's own output is recorded as the tool's
  // outcome; redacting tool outputs is the redaction engine's job, not the secret store's.)
  const listed = execFileSync(warden, ["secret", "list", "-p", dir]).toString();
  assert.match(listed, /EVERYTHING_TOKEN/);
  assert.doesNotMatch(listed, new RegExp(upstreamSecret));
  assert.match(verify(dir), /^ok: /);
});

test("a revoked token is refused on its next call", async () => {
  const token = issue();
  const client = await connectHttp(base, token);
  const first = await client.callTool({ name: "echo", arguments: { message: "before" } });
  assert.deepEqual(first.content, [{ type: "text", text: "Echo: before" }]);
  const id = token.split("_")[2];
  cli(["token", "revoke", id]);
  await assert.rejects(client.callTool({ name: "echo", arguments: { message: "after" } }), /unauthenticated/);
  await client.close().catch(() => {});
});
