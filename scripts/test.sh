#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script).
#
# Works from a fresh clone on a fresh machine: it needs only the Rust toolchain. The ledger
# tests use embedded SQLite files in temporary directories; nothing else has to run yet.
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

# One closing line over all test binaries.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "\nall test binaries: %d passed, %d failed\n", p, f }' "$CARGO_TARGET_DIR/last-test-run.log"
