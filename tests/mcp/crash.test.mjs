// An upstream that dies in the middle of a call: the caller gets a clear error, the gateway
// keeps serving, and the supervised upstream comes back. Also the per-session call limit.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { newProject, removeProject, appendConfig, editConfig, addAgent, grant, startGateway, connectHttp, records, verify, changing } from "./helpers.mjs";

const key = "crash-test-key-0123456789abcdef";
let dir, server, base;

before(async () => {
  dir = newProject("crash");
  appendConfig(dir, `[upstreams.fragile]\ncommand = ["${process.execPath}", "${changing}"]`);
  editConfig(dir, "max_concurrent_calls_per_session = 16", "max_concurrent_calls_per_session = 1");
  addAgent(dir, "crasher",
    grant("fragile", "crash", { access: "write" }) +
    grant("fragile", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\n` }) +
    grant("fragile", "sleep", { args: `[tools.args.ms]\ntype = "integer"\nrequired = true\nmax = 5000\n` }),
    key);
  ({ server, base } = await startGateway(dir));
});

after(() => {
  server?.kill("SIGKILL");
  removeProject(dir);
});

test("an upstream crash mid-call is a clear error and the upstream comes back", async () => {
  const client = await connectHttp(base, key);
  const crashed = await client.callTool({ name: "crash", arguments: {} });
  assert.equal(crashed.isError, true);
  assert.match(crashed.content[0].text, /exited while the call was in flight|is not running/);

  // The gateway keeps serving; the supervisor restarts the upstream with back-off.
  let echo;
  for (let i = 0; i < 50; i++) {
    echo = await client.callTool({ name: "echo", arguments: { message: "back" } });
    if (!echo.isError) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(echo.content, [{ type: "text", text: "echo: back" }]);
  await client.close();

  const outcomes = records(dir, "crasher").filter((r) => r.event.kind === "outcome");
  assert.equal(outcomes[0].event.status, "error", "the failed call's outcome is recorded as an error");
  assert.match(verify(dir), /^ok: /);
});

test("a session over its concurrent-call limit gets a clear error", async () => {
  const client = await connectHttp(base, key);
  const slow = client.callTool({ name: "sleep", arguments: { ms: 800 } });
  await new Promise((r) => setTimeout(r, 200));
  await assert.rejects(client.callTool({ name: "echo", arguments: { message: "too many" } }), /calls in flight/);
  assert.deepEqual((await slow).content, [{ type: "text", text: "slept 800" }]);
  const after = await client.callTool({ name: "echo", arguments: { message: "free again" } });
  assert.equal(after.isError, undefined);
  await client.close();
});
