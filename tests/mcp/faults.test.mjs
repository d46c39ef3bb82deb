// Upstream faults through /mcp: an upstream that hangs, writes garbage, or answers with a huge
// output. Each call is bounded (the upstream timeout, the output cut in the record), answered
// with a clear error or result, and recorded; the gateway and the upstream keep serving.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { newProject, removeProject, appendConfig, editConfig, addAgent, grant, startGateway, connectHttp, records, verify, here, warden } from "./helpers.mjs";

const key = "faults-test-key-0123456789abcdef";
let dir, server, base;

before(async () => {
  dir = newProject("faults");
  appendConfig(dir, `[upstreams.faulty]\ncommand = ["${process.execPath}", "${join(here, "faulty_server.mjs")}"]`);
  editConfig(dir, "upstream_timeout_secs = 30", "upstream_timeout_secs = 2");
  editConfig(dir, "max_output_bytes = 65536", "max_output_bytes = 1000");
  addAgent(dir, "faults",
    grant("faulty", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\n` }) +
    grant("faulty", "hang") + grant("faulty", "garbage") +
    grant("faulty", "huge", { args: `[tools.args.bytes]\ntype = "integer"\nrequired = true\n` }),
    key);
  ({ server, base } = await startGateway(dir));
});

after(() => {
  server?.kill("SIGKILL");
  removeProject(dir);
});

/// The outcome record of the last call to `tool`.
function lastOutcome(tool) {
  return records(dir, "faults").filter((r) => r.event.kind === "outcome" && r.event.tool === tool).at(-1)?.event;
}

async function echoStillWorks(client) {
  let r;
  for (let i = 0; i < 50; i++) {
    r = await client.callTool({ name: "echo", arguments: { message: "still here" } });
    if (!r.isError) break;
    await new Promise((s) => setTimeout(s, 100));
  }
  assert.deepEqual(r.content, [{ type: "text", text: "echo: still here" }]);
}

test("an upstream that hangs: the call fails after the upstream timeout and is recorded as an error", async () => {
  const client = await connectHttp(base, key);
  const started = Date.now();
  const r = await client.callTool({ name: "hang", arguments: {} });
  const took = Date.now() - started;
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /did not answer within 2 s/);
  assert.ok(took < 10_000, `bounded by the 2 s upstream timeout (took ${took} ms)`);
  assert.equal(lastOutcome("hang").status, "error");
  await echoStillWorks(client);
  await client.close();
});

test("an upstream that writes garbage: a malformed answer is an error, recorded as one, and the upstream keeps serving", async () => {
  const client = await connectHttp(base, key);
  const r = await client.callTool({ name: "garbage", arguments: {} });
  assert.equal(r.isError, true, `a malformed answer is not passed off as a result: ${JSON.stringify(r)}`);
  assert.match(r.content[0].text, /upstream `faulty` sent an answer that is not a tool result: its result has no `content` list/);
  assert.equal(lastOutcome("garbage").status, "error", "recorded as a failure, not a success");
  await echoStillWorks(client);
  await client.close();
  assert.match(verify(dir), /^ok: /);
});

test("an upstream that answers 5 MB: the agent gets it, the record keeps 1,000 bytes and says it was cut", async () => {
  const client = await connectHttp(base, key);
  const r = await client.callTool({ name: "huge", arguments: { bytes: 5_000_000 } });
  assert.equal(r.isError, undefined);
  assert.equal(r.content[0].text.length, 5_000_000);
  const outcome = lastOutcome("huge");
  assert.equal(outcome.status, "success");
  assert.equal(outcome.output_truncated, true);
  assert.ok(outcome.output_bytes > 5_000_000, JSON.stringify(outcome.output_bytes));
  assert.ok(JSON.stringify(outcome).length < 5_000, "the record itself stays small");
  await client.close();
  assert.match(verify(dir), /^ok: /);
});

test("an upstream that answers over 8 MiB is stopped before more is read: a clear error, recorded, and it comes back", async () => {
  const client = await connectHttp(base, key);
  await assert.rejects(client.callTool({ name: "huge", arguments: { bytes: 64 * 1024 * 1024 } }),
    /MCP error -32603: upstream `faulty` sent a message over Warden's limit of 8388608 bytes; it is being restarted/,
    "the oversized answer is not passed on");
  const outcome = lastOutcome("huge");
  assert.equal(outcome.status, "error");
  assert.ok(JSON.stringify(outcome).length < 5_000, "the record stays small");
  await echoStillWorks(client);
  await client.close();
  assert.match(verify(dir), /^ok: /);
});

test("warden mcp stdio holds at most 8 MiB of an upstream message: a 100 MB one is dropped unread", async () => {
  const client = new Client({ name: "warden-e2e", version: "0" });
  const transport = new StdioClientTransport({ command: warden, stderr: "ignore",
    args: ["mcp", "stdio", "-p", dir, "--agent", "faults", "--server", "faulty"] });
  await client.connect(transport);
  const peak = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${transport.pid}/status`, "utf8"))[1]);
  await client.callTool({ name: "echo", arguments: { message: "warm" } });
  const before = peak();
  // The oversized answer is dropped (the gate cannot tell whose it was), so the call times out.
  await assert.rejects(client.callTool({ name: "huge", arguments: { bytes: 100_000_000 } }, undefined, { timeout: 8000 }), /timed out/);
  const grew = Math.round((peak() - before) / 1024);
  assert.ok(grew < 40, `peak resident grew ${grew} MiB from ${Math.round(before / 1024)} MiB: the 100 MB message must not be held`);
  const echo = await client.callTool({ name: "echo", arguments: { message: "after" } });
  assert.deepEqual(echo.content, [{ type: "text", text: "echo: after" }]);
  await client.close();
});

test("warden mcp stdio: a malformed tool answer is an error to the agent and recorded as one", async () => {
  // Before: relayed to the agent as the tool's result and recorded as a success (the /mcp path
  // was fixed first).
  const client = new Client({ name: "warden-e2e", version: "0" });
  await client.connect(new StdioClientTransport({ command: warden, stderr: "ignore",
    args: ["mcp", "stdio", "-p", dir, "--agent", "faults", "--server", "faulty"] }));
  const r = await client.callTool({ name: "garbage", arguments: {} });
  assert.equal(r.isError, true, JSON.stringify(r));
  assert.match(r.content[0].text, /upstream `faulty` sent an answer that is not a tool result/);
  const echo = await client.callTool({ name: "echo", arguments: { message: "after" } });
  assert.deepEqual(echo.content, [{ type: "text", text: "echo: after" }]);
  await client.close();
  assert.equal(lastOutcome("garbage").status, "error", "recorded as a failure, not a success");
  assert.match(verify(dir), /^ok: /);
});

test("warden mcp stdio holds at most 8 MiB of a client message: a 100 MB one is refused unread and the session goes on", async () => {
  // Before: the client side was read a whole line at a time, so a 100 MB line was held in
  // memory before the size check.
  const { spawn } = await import("node:child_process");
  const child = spawn(warden, ["mcp", "stdio", "-p", dir, "--agent", "faults", "--server", "faulty"],
    { stdio: ["pipe", "pipe", "ignore"] });
  const replies = [];
  let pending = "";
  child.stdout.on("data", (d) => {
    pending += d;
    let at;
    while ((at = pending.indexOf("\n")) >= 0) {
      replies.push(JSON.parse(pending.slice(0, at)));
      pending = pending.slice(at + 1);
    }
  });
  const write = (s) => new Promise((ok) => (child.stdin.write(s) ? ok() : child.stdin.once("drain", ok)));
  const waitFor = async (pred) => {
    for (let i = 0; i < 200 && !replies.some(pred); i++) await new Promise((s) => setTimeout(s, 50));
    return replies.find(pred);
  };
  const peak = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))[1]);
  await write(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "raw", version: "0" } } }) + "\n");
  assert.ok(await waitFor((r) => r.id === 1), "initialize answered");
  const before = peak();
  const chunk = "x".repeat(1 << 20);
  await write('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"');
  for (let i = 0; i < 100; i++) await write(chunk);
  await write('"}}}\n');
  const refused = await waitFor((r) => r.id === null && r.error);
  assert.equal(refused?.error?.code, -32600, JSON.stringify(refused));
  assert.match(refused.error.message, /over Warden's limit of 8388608/);
  const grew = Math.round((peak() - before) / 1024);
  assert.ok(grew < 40, `peak resident grew ${grew} MiB from ${Math.round(before / 1024)} MiB: the 100 MB message must not be held`);
  await write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");
  await write(JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "echo", arguments: { message: "after" } } }) + "\n");
  const after = await waitFor((r) => r.id === 3);
  assert.deepEqual(after?.result?.content, [{ type: "text", text: "echo: after" }], JSON.stringify(after));
  child.stdin.end();
  await new Promise((ok) => child.once("exit", ok));
});
