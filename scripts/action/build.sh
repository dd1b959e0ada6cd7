#!/usr/bin/env bash
# The GitHub Action's build (action.yml): builds rsslab and its static guest binaries from the
# action's own source and copies them into BIN_DIR, which the action caches per source. Usage:
# build.sh SOURCE_DIR BIN_DIR. Nothing to do when BIN_DIR already holds all three.
set -euo pipefail
src="${1:?the source directory of the action}"
bin="${2:?the directory for the binaries}"
guest="$src/target/x86_64-unknown-linux-gnu/guest"

if [ -x "$bin/rsslab" ] && [ -x "$bin/rsslab-agent" ] && [ -x "$bin/rsslab-workload" ]; then
  echo "rsslab: binaries from the cache in $bin"
  exit 0
fi
cd "$src"
export CARGO_TARGET_DIR="$src/target"
# The guest has no libc: the agent and workloads are linked statically.
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --locked --profile guest --target x86_64-unknown-linux-gnu -p rsslab-agent
cargo build --locked --release -p rsslab
mkdir -p "$bin"
cp target/release/rsslab "$guest/rsslab-agent" "$guest/rsslab-workload" "$bin/"
echo "rsslab: built into $bin"
