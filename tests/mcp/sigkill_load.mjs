#!/usr/bin/env node
// The crash suite: `warden serve` under concurrent load (decision API and /mcp tools/call to
// a counting upstream) is SIGKILLed at a random moment, again and again, on one ledger. After
// each kill: `warden audit verify` passes, every acknowledged call has its record (decisions
// at the sequence number they were given), and every execution the upstream counted has an
// allowing decision recorded before it. Prints the totals; exits non-zero on any loss.
import { parseArgs } from "node:util";
import { once } from "node:events";
import { pathToFileURL } from "node:url";
import { startGateway, removeProject, verify, warden } from "./helpers.mjs";
import { countingProject, executions, ledger, decisionWorker, mcpWorker } from "./load.mjs";

const usage = `usage: WARDEN_BIN=path/to/warden node tests/mcp/sigkill_load.mjs [options]

  --iterations N   kill/restart cycles at most (default 5)
  --seconds S      stop starting new cycles after S seconds (default 60)
  --workers N      decision-API workers (default 4); as many /mcp workers, halved (at least 1)
  --max-ms MS      the kill comes 100..MS ms after the gateway listens (default 1500)
  --keep           keep the project directory and print its path
  -h, --help       this text`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function sigkillSuite({ iterations = 5, seconds = 60, workers = 4, maxMs = 1500, keep = false, log = console.log } = {}) {
  const { dir, countFile } = countingProject("sigkill");
  const totals = { iterations: 0, decisions: 0, mcp: 0, executed: 0, lost: 0, unrecorded: 0 };
  const ackedDecisions = [], ackedMcp = [];
  const started = Date.now();
  try {
    while (totals.iterations < iterations && Date.now() - started < seconds * 1000) {
      const n = totals.iterations++;
      const { server, base } = await startGateway(dir);
      const exited = once(server, "exit");
      const stop = { now: false };
      const running = [];
      for (let w = 0; w < workers; w++) running.push(decisionWorker(base, `i${n}-d${w}`, stop, ackedDecisions));
      for (let w = 0; w < Math.max(1, workers >> 1); w++) running.push(mcpWorker(base, `i${n}-m${w}`, stop, ackedMcp));
      await sleep(100 + Math.random() * (maxMs - 100));
      server.kill("SIGKILL");
      await exited;
      stop.now = true;
      await Promise.all(running);

      if (!/^ok: /.test(verify(dir))) throw new Error(`audit verify failed after kill ${n}`);
      // A call the upstream received just before the kill may finish after it.
      await sleep(50);
      const { byId, decided, outcomes } = ledger(dir);
      const lostDecisions = ackedDecisions.filter((a) => byId.get(a.id) !== a.seq);
      const lostMcp = ackedMcp.filter((m) => decided.get(m) !== "allow" || !outcomes.has(m));
      const ran = executions(countFile);
      const unrecorded = ran.filter((m) => decided.get(m) !== "allow");
      Object.assign(totals, { decisions: ackedDecisions.length, mcp: ackedMcp.length, executed: ran.length,
        lost: lostDecisions.length + lostMcp.length, unrecorded: unrecorded.length });
      log(`kill ${n + 1}: acknowledged ${totals.decisions} decisions + ${totals.mcp} /mcp calls, ` +
        `${totals.executed} executions, ${byId.size} decisions stored; lost ${totals.lost}, executed unrecorded ${totals.unrecorded}`);
      if (totals.lost || totals.unrecorded) {
        log("lost:", JSON.stringify([...lostDecisions.slice(0, 5), ...lostMcp.slice(0, 5)]), "unrecorded:", JSON.stringify(unrecorded.slice(0, 5)));
        break;
      }
    }
  } finally {
    if (keep) log(`project kept at ${dir}`);
    else removeProject(dir);
  }
  return totals;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: {
    iterations: { type: "string", default: "5" }, seconds: { type: "string", default: "60" },
    workers: { type: "string", default: "4" }, "max-ms": { type: "string", default: "1500" },
    keep: { type: "boolean", default: false }, help: { type: "boolean", short: "h", default: false },
  } });
  if (values.help) { console.log(usage); process.exit(0); }
  if (!warden) { console.error(usage); process.exit(2); }
  const t = await sigkillSuite({ iterations: Number(values.iterations), seconds: Number(values.seconds),
    workers: Number(values.workers), maxMs: Number(values["max-ms"]), keep: values.keep });
  console.log(`totals: ${t.iterations} SIGKILLs, ${t.decisions + t.mcp} acknowledged (${t.decisions} decisions, ${t.mcp} /mcp calls), ` +
    `${t.executed} executions, lost ${t.lost}, executed without a record ${t.unrecorded}`);
  process.exit(t.lost || t.unrecorded || t.decisions + t.mcp === 0 ? 1 : 0);
}
