#!/usr/bin/env bash
# The host build of dsmr takes the x86-64 fast paths (PCLMULQDQ CRC, SSE2 scans); the ESP32 takes
# the portable ones (CRC tables, eight-byte SWAR scans). This runs dsmr's unit and property tests
# on the portable paths, so the code the device runs is tested on the host too.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --locked -p dsmr --features portable --lib --test conformance --test properties
