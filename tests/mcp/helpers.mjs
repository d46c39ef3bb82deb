// Shared set-up for the MCP end-to-end tests: a project from `warden init`, agents with keys,
// upstreams, a running gateway, and SDK clients.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, appendFileSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export const here = dirname(fileURLToPath(import.meta.url));
export const warden = process.env.WARDEN_BIN;
export const everything = join(here, "node_modules/.bin/mcp-server-everything");
export const changing = join(here, "changing_server.mjs");

/// A fresh example project in a temporary directory.
export function newProject(prefix) {
  if (!warden) throw new Error("WARDEN_BIN must point at the warden binary");
  const dir = join(mkdtempSync(join(tmpdir(), `warden-${prefix}-`)), "proj");
  execFileSync(warden, ["init", dir], { stdio: "ignore" });
  return dir;
}

export function removeProject(dir) {
  if (dir) rmSync(dirname(dir), { recursive: true, force: true });
}

/// Append TOML to warden.toml (upstreams go after the last table).
export function appendConfig(dir, toml) {
  appendFileSync(join(dir, "warden.toml"), `\n${toml}\n`);
}

/// Replace text in warden.toml.
export function editConfig(dir, from, to) {
  const path = join(dir, "warden.toml");
  writeFileSync(path, readFileSync(path, "utf8").replace(from, to));
}

/// A scope card with the usual header; `tools` is the `[[tools]]` TOML. With `key`, the agent
/// gets that key in [agent_keys].
export function addAgent(dir, id, tools, key) {
  writeFileSync(join(dir, `agents/${id}.toml`),
    `purpose = "end-to-end test agent ${id}"\nenvironment = "prod"\n[owners]\nproduct = "p@example.com"\nsecurity = "s@example.com"\non_call = "o@example.com"\n${tools}`);
  if (key) {
    const hash = createHash("sha256").update(key).digest("hex");
    editConfig(dir, "[agent_keys]\n", `[agent_keys]\n${id} = "sha256:${hash}"\n`);
  }
}

/// A `[[tools]]` grant.
export function grant(server, name, { access = "read", impact = "low", approval = "auto", args = "" } = {}) {
  return `[[tools]]\nserver = "${server}"\nname = "${name}"\naccess = "${access}"\nimpact = "${impact}"\napproval = "${approval}"\n${args}`;
}

/// `warden serve` on a free port; resolves once it listens.
export async function startGateway(dir, env = {}) {
  const server = spawn(warden, ["serve", "-p", dir, "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, ...env },
  });
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: server.stdout }).once("line", resolve);
    server.once("exit", (code) => reject(new Error(`warden serve exited with ${code} before listening`)));
  });
  return { server, base: first.replace("listening on ", "").trim() };
}

/// An SDK client on /mcp with an agent key.
export async function connectHttp(base, key) {
  const client = new Client({ name: "warden-e2e", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  }));
  return client;
}

/// Ledger records as JSON, optionally for one agent.
export function records(dir, agent) {
  const args = ["audit", "search", "-p", dir, "--json", ...(agent ? ["--agent", agent] : [])];
  return execFileSync(warden, args).toString().trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

export function verify(dir) {
  return execFileSync(warden, ["audit", "verify", "-p", dir]).toString();
}
