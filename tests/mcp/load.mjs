// Steady load on a running `warden serve`, shared by the crash suite (sigkill_load.mjs) and the
// soak (soak.mjs): decision-API workers and /mcp workers calling the counting upstream, each
// keeping what was acknowledged.
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { newProject, appendConfig, addAgent, grant, connectHttp, here, warden } from "./helpers.mjs";

export const key = "load-test-key-0123456789abcdef";
export const agent = "loader";

/// A project with the counting upstream and an agent (no rate limit) that may call it.
export function countingProject(prefix) {
  const dir = newProject(prefix);
  const countFile = join(dir, "..", "executions.txt");
  appendConfig(dir, `[upstreams.counter]\ncommand = ["${process.execPath}", "${join(here, "counting_server.mjs")}"]\n` +
    `[upstreams.counter.env]\nCOUNT_FILE = "${countFile}"`);
  addAgent(dir, agent, grant("counter", "count", { args: `[tools.args.message]\ntype = "string"\nrequired = true\n` }), key);
  return { dir, countFile };
}

/// The messages the counting upstream executed, in order.
export function executions(countFile) {
  return existsSync(countFile) ? readFileSync(countFile, "utf8").split("\n").filter(Boolean) : [];
}

/// Every record of the ledger, by kind: decisions by id, and decision/outcome by correlation.
export function ledger(dir) {
  const out = execFileSync(warden, ["audit", "tail", "-n", "1000000000", "--json", "-p", dir], { maxBuffer: 1 << 30 });
  const byId = new Map(), decided = new Map(), outcomes = new Set();
  for (const line of out.toString().split("\n").filter(Boolean)) {
    const r = JSON.parse(line);
    const e = r.event;
    if (e.kind === "decision") {
      byId.set(e.decision_id, r.seq);
      if (e.correlation_id) decided.set(e.correlation_id, e.decision.decision);
    } else if (e.kind === "outcome" && e.correlation_id) {
      outcomes.add(e.correlation_id);
    }
  }
  return { byId, decided, outcomes };
}

/// Propose `count` through the decision API until `stop.now` or an error (the gateway is gone).
/// Pushes `{ id, seq, correlation }` for each acknowledged decision.
export async function decisionWorker(base, tag, stop, acked) {
  for (let i = 0; !stop.now; i++) {
    const correlation = `${tag}-${i}`;
    let res, body;
    try {
      res = await fetch(`${base}/v1/decisions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify({ tool: "count", arguments: { message: correlation }, correlation_id: correlation }),
      });
      body = await res.json();
    } catch {
      return;
    }
    if (res.status !== 200) throw new Error(`decision API answered ${res.status}: ${JSON.stringify(body)}`);
    acked.push({ id: body.id, seq: body.ledger.seq, correlation });
  }
}

/// Call `count` through /mcp until `stop.now` or an error, on a new session every `perSession`
/// calls. Pushes each acknowledged message (the upstream's answer came back through the gateway).
export async function mcpWorker(base, tag, stop, acked, perSession = Infinity) {
  let client;
  for (let i = 0; !stop.now; i++) {
    if (i % perSession === 0 && client) {
      await client.close().catch(() => {});
      client = undefined;
    }
    try {
      client ??= await connectHttp(base, key);
    } catch {
      return;
    }
    const message = `${tag}-${i}`;
    let r;
    try {
      r = await client.callTool({ name: "count", arguments: { message }, _meta: { "warden/correlation_id": message } });
    } catch {
      break;
    }
    // The upstream may still be starting right after a restart: a clear error, not an ack.
    if (r.isError) {
      if (!/not running|not connected|not ready/.test(r.content?.[0]?.text ?? "")) throw new Error(`unexpected tool error: ${JSON.stringify(r)}`);
      await new Promise((s) => setTimeout(s, 20));
      continue;
    }
    if (r.content?.[0]?.text !== `counted: ${message}`) throw new Error(`unexpected result: ${JSON.stringify(r)}`);
    acked.push(message);
  }
  await client?.close().catch(() => {});
}
