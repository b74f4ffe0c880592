#!/usr/bin/env bash
# The one command that runs every test: the workspace's tests, then each ci/checks/*.sh
# (no_std builds, interop with other parsers and brokers, fuzzing, firmware images).
# Run ci/setup.sh once first on a fresh machine (.ci/run does both).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
echo "== cargo test --workspace"
cargo test --workspace --all-targets --locked
for check in ci/checks/*.sh; do
  [ -e "$check" ] || continue
  echo "== check: ${check#ci/checks/}"
  bash "$check"
done
echo "== all tests passed"
