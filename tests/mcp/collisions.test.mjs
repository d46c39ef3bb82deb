// Two upstreams offering the same tool name: the agent sees both, prefixed with the upstream.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, appendFileSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const here = dirname(fileURLToPath(import.meta.url));
const warden = process.env.WARDEN_BIN;
const changing = join(here, "changing_server.mjs");
const key = "collision-key-0123456789abcdef0123";
let dir, gateway, base;

before(async () => {
  dir = join(mkdtempSync(join(tmpdir(), "warden-coll-")), "proj");
  execFileSync(warden, ["init", dir], { stdio: "ignore" });
  const hash = execFileSync("sha256sum", { input: key }).toString().split(" ")[0];
  appendFileSync(join(dir, "warden.toml"),
    `\n[upstreams.alpha]\ncommand = ["${process.execPath}", "${changing}"]\n[upstreams.alpha.env]\nECHO_DESCRIPTION = "Alpha echo."\n` +
    `[upstreams.beta]\ncommand = ["${process.execPath}", "${changing}"]\n[upstreams.beta.env]\nECHO_DESCRIPTION = "Beta echo."\n`);
  writeFileSync(join(dir, "warden.toml"), readFileSync(join(dir, "warden.toml"), "utf8").replace("[agent_keys]\n", `[agent_keys]\ntwo-servers = "sha256:${hash}"\n`));
  const grant = (server) => `[[tools]]\nserver = "${server}"\nname = "echo"\naccess = "read"\nimpact = "low"\napproval = "auto"\n[tools.args.message]\ntype = "string"\nrequired = true\n`;
  writeFileSync(join(dir, "agents/two-servers.toml"), `purpose = "two servers, one tool name"\nenvironment = "prod"\n[owners]\nproduct = "p"\nsecurity = "s"\non_call = "o"\n` + grant("alpha") + grant("beta"));
  gateway = spawn(warden, ["serve", "-p", dir, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "ignore"] });
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: gateway.stdout }).once("line", resolve);
    gateway.once("exit", (code) => reject(new Error(`warden serve exited with ${code} before listening`)));
  });
  base = first.replace("listening on ", "").trim();
});

after(() => {
  gateway?.kill("SIGKILL");
  if (dir) rmSync(dirname(dir), { recursive: true, force: true });
});

test("colliding tool names are namespaced by upstream and each reaches its own server", async () => {
  const client = new Client({ name: "collisions", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${key}` } } }));
  const tools = (await client.listTools()).tools;
  assert.deepEqual(tools.map((t) => t.name), ["alpha__echo", "beta__echo"]);
  assert.deepEqual(tools.map((t) => t.description), ["Alpha echo.", "Beta echo."]);
  const b = await client.callTool({ name: "beta__echo", arguments: { message: "to beta" } });
  assert.deepEqual(b.content, [{ type: "text", text: "echo: to beta" }]);
  await client.close();
  const decisions = execFileSync(warden, ["audit", "search", "-p", dir, "--agent", "two-servers", "--json"]).toString()
    .trim().split("\n").map((l) => JSON.parse(l)).filter((r) => r.event.kind === "decision");
  assert.equal(decisions[0].event.qualified_tool, "beta/echo");
});
