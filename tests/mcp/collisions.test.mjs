// Two upstreams offering the same tool name: the agent sees both, prefixed with the upstream.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { newProject, removeProject, appendConfig, addAgent, grant, startGateway, connectHttp, records, changing } from "./helpers.mjs";

const key = "collision-key-0123456789abcdef0123";
let dir, gateway, base;

before(async () => {
  dir = newProject("coll");
  appendConfig(dir,
    `[upstreams.alpha]\ncommand = ["${process.execPath}", "${changing}"]\n[upstreams.alpha.env]\nECHO_DESCRIPTION = "Alpha echo."\n` +
    `[upstreams.beta]\ncommand = ["${process.execPath}", "${changing}"]\n[upstreams.beta.env]\nECHO_DESCRIPTION = "Beta echo."`);
  const message = `[tools.args.message]\ntype = "string"\nrequired = true\n`;
  addAgent(dir, "two-servers", grant("alpha", "echo", { args: message }) + grant("beta", "echo", { args: message }), key);
  ({ server: gateway, base } = await startGateway(dir));
});

after(() => {
  gateway?.kill("SIGKILL");
  removeProject(dir);
});

test("colliding tool names are namespaced by upstream and each reaches its own server", async () => {
  const client = await connectHttp(base, key);
  const tools = (await client.listTools()).tools;
  assert.deepEqual(tools.map((t) => t.name), ["alpha__echo", "beta__echo"]);
  assert.deepEqual(tools.map((t) => t.description), ["Alpha echo.", "Beta echo."]);
  const b = await client.callTool({ name: "beta__echo", arguments: { message: "to beta" } });
  assert.deepEqual(b.content, [{ type: "text", text: "echo: to beta" }]);
  await client.close();
  const decisions = records(dir, "two-servers").filter((r) => r.event.kind === "decision");
  assert.equal(decisions[0].event.qualified_tool, "beta/echo");
});
