#!/usr/bin/env bash
# The ESP32-C3 target: the dsmr no_std build and the firmware image.
set -euo pipefail
rustup target add riscv32imc-unknown-none-elf
