// A streamable-HTTP upstream: server-everything in its HTTP mode behind Warden's /mcp, with a
// credential header from Warden's environment.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, appendFileSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const here = dirname(fileURLToPath(import.meta.url));
const warden = process.env.WARDEN_BIN;
const everything = join(here, "node_modules/.bin/mcp-server-everything");
const key = "http-upstream-key-0123456789abcdef";
let dir, upstream, gateway, base, upstreamUrl;

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
});

before(async () => {
  const port = await freePort();
  upstreamUrl = `http://127.0.0.1:${port}/mcp`;
  upstream = spawn(everything, ["streamableHttp"], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] });
  await new Promise((resolve, reject) => {
    createInterface({ input: upstream.stderr }).on("line", (l) => { if (/listening on port/.test(l)) resolve(); });
    upstream.once("exit", (code) => reject(new Error(`server-everything exited with ${code}`)));
  });
  dir = join(mkdtempSync(join(tmpdir(), "warden-httpup-")), "proj");
  execFileSync(warden, ["init", dir], { stdio: "ignore" });
  const hash = execFileSync("sha256sum", { input: key }).toString().split(" ")[0];
  appendFileSync(join(dir, "warden.toml"),
    `\n[upstreams.remote]\nurl = "${upstreamUrl}"\n[upstreams.remote.headers]\nX-Upstream-Token = { from_env = "WARDEN_TEST_REMOTE_TOKEN" }\n`);
  writeFileSync(join(dir, "warden.toml"), readFileSync(join(dir, "warden.toml"), "utf8").replace("[agent_keys]\n", `[agent_keys]\nremote-user = "sha256:${hash}"\n`));
  writeFileSync(join(dir, "agents/remote-user.toml"), `purpose = "uses a remote MCP server"\nenvironment = "prod"\n[owners]\nproduct = "p"\nsecurity = "s"\non_call = "o"\n` +
    `[[tools]]\nserver = "remote"\nname = "echo"\naccess = "read"\nimpact = "low"\napproval = "auto"\n[tools.args.message]\ntype = "string"\nrequired = true\nmax_length = 20\n`);
  gateway = spawn(warden, ["serve", "-p", dir, "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, WARDEN_TEST_REMOTE_TOKEN: "remote-secret" },
  });
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: gateway.stdout }).once("line", resolve);
    gateway.once("exit", (code) => reject(new Error(`warden serve exited with ${code} before listening`)));
  });
  base = first.replace("listening on ", "").trim();
});

after(() => {
  gateway?.kill("SIGKILL");
  upstream?.kill("SIGKILL");
  if (dir) rmSync(dirname(dir), { recursive: true, force: true });
});

test("a streamable-HTTP upstream is listed, gated and called through /mcp", async () => {
  const direct = new Client({ name: "direct", version: "0" });
  await direct.connect(new StreamableHTTPClientTransport(new URL(upstreamUrl)));
  const expected = await direct.callTool({ name: "echo", arguments: { message: "over http" } });
  await direct.close();

  const client = new Client({ name: "warden-httpup-e2e", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ["echo"]);
  const echo = await client.callTool({ name: "echo", arguments: { message: "over http" } });
  assert.deepEqual(echo, expected, "the upstream's result, unchanged");
  const long = await client.callTool({ name: "echo", arguments: { message: "y".repeat(30) } });
  assert.equal(long.isError, true);
  assert.match(long.content[0].text, /longer than the 20 allowed/);
  await client.close();
  assert.match(execFileSync(warden, ["audit", "verify", "-p", dir]).toString(), /^ok: /);
});
