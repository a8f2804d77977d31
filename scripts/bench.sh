#!/usr/bin/env bash
# Runs the benchmark: release builds of every binary (and of a daemon with a
# counting allocator, for allocations per event), then `bench all`, which
# starts its own private PipeWire + WirePlumber and writes bench/RESULTS.md.
# Extra arguments go to `bench` (e.g. `scripts/bench.sh latency --quick`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p pipewire-volume-mixer-daemon --features count-alloc
cp target/release/pipewire-volume-mixer-daemon target/release/pipewire-volume-mixer-daemon-count-alloc
cargo build --release --locked --workspace --bins
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(all)
exec target/release/bench --count-alloc-daemon target/release/pipewire-volume-mixer-daemon-count-alloc "${args[@]}"
