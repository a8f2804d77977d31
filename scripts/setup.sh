#!/usr/bin/env bash
# Installs the system packages that building, the demo and the tests need.
#
#   scripts/setup.sh               building and the tests (what CI runs)
#   scripts/setup.sh --build-only  building only: the PipeWire headers, clang
#                                  (for bindgen), pkg-config and gcc
#
# Building needs libpipewire >= 0.3.65 (Debian 12's) headers; nothing comes
# from outside the distribution's own archive for that. The `pipewire` crate
# is used at its base feature level, which builds against 0.3.65 and every
# later version (docs/install.md; scripts/test.sh checks it stays so).
#
# The tests run on three PipeWire + WirePlumber stacks (crates/testbed,
# PVM_TEST_STACK): the installed PipeWire 1.4 + WirePlumber 0.5, and
# Debian 12's WirePlumber 0.4.13 (and PipeWire 0.3.65) that the test bed
# fetches with `apt-get download` into a private prefix. On Debian 12 the
# installed 1.4 + 0.5 come from bookworm-backports, unless PVM_BACKPORTS=no:
# then Debian 12's own PipeWire 0.3.65 + WirePlumber 0.4.13 are installed and
# scripts/test.sh runs the stack those make (pw03-wp04) only.
#
# Also: a D-Bus session bus for WirePlumber, pulseaudio-utils/pipewire-pulse
# for the side-by-side benchmark, valgrind for the memory check
# (tests/memcheck.rs and the benchmark), systemd and procps (the unit's
# ExecReload= runs kill) for the unit check, and
# dpkg-dev, lintian and fakeroot for scripts/package.sh. Makes sure apt's
# package lists are there (a fresh container has none).
#
# Idempotent: does nothing when everything is already present.
# Runs as root, or through sudo otherwise.
set -euo pipefail

build_only=0
case ${1:-} in
  --build-only) build_only=1 ;;
  "") ;;
  -h | --help) sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "setup: unknown option $1" >&2; exit 2 ;;
esac

build_need=(libpipewire-0.3-dev libspa-0.2-dev clang libclang-dev pkg-config gcc)
test_need=(pipewire pipewire-bin pipewire-pulse wireplumber dbus dbus-daemon pulseaudio-utils python3
           systemd procps valgrind dpkg-dev lintian fakeroot)
if [ "$build_only" -eq 1 ]; then
  need=("${build_need[@]}")
else
  need=("${build_need[@]}" "${test_need[@]}")
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# Debian 12 and the full setup: PipeWire 1.4 + WirePlumber 0.5 from backports,
# unless PVM_BACKPORTS=no.
backports=0
if [ "$codename" = "bookworm" ] && [ "$build_only" -eq 0 ]; then
  case ${PVM_BACKPORTS:-yes} in
    yes | 1) backports=1 ;;
    no | 0) backports=0 ;;
    *) echo "setup: PVM_BACKPORTS must be yes or no, not '$PVM_BACKPORTS'" >&2; exit 2 ;;
  esac
fi

pw_version_ok() {
  # The oldest libpipewire the project builds against: Debian 12's 0.3.65.
  # With backports, the tests' installed stack must be PipeWire >= 1.0.
  local want=0.3.65
  [ "$backports" -eq 0 ] || want=1.0
  pkg-config --atleast-version=$want libpipewire-0.3 2>/dev/null
}

wireplumber_04_listed() {
  apt-cache madison wireplumber 2>/dev/null | grep -q '| *0\.4\.'
}

pipewire_03_listed() {
  apt-cache madison pipewire 2>/dev/null | grep -q '| *0\.3\.65'
}

# apt-get download needs the package lists (a fresh container has none; on
# Debian 12 they must include bookworm's own wireplumber 0.4.13 and pipewire
# 0.3.65 for the test bed's private prefixes).
lists_ok() {
  [ "$build_only" -eq 1 ] && return 0
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null &&
    { [ "$codename" != "bookworm" ] || { wireplumber_04_listed && pipewire_03_listed; }; }
}

missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && pw_version_ok && { [ "$build_only" -eq 1 ] || command -v wpctl >/dev/null; }; then
  if ! lists_ok; then
    echo "setup: fetching the apt package lists (for the test bed's private WirePlumber 0.4 / PipeWire 0.3)" >&2
    "${sudo_cmd[@]}" apt-get update -q
  fi
  exit 0
fi

echo "setup: installing ${missing[*]:-newer PipeWire}" >&2
export DEBIAN_FRONTEND=noninteractive

if [ "$backports" -eq 1 ]; then
  # Debian 12 ships PipeWire 0.3.65; the backports suite has 1.4 + WirePlumber 0.5.
  if [ ! -e /etc/apt/sources.list.d/backports.sources ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=http://deb.debian.org/debian
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
      | "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/backports.sources >/dev/null
  fi
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q -t bookworm-backports \
    pipewire pipewire-bin pipewire-pulse wireplumber libpipewire-0.3-dev libspa-0.2-dev
else
  "${sudo_cmd[@]}" apt-get update -q
fi
if [ "$build_only" -eq 1 ]; then
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${need[@]}"
else
  "${sudo_cmd[@]}" apt-get install -y -q "${need[@]}"
fi

pw_version_ok || {
  echo "setup: libpipewire >= $([ "$backports" -eq 1 ] && echo 1.0 || echo 0.3.65) is required, found $(pkg-config --modversion libpipewire-0.3)" >&2
  exit 1
}
