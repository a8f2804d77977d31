#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, unit tests, the integration
# tests against a real, private, headless PipeWire + WirePlumber that the test
# bed starts (and kills) itself, the integration suites once per PipeWire +
# WirePlumber stack, and the Debian package's install/remove test.
# Installs what it needs first. Arguments go to every test binary (e.g. a
# name filter).
#
# The stack matrix (crates/testbed, PVM_TEST_STACK):
#   pw14-wp05  the installed PipeWire 1.4 + WirePlumber 0.5
#   pw14-wp04  the installed PipeWire 1.4 + Debian 12's WirePlumber 0.4.13
#   pw03-wp04  Debian 12's PipeWire 0.3.65 + WirePlumber 0.4.13
# (the 0.4 / 0.3 ones unpacked from Debian 12's packages into a private
# prefix under target/). The suites of the matrix (mirror, routing, control,
# lifecycle, pvmctl e2e) run on each stack; their tests named `wp05_*` run on
# WirePlumber 0.5 only and `wp04_*` on 0.4 only (each fails if it finds
# itself on another). Every other test runs once, on the machine's own stack.
#
# Where the installed PipeWire is older than 1.0 (Debian 12 without
# backports: PVM_BACKPORTS=no scripts/setup.sh), the machine's own stack is
# pw03-wp04 and the matrix is that stack alone; the suites that need the
# installed WirePlumber 0.5 are listed as not run.
#
#   PVM_TEST_STACKS="pw14-wp05 pw03-wp04"   run the matrix on these stacks only
#   PVM_PACKAGE_TEST=0                       leave out the package test
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== the pipewire crate's feature level"
# The pipewire crate's version features up to v0_3_64 (libspa's up to
# v0_3_62) build against libpipewire 0.3.65 (Debian 12) and every later
# version; v0_3_65, v0_3_77, v1_* would need newer headers. See docs/install.md.
levels=$(cargo tree --workspace --locked -e features -i pipewire; cargo tree --workspace --locked -e features -i libspa)
if grep -E '(pipewire|libspa) feature "v(0_3_(6[5-9]|[7-9][0-9])|[1-9][0-9]*_[0-9]+_[0-9]+)"' <<<"$levels"; then
  echo "test: a version feature of the pipewire crate above Debian 12's 0.3.65 is enabled (above): the build on its headers would break" >&2
  exit 1
fi
highest=$(grep -oE 'pipewire feature "v[0-9_]+"' <<<"$levels" | sort -t_ -k3n -u | tail -1)
echo "highest level: ${highest:-none} (builds on libpipewire >= 0.3.65); installed headers: libpipewire $(pkg-config --modversion libpipewire-0.3)"
echo "== cargo build"
# Build everything first so integration tests find every binary.
cargo build --workspace --bins --locked

# The machine's own stack, and the stacks the matrix runs on.
if pkg-config --atleast-version=1.0 libpipewire-0.3 && wireplumber --version 2>/dev/null | grep -q 'libwireplumber 0\.5'; then
  home=pw14-wp05
  default_stacks="pw14-wp05 pw14-wp04 pw03-wp04"
else
  home=pw03-wp04
  default_stacks="pw03-wp04"
fi
stacks=${PVM_TEST_STACKS:-$default_stacks}
echo "== test stacks: $stacks (this machine's own: $home)"

# Integration suites run on every stack (package:test target).
matrix=(pipewire-volume-mixer-daemon:mirror pipewire-volume-mixer-daemon:routing
        pipewire-volume-mixer-daemon:control pipewire-volume-mixer-daemon:lifecycle pvmctl:e2e)
# Suites that need the installed PipeWire 1.4 + WirePlumber 0.5 (the hold,
# beds of every stack).
needs_installed_wp05=(pipewire-volume-mixer-daemon:hold testbed:hold_hook testbed:stacks bench:smoke)

failed=0
summary=()
not_run=()

echo "== cargo test (unit tests and doc tests)"
if cargo test --workspace --locked --no-fail-fast --lib --bins -- "$@" && cargo test --workspace --locked --doc -- "$@"; then
  summary+=("unit and doc tests: passed")
else
  failed=1
  summary+=("unit and doc tests: FAILED")
fi

# Every integration test binary, one "package:target executable package_dir"
# per line (package_id is "path+file:///dir#name@version" or ".../name#version").
suites=$(cargo test --workspace --locked --no-run --message-format=json | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or m["target"]["kind"] != ["test"]:
        continue
    url, _, tail = m["package_id"].partition("#")
    name = tail.split("@")[0] if "@" in tail else os.path.basename(url)
    print("%s:%s %s %s" % (name, m["target"]["name"], m["executable"], os.path.dirname(m["manifest_path"])))
' | sort)

in_list() { # in_list WORD LIST...
  local w=$1; shift
  local x; for x in "$@"; do [ "$x" = "$w" ] && return 0; done; return 1
}

# run_suite STACK SUITE EXE DIR ARGS... : runs one test binary as cargo
# would (from its package directory), prints its output, adds its counts.
passed_n=0 failed_n=0 filtered_n=0
run_suite() {
  local stack=$1 suite=$2 exe=$3 dir=$4; shift 4
  local out status=0
  echo "-- $suite on $stack"
  out=$(cd "$dir" && PVM_TEST_STACK=$stack CARGO_MANIFEST_DIR=$dir "$exe" "$@" 2>&1) || status=$?
  printf '%s\n' "$out"
  local line
  line=$(printf '%s\n' "$out" | grep '^test result:' | tail -1)
  local p f x
  p=$(sed -n 's/.* \([0-9]*\) passed.*/\1/p' <<<"$line"); f=$(sed -n 's/.* \([0-9]*\) failed.*/\1/p' <<<"$line")
  x=$(sed -n 's/.* \([0-9]*\) filtered out.*/\1/p' <<<"$line")
  passed_n=$((passed_n + ${p:-0})) failed_n=$((failed_n + ${f:-0})) filtered_n=$((filtered_n + ${x:-0}))
  if [ "$status" -ne 0 ]; then
    failed=1
    [ -n "$line" ] || failed_n=$((failed_n + 1))
  fi
}

# The tests a stack does not select: those for the other WirePlumber.
skip_for() {
  case $1 in
    pw14-wp05) echo wp04_ ;;
    pw14-wp04 | pw03-wp04) echo wp05_ ;;
    *) echo "test: unknown stack $1" >&2; exit 2 ;;
  esac
}

echo "== integration tests on this machine's own stack ($home)"
while read -r suite exe dir; do
  [ -n "$suite" ] || continue
  in_list "$suite" "${matrix[@]}" && continue
  if [ "$home" != pw14-wp05 ] && in_list "$suite" "${needs_installed_wp05[@]}"; then
    not_run+=("$suite (needs the installed PipeWire 1.4 + WirePlumber 0.5)")
    continue
  fi
  run_suite "$home" "$suite" "$exe" "$dir" --skip "$(skip_for "$home")" "$@"
done <<<"$suites"
summary+=("other integration suites on $home: $passed_n passed, $failed_n failed, $filtered_n not selected ($(skip_for "$home")* tests are for the other WirePlumber)")

for stack in $stacks; do
  echo "== the stack matrix: $stack"
  skip=$(skip_for "$stack")
  passed_n=0 failed_n=0 filtered_n=0
  for m in "${matrix[@]}"; do
    line=$(grep "^$m " <<<"$suites") || { echo "test: no test binary for $m" >&2; exit 1; }
    read -r suite exe dir <<<"$line"
    run_suite "$stack" "$suite" "$exe" "$dir" --skip "$skip" "$@"
  done
  summary+=("stack $stack: $passed_n passed, $failed_n failed, $filtered_n not selected (${skip}* tests are for the other WirePlumber)")
done

if [ "${PVM_PACKAGE_TEST:-1}" != 0 ]; then
  echo "== the Debian package: build, install, run, verify, purge"
  if scripts/package-test.sh; then
    summary+=("package: built, installed, ran, verified and purged without leftovers")
  else
    failed=1
    summary+=("package: FAILED")
  fi
fi

echo
echo "== summary ($(( $(date +%s) - started )) s)"
printf '%s\n' "${summary[@]}"
for n in "${not_run[@]}"; do echo "not run here: $n"; done
exit "$failed"
