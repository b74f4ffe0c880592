#!/usr/bin/env bash
# Interop: simulator pty -> virtual-m5stickc -> mosquitto (Debian) -> subscriber, through a 60 s
# (meter time) broker outage. mosquitto comes from ci/setup.d/40-mosquitto.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --locked -p firmware-host --test it -- --ignored mosquitto
