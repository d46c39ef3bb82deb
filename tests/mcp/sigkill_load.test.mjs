// The crash suite's short setting for the default test run: a few SIGKILLs of `warden serve`
// under load (the long run: scripts/sigkill.sh).
import { test } from "node:test";
import assert from "node:assert/strict";
import { sigkillSuite } from "./sigkill_load.mjs";

test("SIGKILL under load at random moments: nothing acknowledged is lost, nothing runs unrecorded", async () => {
  const t = await sigkillSuite({ iterations: 4, seconds: 40, log: () => {} });
  assert.ok(t.decisions > 0 && t.mcp > 0, `load reached both doors: ${JSON.stringify(t)}`);
  assert.equal(t.lost, 0, JSON.stringify(t));
  assert.equal(t.unrecorded, 0, JSON.stringify(t));
});
