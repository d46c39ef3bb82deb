// An upstream that dies in the middle of a call: the caller gets a clear error, the gateway
// keeps serving, and the supervised upstream comes back.
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
const key = "crash-test-key-0123456789abcdef";
let dir, server, base;

before(async () => {
  dir = join(mkdtempSync(join(tmpdir(), "warden-crash-")), "proj");
  execFileSync(warden, ["init", dir], { stdio: "ignore" });
  const hash = execFileSync("sha256sum", { input: key }).toString().split(" ")[0];
  appendFileSync(join(dir, "warden.toml"), `\n[upstreams.fragile]\ncommand = ["${process.execPath}", "${join(here, "changing_server.mjs")}"]\n`);
  writeFileSync(join(dir, "warden.toml"), readFileSync(join(dir, "warden.toml"), "utf8")
    .replace("[agent_keys]\n", `[agent_keys]\ncrasher = "sha256:${hash}"\n`)
    .replace("max_concurrent_calls_per_session = 16", "max_concurrent_calls_per_session = 1"));
  writeFileSync(join(dir, "agents/crasher.toml"), `purpose = "failure tests"\nenvironment = "prod"\n[owners]\nproduct = "p"\nsecurity = "s"\non_call = "o"\n` +
    `[[tools]]\nserver = "fragile"\nname = "crash"\naccess = "write"\nimpact = "low"\napproval = "auto"\n` +
    `[[tools]]\nserver = "fragile"\nname = "echo"\naccess = "read"\nimpact = "low"\napproval = "auto"\n[tools.args.message]\ntype = "string"\nrequired = true\n` +
    `[[tools]]\nserver = "fragile"\nname = "sleep"\naccess = "read"\nimpact = "low"\napproval = "auto"\n[tools.args.ms]\ntype = "integer"\nrequired = true\nmax = 5000\n`);
  server = spawn(warden, ["serve", "-p", dir, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "ignore"] });
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

test("an upstream crash mid-call is a clear error and the upstream comes back", async () => {
  const client = new Client({ name: "crash-e2e", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  const crashed = await client.callTool({ name: "crash", arguments: {} });
  assert.equal(crashed.isError, true);
  assert.match(crashed.content[0].text, /exited while the call was in flight|is not running/);

  // The gateway keeps serving; the supervisor restarts the upstream with back-off.
  let echo;
  for (let i = 0; i < 50; i++) {
    echo = await client.callTool({ name: "echo", arguments: { message: "back" } });
    if (!echo.isError) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(echo.content, [{ type: "text", text: "echo: back" }]);
  await client.close();

  const outcomes = execFileSync(warden, ["audit", "search", "-p", dir, "--agent", "crasher", "--json"]).toString()
    .trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.event.kind === "outcome");
  assert.equal(outcomes[0].event.status, "error", "the failed call's outcome is recorded as an error");
  assert.match(execFileSync(warden, ["audit", "verify", "-p", dir]).toString(), /^ok: /);
});

test("a session over its concurrent-call limit gets a clear error", async () => {
  const client = new Client({ name: "limit-e2e", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  const slow = client.callTool({ name: "sleep", arguments: { ms: 800 } });
  await new Promise((r) => setTimeout(r, 200));
  await assert.rejects(client.callTool({ name: "echo", arguments: { message: "too many" } }), /calls in flight/);
  assert.deepEqual((await slow).content, [{ type: "text", text: "slept 800" }]);
  const after = await client.callTool({ name: "echo", arguments: { message: "free again" } });
  assert.equal(after.isError, undefined);
  await client.close();
});
