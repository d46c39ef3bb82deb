// Resources and prompts through Warden, over /mcp and over `warden mcp stdio`: listed and read
// only where the scope card grants them, each read decided and recorded like a tool call.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { newProject, removeProject, appendConfig, addAgent, grant, startGateway, connectHttp, records, verify, warden, everything } from "./helpers.mjs";

const doc = (name) => `demo://resource/static/document/${name}`;
const readerKey = "resource-reader-key-0123456789abcdef";
const toolsKey = "tools-only-key-0123456789abcdef";
let dir, gateway, base;

const readerCard =
  grant("everything", "echo") +
  `[[resources]]\nserver = "everything"\nuri = "${doc("instructions.md")}"\n` +
  `[[resources]]\nserver = "everything"\nuri = "${doc("arch")}*"\n` +
  `[[prompts]]\nserver = "everything"\nname = "simple-prompt"\n`;

async function stdioClient(cmd, args) {
  const client = new Client({ name: "warden-e2e", version: "0" });
  await client.connect(new StdioClientTransport({ command: cmd, args, stderr: "ignore" }));
  return client;
}

before(async () => {
  dir = newProject("reads");
  appendConfig(dir, `[upstreams.everything]\ncommand = ["${everything}", "stdio"]`);
  addAgent(dir, "reader", readerCard, readerKey);
  addAgent(dir, "tools-only", grant("everything", "echo"), toolsKey);
  ({ server: gateway, base } = await startGateway(dir));
});

after(() => {
  gateway?.kill("SIGKILL");
  removeProject(dir);
});

// What the upstream itself answers, for comparison.
async function direct() {
  const client = await stdioClient(everything, ["stdio"]);
  const all = (await client.listResources()).resources.map((r) => r.uri);
  const instructions = await client.readResource({ uri: doc("instructions.md") });
  const prompt = await client.getPrompt({ name: "simple-prompt" });
  await client.close();
  return { all, instructions, prompt };
}

async function checkReader(client, expected) {
  const caps = client.getServerCapabilities();
  assert.ok(caps.resources && caps.prompts, "resources and prompts are offered to a card that grants them");
  const uris = (await client.listResources()).resources.map((r) => r.uri).sort();
  assert.deepEqual(uris, [doc("architecture.md"), doc("instructions.md")]);
  assert.ok(expected.all.length > uris.length, "the upstream has more resources than the card grants");
  assert.deepEqual(await client.readResource({ uri: doc("instructions.md") }), expected.instructions,
    "a granted read returns the upstream's answer unchanged");
  await assert.rejects(client.readResource({ uri: doc("features.md") }), /not on the scope card/);
  assert.deepEqual((await client.listPrompts()).prompts.map((p) => p.name), ["simple-prompt"]);
  assert.deepEqual(await client.getPrompt({ name: "simple-prompt" }), expected.prompt);
  await assert.rejects(client.getPrompt({ name: "args-prompt", arguments: { city: "Oslo" } }), /not on the scope card/);
  assert.deepEqual((await client.listResourceTemplates()).resourceTemplates, [],
    "no templates: they would let a client build URIs the card never listed");
}

test("over /mcp: granted resources and prompts only, every read recorded", async () => {
  const expected = await direct();
  const client = await connectHttp(base, readerKey);
  await checkReader(client, expected);
  await client.close();

  const toolsOnly = await connectHttp(base, toolsKey);
  const caps = toolsOnly.getServerCapabilities();
  assert.equal(caps.resources, undefined, "no resources capability without a grant");
  assert.equal(caps.prompts, undefined, "no prompts capability without a grant");
  await toolsOnly.close();

  const decisions = records(dir, "reader").filter((r) => r.event.kind === "decision" && r.event.tool !== "echo");
  assert.deepEqual(decisions.map((r) => [r.event.tool, r.event.decision.decision]), [
    ["resources/read", "allow"], ["resources/read", "deny"], ["prompts/get", "allow"], ["prompts/get", "deny"],
  ]);
  assert.equal(decisions[0].event.arguments.uri, doc("instructions.md"));
  assert.equal(records(dir, "reader").filter((r) => r.event.kind === "outcome").length, 2);
  assert.match(verify(dir), /^ok: /);
});

test("over warden mcp stdio: the same grants apply", async () => {
  const expected = await direct();
  const client = await stdioClient(warden, ["mcp", "stdio", "-p", dir, "--agent", "reader", "--server", "everything"]);
  await checkReader(client, expected);
  await client.close();
  const toolsOnly = await stdioClient(warden, ["mcp", "stdio", "-p", dir, "--agent", "tools-only", "--server", "everything"]);
  assert.equal(toolsOnly.getServerCapabilities().resources, undefined);
  await assert.rejects(toolsOnly.readResource({ uri: doc("instructions.md") }));
  await toolsOnly.close();
  assert.match(verify(dir), /^ok: /);
});
