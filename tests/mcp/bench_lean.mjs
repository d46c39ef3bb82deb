// tools/call through Warden vs straight to the same streamable-HTTP upstream, with a lean
// client: keep-alive HTTP (undici via fetch), pre-built JSON-RPC bodies, no SDK. Both paths use
// the same client and the same upstream (server-everything's HTTP mode); the Warden path adds
// the gateway hop, the decision, two durable ledger records (process durability) and the pin
// check. Not part of the test suite:
//   cargo build --release -p warden
//   WARDEN_BIN=/var/tmp/warden-target/release/warden node tests/mcp/bench_lean.mjs
// With WARDEN_BASELINE_BIN set to another build (e.g. of an earlier commit), that build is
// measured in the same run, between the direct path and WARDEN_BIN, for a same-run A/B.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, appendFileSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const warden = process.env.WARDEN_BIN;
const everything = join(here, "node_modules/.bin/mcp-server-everything");
const N = Number(process.env.BENCH_CALLS ?? 3000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const key = "lean-bench-key-0123456789abcdef012345";

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
});
// CPU time a process has used so far (user + system), in seconds, from /proc/PID/stat.
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];

async function session(url, headers) {
  const h = { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers };
  const init = await fetch(url, { method: "POST", headers: h, body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "lean", version: "0" } } }) });
  await init.text();
  const sid = init.headers.get("mcp-session-id");
  const withSid = sid ? { ...h, "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" } : h;
  await (await fetch(url, { method: "POST", headers: withSid, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })).text();
  let id = 1;
  return async () => {
    const body = `{"jsonrpc":"2.0","id":${id++},"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}`;
    const res = await fetch(url, { method: "POST", headers: withSid, body });
    const text = await res.text();
    if (!text.includes("Echo: hello")) throw new Error(`unexpected answer: ${text.slice(0, 200)}`);
  };
}

async function measure(label, call) {
  for (let i = 0; i < 300; i++) await call();
  const lat = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await call();
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  lat.sort((a, b) => a - b);
  const start = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < N) { next++; await call(); } }));
  const rps = N / (Number(process.hrtime.bigint() - start) / 1e9);
  return { label, p50: pct(lat, 0.5), p99: pct(lat, 0.99), rps };
}

/// A project served by `bin` in front of the upstream; the measured Warden path, its CPU per
/// call (and the upstream's over the same calls), and the ledger check after the run.
async function throughWarden(bin, label, upstreamUrl, upstreamPid) {
  const dir = join(mkdtempSync(join(tmpdir(), "warden-lean-")), "proj");
  execFileSync(bin, ["init", dir], { stdio: "ignore" });
  const hash = execFileSync("sha256sum", { input: key }).toString().split(" ")[0];
  appendFileSync(join(dir, "warden.toml"), `\n[upstreams.remote]\nurl = "${upstreamUrl}"\n`);
  writeFileSync(join(dir, "warden.toml"), readFileSync(join(dir, "warden.toml"), "utf8")
    .replace("[agent_keys]\n", `[agent_keys]\nbench = "sha256:${hash}"\n`)
    .replace("max_concurrent_calls_per_session = 16", `max_concurrent_calls_per_session = ${CONCURRENCY}`));
  writeFileSync(join(dir, "agents/bench.toml"), `purpose = "benchmark"\nenvironment = "prod"\n[owners]\nproduct = "p"\nsecurity = "s"\non_call = "o"\n[rate_limits]\ncalls_per_minute = 1000000\n[[tools]]\nserver = "remote"\nname = "echo"\naccess = "read"\nimpact = "low"\napproval = "auto"\n[tools.args.message]\ntype = "string"\nrequired = true\n`);
  const gw = spawn(bin, ["serve", "-p", dir, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, WARDEN_LOG: "warn" } });
  const base = (await new Promise((r) => createInterface({ input: gw.stdout }).once("line", r))).replace("listening on ", "").trim();
  const wardenSession = await session(`${base}/mcp`, { authorization: `Bearer ${key}` });
  const cpu0 = { warden: cpuSeconds(gw.pid), upstream: cpuSeconds(upstreamPid) };
  const result = await measure(label, wardenSession);
  const calls = 300 + 2 * N;
  const cpu = {
    warden: (cpuSeconds(gw.pid) - cpu0.warden) / calls * 1e3,
    upstream: (cpuSeconds(upstreamPid) - cpu0.upstream) / calls * 1e3,
  };
  gw.kill("SIGTERM");
  await new Promise((r) => gw.once("exit", r));
  const verify = execFileSync(bin, ["audit", "verify", "-p", dir]).toString().split("\n")[0];
  rmSync(dirname(dir), { recursive: true, force: true });
  return { result, cpu, verify };
}

async function main() {
  if (!warden) throw new Error("set WARDEN_BIN to a release build of warden");
  const baseline = process.env.WARDEN_BASELINE_BIN;
  const port = await freePort();
  const upstreamUrl = `http://127.0.0.1:${port}/mcp`;
  const upstream = spawn(everything, ["streamableHttp"], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] });
  await new Promise((r) => createInterface({ input: upstream.stderr }).on("line", (l) => { if (/listening on port/.test(l)) r(); }));

  const direct = await measure("direct to the upstream", await session(upstreamUrl, {}));
  const before = baseline ? await throughWarden(baseline, "through Warden (baseline)", upstreamUrl, upstream.pid) : null;
  const after = await throughWarden(warden, "through Warden /mcp", upstreamUrl, upstream.pid);
  const direct2 = await measure("direct again (drift check)", await session(upstreamUrl, {}));
  upstream.kill("SIGKILL");

  console.log(`tools/call echo over streamable HTTP, lean keep-alive client: ${N} sequential calls, then ${N} with ${CONCURRENCY} in flight`);
  for (const r of [direct, before?.result, after.result, direct2].filter(Boolean)) {
    console.log(`  ${r.label.padEnd(28)} p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  ${r.rps.toFixed(0)} calls/s`);
  }
  for (const run of [before, after].filter(Boolean)) {
    const t = run.result;
    console.log(`  ${t.label}: added p50 ${(t.p50 - direct.p50).toFixed(3)} ms, p99 ${(t.p99 - direct.p99).toFixed(3)} ms; latency ratio ${(t.p50 / direct.p50).toFixed(2)}x; throughput ratio ${(t.rps / direct.rps).toFixed(2)}`);
    console.log(`    CPU per call (user+system, /proc): Warden ${run.cpu.warden.toFixed(3)} ms, the upstream ${run.cpu.upstream.toFixed(3)} ms (ratio ${(run.cpu.warden / run.cpu.upstream).toFixed(2)}); ledger after the run: ${run.verify}`);
  }
  if (before) {
    const a = after.result, b = before.result;
    console.log(`  this build vs the baseline, same run: p50 ${(a.p50 / b.p50).toFixed(2)}x, p99 ${(a.p99 / b.p99).toFixed(2)}x, throughput ${(a.rps / b.rps).toFixed(2)}x, CPU per call ${(after.cpu.warden / before.cpu.warden).toFixed(2)}x`);
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
