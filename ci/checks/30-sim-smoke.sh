#!/usr/bin/env bash
# p1-sim end to end through its CLI: 200 telegrams of every profile in virtual time (crossing the
# October DST change) into a file, read back by ndokter's dsmr_parser (TelegramBuffer + parser, its own CRC
# check; every telegram must parse. Then a fault scenario: the corrupted ones must be rejected and
# the summary must count them. (The TCP interop test with values compared runs in cargo test.)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
[ -x "$PY" ] || { echo "30-sim-smoke: $PY missing; run ci/setup.sh" >&2; exit 1; }
cargo build --quiet --locked -p simulator --bin p1-sim
BIN="${CARGO_TARGET_DIR:-target}/debug/p1-sim"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

count() { # file spec -> number of telegrams dsmr_parser accepts (its buffer + parser, CRC checked)
  "$PY" - "$1" "$2" <<'PY'
import logging, sys
logging.disable(logging.CRITICAL)
from dsmr_parser import telegram_specifications
from dsmr_parser.clients.telegram_buffer import TelegramBuffer
from dsmr_parser.exceptions import InvalidChecksumError, ParseError
from dsmr_parser.parsers import TelegramParser
buf, parser, n = TelegramBuffer(), TelegramParser(getattr(telegram_specifications, sys.argv[2])), 0
for line in open(sys.argv[1], "rb").read().splitlines(keepends=True):
    buf.append(line.decode("latin-1"))  # garbage between telegrams is not UTF-8
    for t in buf.get_all():
        try:
            parser.parse(t)
            n += 1
        except (InvalidChecksumError, ParseError):
            pass
print(n)
PY
}
for pair in iskra-am550-td2:V5 dsmr5-single-phase:V5 kaifa-dsmr42:V4 dsmr22-iskra-mt382:V2_2 fluvius-emucs:BELGIUM_FLUVIUS sagemcom-t211:BELGIUM_FLUVIUS; do
  profile=${pair%%:*}; spec=${pair##*:}
  "$BIN" run --profile "$profile" --file "$TMP/$profile.txt" --speed max --count 200 --seed 3 \
    --start 2026-10-25T02:58:00 --progress 0 </dev/null 2>"$TMP/$profile.err"
  n=$(count "$TMP/$profile.txt" "$spec")
  echo "30-sim-smoke: $profile: dsmr_parser accepted $n/200"
  [ "$n" -eq 200 ] || { cat "$TMP/$profile.err"; exit 1; }
done

cat > "$TMP/faults.toml" <<'TOML'
[[fault]]
kind = "corrupt_crc"
every = 10
[[fault]]
kind = "garbage"
every = 7
TOML
"$BIN" run --file "$TMP/faulty.txt" --speed max --count 100 --scenario "$TMP/faults.toml" --progress 0 </dev/null 2>"$TMP/faulty.err"
grep -q "fault corrupt_crc *10" "$TMP/faulty.err" || { cat "$TMP/faulty.err"; exit 1; }
n=$(count "$TMP/faulty.txt" V5)
echo "30-sim-smoke: faults: dsmr_parser accepted $n/100 (10 corrupt CRCs)"
[ "$n" -eq 90 ]
