#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
#
# Works from a fresh clone on a fresh machine: it needs the Rust toolchain and Node.js with npm
# (for the official MCP SDK client and reference servers, installed here from the npm registry
# by `npm ci`). The ledger tests use embedded SQLite files in temporary directories.
# One build is shared by every step: CARGO_TARGET_DIR defaults to a directory outside the
# clone, so repeated runs (and CI on the same machine) reuse it; a fresh machine builds once.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/warden-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

command -v cargo >/dev/null || { echo "error: cargo is not installed (https://rustup.rs)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true

step() { printf '\n==> %s\n' "$*"; }

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (unit, golden, property, API, CLI end-to-end incl. SIGKILL durability)"
cargo test --workspace --locked 2>&1 | tee "$CARGO_TARGET_DIR/last-test-run.log"

step "MCP end-to-end (official TypeScript SDK client and server-everything, through warden mcp stdio)"
command -v node >/dev/null || { echo "error: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
(cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error)
cargo build -p warden --locked
WARDEN_BIN="$CARGO_TARGET_DIR/debug/warden" node --test tests/mcp/ 2>&1 | tee "$CARGO_TARGET_DIR/last-node-run.log"

step "approver web UI end-to-end (Debian Chromium via playwright-core: login + TOTP, queue, approve, deny)"
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (apt-get install -y chromium)"
  if [ "$(id -u)" -eq 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  { "${apt_get[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq chromium; } >/dev/null \
    || { echo "error: chromium is not installed and could not be installed (apt-get install chromium)" >&2; exit 1; }
fi
(cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
# Screenshots, the gateway's log and the ledger go to $WARDEN_UI_ARTIFACTS (default tests/ui/artifacts/).
WARDEN_BIN="$CARGO_TARGET_DIR/debug/warden" node --test tests/ui/ 2>&1 | tee "$CARGO_TARGET_DIR/last-ui-run.log"

# One closing line over every suite.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "\nall suites: %d passed, %d failed\n", p, f }' "$CARGO_TARGET_DIR/last-test-run.log" "$CARGO_TARGET_DIR/last-node-run.log" \
  "$CARGO_TARGET_DIR/last-ui-run.log"
