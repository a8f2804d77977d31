#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit tests, and the
# integration tests against a real, private, headless PipeWire + WirePlumber
# that the test bed starts (and kills) itself. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
# Build everything first so integration tests find every binary.
cargo build --workspace --bins --locked
cargo test --workspace --locked --no-fail-fast -- "$@"
