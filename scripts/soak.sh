#!/usr/bin/env bash
# The soak: steady load through one `warden serve` for MINUTES, sampling its RSS and open file
# descriptors every 5 s; fails when either grows beyond its bound after the warm-up, or when an
# acknowledged call has no record (tests/mcp/soak.mjs).
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ] || [ $# -gt 1 ]; then
  cat <<'TXT'
usage: scripts/soak.sh [MINUTES]

  MINUTES  how long to drive load (default 10)

Bounds: RSS may grow at most 64 MiB and open descriptors at most 16 between the first and the
last samples after the warm-up (the first fifth of the run, at least one minute). Uses
$WARDEN_BIN, default $CARGO_TARGET_DIR/debug/warden. More options: node tests/mcp/soak.mjs --help.
TXT
  exit 0
fi
cd "$(dirname "$0")/.."
export WARDEN_BIN="${WARDEN_BIN:-${CARGO_TARGET_DIR:-/var/tmp/warden-target}/debug/warden}"
[ -x "$WARDEN_BIN" ] || { echo "error: $WARDEN_BIN is not built" >&2; exit 1; }
[ -d tests/mcp/node_modules ] || (cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error)
exec node tests/mcp/soak.mjs --minutes "${1:-10}"
