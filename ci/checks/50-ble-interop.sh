#!/usr/bin/env bash
# BTHome advertisements decoded by bthome-ble (Home Assistant's parser), plain and encrypted, via
# the virtual radio's UDP datagrams. CI=1 makes a missing .venv a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/../.."
CI=1 cargo test --locked -p firmware-app --test bthome_interop
