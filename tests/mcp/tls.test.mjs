// `warden serve` with [gateway.tls]: the official TypeScript SDK client reaches /mcp over
// https, trusting the gateway's certificate through NODE_EXTRA_CA_CERTS, with server-everything
// as the upstream. The same calls are traced: a local OTLP/HTTP receiver gets an
// `execute_tool echo` span that carries no argument value.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { newProject, removeProject, appendConfig, addAgent, grant, startGateway, everything, here } from "./helpers.mjs";

const key = "mcp-tls-test-key-0123456789abcdef";
let dir, server, base, receiver;
const exports = [];

before(async () => {
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => {
      exports.push({ path: req.url, type: req.headers["content-type"], body: JSON.parse(body) });
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  dir = newProject("tls");
  mkdirSync(join(dir, "tls"));
  // A self-signed certificate for localhost, made with the system's openssl.
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(dir, "tls/key.pem"), "-out", join(dir, "tls/cert.pem"), "-days", "2",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], { stdio: "ignore" });
  appendConfig(dir,
    `[gateway.tls]\ncert_file = "tls/cert.pem"\nkey_file = "tls/key.pem"\n` +
    `[telemetry]\notlp_endpoint = "http://127.0.0.1:${receiver.address().port}"\n` +
    `[upstreams.everything]\ncommand = ["${everything}", "stdio"]`);
  addAgent(dir, "tls-tester", grant("everything", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\n` }), key);
  ({ server, base } = await startGateway(dir));
});

after(() => {
  server?.kill("SIGKILL");
  receiver?.close();
  removeProject(dir);
});

const client = (env) => execFileSync(process.execPath, [join(here, "tls_client.mjs"), base, key, "tls-secret-message-77"], {
  env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
});

test("the SDK client talks MCP over https when it trusts the certificate", async () => {
  assert.match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
  const out = JSON.parse(client({ NODE_EXTRA_CA_CERTS: join(dir, "tls/cert.pem") }).toString());
  assert.deepEqual(out.tools, ["echo"]);
  assert.deepEqual(out.echo.content, [{ type: "text", text: "Echo: tls-secret-message-77" }]);
  assert.deepEqual(out.health, { status: "ok" });
});

test("a client that does not trust the certificate, or speaks plain HTTP, gets nothing", async () => {
  assert.throws(() => client({ NODE_EXTRA_CA_CERTS: "" }), /self[- ]signed|certificate/i);
  await assert.rejects(fetch(base.replace("https:", "http:") + "/healthz"));
});

test("the call's execute_tool span reached the OTLP receiver, without the argument", async () => {
  // The exporter sends within a fraction of a second; wait for it, bounded.
  for (let i = 0; i < 600 && !exports.some((e) => JSON.stringify(e.body).includes("execute_tool echo")); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const spans = exports.flatMap((e) => e.body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
  const echo = spans.find((s) => s.name === "execute_tool echo");
  assert.ok(echo, JSON.stringify(exports));
  assert.equal(exports[0].path, "/v1/traces");
  assert.match(exports[0].type, /^application\/json/);
  const attr = (k) => echo.attributes.find((a) => a.key === k)?.value.stringValue;
  assert.equal(attr("gen_ai.operation.name"), "execute_tool");
  assert.equal(attr("gen_ai.tool.name"), "echo");
  assert.equal(attr("warden.decision"), "allow");
  assert.equal(attr("warden.agent"), "tls-tester");
  assert.equal(attr("error.type"), undefined);
  assert.equal(echo.traceId, "5b8efff798038103d269b633813fc60c");
  assert.equal(echo.parentSpanId, "eee19b7ec3c1b174");
  assert.doesNotMatch(JSON.stringify(exports), /tls-secret-message-77/);
});
