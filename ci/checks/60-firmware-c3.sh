#!/usr/bin/env bash
# Builds (compiles and links) the ESP32-C3 variant of the board firmware, so API drift in esp-hal,
# esp-radio or firmware-app fails CI, and prints the image's flash and static RAM size, once with a
# plain mqtt:// broker and once with an mqtts:// broker and a baked-in CA (TLS live); then runs the
# board crate's host tests (firmware/m5stickc/tests-host).
# The M5StickC (Xtensa) variant needs espup's toolchain and is built on the bench: see
# firmware/m5stickc/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
# A configuration with every transport live, so the measured image is the whole gateway.
P1GW_CONFIG="$PWD/firmware/m5stickc/ci.toml" bash ci/build-firmware.sh esp32c3
echo "firmware-c3 build: $(( $(date +%s) - start )) s"
# The same gateway with TLS to the broker: mqtts://, username/password, a throwaway P-256 CA.
start=$(date +%s)
P1GW_CONFIG="$PWD/firmware/m5stickc/ci-tls.toml" P1GW_CA="$PWD/firmware/m5stickc/ci-ca.pem" \
  bash ci/build-firmware.sh esp32c3
echo "firmware-c3 build with TLS: $(( $(date +%s) - start )) s"
# The board crate's hardware-free parts, on the host (its own workspace; explicit host target so
# firmware/m5stickc/.cargo/config.toml can never select RISC-V here).
cargo test --locked --manifest-path firmware/m5stickc/tests-host/Cargo.toml \
  --target "$(rustc -vV | sed -n 's/^host: //p')"
