#!/usr/bin/env bash
# cargo hil: every scenario against the virtual M5StickC (the default suite: normal day, every fault
# kind, broker outage and overflow, WiFi flap, DSMR 4 power, P1 unplugged, Belgian meter, DST change;
# and the 7-day soak, which a plain `cargo hil sim` leaves out), then the harness self-tests.
# See ci/hil-sim.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -n "${HIL_SIM_IN_SHARDS:-}" ]; then
  echo "skipped: the workflow runs ci/hil-sim.sh in its own sharded jobs (HIL_SIM_IN_SHARDS is set)"
  exit 0
fi
bash ci/hil-sim.sh
