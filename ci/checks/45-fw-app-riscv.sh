#!/usr/bin/env bash
# firmware-app stays no_std and allocation-free: it must build for the ESP32-C3 target.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked --release -p firmware-app --target riscv32imc-unknown-none-elf
