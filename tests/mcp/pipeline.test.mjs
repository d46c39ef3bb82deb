// One pipeline, both MCP doors, real peers: the official SDK client calls server-everything
// through `/mcp` and through `warden mcp stdio` with the same scope card. Its rate limit refuses
// the third call of a minute on either door, and the ticket a call names in
// `_meta["warden/correlation_id"]` reaches the decision and outcome records.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { newProject, removeProject, appendConfig, addAgent, grant, startGateway, connectHttp, records, verify, warden, everything } from "./helpers.mjs";

const key = "pipeline-agent-key-0123456789abcdef";
const card = `[rate_limits]\ncalls_per_minute = 2\n` +
  grant("everything", "echo", { args: `[tools.args.message]\ntype = "string"\nrequired = true\n` });
let dir, gateway, base;

before(async () => {
  dir = newProject("pipeline");
  appendConfig(dir, `[upstreams.everything]\ncommand = ["${everything}", "stdio"]`);
  // Each door gets its own agent with the same card, so their rate windows are their own.
  addAgent(dir, "http-agent", card, key);
  addAgent(dir, "stdio-agent", card);
  ({ server: gateway, base } = await startGateway(dir));
});

after(() => {
  gateway?.kill("SIGKILL");
  removeProject(dir);
});

async function stdioClient(agent) {
  const client = new Client({ name: "warden-e2e", version: "0" });
  await client.connect(new StdioClientTransport({
    command: warden, args: ["mcp", "stdio", "-p", dir, "--agent", agent, "--server", "everything"], stderr: "ignore",
  }));
  return client;
}

async function threeCalls(client, agent) {
  const ticketed = await client.callTool({ name: "echo", arguments: { message: "one" },
    _meta: { "warden/correlation_id": `TICKET-${agent}` } });
  assert.ok(!ticketed.isError, JSON.stringify(ticketed));
  const second = await client.callTool({ name: "echo", arguments: { message: "two" } });
  assert.ok(!second.isError, JSON.stringify(second));
  const third = await client.callTool({ name: "echo", arguments: { message: "three" } });
  assert.ok(third.isError, "the third call of the minute is refused");
  assert.match(third.content[0].text, /made 2 calls in the last minute/);

  const mine = records(dir, agent);
  const decisions = mine.filter((r) => r.event.kind === "decision");
  assert.deepEqual(decisions.map((r) => r.event.decision.decision), ["allow", "allow", "deny"]);
  assert.deepEqual(decisions[2].event.decision.policies, ["warden/rate-limit"]);
  assert.equal(decisions[0].event.correlation_id, `TICKET-${agent}`);
  const outcome = mine.find((r) => r.event.kind === "outcome" && r.event.decision_id === decisions[0].event.decision_id);
  assert.equal(outcome?.event.correlation_id, `TICKET-${agent}`, "the outcome carries the call's ticket");
}

test("over /mcp: the card's rate limit and the call's ticket", async () => {
  const client = await connectHttp(base, key);
  await threeCalls(client, "http-agent");
  await client.close();
});

test("over warden mcp stdio: the same card, the same controls", async () => {
  const client = await stdioClient("stdio-agent");
  await threeCalls(client, "stdio-agent");
  await client.close();
  assert.match(verify(dir), /verified/);
});
