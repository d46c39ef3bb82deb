// A streamable-HTTP upstream: server-everything in its HTTP mode behind Warden's /mcp, with a
// credential header from Warden's environment.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { newProject, removeProject, appendConfig, addAgent, grant, startGateway, connectHttp, verify, everything } from "./helpers.mjs";

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
  dir = newProject("httpup");
  appendConfig(dir, `[upstreams.remote]\nurl = "${upstreamUrl}"\n[upstreams.remote.headers]\nX-Upstream-Token = { from_env = "WARDEN_TEST_REMOTE_TOKEN" }`);
  addAgent(dir, "remote-user", grant("remote", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\nmax_length = 20\n` }), key);
  ({ server: gateway, base } = await startGateway(dir, { WARDEN_TEST_REMOTE_TOKEN: "remote-secret" }));
});

after(() => {
  gateway?.kill("SIGKILL");
  upstream?.kill("SIGKILL");
  removeProject(dir);
});

test("a streamable-HTTP upstream is listed, gated and called through /mcp", async () => {
  const direct = new Client({ name: "direct", version: "0" });
  await direct.connect(new StreamableHTTPClientTransport(new URL(upstreamUrl)));
  const expected = await direct.callTool({ name: "echo", arguments: { message: "over http" } });
  await direct.close();

  const client = await connectHttp(base, key);
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ["echo"]);
  const echo = await client.callTool({ name: "echo", arguments: { message: "over http" } });
  assert.deepEqual(echo, expected, "the upstream's result, unchanged");
  const long = await client.callTool({ name: "echo", arguments: { message: "y".repeat(30) } });
  assert.equal(long.isError, true);
  assert.match(long.content[0].text, /longer than the 20 allowed/);
  await client.close();
  assert.match(verify(dir), /^ok: /);
});
