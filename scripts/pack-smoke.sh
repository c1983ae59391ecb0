#!/usr/bin/env bash
# Packs bitnet-gen the way it ships (prebuilt addon + compiled TypeScript) and
# checks the tarball from a consumer's side:
#   1. a copy of the package builds its prebuild (prebuildify) and dist/, and packs;
#   2. the tarball installs into an empty project with --ignore-scripts, so
#      only the shipped prebuild can be loaded, and a gemv through it matches
#      a plain JS computation;
#   3. the bundled demo model (dist/demo.bitnet, converted by the prepack step)
#      generates text through the installed CLI, offline;
#   4. without a matching binary, loading fails with the actionable message.
# Works in a temporary directory; prints "N passed, N failed".
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then
    echo "ok   $what"
    passed=$((passed + 1))
  else
    echo "FAIL $what"
    failed=$((failed + 1))
  fi
}

# The package's own files, without build outputs or dependencies.
copy_package() {
  mkdir -p "$work/pkg"
  tar -C "$root" --exclude=./node_modules --exclude=./build --exclude='./build-*' \
    --exclude=./prebuilds --exclude=./dist --exclude=./.git --exclude='./*.tgz' -cf - . |
    tar -C "$work/pkg" -xf -
  ln -s "$root/node_modules" "$work/pkg/node_modules"
}

build_and_pack() {
  (cd "$work/pkg" && npm run --silent build:prebuilds >"$work/prebuild.log" 2>&1 &&
    npm pack --silent --pack-destination "$work" >"$work/pack.log" 2>&1) ||
    { tail -n 30 "$work/prebuild.log" "$work/pack.log"; return 1; }
  tarball=$(ls "$work"/bitnet-gen-*.tgz)
  tar -tzf "$tarball" | grep '^package/prebuilds/[^/]*/[^/]*\.node$'
}

install_tarball() {
  mkdir -p "$work/consumer"
  (cd "$work/consumer" && npm init -y >/dev/null &&
    npm install --ignore-scripts --prefer-offline --no-audit --no-fund "$tarball" >"$work/install.log" 2>&1) ||
    { tail -n 30 "$work/install.log"; return 1; }
}

gemv_through_package() {
  (cd "$work/consumer" && node -e '
    const bitnet = require("bitnet-gen");
    const rows = 70, cols = 200;
    const w = Int8Array.from({ length: rows * cols }, (_, i) => ((i * 7) % 3) - 1);
    const x = Float32Array.from({ length: cols }, (_, i) => Math.sin(i));
    const rt = new bitnet.Runtime();
    const { q, scale } = rt.quantizeActivations(x);
    const out = new Float32Array(rows);
    rt.gemv(q, [{ matrix: bitnet.TernaryMatrix.fromValues(w, rows, cols, 1), outScale: 1 / scale, out }]);
    for (let n = 0; n < rows; n++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += w[n * cols + k] * q[k];
      if (Math.fround(s * Math.fround(1 / scale)) !== out[n]) throw new Error(`row ${n}: ${out[n]} != ${s / scale}`);
    }
    console.log(`     gemv ok on ${rt.isa} with ${rt.threads} threads`);')
}

demo_model_through_cli() {
  tar -tzf "$tarball" | grep -x 'package/dist/demo.bitnet' >/dev/null || { echo "     dist/demo.bitnet is not in the tarball"; return 1; }
  local text
  text=$(cd "$work/consumer" && npx bitnet-gen --model demo -n 8 --temperature 0 "In the beginning") || return 1
  echo "     $text" | head -n 3
  [[ $text =~ [A-Za-z]{2} ]]
}

missing_binary_message() {
  rm -rf "$work/consumer/node_modules/bitnet-gen/prebuilds"
  local message
  if message=$(cd "$work/consumer" && node -e 'require("bitnet-gen")' 2>&1); then
    echo "     loading succeeded without any binary"
    return 1
  fi
  echo "$message" | grep -m 1 '^Error: bitnet-gen:' | fold -w 160 | sed 's/^/     /'
  echo "$message" | grep -q 'no native addon for' &&
    echo "$message" | grep -q 'npm rebuild bitnet-gen' &&
    echo "$message" | grep -q 'Prebuilt binaries in this package: none'
}

copy_package
check "prebuildify + tsc + npm pack produce a tarball with a prebuild" build_and_pack
if [[ $failed -eq 0 ]]; then
  check "tarball installs with --ignore-scripts" install_tarball
  check "the installed package loads its prebuild and runs a gemv" gemv_through_package
  check "npx bitnet-gen --model demo prints text from the shipped demo model" demo_model_through_cli
  check "without a matching binary the error says how to build one" missing_binary_message
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
