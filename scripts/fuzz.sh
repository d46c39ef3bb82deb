#!/usr/bin/env bash
# Run every fuzz target (or the ones named) for a bounded time, one job each, on the committed
# corpus in fuzz/corpus/<target>/; print per-target executions, corpus size and crashes.
# Exits non-zero when any target crashed (the input is kept in fuzz/artifacts/<target>/).
set -euo pipefail
usage() {
  cat <<'TXT'
usage: scripts/fuzz.sh [--cmin] SECONDS [TARGET...]

  SECONDS   time per target (libFuzzer -max_total_time)
  TARGET    fuzz targets to run (default: every one in fuzz/fuzz_targets/)
  --cmin    minimise each corpus afterwards (cargo fuzz cmin), to keep what is committed small

Needs cargo-fuzz (`RUSTC_BOOTSTRAP=1 cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets the stable
toolchain build the targets. Release build with debug assertions and overflow checks, no
sanitizer (the fuzzed code is safe Rust: panics, overflows, timeouts and OOM are what we look
for); set FUZZ_SANITIZER=address to use ASan. Build output goes to $CARGO_TARGET_DIR/fuzz.
TXT
}
cmin=0
case "${1:-}" in -h|--help) usage; exit 0 ;; --cmin) cmin=1; shift ;; esac
[[ "${1:-}" =~ ^[0-9]+$ ]] || { usage >&2; exit 2; }
seconds=$1; shift
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-/var/tmp/warden-target}/fuzz"
flags=(-O -a -s "${FUZZ_SANITIZER:-none}" --target-dir "$target_dir")
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')

cargo fuzz build "${flags[@]}"
results=() failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  rc=0
  cargo fuzz run "${flags[@]}" "$t" "corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1 || rc=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n1)
  crashes=0
  if [ "$rc" -ne 0 ]; then
    crashes=1 failed=1
    echo "--- $t failed (exit $rc); the end of its log:" >&2
    tail -n 40 "$log" >&2
  fi
  if [ "$cmin" -eq 1 ] && [ "$rc" -eq 0 ]; then
    cargo fuzz cmin "${flags[@]}" "$t" "corpus/$t" >/dev/null 2>&1 || echo "warning: cmin of $t failed" >&2
  fi
  files=$(find "corpus/$t" -type f | wc -l)
  results+=("$(printf '%-22s %12s %8s %8s' "$t" "${execs:-?}" "$files" "$crashes")")
  rm -f "$log"
done
printf '\n%-22s %12s %8s %8s\n' target executions corpus crashes
printf '%s\n' "${results[@]}"
printf 'each target ran %ss; corpus total %s\n' "$seconds" "$(du -sh corpus | cut -f1)"
exit "$failed"
