#!/usr/bin/env bash
# Prints the flash and static RAM size of an esp-hal firmware ELF, from its section headers.
#
#   flash       bytes the image stores: every allocated PROGBITS section (code run from flash,
#               code copied to IRAM, read-only data, initial values of .data)
#   static RAM  .data + .bss (+ .noinit): RAM taken before the heap and the stack
#   iram code   code copied to RAM at boot (.trap, .rwtext*, .iram*); on the ESP32-C3 it shares
#               the SRAM with data
#   heap (reclaimed)  .dram2_uninit: RAM the second-stage bootloader used, given to the heap
set -euo pipefail
elf="${1:?usage: elf-size.sh FIRMWARE.elf}"
command -v readelf >/dev/null || { echo "elf-size.sh: readelf (Debian package binutils) is needed" >&2; exit 1; }
[ -f "$elf" ] || { echo "elf-size.sh: no such ELF: $elf" >&2; exit 1; }
flash=0 data=0 bss=0 iram=0 reclaimed=0
# Section lines look like "[Nr] Name Type Addr Off Size ES Flg ..."; drop the "[ n]" prefix first.
while read -r name type _addr _off size _es flags _rest; do
  [[ "$flags" == *A* ]] || continue
  size=$((16#$size))
  [ "$type" = PROGBITS ] && flash=$((flash + size))
  case "$name" in
    .data* | .rtc_fast.data* | .rtc_slow.data*) data=$((data + size)) ;;
    .bss* | .noinit* | .rtc_fast.bss* | .rtc_slow.bss*) bss=$((bss + size)) ;;
    .trap* | .rwtext* | .iram* | .vectors*) [ "$type" = PROGBITS ] && iram=$((iram + size)) ;;
    .dram2_uninit) reclaimed=$((reclaimed + size)) ;;
  esac
done < <(readelf -SW "$elf" | sed -n 's/^ *\[ *[0-9]*\] *//p')
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
printf 'flash:       %8d bytes (%s)\n' "$flash" "$(kib "$flash")"
printf 'static RAM:  %8d bytes (%s) = .data %d + .bss %d\n' $((data + bss)) "$(kib $((data + bss)))" "$data" "$bss"
printf 'iram code:   %8d bytes (in SRAM too, copied from flash at boot)\n' "$iram"
printf 'heap in reclaimed bootloader RAM: %d bytes\n' "$reclaimed"
