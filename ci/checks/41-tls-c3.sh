#!/usr/bin/env bash
# firmware-tls builds for the ESP32-C3 (no_std, no heap) with the pinned lockfile.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked -p firmware-tls --target riscv32imc-unknown-none-elf
