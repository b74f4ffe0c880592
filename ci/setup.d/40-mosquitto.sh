#!/usr/bin/env bash
# Debian's mosquitto for the virtual M5StickC's broker interop test
# (firmware/host/tests/it/chain.rs, run by ci/checks/40-fw-mosquitto.sh). The test starts its own
# mosquitto on a free loopback port with a temporary config; the system service is not used.
set -euo pipefail
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq mosquitto
fi
