#!/usr/bin/env bash
# The release gate without hardware, as one local command: every scenario (the default suite and
# the soak, which a plain `cargo hil sim` leaves out) against the virtual M5StickC (JUnit in target/hil/junit.xml, HTML report in target/hil/report.html), then the
# harness self-tests (a device that dies, a pty that closes, a taken broker port, a vanished serial
# port must each end as a failure, in time). With CI=true a snapshot mismatch fails and nothing is
# written. Extra arguments go to `cargo hil sim` (e.g. a filter, or `--shard 1/2`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p target/hil
start=$(date +%s)
cargo hil sim --junit target/hil/junit.xml "$@" -- --include-ignored
echo "hil sim: $(( $(date +%s) - start )) s wall including the build"
cargo hil selftest
