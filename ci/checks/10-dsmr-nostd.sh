#!/usr/bin/env bash
# dsmr is no_std and allocation-free: build it for the ESP32-C3 target and report its code size.
# The size is measured honestly on a linked bare-metal program (dsmr/nostd-size: framer with a
# 4 KiB buffer, CRC, typed decode and writer; opt-level "s", LTO), not on an rlib.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=riscv32imc-unknown-none-elf
cargo build --locked --release -p dsmr --target "$target"
tdir="${CARGO_TARGET_DIR:-$PWD/target}/dsmr-nostd-size"
(cd dsmr/nostd-size && CARGO_TARGET_DIR="$tdir" cargo build --release --target "$target")
elf="$tdir/$target/release/dsmr-nostd-size"
echo "dsmr on $target (framer<4096> + CRC + decode + emit, linked, opt-level s, LTO):"
flash=0
while read -r name hex; do
  bytes=$((16#$hex))
  printf '  %-8s %7d bytes\n' "$name" "$bytes"
  case "$name" in .text|.rodata) flash=$((flash + bytes)) ;; esac
done < <(readelf -SW "$elf" | sed 's/^ *\[ *[0-9]*\] *//' | awk '$1 ~ /^\.(text|rodata|data|sdata|bss|sbss)$/ { print $1, $5 }')
echo "  code in flash (.text + .rodata, incl. 8 KiB of CRC tables): $flash bytes"
echo "  (.data/.bss: the probe's static Framer<4096>, i.e. RAM for the 4 KiB telegram buffer)"
