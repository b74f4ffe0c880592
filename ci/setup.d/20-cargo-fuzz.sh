#!/usr/bin/env bash
# cargo-fuzz for ci/checks/20-dsmr-fuzz.sh; the fuzz build itself runs on the nightly toolchain.
set -euo pipefail
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
