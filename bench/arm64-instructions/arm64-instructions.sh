#!/usr/bin/env bash
# arm64 instructions per ResNet-18 inference, baseline against relaxed-SIMD kernels, with Winograd
# and with 3x3 convs as a GEMM over their taps (direct before the taps path existed), on qemu's default CPU (dotprod: V8 emits sdot) and as a Cortex-A72
# (a Raspberry Pi 4: no dotprod). Under emulation time says nothing about a real core, but the
# number of instructions executed is the same as on one. Each count is (4 runs - 1 run) / 3, so
# start-up and compilation cancel out. Needs Debian's qemu-user (dynamic, with plugin support) and
# gcc, Node for arm64 (scripts/arm64-check.sh fetches it) and a built checkout. About 5 minutes.
#   bash bench/arm64-instructions/arm64-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE=.cache/arm64/node-v${RELAXED_NODE_VERSION:-24.21.0}/bin/node
WORK=.cache/arm64-instructions
mkdir -p "$WORK"
command -v qemu-aarch64 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >/dev/null
[ -x "$NODE" ] || { echo "$NODE is missing: run scripts/arm64-check.sh first" >&2; exit 1; }
gcc -shared -fPIC -O2 -o "$WORK/libinsn.so" bench/arm64-instructions/qemu-insn.c -Wl,--unresolved-symbols=ignore-all
node --import tsx -e "import('./src/builder/bench-model.ts').then((m) => require('node:fs').writeFileSync('$WORK/resnet18.rnw', m.benchmarkModel()))"

count() { # cpu kernels runs path
  qemu-aarch64 -cpu "$1" -plugin "$WORK/libinsn.so" "$NODE" bench/arm64-instructions/run.mjs "$WORK/resnet18.rnw" "$2" "$3" "$4" 2>&1 |
    awk '/^insns:/ {print $2}'
}
printf '%-12s %-9s %-9s %s\n' cpu kernels convs 'instructions per inference'
for cpu in max cortex-a72; do
  for path in winograd taps; do
    for kernels in baseline relaxed; do
      [ "$cpu" = cortex-a72 ] && [ "$path" = taps ] && continue
      one=$(count "$cpu" "$kernels" 1 "$path")
      four=$(count "$cpu" "$kernels" 4 "$path")
      printf '%-12s %-9s %-9s %d\n' "$cpu" "$kernels" "$path" $(((four - one) / 3))
    done
  done
done
