#!/usr/bin/env bash
# Debian's mosquitto (broker + mosquitto_passwd) and openssl (RSA test certificates) for
# firmware-tls's interop tests: TLS 1.3 listeners, a password file and an ACL
# (firmware/tls/tests/*.rs). The tests start their own broker on free loopback ports; the system
# service is not used.
set -euo pipefail
if { ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; } || ! command -v mosquitto_passwd >/dev/null || ! command -v openssl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq mosquitto openssl
fi
