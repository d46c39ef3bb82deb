// End-to-end browser test of the approvers' web UI (/ui/): a held refund is approved and a
// second one denied by an approver who logs in with password + TOTP in Debian Chromium
// (driven by playwright-core); the agent then executes through the decision API, and the
// ledger shows proposal -> snapshot read -> signed vote -> execution with a verified hash chain.
// The before-state the approver sees is read by Warden itself through the scope card's
// snapshot read (`payments/get_balance` on the payments upstream, tests/mcp/payments_server.mjs,
// which needs `npm ci` in tests/mcp); the caller reports none.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, openSync, rmSync, existsSync } from "node:fs";
import { createHmac, randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const warden = process.env.WARDEN_BIN;
const artifacts = process.env.WARDEN_UI_ARTIFACTS || join(here, "artifacts");
const chromiumPath = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

// ---- TOTP (RFC 6238: HMAC-SHA1, 30 s step, 6 digits) -------------------------------------

function base32Decode(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0, value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, "").toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error(`bad base32 character ${c}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function hotp(secret, counter) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac("sha1", secret).update(msg).digest();
  const off = h[h.length - 1] & 0x0f;
  const bin = ((h[off] & 0x7f) << 24) | (h[off + 1] << 16) | (h[off + 2] << 8) | h[off + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}

const step = () => Math.floor(Date.now() / 1000 / 30);
let lastStep = -1;

/// A code for a step not used before (the gateway refuses a code's reuse): waits for the next
/// 30-s step when the current one was already used.
async function freshCode(secret) {
  while (step() <= lastStep) {
    const ms = (step() + 1) * 30_000 - Date.now() + 250;
    await new Promise((r) => setTimeout(r, ms));
  }
  // Avoid a code that expires while the browser submits it.
  if (30_000 - (Date.now() % 30_000) < 3_000) {
    await new Promise((r) => setTimeout(r, 30_000 - (Date.now() % 30_000) + 250));
  }
  lastStep = step();
  return hotp(secret, lastStep);
}

// ---- project, gateway, agent -------------------------------------------------------------

let root, dir, gateway, base, agentKey, browser, page, approver;

function cli(...args) {
  return execFileSync(warden, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

async function decide(body) {
  const r = await fetch(`${base}/v1/decisions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${agentKey}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await r.json();
  assert.ok(r.ok, `POST /v1/decisions answered ${r.status}: ${JSON.stringify(json)}`);
  return json;
}

async function outcome(id, status, output) {
  const r = await fetch(`${base}/v1/decisions/${id}/outcome`, {
    method: "POST",
    headers: { Authorization: `Bearer ${agentKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ status, output, duration_ms: 3 }),
  });
  assert.ok(r.ok, `outcome answered ${r.status}: ${await r.text()}`);
}

/// The agent reads an account (recorded with its output), then proposes a refund; the refund
/// is held for approval, and Warden reads its before-state through the snapshot read. The
/// agent reports no before-state.
async function heldRefund(session, account, amount) {
  const read = await decide({ tool: "get_account", arguments: { account_id: account }, session });
  assert.equal(read.decision, "allow", JSON.stringify(read));
  await outcome(read.id, "success", { account_id: account, name: `Customer ${account}`, tier: "gold" });
  const args = { account_id: account, amount, reason: `ui-test refund for ${account}` };
  const held = await decide({
    tool: "issue_refund", arguments: args, session, correlation_id: `UI-${account}`,
  });
  assert.equal(held.decision, "approval_required", JSON.stringify(held));
  return { id: held.id, args };
}

function ledger() {
  const out = cli("audit", "search", "-p", dir, "--json");
  writeFileSync(join(artifacts, "ledger.ndjson"), out);
  return out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/// The first row of the detail page's votes table: approver, vote, signature check.
async function voteRow() {
  const cells = (await page.$$eval("#votes tbody tr:first-child td", (tds) => tds.map((td) => td.textContent.trim())));
  return { approver: cells[0], vote: cells[1], signatureValid: cells[4] };
}

async function shot(name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/// Replace `from` in a project file; it must be there.
function edit(file, from, to) {
  const path = join(dir, file);
  const text = readFileSync(path, "utf8");
  assert.ok(text.includes(from), `${file} no longer contains ${JSON.stringify(from)}`);
  writeFileSync(path, text.replace(from, to));
}

const marker = `payments-${randomBytes(6).toString("hex")}`;

before(async () => {
  if (!warden) throw new Error("WARDEN_BIN must point at the warden binary");
  const paymentsServer = join(here, "..", "mcp", "payments_server.mjs");
  if (!existsSync(join(here, "..", "mcp", "node_modules", "@modelcontextprotocol", "sdk"))) {
    throw new Error("run `npm ci` in tests/mcp first: this test runs tests/mcp/payments_server.mjs as the payments upstream");
  }
  mkdirSync(artifacts, { recursive: true });
  root = mkdtempSync(join(tmpdir(), "warden-ui-"));
  dir = join(root, "proj");
  execFileSync(warden, ["init", dir], { stdio: "ignore" });
  agentKey = readFileSync(join(dir, "agent-keys.txt"), "utf8").match(/^crm-writer=(\S+)$/m)[1];
  // The payments upstream is a real MCP server that Warden runs; the refund grant reads the
  // account's balance through it (snapshot read) when a refund is held.
  edit("warden.toml", '[upstreams.payments]\nbuiltin = "demo"\n',
    `[upstreams.payments]\ncommand = ["node", ${JSON.stringify(paymentsServer)}]\n[upstreams.payments.env]\nPAYMENTS_MARKER = "${marker}"\n`);
  edit("agents/crm-writer.toml", 'name = "issue_refund"\naccess = "write"\nimpact = "high"\napproval = "approve"\n',
    'name = "issue_refund"\naccess = "write"\nimpact = "high"\napproval = "approve"\n' +
    'snapshot = { tool = "get_balance", args = { account_id = "$account_id" } }\n');
  writeFileSync(join(dir, "agents/crm-writer.toml"), readFileSync(join(dir, "agents/crm-writer.toml"), "utf8") +
    '\n[[tools]]\nserver = "payments"\nname = "get_balance"\naccess = "read"\nimpact = "low"\napproval = "auto"\n' +
    '[tools.args.account_id]\ntype = "string"\nrequired = true\npattern = "ACC-[0-9]{4}"\n');
  cli("check", "-p", dir);

  const enrolled = cli("user", "add", "ui-approver", "--role", "approver", "-p", dir);
  const password = enrolled.match(/^password:\s*(\S+)$/m)?.[1];
  const secret = enrolled.match(/otpauth:\/\/totp\/[^\s]*[?&]secret=([A-Z2-7=]+)/)?.[1];
  assert.ok(password && secret, `could not parse the enrolment output:\n${enrolled}`);
  approver = { name: "ui-approver", password, secret: base32Decode(secret) };

  gateway = spawn(warden, ["serve", "-p", dir, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", openSync(join(artifacts, "gateway.log"), "w")] });
  const first = await new Promise((resolve, reject) => {
    createInterface({ input: gateway.stdout }).once("line", resolve);
    gateway.once("exit", (code) => reject(new Error(`warden serve exited with ${code} before listening`)));
  });
  base = first.replace("listening on ", "").trim();
  if (!base.startsWith("http")) base = `http://${base}`;

  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  page = await (await browser.newContext()).newPage();
});

after(async () => {
  await browser?.close();
  gateway?.kill();
  if (root) rmSync(root, { recursive: true, force: true });
});

test("approve in the browser: login, queue, detail, step-up vote; the agent executes; the ledger shows it", async () => {
  const { id, args } = await heldRefund("ui-session-approve", "ACC-0001", 42.5);

  await page.goto(`${base}/ui/`);
  assert.match(page.url(), /\/ui\/login$/, "an anonymous visit goes to the login page");
  await shot("01-login");
  await page.fill("#user", approver.name);
  await page.fill("#password", approver.password);
  await page.fill("#totp", await freshCode(approver.secret));
  await Promise.all([page.waitForURL(/\/ui\/approvals$/), page.click("button[type=submit]")]);
  const queueText = await page.textContent("main");
  assert.match(await page.textContent("nav"), /Signed in as ui-approver \(approver\)/,
    "the Secure session cookie was kept over http://127.0.0.1");
  assert.ok(queueText.includes(id), "the held request is in the queue");
  assert.match(queueText, /issue_refund/);
  await shot("02-queue");

  await Promise.all([page.waitForURL(new RegExp(`/ui/approvals/${id}$`)), page.click(`a[href="/ui/approvals/${id}"]`)]);
  assert.equal((await page.textContent("#state")).trim(), "pending");
  assert.match(await page.textContent("#tool"), /issue_refund/);
  // Values are shown redacted (these hold nothing to redact); showing them as sent is a
  // recorded act.
  assert.match(await page.textContent("main"), /Arguments \(redacted\)/);
  await Promise.all([page.waitForLoadState("load"), page.click("#reveal")]);
  await page.waitForSelector("#values-revealed");
  const shownArgs = JSON.parse(await page.textContent("#arguments"));
  assert.deepEqual(shownArgs, args, "the arguments are shown exactly as proposed");
  // The before-state came from Warden's own read of the payments server (its marker), not
  // from the agent, and is shown against the proposed call.
  const before = JSON.parse(await page.textContent("#before-state"));
  assert.deepEqual(before, { account_id: "ACC-0001", balance_eur: 310.25, refunds_this_month: 1, source: marker });
  assert.match(await page.textContent("#before-state-source"), /Read by Warden through the scope card's snapshot read/);
  const diff = await page.$$eval("#diff tbody tr", (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent.trim())));
  assert.deepEqual(diff.find((r) => r[0] === "balance_eur"), ["balance_eur", "310.25", "—", "not in the call"]);
  assert.deepEqual(diff.find((r) => r[0] === "account_id"), ["account_id", '"ACC-0001"', '"ACC-0001"', "unchanged"]);
  assert.deepEqual(diff.find((r) => r[0] === "amount"), ["amount", "—", "42.5", "only in the call"]);
  const saw = await page.textContent("#agent-saw");
  assert.match(saw, /get_account/);
  assert.match(saw, /Customer ACC-0001/, "what the agent saw includes the account it read");
  await shot("03-detail");

  const voteAt = Date.now();
  await page.fill("#reason", "matches ticket UI-ACC-0001");
  await page.fill("#step-up", await freshCode(approver.secret));
  await Promise.all([page.waitForLoadState("load"), page.click("button[value=approve]")]);
  await page.waitForSelector("p.ok, p.error");
  const done = await page.textContent("main");
  assert.ok(await page.$("p.ok"), `the vote was refused: ${done}`);
  assert.match(done, /you voted to approve/);
  assert.equal((await page.textContent("#state")).trim(), "approved");
  assert.deepEqual(await voteRow(), { approver: "ui-approver", vote: "approve", signatureValid: "true" }, "the vote is listed with a valid signature");
  await shot("04-approved");

  const exec = await decide({ tool: "issue_refund", arguments: args, session: "ui-session-approve", approval_id: id });
  assert.equal(exec.decision, "allow", JSON.stringify(exec));
  await outcome(exec.id, "success", { refund_id: "R-1", amount: args.amount });

  const recs = ledger().map((r) => ({ seq: r.seq, ...r.event }));
  const proposal = recs.find((r) => r.kind === "decision" && r.decision_id === id);
  const snapshot = recs.find((r) => r.kind === "snapshot_read" && r.approval_id === id);
  const vote = recs.find((r) => r.kind === "approval_vote" && r.approval_id === id);
  const execution = recs.find((r) => r.kind === "decision" && r.decision_id === exec.id);
  const reveal = recs.find((r) => r.kind === "identity" && r.action === "approval_values_revealed" && r.subject === id);
  assert.equal(reveal?.actor, "ui-approver", "seeing the values as sent is on the record");
  assert.equal(reveal?.details?.via, "ui");
  assert.ok(proposal && snapshot && vote && execution, `proposal, snapshot read, vote and execution are all in the ledger (see ${artifacts}/ledger.ndjson)`);
  assert.equal(snapshot.tool, "payments/get_balance");
  assert.deepEqual(snapshot.arguments, { account_id: "ACC-0001" });
  assert.equal(snapshot.before_state.source, marker);
  assert.ok(proposal.seq < snapshot.seq && snapshot.seq < vote.seq, "the read happened when the call was held");
  assert.equal(proposal.decision.decision, "approval_required");
  assert.deepEqual(proposal.arguments, args);
  assert.equal(vote.approver, "ui-approver", "the vote names the approver");
  assert.equal(vote.state_after, "approved");
  assert.equal(vote.reason, "matches ticket UI-ACC-0001");
  assert.equal(vote.mfa?.verified, true);
  assert.ok(Number.isInteger(vote.mfa?.verified_at), "the vote records when MFA was verified");
  assert.ok(Math.abs(vote.mfa.verified_at * 1000 - voteAt) < 120_000, `MFA time ${vote.mfa.verified_at} is close to the vote`);
  assert.ok(typeof vote.signature === "string" && vote.signature.length > 40, "the vote carries a signature");
  assert.ok(vote.key_id, "the vote names its signing key");
  assert.equal(execution.decision.decision, "allow");
  assert.equal(execution.approval_id, id);
  assert.deepEqual(execution.arguments, args);
  assert.ok(proposal.seq < vote.seq && vote.seq < execution.seq,
    `order proposal -> vote -> execution: #${proposal.seq}, #${vote.seq}, #${execution.seq}`);

  const verified = cli("audit", "verify", "-p", dir);
  assert.match(verified, /^ok: \d+ records verified/m);
  assert.match(verified, /^ok: \d+ approval vote signatures verified with the ledger key/m);
});

test("deny in the browser with a reason; the agent's execution is refused with that reason", async () => {
  // An account the payments server does not know: the snapshot read fails, the call is
  // held all the same, and the page says why there is no before-state.
  const { id, args } = await heldRefund("ui-session-deny", "ACC-0404", 75);
  const reason = "not on any ticket: no such account";

  await page.goto(`${base}/ui/approvals?state=pending`);
  assert.ok((await page.textContent("main")).includes(id), "the second request is in the pending queue");
  await Promise.all([page.waitForURL(new RegExp(`/ui/approvals/${id}$`)), page.click(`a[href="/ui/approvals/${id}"]`)]);
  assert.equal((await page.textContent("#state")).trim(), "pending");
  assert.match(await page.textContent("#before-state-unavailable"),
    /^before-state unavailable: the read tool reported an error: no account ACC-0404$/);
  await shot("05-before-state-unavailable");
  await page.fill("#reason", reason);
  await page.fill("#step-up", await freshCode(approver.secret));
  await Promise.all([page.waitForLoadState("load"), page.click("button[value=deny]")]);
  await page.waitForSelector("p.ok, p.error");
  assert.ok(await page.$("p.ok"), `the vote was refused: ${await page.textContent("main")}`);
  assert.equal((await page.textContent("#state")).trim(), "denied");
  assert.ok((await page.textContent("main")).includes(reason), "the page shows the deny reason");
  assert.deepEqual(await voteRow(), { approver: "ui-approver", vote: "deny", signatureValid: "true" }, "the deny vote is listed with a valid signature");
  await shot("06-denied");

  const exec = await fetch(`${base}/v1/decisions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${agentKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ tool: "issue_refund", arguments: args, session: "ui-session-deny", approval_id: id }),
  });
  const body = await exec.json();
  assert.equal(body.decision, "deny", JSON.stringify(body));
  assert.ok(JSON.stringify(body).includes(reason), `the denial carries the approver's reason: ${JSON.stringify(body)}`);

  const recs = ledger().map((r) => ({ seq: r.seq, ...r.event }));
  const vote = recs.find((r) => r.kind === "approval_vote" && r.approval_id === id);
  assert.ok(vote, "the deny vote is in the ledger");
  assert.equal(vote.approver, "ui-approver");
  assert.equal(vote.state_after, "denied");
  assert.equal(vote.reason, reason);
  assert.ok(typeof vote.signature === "string" && vote.signature.length > 40, "the deny vote carries a signature");
  const refused = recs.find((r) => r.kind === "decision" && r.approval_id === id && r.seq > vote.seq);
  assert.equal(refused?.decision?.decision, "deny", "the refused execution is in the ledger");

  assert.match(cli("audit", "verify", "-p", dir), /^ok: \d+ records verified/m);
});
