#!/usr/bin/env bash
# `npm test`: builds the addon, then runs every suite — jest (tests/**/*.test.ts),
# the C++ suites (scripts/test-native.sh: native, sanitizers, aarch64 under
# qemu) and the packaging smoke test (scripts/pack-smoke.sh) — and ends with
# one line "N passed, N failed" summing the test cases of all of them. Exits
# non-zero if anything failed. A step that fails without reporting counts
# (a build, a crashed runner) counts as one failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
passed=0
failed=0
summary=()

# add_counts NAME PASSED FAILED
add_counts() {
  summary+=("$1: $2 passed, $3 failed")
  passed=$((passed + $2))
  failed=$((failed + $3))
}

# run_step NAME LOG COMMAND...: runs the command with its output shown and
# logged; returns its exit status.
run_step() {
  local name=$1 log=$2
  shift 2
  echo "==== $name"
  local status=0
  "$@" 2>&1 | tee "$log" || status=$?
  return $status
}

# A runner that ends with "N passed, N failed" (ours and the C++ harness).
plain_suite() {
  local name=$1 log=$logs/$1.log
  shift
  local status=0
  run_step "$name" "$log" "$@" || status=$?
  local counts
  counts=$(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$log" | tail -n 1)
  if [[ -n $counts ]]; then
    # shellcheck disable=SC2086
    add_counts "$name" $counts
  fi
  if [[ $status -ne 0 && ( -z $counts || ${counts#* } == 0 ) ]]; then
    add_counts "$name (exit status $status)" 0 1
  fi
}

build_status=0
run_step "build addon (cmake-js)" "$logs/build.log" npm run --silent build:native || build_status=$?
if [[ $build_status -ne 0 ]]; then
  add_counts "addon build" 0 1
else
  jest_status=0
  run_step jest "$logs/jest.log" npx jest --ci || jest_status=$?
  # Jest's summary: "Tests:       1 failed, 2 skipped, 88 passed, 91 total".
  tests_line=$(grep -E '^Tests:' "$logs/jest.log" | tail -n 1)
  jest_passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$tests_line")
  jest_failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$tests_line")
  add_counts jest "${jest_passed:-0}" "${jest_failed:-0}"
  if [[ $jest_status -ne 0 && ${jest_failed:-0} -eq 0 ]]; then
    # A test file that failed to compile or load reports no failed test.
    add_counts "jest (exit status $jest_status)" 0 1
  fi
fi

plain_suite native bash scripts/test-native.sh
plain_suite pack-smoke bash scripts/pack-smoke.sh

echo "==== summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
