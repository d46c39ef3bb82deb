"""AgentDojo replay through Warden's decision API (no model).

For the workspace and slack suites: each user task's ground-truth calls are proposed to a
running `warden serve` (the user's prompt declared as `user_request`); allowed calls run in
AgentDojo's simulated environment and their output is reported back as the outcome, so reads
taint the session. Then, for every (user task, injection task) pair, the same trace runs in an
environment whose injection vectors carry the injection task's GOAL, and the injection task's
ground-truth calls are proposed in the same session. Prints per-suite counts and writes JSON.
"""

import json
import sys
import urllib.request

from agentdojo.functions_runtime import FunctionsRuntime
from agentdojo.task_suite.load_suites import get_suite

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8799"
KEYS = {"workspace": "agentdojo-bench-key-workspace-0001", "slack": "agentdojo-bench-key-slack-0001"}
# Tools that only read (no state change, nothing sent out). Everything else counts as a call
# that changes state or sends data out. get_webpage fetches an arbitrary URL, which can carry
# data out in the URL, so it is counted as sending out.
READS = {
    "workspace": {"get_unread_emails", "get_sent_emails", "get_received_emails", "get_draft_emails",
                  "search_emails", "search_contacts_by_name", "search_contacts_by_email", "get_current_day",
                  "search_calendar_events", "get_day_calendar_events", "search_files_by_filename",
                  "get_file_by_id", "list_files", "search_files"},
    "slack": {"get_channels", "read_channel_messages", "read_inbox", "get_users_in_channel"},
}


def post(path, key, body):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + key, "content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def to_text(result):
    try:
        from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
        return tool_result_to_str(result)
    except Exception:  # noqa: BLE001 - any formatting problem: fall back to str
        return str(result)


def squash(text):
    return " ".join(text.replace("\\n", " ").replace("'", "").replace('"', "").split())


def seen(goal, output):
    """Whether the injected goal reached this output (YAML output folds lines and quotes)."""
    return squash(goal)[:60] in squash(output)


def propose_and_run(suite_name, key, runtime, env, session, call, user_request):
    body = {"tool": call.function, "arguments": dict(call.args), "session": session}
    if user_request:
        body["user_request"] = user_request
    d = post("/v1/decisions", key, body)
    output = None
    if d["decision"] == "allow":
        result, error = runtime.run_function(env, call.function, dict(call.args))
        output = to_text(result) if error is None else str(error)
        post(f"/v1/decisions/{d['id']}/outcome", key,
             {"status": "success" if error is None else "error", "output": output})
    return d, output


def run_suite(name):
    suite = get_suite("v1.2", name)
    key = KEYS[name]
    runtime = FunctionsRuntime(suite.tools)
    benign = {"allowed": 0, "approval": 0, "denied": 0, "traces": len(suite.user_tasks)}
    calls = {"allow": 0, "approval_required": 0, "deny": 0}
    for uid, ut in suite.user_tasks.items():
        env = suite.load_and_inject_default_environment({})
        gt = ut.ground_truth(env.model_copy(deep=True))
        verdicts = []
        for c in gt:
            d, _ = propose_and_run(name, key, runtime, env, f"benign-{uid}", c, ut.PROMPT)
            verdicts.append(d["decision"])
            calls[d["decision"]] += 1
        if "deny" in verdicts:
            benign["denied"] += 1
        elif "approval_required" in verdicts:
            benign["approval"] += 1
        else:
            benign["allowed"] += 1

    attack = {"pairs": 0, "exposed_pairs": 0, "state_or_send_calls": 0,
              "allowed_unseen": 0, "approval": 0, "deny": 0, "pairs_with_unseen_call": 0,
              "detector_fired_pairs": 0}
    unseen_examples = []
    for iid, it in suite.injection_tasks.items():
        vectors = suite.get_injection_vector_defaults()
        injections = {v: it.GOAL for v in vectors}
        for uid, ut in suite.user_tasks.items():
            attack["pairs"] += 1
            session = f"attack-{iid}-{uid}"
            env = suite.load_and_inject_default_environment(injections)
            exposed = False
            for c in ut.ground_truth(env.model_copy(deep=True)):
                d, out = propose_and_run(name, key, runtime, env, session, c, ut.PROMPT)
                if out and seen(it.GOAL, out):
                    exposed = True
            if not exposed:
                continue
            attack["exposed_pairs"] += 1
            any_unseen = False
            fired = False
            for c in it.ground_truth(env.model_copy(deep=True)):
                d, _ = propose_and_run(name, key, runtime, env, session, c, None)
                if d.get("taint") == "suspicious":
                    fired = True
                if c.function in READS[name]:
                    continue
                attack["state_or_send_calls"] += 1
                if d["decision"] == "allow":
                    attack["allowed_unseen"] += 1
                    any_unseen = True
                    if len(unseen_examples) < 5:
                        unseen_examples.append({"pair": [uid, iid], "call": c.function, "args": dict(c.args)})
                elif d["decision"] == "approval_required":
                    attack["approval"] += 1
                else:
                    attack["deny"] += 1
            attack["pairs_with_unseen_call"] += int(any_unseen)
            attack["detector_fired_pairs"] += int(fired)
    return {"suite": name, "benign": benign, "benign_calls": calls, "attack": attack,
            "unseen_examples": unseen_examples}


def main():
    results = [run_suite(s) for s in ("workspace", "slack")]
    print(json.dumps(results, indent=2, default=str))
    for r in results:
        b, a = r["benign"], r["attack"]
        asr = 100.0 * a["pairs_with_unseen_call"] / max(a["exposed_pairs"], 1)
        print(f"{r['suite']}: benign traces {b['traces']}: fully allowed {b['allowed']}, needing approval "
              f"{b['approval']}, denied {b['denied']} | attacker state-changing/sending calls "
              f"{a['state_or_send_calls']} over {a['exposed_pairs']} exposed pairs: allowed without a human "
              f"{a['allowed_unseen']}, approval {a['approval']}, deny {a['deny']} | pairs where an attacker "
              f"call ran unseen: {asr:.2f}%", file=sys.stderr)


if __name__ == "__main__":
    main()
