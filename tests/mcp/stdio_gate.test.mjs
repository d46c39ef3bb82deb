// `warden mcp stdio` between the official TypeScript SDK client and the official
// server-everything reference server. Run by scripts/test.sh with WARDEN_BIN set.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { newProject, removeProject, appendConfig, addAgent, grant, records as ledgerRecords, verify as verifyLedger, warden, everything } from "./helpers.mjs";

let dir;

function connect(cmd, args) {
  const client = new Client({ name: "warden-e2e", version: "0" });
  const transport = new StdioClientTransport({ command: cmd, args, stderr: "ignore" });
  return client.connect(transport).then(() => client);
}

before(() => {
  dir = newProject("mcp");
  appendConfig(dir, `[upstreams.everything]\ncommand = ["${everything}", "stdio"]\n[upstreams.everything.env]\nMODE = "from-config"`);
  // Held calls wait one second for a vote, then answer "pending approval".
  appendConfig(dir, `[approvals]\nhold_secs = 1`);
  addAgent(dir, "mcp-tester",
    grant("everything", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\nmax_length = 20\n` }) +
    grant("everything", "get-env") +
    grant("everything", "get-sum", { access: "write", impact: "high", approval: "approve",
      args: `[tools.args.a]\ntype = "number"\n[tools.args.b]\ntype = "number"\n` }));
});

after(() => removeProject(dir));

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

  // A high-impact tool at tier approve is held, not run: with nobody voting within the
  // hold time, the answer is "pending approval <id>, retry later".
  const sum = await client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } });
  assert.equal(sum.isError, true);
  assert.match(sum.content[0].text, /pending approval \S+, retry later/);
  await client.close();

  // Every case is in the ledger, and the chain verifies.
  assert.match(verifyLedger(dir), /^ok: \d+ records verified/);
  const records = ledgerRecords(dir, "mcp-tester");
  const decisions = records.filter((r) => r.event.kind === "decision").map((r) => r.event.decision.decision);
  assert.deepEqual(decisions, ["allow", "deny", "deny", "allow", "approval_required"]);
  assert.equal(records.filter((r) => r.event.kind === "outcome").length, 2);
  assert.ok(records.every((r) => r.event.kind !== "decision" || r.event.mcp_request_id !== undefined));
  // Every tool the upstream announced was pinned on first sight.
  const pinned = ledgerRecords(dir).filter((r) => r.event.kind === "tool_pinned");
  assert.deepEqual(pinned.map((r) => r.event.tool).sort(), [...allDirect].sort());
});

test("the stdio gate sends an execute_tool span per call, without argument values", async () => {
  const { createServer } = await import("node:http");
  const bodies = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => {
      bodies.push({ path: req.url, body: JSON.parse(body) });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const traced = newProject("mcp-otel");
  try {
    appendConfig(traced, `[upstreams.everything]\ncommand = ["${everything}", "stdio"]`);
    appendConfig(traced, `[approvals]\nhold_secs = 1`);
    appendConfig(traced, `[telemetry]\notlp_endpoint = "http://127.0.0.1:${receiver.address().port}"`);
    addAgent(traced, "mcp-tester",
      grant("everything", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\nmax_length = 20\n` }) +
      grant("everything", "get-sum", { access: "write", impact: "high", approval: "approve",
        args: `[tools.args.a]\ntype = "number"\n[tools.args.b]\ntype = "number"\n` }));
    const client = await connect(warden, ["mcp", "stdio", "-p", traced, "--agent", "mcp-tester", "--server", "everything"]);
    const parent = "4bf92f3577b34da6a3ce929d0e0e4736";
    await client.callTool({ name: "echo", arguments: { message: "secret-hello" },
      _meta: { traceparent: `00-${parent}-00f067aa0ba902b7-01` } });
    await client.callTool({ name: "echo", arguments: { message: "x".repeat(50) } });
    await client.callTool({ name: "get-sum", arguments: { a: 1, b: 2 } });
    const spans = () => bodies.flatMap((b) => b.body.resourceSpans ?? [])
      .flatMap((rs) => rs.scopeSpans ?? []).flatMap((ss) => ss.spans ?? []);
    for (let i = 0; i < 100 && spans().length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    await client.close();

    const got = spans();
    assert.equal(got.length, 3, JSON.stringify(bodies));
    assert.ok(bodies.every((b) => b.path === "/v1/traces"));
    const attr = (s, k) => s.attributes.find((a) => a.key === k)?.value.stringValue;
    assert.ok(got.every((s) => s.name.startsWith("execute_tool ")));
    assert.ok(got.every((s) => attr(s, "warden.source") === "mcp-stdio"), JSON.stringify(got[0].attributes));
    const byDecision = Object.fromEntries(got.map((s) => [attr(s, "warden.decision"), s]));
    assert.equal(byDecision.allow.traceId, parent, "the client's traceparent is the parent");
    assert.equal(attr(byDecision.allow, "error.type"), undefined);
    assert.equal(attr(byDecision.deny, "error.type"), "denied");
    assert.equal(attr(byDecision.approval_required, "error.type"), "approval_required");
    // Each span names its ledger decision, and no argument value leaves Warden.
    const decisions = ledgerRecords(traced, "mcp-tester").filter((r) => r.event.kind === "decision");
    for (const s of got) {
      assert.ok(decisions.some((d) => d.event.decision_id === attr(s, "warden.decision_id")));
    }
    assert.ok(!JSON.stringify(bodies).includes("secret-hello"));
  } finally {
    receiver.close();
    removeProject(traced);
  }
});

test("stdio: resources/read and prompts/get sent without an id never reach the upstream undecided", async () => {
  // The upstream is server-everything behind `tee`, so the test sees every line Warden forwards.
  const teed = newProject("mcp-idless");
  const seen = join(dirname(teed), "upstream-received.jsonl");
  try {
    appendConfig(teed, `[upstreams.everything]\ncommand = ["sh", "-c", "tee -a '${seen}' | '${everything}' stdio"]`);
    addAgent(teed, "reader", grant("everything", "echo") +
      `[[resources]]\nserver = "everything"\nuri = "demo://resource/static/document/instructions.md"\n`);
    const gate = spawn(warden, ["mcp", "stdio", "-p", teed, "--agent", "reader", "--server", "everything"],
      { stdio: ["pipe", "pipe", "ignore"] });
    const lines = createInterface({ input: gate.stdout });
    const answers = new Map();
    const waiting = new Map();
    lines.on("line", (l) => {
      const msg = JSON.parse(l);
      if (msg.id === undefined) return;
      answers.set(msg.id, msg);
      waiting.get(msg.id)?.(msg);
    });
    const send = (msg) => gate.stdin.write(JSON.stringify(msg) + "\n");
    const answer = (id) => answers.has(id) ? Promise.resolve(answers.get(id)) : new Promise((r) => waiting.set(id, r));

    send({ jsonrpc: "2.0", id: 1, method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } } });
    await answer(1);
    send({ jsonrpc: "2.0", method: "notifications/initialized" });
    // Requests dressed as notifications: a granted read, one not granted, a prompt, a completion.
    send({ jsonrpc: "2.0", method: "resources/read", params: { uri: "demo://resource/static/document/instructions.md" } });
    send({ jsonrpc: "2.0", method: "resources/read", params: { uri: "demo://resource/static/document/features.md" } });
    send({ jsonrpc: "2.0", method: "prompts/get", params: { name: "simple-prompt" } });
    send({ jsonrpc: "2.0", method: "completion/complete", params: {} });
    // A ping behind them: once it is answered, everything before it has been handled.
    send({ jsonrpc: "2.0", id: 2, method: "ping" });
    await answer(2);
    // The same read with an id is decided, recorded and answered.
    send({ jsonrpc: "2.0", id: 3, method: "resources/read", params: { uri: "demo://resource/static/document/instructions.md" } });
    assert.ok((await answer(3)).result, "a granted read with an id is answered");
    gate.stdin.end();
    await new Promise((r) => gate.once("exit", r));

    const received = readFileSync(seen, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const methods = received.map((m) => `${m.method}${m.id === undefined ? "" : `#${m.id}`}`);
    assert.deepEqual(methods.filter((m) => /^(resources|prompts|completion)\//.test(m)), ["resources/read#3"],
      `only the read with an id reached the upstream: ${methods.join(", ")}`);
    assert.ok(methods.includes("notifications/initialized"), "real notifications still pass");
    const decisions = ledgerRecords(teed, "reader").filter((r) => r.event.kind === "decision");
    assert.equal(decisions.length, 1, "the one read that ran is the one recorded");
    assert.match(verifyLedger(teed), /^ok: /);
  } finally {
    removeProject(teed);
  }
});
