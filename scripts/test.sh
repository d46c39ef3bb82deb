#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
#
# Works from a fresh clone on a fresh machine: it needs the Rust toolchain and Node.js with npm
# (for the official MCP SDK client and reference servers, installed here from the npm registry
# by `npm ci`). The ledger tests use embedded SQLite files in temporary directories; the schema
# tests also use PostgreSQL on 127.0.0.1:5432, started (or installed) here when it is down.
#
# One build serves every step: `cargo test --workspace --no-run` compiles the tests and, for the
# CLI integration tests, the `warden` binary ($CARGO_TARGET_DIR/debug/warden), which the MCP and
# UI suites then run. (A separate `cargo build -p warden` would resolve features for one package
# instead of the workspace and compile much of the dependency tree a second time.) Clippy checks
# without code generation, so its artifacts are its own. CARGO_TARGET_DIR defaults to a
# directory outside the clone, so repeated runs (and CI on the same machine) reuse it.
#
# Stops at the first failing step (set -e; pipefail makes `cargo test | tee` fail with cargo),
# says which step failed, and exits non-zero. The closing line sums every suite's results.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/warden-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"
WARDEN_BIN="$CARGO_TARGET_DIR/debug/warden"

command -v cargo >/dev/null || { echo "error: cargo is not installed (https://rustup.rs)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true

# Each step's wall time, printed at the end (and when a step fails).
current="" started=$SECONDS step_started=$SECONDS timings=()
step_done() { [ -z "$current" ] || timings+=("$(printf '%5ds  %s' $((SECONDS - step_started)) "$current")"); }
step() { step_done; current="$*"; step_started=$SECONDS; printf '\n==> %s\n' "$*"; }
print_timings() { printf '\nwall time per step:\n'; printf '  %s\n' "${timings[@]}"; printf '  %5ds  total\n' $((SECONDS - started)); }
on_exit() {
  rc=$?
  if [ "$rc" -ne 0 ]; then
    if [ "$current" != "summary" ]; then step_done; print_timings; fi
    printf '\nFAILED (exit %d) in step: %s\n' "$rc" "$current" >&2
  fi
}
trap on_exit EXIT

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build (tests and the warden binary, once for every step)"
cargo test --workspace --locked --no-run

step "PostgreSQL (started, or installed and started, when it is not up; the store tests use it)"
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  if [ ! -d /etc/postgresql ] || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "installing postgresql (apt-get install -y postgresql)"
    { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql; } >/dev/null \
      || { echo "error: PostgreSQL is not installed and could not be installed" >&2; exit 1; }
  fi
  "${sudo[@]}" pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "error: PostgreSQL on 127.0.0.1:5432 did not come up" >&2; exit 1; }
fi
# Each test creates a database of its own on this server and drops it afterwards.
export WARDEN_TEST_POSTGRES="${WARDEN_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
echo "PostgreSQL is up; store tests use $WARDEN_TEST_POSTGRES"

step "tests (unit, golden, property, API, CLI end-to-end incl. SIGKILL durability, full disk, locked store; store on SQLite and PostgreSQL)"
cargo test --workspace --locked 2>&1 | tee "$CARGO_TARGET_DIR/last-test-run.log"
[ -x "$WARDEN_BIN" ] || { echo "error: $WARDEN_BIN was not built by cargo test" >&2; exit 1; }

step "MCP end-to-end (official TypeScript SDK client and server-everything; upstream faults; SIGKILL under load, short)"
command -v node >/dev/null || { echo "error: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
(cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error)
WARDEN_BIN="$WARDEN_BIN" node --test tests/mcp/ 2>&1 | tee "$CARGO_TARGET_DIR/last-node-run.log"

step "approver web UI end-to-end (Debian Chromium via playwright-core: login + TOTP, queue, approve, deny)"
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (apt-get install -y chromium)"
  if [ "$(id -u)" -eq 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  { "${apt_get[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq chromium; } >/dev/null \
    || { echo "error: chromium is not installed and could not be installed (apt-get install chromium)" >&2; exit 1; }
fi
(cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
# Screenshots, the gateway's log and the ledger go to $WARDEN_UI_ARTIFACTS (default tests/ui/artifacts/).
WARDEN_BIN="$WARDEN_BIN" node --test tests/ui/ 2>&1 | tee "$CARGO_TARGET_DIR/last-ui-run.log"

step_done
current="summary"
print_timings
# One closing line over every suite; non-zero when a suite reports a failure or nothing ran.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     /^# pass / { p += $3 } /^# fail / { f += $3 }
     END { printf "\nall suites: %d passed, %d failed\n", p, f; if (f > 0 || p == 0) exit 1 }' "$CARGO_TARGET_DIR/last-test-run.log" "$CARGO_TARGET_DIR/last-node-run.log" \
  "$CARGO_TARGET_DIR/last-ui-run.log"
