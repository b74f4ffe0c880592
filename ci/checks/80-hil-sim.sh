#!/usr/bin/env bash
# cargo hil: the default scenario suite against the virtual M5StickC (normal day, every fault kind,
# broker outage and overflow, WiFi flap, DSMR 4 power, P1 unplugged, Belgian meter, DST change, and
# the 7-day soak), then the harness self-tests. See ci/hil-sim.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -n "${HIL_SIM_IN_SHARDS:-}" ]; then
  echo "skipped: the workflow runs ci/hil-sim.sh in its own sharded jobs (HIL_SIM_IN_SHARDS is set)"
  exit 0
fi
bash ci/hil-sim.sh
