#!/usr/bin/env bash
# Independent decoders for interop tests: ndokter's dsmr-parser (P1 telegrams) and bthome-ble (the
# BTHome parser Home Assistant uses). Tests find them at $REPO/.venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check dsmr-parser bthome-ble
