#!/usr/bin/env bash
# Hostile input per category (issue 7 §3, figure of §4): runs exactly the tests that feed the
# gateway, the simulator and the harness bad input, with HOSTILE_INPUTS_LOG set. Each of them,
# once all its assertions passed (every bad input rejected with a named error, nothing panicked),
# appends `category<TAB>count<TAB>test`, the count taken from its own case list or loop. Adds the
# dsmr fuzz executions when ci/checks/20-dsmr-fuzz.sh left its logs. Prints the table and writes
# it to target/hostile-inputs.md. Fails if a test fails or a test that should report did not.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
root="$PWD"
mkdir -p target
log="$root/target/hostile-inputs.log"
: >"$log"
export HOSTILE_INPUTS_LOG="$log"
expected=()

# run PACKAGE "TARGET ARGS" TEST... : the named tests (exact libtest names), all of which must report.
run() {
  local pkg=$1 targets=$2
  shift 2
  # shellcheck disable=SC2086
  cargo test --locked -q -p "$pkg" $targets -- --exact "$@" >"$root/target/hostile-inputs.$pkg.out" 2>&1 || {
    cat "$root/target/hostile-inputs.$pkg.out"
    echo "hostile inputs: tests in $pkg failed" >&2
    exit 1
  }
  for t in "$@"; do expected+=("$pkg ${t##*::}"); done
}

run dsmr "--test properties" \
  arbitrary_bytes_never_panic mutated_fixtures_never_panic framer_reports_each_problem_distinctly_and_counts_it
run simulator "--lib --test it" \
  decode::tests::bad_telegrams_yield_error_objects_and_count_as_failures \
  profile::tests::errors_name_file_line_and_field \
  cli::a_malformed_profile_error_names_file_line_and_field
run firmware-app "--lib --test it" \
  codec::decode_never_panics_on_garbage config::each_bad_field_is_named \
  bthome::tests::decode_refuses_malformed_input bthome::tests::wrong_key_or_address_is_rejected
run firmware-host "--lib --test it" \
  chain::raw_telegrams_wifi_drop_and_ha_birth chain::own_status_topic_tolerates_garbage_oversize_and_flood \
  config_file::errors_name_file_line_and_field config_file::binary_rejects_a_bad_config_file \
  ble_sink::tests::bad_urls_say_what_is_wrong
run firmware-tls "--lib" \
  pem::tests::rejects_malformed der::tests::malformed_is_none_not_panic \
  x509::tests::bad_times_are_rejected verify::tests::mangled_certificates_never_panic_or_pass
run hil "--bin hil" \
  scenario::tests::each_bad_field_is_named_with_its_line rig::tests::bad_rig_fields_are_named_with_their_line \
  rig::tests::an_absent_board_fails_naming_what_is_there rig::tests::flashing_a_missing_tool_or_a_hung_one_fails_in_time

# The harness self-test (a device that dies, a pty that closes, a taken broker port, a vanished
# serial port) runs in the release profile, which ci/checks/80-hil-sim.sh has just built.
notes=()
if [ -n "${HIL_SIM_IN_SHARDS:-}" ]; then
  notes+=("cargo hil selftest left out: HIL_SIM_IN_SHARDS is set (the sharded hil jobs run it)")
else
  cargo hil selftest >"$root/target/hostile-inputs.selftest.out" 2>&1 || {
    cat "$root/target/hostile-inputs.selftest.out"
    echo "hostile inputs: cargo hil selftest failed" >&2
    exit 1
  }
  expected+=("hil selftest")
fi

# Every test that ran must have reported (a renamed or filtered-out test would otherwise vanish).
for e in "${expected[@]}"; do
  name=${e#* }
  if ! cut -f3 "$log" | grep -qE "(::| )${name}( |$)"; then
    echo "hostile inputs: $e ran but wrote no line to HOSTILE_INPUTS_LOG" >&2
    exit 1
  fi
done

# dsmr fuzzing (ci/checks/20-dsmr-fuzz.sh keeps each target's libFuzzer log and crash artifacts).
fuzz="${CARGO_TARGET_DIR:-$root/target}/dsmr-fuzz"
for t in framer decode; do
  f="$fuzz/$t.log"
  execs=$([ -f "$f" ] && grep -o 'stat::number_of_executed_units: *[0-9]*' "$f" | grep -o '[0-9]*$' | tail -1 || true)
  if [ -n "$execs" ]; then
    crashes=$(find "$fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)
    printf 'meter bytes\t%s\tdsmr fuzz %s (cargo fuzz, %s, crashes %s)\n' "$execs" "$t" "$(date -u -r "$f" '+%Y-%m-%d %H:%M UTC')" "$crashes" >>"$log"
    if [ "$crashes" -ne 0 ]; then notes+=("dsmr fuzz $t left $crashes crash artifacts in $fuzz/artifacts/$t"); fi
  else
    notes+=("dsmr fuzz $t left out: no log with executions at $f (run ci/checks/20-dsmr-fuzz.sh first)")
  fi
done

md="$root/target/hostile-inputs.md"
untested=()
{
  echo "| category | bad inputs tried | tests |"
  echo "|---|---:|---:|"
  for c in "meter bytes" "MQTT input to the device" "device config file" "scenario files" "rig files" \
    "simulator profiles" "BLE/TLS inputs" "harness faults"; do
    awk -F'\t' -v c="$c" '$1 == c { n += $2; t++ } END { printf "| %s | %d | %d |\n", c, n, t }' "$log"
    if ! cut -f1 "$log" | grep -qxF "$c"; then untested+=("$c"); fi
  done
  awk -F'\t' '{ n += $2; t++ } END { printf "| **total** | **%d** | **%d** |\n", n, t }' "$log"
  echo
  echo "Each line below is a test that fed that many bad inputs and passed: every one rejected with a"
  echo "named error (or, for random bytes, decoded without a panic), nothing panicked."
  echo
  sort -t$'\t' -k1,1 -k3,3 "$log" | awk -F'\t' '{ printf "- %s: %d, %s\n", $1, $2, $3 }'
  for n in "${notes[@]+"${notes[@]}"}"; do echo "- note: $n"; done
} >"$md"
cat "$md"
# A category of issue 7 §3 with no test would show 0: fail rather than print a hole as a figure.
if [ "${#untested[@]}" -ne 0 ]; then
  echo "hostile inputs: no test reported for: ${untested[*]}" >&2
  exit 1
fi
