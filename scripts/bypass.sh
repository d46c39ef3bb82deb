#!/usr/bin/env bash
# The bypass suite: every test that tries a way around a control, in one command.
#
#   scripts/bypass.sh          run them (a build of the tests and the binary first)
#   scripts/bypass.sh --help   this text
#
# Approval replay, argument swap and self-approval; CSRF (API, UI forms, the login form);
# resource URI traversal; UI route traversal; header and log injection; Unicode confusables
# in tool names; requests sent as notifications through `warden mcp stdio`; sign-in and MFA
# guessing; write amplification; taint eviction. All of them also run in scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/warden-target}"

cargo test --locked -p warden-gateway --test bypass --test approvals --test cookies \
  --test session_taint
cargo test --locked -p warden-gateway --test identity -- \
  lockout step_up_and_vote sign_in_failures sessions_need_csrf forged_and_truncated
cargo test --locked -p warden-gateway --test pipeline -- write_amplification every_door
cargo test --locked -p warden-core --test core -- resource_grant_prefix two_agents_sharing
cargo test --locked -p warden-core --lib -- redact::tests::data_stored_in_the_clear \
  redact::tests::regression_tokens_glued
cargo build --locked -p warden
(cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error)
WARDEN_BIN="$CARGO_TARGET_DIR/debug/warden" node --test \
  --test-name-pattern='without an id|redirect|rug|changed tool definition' \
  tests/mcp/stdio_gate.test.mjs tests/mcp/credentials.test.mjs tests/mcp/rug_pull.test.mjs
echo "bypass suite: all passed"
