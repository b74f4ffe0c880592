#!/usr/bin/env bash
# Fuzzes the dsmr framer and decoder (dsmr/fuzz, cargo-fuzz on nightly) for a fixed budget,
# seeded from fixtures/telegrams. Prints executions and crashes; fails on any crash.
# Budget per target: DSMR_FUZZ_SECONDS (default 30, so about 60 s for both).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${DSMR_FUZZ_SECONDS:-30}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz or the nightly toolchain is missing: run ci/setup.sh" >&2
  exit 1
fi
root="$PWD"
work="${CARGO_TARGET_DIR:-$root/target}/dsmr-fuzz"
mkdir -p "$work"
status=0
for t in framer decode; do
  corpus="$work/corpus/$t"
  artifacts="$work/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  log="$work/$t.log"
  set +e
  (cd dsmr/fuzz && CARGO_TARGET_DIR="$work/build" cargo +nightly fuzz run "$t" "$corpus" "$root/fixtures/telegrams" -- \
      -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/" -timeout=10) >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "$artifacts" -type f | wc -l)
  echo "dsmr fuzz $t: ${seconds}s, executions ${execs:-?}, crashes $crashes, exit $rc"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    tail -n 40 "$log"
    status=1
  fi
done
exit "$status"
