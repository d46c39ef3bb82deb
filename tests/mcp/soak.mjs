#!/usr/bin/env node
// The soak: steady load through one `warden serve` (decision API, and /mcp tools/call to the
// counting upstream on a new session every 100 calls) for a bounded time, sampling the
// gateway's resident memory (VmRSS) and open file descriptors every few seconds. Fails when,
// after the warm-up, either grows beyond its bound, or when an acknowledged call has no record.
import { parseArgs } from "node:util";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startGateway, removeProject, verify, warden } from "./helpers.mjs";
import { countingProject, executions, ledger, decisionWorker, mcpWorker } from "./load.mjs";

const usage = `usage: WARDEN_BIN=path/to/warden node tests/mcp/soak.mjs [options]

  --minutes M         how long to drive load (default 1)
  --every S           seconds between samples (default 5)
  --workers N         decision-API workers (default 2) and /mcp workers (default 1 per 2)
  --max-rss-mib MiB   bound on RSS growth after the warm-up (default 64)
  --max-fds N         bound on open-descriptor growth after the warm-up (default 16)
  -h, --help          this text

The warm-up is the first fifth of the run (at least one minute when the run is 3 minutes or
longer). Growth = mean of the last 3 samples minus mean of the first 3 samples after the
warm-up.`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mib = (kb) => Math.round(kb / 102.4) / 10;

function sample(pid, dir) {
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const size = (f) => { try { return statSync(join(dir, f)).size; } catch { return 0; } };
  return { rssKb, fds, dbBytes: size("warden.db") + size("warden.db-wal") };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function soak({ minutes = 1, every = 5, workers = 2, maxRssMib = 64, maxFds = 16, log = console.log } = {}) {
  const { dir, countFile } = countingProject("soak");
  const { server, base } = await startGateway(dir);
  const stop = { now: false };
  const ackedDecisions = [], ackedMcp = [];
  const running = [];
  for (let w = 0; w < workers; w++) running.push(decisionWorker(base, `d${w}`, stop, ackedDecisions));
  for (let w = 0; w < Math.max(1, workers >> 1); w++) running.push(mcpWorker(base, `m${w}`, stop, ackedMcp, 100));
  const failed = Promise.all(running).then(() => { if (!stop.now) throw new Error("a load worker stopped early"); });
  failed.catch(() => {});

  const total = minutes * 60_000, started = Date.now();
  const warmUp = total >= 180_000 ? Math.max(60_000, total / 5) : total / 5;
  const samples = [];
  let done = 0;
  while (Date.now() - started < total) {
    await Promise.race([sleep(every * 1000), failed]);
    const calls = ackedDecisions.length + ackedMcp.length;
    const s = { t: Math.round((Date.now() - started) / 1000), ...sample(server.pid, dir), rate: Math.round((calls - done) / every) };
    done = calls;
    samples.push(s);
    log(`t=${s.t}s rss=${mib(s.rssKb)} MiB fds=${s.fds} db+wal=${(s.dbBytes / 1048576).toFixed(1)} MiB calls/s=${s.rate}`);
  }
  stop.now = true;
  await failed;
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));

  const after = samples.filter((s) => s.t * 1000 >= warmUp);
  if (after.length < 6) throw new Error(`too few samples after the warm-up (${after.length}); run longer or sample more often`);
  const first = after.slice(0, 3), last = after.slice(-3);
  const rssGrowthMib = mib(mean(last.map((s) => s.rssKb)) - mean(first.map((s) => s.rssKb)));
  const fdGrowth = Math.round((mean(last.map((s) => s.fds)) - mean(first.map((s) => s.fds))) * 10) / 10;
  const { byId, decided, outcomes } = ledger(dir);
  const lost = ackedDecisions.filter((a) => byId.get(a.id) !== a.seq).length +
    ackedMcp.filter((m) => decided.get(m) !== "allow" || !outcomes.has(m)).length;
  const unrecorded = executions(countFile).filter((m) => decided.get(m) !== "allow").length;
  const verified = /^ok: /.test(verify(dir));
  removeProject(dir);
  return {
    samples: samples.length, decisions: ackedDecisions.length, mcp: ackedMcp.length, lost, unrecorded, verified,
    rss: { min: mib(Math.min(...samples.map((s) => s.rssKb))), max: mib(Math.max(...samples.map((s) => s.rssKb))), growthAfterWarmUp: rssGrowthMib, bound: maxRssMib },
    fds: { min: Math.min(...samples.map((s) => s.fds)), max: Math.max(...samples.map((s) => s.fds)), growthAfterWarmUp: fdGrowth, bound: maxFds },
    dbMib: Math.round(samples.at(-1).dbBytes / 104857.6) / 10,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: {
    minutes: { type: "string", default: "1" }, every: { type: "string", default: "5" }, workers: { type: "string", default: "2" },
    "max-rss-mib": { type: "string", default: "64" }, "max-fds": { type: "string", default: "16" },
    help: { type: "boolean", short: "h", default: false },
  } });
  if (values.help) { console.log(usage); process.exit(0); }
  if (!warden) { console.error(usage); process.exit(2); }
  const r = await soak({ minutes: Number(values.minutes), every: Number(values.every), workers: Number(values.workers),
    maxRssMib: Number(values["max-rss-mib"]), maxFds: Number(values["max-fds"]) });
  console.log(JSON.stringify(r));
  const ok = r.verified && r.lost === 0 && r.unrecorded === 0 && r.rss.growthAfterWarmUp <= r.rss.bound && r.fds.growthAfterWarmUp <= r.fds.bound;
  console.log(`${ok ? "ok" : "FAILED"}: ${r.samples} samples, ${r.decisions + r.mcp} acknowledged calls (${r.decisions} decisions, ${r.mcp} /mcp), ` +
    `lost ${r.lost}, executed unrecorded ${r.unrecorded}; RSS ${r.rss.min}..${r.rss.max} MiB, growth after warm-up ${r.rss.growthAfterWarmUp} MiB (bound ${r.rss.bound}); ` +
    `fds ${r.fds.min}..${r.fds.max}, growth ${r.fds.growthAfterWarmUp} (bound ${r.fds.bound}); ledger ${r.dbMib} MiB`);
  process.exit(ok ? 0 : 1);
}
