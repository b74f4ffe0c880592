#!/usr/bin/env bash
# firmware-tls with the `rsa` feature against an RSA-2048 mosquitto (certificates made by openssl)
# and a P-384 one.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --locked -p firmware-tls --features rsa --test mosquitto_key_types
