#!/usr/bin/env bash
# Builds the ESP32 board firmware (firmware/m5stickc) and prints its flash and static RAM size.
#
#   ci/build-firmware.sh            # ESP32-C3 variant (stable Rust, riscv32imc-unknown-none-elf)
#   ci/build-firmware.sh esp32c3    # the same
#   ci/build-firmware.sh esp32      # the M5StickC (Xtensa): needs espup's `esp` toolchain
#
# Extra arguments after the chip go to cargo (e.g. --no-default-features --features esp32c3).
# P1GW_CONFIG=path/to/gateway.toml bakes the device configuration in (firmware/m5stickc/README.md);
# without it the image stops at boot asking for one, and its size understates the gateway.
# The ELF path is printed last, for espflash (`espflash flash --monitor <elf>`).
set -euo pipefail
cd "$(dirname "$0")/../firmware/m5stickc"
chip="${1:-esp32c3}"
[ $# -gt 0 ] && shift
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  CARGO_TARGET_DIR="$(cd "$OLDPWD" && realpath -m "$CARGO_TARGET_DIR")"
  export CARGO_TARGET_DIR
fi
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
if [ -n "${P1GW_CONFIG:-}" ]; then
  P1GW_CONFIG="$(cd "$OLDPWD" && realpath "$P1GW_CONFIG")"
  export P1GW_CONFIG
  echo "configuration: $P1GW_CONFIG"
else
  echo "note: P1GW_CONFIG is not set: the image has no configuration and will only report that at boot" >&2
fi

case "$chip" in
  esp32c3)
    target=riscv32imc-unknown-none-elf
    cargo build --release --locked "$@"
    ;;
  esp32)
    target=xtensa-esp32-none-elf
    if ! rustup toolchain list 2>/dev/null | grep -qE '^esp( |$)'; then
      cat >&2 <<'MSG'
error: the M5StickC (ESP32, Xtensa) build needs Espressif's `esp` Rust toolchain, which is not installed.
Install it on a machine that can reach GitHub, then run this script again:
    cargo install espup --locked
    espup install            # installs the `esp` toolchain and writes ~/export-esp.sh
    . ~/export-esp.sh
See firmware/m5stickc/README.md. The ESP32-C3 variant builds on stable: ci/build-firmware.sh esp32c3
MSG
      exit 2
    fi
    # esp32.toml sets the Xtensa target, build-std and the M5StickC's minimum chip revision.
    cargo +esp build --release --locked --config esp32.toml \
      --no-default-features --features esp32,ble "$@"
    ;;
  *)
    echo "error: unknown chip '$chip' (expected esp32c3 or esp32)" >&2
    exit 2
    ;;
esac

elf="$target_dir/$target/release/firmware-m5stickc"
bash elf-size.sh "$elf"
echo "elf: $elf"
