#!/usr/bin/env bash
# Installs what a fresh machine lacks for ci/test.sh: each ci/setup.d/*.sh adds one concern
# (Debian packages, rustup targets, a Python virtualenv, cargo tools). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in ci/setup.d/*.sh; do
  [ -e "$step" ] || continue
  echo "== setup: ${step#ci/setup.d/}"
  bash "$step"
done
