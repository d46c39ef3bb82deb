#!/usr/bin/env bash
# The crash suite: SIGKILL `warden serve` under load at random moments, restart, and check that
# no acknowledged call was lost and no call ran without its record (tests/mcp/sigkill_load.mjs).
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] || [ $# -gt 2 ]; then
  cat <<'TXT'
usage: scripts/sigkill.sh [ITERATIONS [SECONDS]]

  ITERATIONS  kill/restart cycles at most (default 50)
  SECONDS     stop starting new cycles after this long (default 300)

Uses $WARDEN_BIN, default $CARGO_TARGET_DIR/debug/warden (build it with `cargo build -p warden`
or `cargo test --workspace --no-run`). More options: node tests/mcp/sigkill_load.mjs --help.
TXT
  exit 0
fi
cd "$(dirname "$0")/.."
export WARDEN_BIN="${WARDEN_BIN:-${CARGO_TARGET_DIR:-/var/tmp/warden-target}/debug/warden}"
[ -x "$WARDEN_BIN" ] || { echo "error: $WARDEN_BIN is not built" >&2; exit 1; }
[ -d tests/mcp/node_modules ] || (cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error)
exec node tests/mcp/sigkill_load.mjs --iterations "${1:-50}" --seconds "${2:-300}"
