#!/usr/bin/env bash
# AgentDojo replay benchmark: bench/agentdojo/run.sh [WARDEN_BIN]
# Installs PyPI agentdojo into a venv under /var/tmp (once), starts `warden serve` on this
# directory's project with a fresh ledger, replays the workspace and slack suites through the
# decision API, prints the counts (stderr) and the JSON result (stdout, also in results.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-/var/tmp/warden-target}/debug/warden}"
venv=/var/tmp/agentdojo-venv
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q agentdojo; }
work="$(mktemp -d)"
cp -r "$here/project/." "$work/"
"$bin" serve -p "$work" --listen 127.0.0.1:8799 > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:8799/healthz >/dev/null && break; sleep 0.2; done
"$venv/bin/python" "$here/replay.py" http://127.0.0.1:8799 | tee "$here/results.json"
