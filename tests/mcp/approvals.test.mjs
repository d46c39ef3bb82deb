// Held calls over MCP with the official TypeScript SDK client: progress notifications while a
// refund waits for a person (`onprogress`), over /mcp (an SSE answer) and `warden mcp stdio`
// (notifications on stdout); the before-state read by Warden itself through the scope card's
// snapshot read on the same upstream (`billing`, tests/mcp/payments_server.mjs), or why it is
// unavailable; people vote with the CLI in another process; the call then completes or is
// refused with the reason.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { newProject, removeProject, appendConfig, addAgent, grant, startGateway, connectHttp, records as ledgerRecords, verify, warden, here } from "./helpers.mjs";

const key = "mcp-approvals-test-key-0123456789abcdef";
const marker = `payments-${randomBytes(6).toString("hex")}`;
let dir, server, base;
const approvers = [];

// ---- TOTP (RFC 6238: HMAC-SHA1, 30 s step, 6 digits) -------------------------------------

function base32Decode(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, "").toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const h = createHmac("sha1", secret).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}

function cli(...args) {
  return execFileSync(warden, [...args, "-p", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/// Vote with the CLI as the given approver (each test has its own, so no TOTP step is reused).
function vote(verdict, id, who, reason) {
  const args = ["approvals", verdict, id, "--by", who.name, "--totp", totp(who.secret)];
  if (reason) args.push("--reason", reason);
  return cli(...args);
}

function show(id) {
  return JSON.parse(cli("approvals", "show", id));
}

/// Start a refund and resolve with the approval id named by the first progress notification;
/// `result` is the call's final answer.
function heldRefund(client, args) {
  const progress = [];
  let first;
  const firstNote = new Promise((resolve) => { first = resolve; });
  const result = client.callTool({ name: "refund_order", arguments: args }, undefined, {
    onprogress: (p) => { progress.push(p); first(p); },
    resetTimeoutOnProgress: true,
  });
  return firstNote.then((p) => {
    const m = /waiting for approval (\S+);/.exec(p.message ?? "");
    assert.ok(m, `the progress message names the approval: ${JSON.stringify(p)}`);
    return { id: m[1], progress, result };
  });
}

before(async () => {
  dir = newProject("approvals");
  appendConfig(dir,
    `[upstreams.billing]\ncommand = ["node", "${join(here, "payments_server.mjs")}"]\n` +
    `[upstreams.billing.env]\nPAYMENTS_MARKER = "${marker}"\n` +
    // Held calls wait long enough for a person; a notification every second while they do.
    `[approvals]\nhold_secs = 300\nprogress_secs = 1`);
  addAgent(dir, "refunder",
    grant("billing", "get_order", { args: `[tools.args.order_id]\ntype = "string"\nrequired = true\npattern = "O-[0-9]+"\n` }) +
    grant("billing", "refund_order", {
      access: "write", impact: "high", approval: "approve",
      args: `snapshot = { tool = "get_order", args = { order_id = "$order_id" } }\n` +
        `[tools.args.order_id]\ntype = "string"\nrequired = true\n[tools.args.amount]\ntype = "number"\nrequired = true\nmax = 500\n`,
    }),
    key);
  for (const name of ["mcp-approver-1", "mcp-approver-2", "mcp-approver-3", "mcp-approver-4"]) {
    const enrolled = cli("user", "add", name, "--role", "approver");
    const secret = enrolled.match(/otpauth:\/\/totp\/[^\s]*[?&]secret=([A-Z2-7=]+)/)?.[1];
    assert.ok(secret, `could not read the TOTP secret:\n${enrolled}`);
    approvers.push({ name, secret: base32Decode(secret) });
  }
  ({ server, base } = await startGateway(dir));
});

after(() => {
  server?.kill("SIGKILL");
  removeProject(dir);
});

test("/mcp: a held refund streams progress, shows the snapshot before-state, and completes once approved", async () => {
  const client = await connectHttp(base, key);
  const { id, progress, result } = await heldRefund(client, { order_id: "O-1001", amount: 12.5 });

  // The before-state came from Warden's own read of get_order on the payments upstream.
  const d = show(id);
  assert.equal(d.state, "pending");
  assert.equal(d.before_state_source, "snapshot");
  assert.deepEqual(d.before_state, { order_id: "O-1001", status: "paid", amount_eur: 80, refunded_eur: 0, source: marker });
  assert.equal(d.before_state_error, null);
  assert.ok(d.before_state_diff.some((r) => r.field === "amount" && r.change === "new"), JSON.stringify(d.before_state_diff));

  assert.match(vote("approve", id, approvers[0]), /recorded: mcp-approver-1 voted to approve/);
  const r = await result;
  assert.notEqual(r.isError, true, JSON.stringify(r));
  assert.match(r.content[0].text, /refunded 12\.5 on O-1001/);
  assert.ok(progress.length >= 1);
  progress.forEach((p, i) => {
    assert.equal(p.progress, i + 1, "the progress counter goes up by one");
    assert.ok(p.message.includes(`waiting for approval ${id}`), p.message);
    assert.ok(p.message.includes(`/ui/approvals/${id}`), p.message);
  });
  await client.close();

  // proposal → snapshot read → signed vote → execution under the approval → outcome.
  const recs = ledgerRecords(dir, "refunder").map((x) => ({ seq: x.seq, ...x.event }));
  const proposal = recs.find((x) => x.kind === "decision" && x.decision_id === id);
  const read = recs.find((x) => x.kind === "snapshot_read" && x.approval_id === id);
  const voteRec = ledgerRecords(dir).map((x) => ({ seq: x.seq, ...x.event })).find((x) => x.kind === "approval_vote" && x.approval_id === id);
  const exec = recs.find((x) => x.kind === "decision" && x.approval_id === id);
  assert.ok(proposal && read && voteRec && exec, JSON.stringify(recs));
  assert.equal(proposal.decision.decision, "approval_required");
  assert.equal(read.tool, "billing/get_order");
  assert.deepEqual(read.arguments, { order_id: "O-1001" });
  assert.equal(read.status, "success");
  assert.equal(read.before_state.source, marker);
  assert.equal(exec.decision.decision, "allow");
  assert.equal(exec.source, "mcp-http");
  const outcome = recs.find((x) => x.kind === "outcome" && x.decision_id === exec.decision_id);
  assert.equal(outcome?.status, "success");
  assert.ok(proposal.seq < read.seq && read.seq < voteRec.seq && voteRec.seq < exec.seq && exec.seq < outcome.seq);
  assert.match(verify(dir), /ok: \d+ approval vote signatures verified with the ledger key/);
});

test("/mcp: a failed snapshot read still holds the call; a denial reaches the agent", async () => {
  const client = await connectHttp(base, key);
  const { id, result } = await heldRefund(client, { order_id: "O-404", amount: 5 });
  const d = show(id);
  assert.equal(d.state, "pending", "the call is held although its before-state could not be read");
  assert.equal(d.before_state, null);
  assert.match(d.before_state_error, /no order O-404/);
  vote("deny", id, approvers[1], "no such order in the ticket");
  const r = await result;
  assert.equal(r.isError, true);
  assert.match(r.content[0].text, /denied .*no such order in the ticket/);
  await client.close();
  const read = ledgerRecords(dir, "refunder").find((x) => x.event.kind === "snapshot_read" && x.event.approval_id === id);
  assert.equal(read?.event.status, "error");
});

test("warden mcp stdio: progress notifications on stdout, snapshot read through the child, approved call runs", async () => {
  const client = new Client({ name: "warden-e2e", version: "0" });
  await client.connect(new StdioClientTransport({
    command: warden, args: ["mcp", "stdio", "-p", dir, "--agent", "refunder", "--server", "billing"], stderr: "ignore",
  }));
  const { id, progress, result } = await heldRefund(client, { order_id: "O-1002", amount: 3 });
  const d = show(id);
  assert.equal(d.source, "mcp-stdio");
  assert.equal(d.before_state_source, "snapshot");
  assert.equal(d.before_state?.refunded_eur, 10);
  assert.equal(d.before_state?.source, marker, "read from the stdio gate's own child server");
  vote("approve", id, approvers[2]);
  const r = await result;
  assert.notEqual(r.isError, true, JSON.stringify(r));
  assert.match(r.content[0].text, /refunded 3 on O-1002; refunded so far 13/);
  assert.ok(progress.length >= 1 && progress.every((p) => p.message.includes(id)));
  await client.close();
  const exec = ledgerRecords(dir, "refunder").find((x) => x.event.kind === "decision" && x.event.approval_id === id);
  assert.equal(exec?.event.source, "mcp-stdio");
  assert.equal(exec?.event.decision.decision, "allow");
  assert.match(verify(dir), /ok: \d+ approval vote signatures verified/);
});

test("/mcp on the wire: a held call with a progressToken is answered with an SSE stream", async () => {
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${key}` };
  const init = await fetch(`${base}/mcp`, {
    method: "POST", headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } } }),
  });
  const session = init.headers.get("mcp-session-id");
  assert.ok(session);
  const res = await fetch(`${base}/mcp`, {
    method: "POST", headers: { ...headers, "mcp-session-id": session },
    body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "refund_order", arguments: { order_id: "O-1003", amount: 1 }, _meta: { progressToken: "tok-7" } } }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/event-stream/);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const events = [];
  /// The next SSE event's JSON-RPC message.
  async function next() {
    for (;;) {
      const end = buffered.indexOf("\n\n");
      if (end >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        const msg = JSON.parse(data);
        events.push(msg);
        return msg;
      }
      const { value, done } = await reader.read();
      assert.ok(!done, `the stream ended early after ${JSON.stringify(events)}`);
      buffered += decoder.decode(value, { stream: true });
    }
  }
  const first = await next();
  assert.equal(first.method, "notifications/progress");
  assert.equal(first.params.progressToken, "tok-7");
  assert.equal(first.params.progress, 1);
  const id = /waiting for approval (\S+);/.exec(first.params.message)[1];
  vote("deny", id, approvers[3], "refund not requested by the customer");
  let msg = await next();
  while (msg.method === "notifications/progress") msg = await next();
  assert.equal(msg.id, 7, "the stream ends with the answer to the request");
  assert.equal(msg.result.isError, true);
  assert.match(msg.result.content[0].text, /refund not requested by the customer/);
  const { done } = await reader.read();
  assert.ok(done, "and then closes");
});
