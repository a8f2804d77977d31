#!/usr/bin/env bash
# Shows pipewire-volume-mixer at work on a private, headless PipeWire: installs
# what is missing (scripts/setup.sh), builds the workspace in release mode and
# runs pvm-demo. Arguments go to pvm-demo, e.g. `scripts/demo.sh --keep`.
# Touches no running desktop session: everything runs in a temporary directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
# pvm-demo finds the daemon and pvmctl next to itself, so build every binary.
cargo build --release --locked --workspace --bins
cargo run --release --locked -p testbed --bin pvm-demo -- "$@"
