#!/usr/bin/env bash
# Builds and runs the C++ suites (tests/native/test_*.cpp) three ways:
#   release   native build, ctest
#   sanitize  -DBITNET_SANITIZE=ON (AddressSanitizer + UBSan), ctest
#   aarch64   cross-built with scripts/aarch64-toolchain.cmake, ctest runs
#             every binary under qemu-aarch64 -cpu max
# Prints one line per configuration and suite, then "N passed, N failed"
# summing the test cases of every suite; exits non-zero on any failure
# (a configuration that fails to build counts as one failed case).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build_root=${BITNET_NATIVE_BUILD_DIR:-$root/build-native}
jobs=$(nproc)
passed=0
failed=0
report=()

# run_config NAME [cmake options...]
run_config() {
  local name=$1
  shift
  local dir=$build_root/$name log=$build_root/$name.log
  mkdir -p "$dir"
  echo "== native tests: $name"
  if ! cmake -S "$root" -B "$dir" -DBITNET_BUILD_TESTS=ON -DBITNET_BUILD_ADDON=OFF "$@" >"$log" 2>&1 ||
     ! cmake --build "$dir" -j "$jobs" >>"$log" 2>&1; then
    tail -n 40 "$log"
    report+=("$name: BUILD FAILED (log: $log)")
    failed=$((failed + 1))
    return
  fi
  # -V shows each suite's own output, whose last line is "N passed, N failed".
  local ctest_status=0
  (cd "$dir" && ctest -V --timeout 900) >"$log.ctest" 2>&1 || ctest_status=$?
  local counted_fail=0 line suite p f
  while IFS= read -r line; do
    # ctest -V prefixes a test's output with "<test number>: ".
    if [[ $line =~ ^([0-9]+):\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
      suite=$(sed -nE "s/^.*Test +#${BASH_REMATCH[1]}: ([^ ]+) .*$/\1/p" "$log.ctest" | head -n 1)
      p=${BASH_REMATCH[2]}
      f=${BASH_REMATCH[3]}
      report+=("$name/$suite: $p passed, $f failed")
      passed=$((passed + p))
      failed=$((failed + f))
      counted_fail=$((counted_fail + f))
    fi
  done <"$log.ctest"
  sed -nE '/^[0-9]+: (FAIL |  )/p' "$log.ctest"
  grep -E 'tests passed|tests failed' "$log.ctest"
  if [[ $ctest_status -ne 0 && $counted_fail -eq 0 ]]; then
    # A suite crashed or timed out before printing its count.
    sed -nE '/\*\*\*|Failed|Exception/p' "$log.ctest" | tail -n 20
    report+=("$name: ctest failed without a failed case count (log: $log.ctest)")
    failed=$((failed + 1))
  fi
}

run_config release -DCMAKE_BUILD_TYPE=Release
run_config sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITNET_SANITIZE=ON
run_config aarch64 -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$root/scripts/aarch64-toolchain.cmake"

printf '%s\n' "${report[@]}"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
