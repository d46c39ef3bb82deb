// tools/call latency and throughput through Warden's /mcp gateway against the same upstream
// reached directly, measured in one run. Not part of the test suite:
//   cargo build --release -p warden
//   WARDEN_BIN=/var/tmp/warden-target/release/warden node tests/mcp/bench_gateway.mjs
// Upstream: @modelcontextprotocol/server-everything `echo`. Baselines: the official SDK client
// straight to the server over stdio, and over streamable HTTP (the server's own HTTP mode).
// Warden: the SDK client over streamable HTTP to /mcp, Warden to the server over stdio, with
// the decision, the durable ledger records (process durability) and tool pins in the path.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, appendFileSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const here = dirname(fileURLToPath(import.meta.url));
const warden = process.env.WARDEN_BIN;
const everything = join(here, "node_modules/.bin/mcp-server-everything");
const N = Number(process.env.BENCH_CALLS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const key = "bench-key-0123456789abcdef0123456789";

function pct(sorted, q) { return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]; }

async function measure(label, client) {
  const call = () => client.callTool({ name: "echo", arguments: { message: "hello" } });
  for (let i = 0; i < 200; i++) await call();
  const lat = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    const r = await call();
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.isError) throw new Error(`${label}: call refused: ${JSON.stringify(r)}`);
  }
  lat.sort((a, b) => a - b);
  const start = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < N) { next++; await call(); }
  }));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return { label, p50: pct(lat, 0.5), p99: pct(lat, 0.99), rps: N / secs };
}

async function main() {
  if (!warden) throw new Error("set WARDEN_BIN to a release build of warden");
  const results = [];

  const stdioClient = new Client({ name: "bench", version: "0" });
  await stdioClient.connect(new StdioClientTransport({ command: everything, args: ["stdio"], stderr: "ignore" }));
  results.push(await measure("direct, stdio", stdioClient));
  await stdioClient.close();

  const port = 3900 + Math.floor(Math.random() * 50);
  const httpServer = spawn(everything, ["streamableHttp"], { env: { ...process.env, PORT: String(port) }, stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 1500));
  const httpClient = new Client({ name: "bench", version: "0" });
  await httpClient.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
  results.push(await measure("direct, streamable HTTP", httpClient));
  await httpClient.close();
  httpServer.kill("SIGKILL");

  const dir = join(mkdtempSync(join(tmpdir(), "warden-bench-")), "proj");
  execFileSync(warden, ["init", dir], { stdio: "ignore" });
  const hash = execFileSync("sha256sum", { input: key }).toString().split(" ")[0];
  appendFileSync(join(dir, "warden.toml"), `\n[upstreams.everything]\ncommand = ["${everything}", "stdio"]\n`);
  writeFileSync(join(dir, "warden.toml"), readFileSync(join(dir, "warden.toml"), "utf8").replace("[agent_keys]\n", `[agent_keys]\nbench = "sha256:${hash}"\n`));
  writeFileSync(join(dir, "agents/bench.toml"), `purpose = "benchmark"\nenvironment = "prod"\n[owners]\nproduct = "p"\nsecurity = "s"\non_call = "o"\n[[tools]]\nserver = "everything"\nname = "echo"\naccess = "read"\nimpact = "low"\napproval = "auto"\n[tools.args.message]\ntype = "string"\nrequired = true\n`);
  const gw = spawn(warden, ["serve", "-p", dir, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, WARDEN_LOG: "warn" } });
  const first = await new Promise((r) => createInterface({ input: gw.stdout }).once("line", r));
  const base = first.replace("listening on ", "").trim();
  const wClient = new Client({ name: "bench", version: "0" });
  await wClient.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  results.push(await measure("through Warden /mcp", wClient));
  await wClient.close();
  gw.kill("SIGTERM");
  const verify = execFileSync(warden, ["audit", "verify", "-p", dir]).toString().split("\n")[0];
  rmSync(dirname(dir), { recursive: true, force: true });

  const [stdio, http, gwr] = results;
  console.log(`tools/call echo, ${N} sequential calls (latency) and ${N} calls ${CONCURRENCY} in flight (throughput)`);
  for (const r of results) {
    console.log(`  ${r.label.padEnd(26)} p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  ${r.rps.toFixed(0)} calls/s`);
  }
  for (const b of [stdio, http]) {
    console.log(`  Warden vs ${b.label}: added p50 ${(gwr.p50 - b.p50).toFixed(3)} ms, p99 ${(gwr.p99 - b.p99).toFixed(3)} ms; latency ratio ${(gwr.p50 / b.p50).toFixed(2)}x; throughput ratio ${(gwr.rps / b.rps).toFixed(2)}`);
  }
  console.log(`  ledger after the run: ${verify}`);
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
