#!/usr/bin/env bash
# Installs the system packages that building, the demo and the tests need:
# PipeWire >= 1.0 headers (Debian 12 takes PipeWire 1.4 + WirePlumber 0.5 from
# bookworm-backports), clang for bindgen, a D-Bus session bus for WirePlumber,
# pulseaudio-utils/pipewire-pulse for the side-by-side benchmark, valgrind for
# the memory check (tests/memcheck.rs and the benchmark) and systemd for the
# unit check. Also makes sure apt's package lists are there: the test bed
# fetches WirePlumber 0.4 (Debian 12's 0.4.13) with `apt-get download` for the
# tests against WirePlumber 0.4.
#
# Idempotent: does nothing when everything is already present.
# Runs as root, or through sudo otherwise.
set -euo pipefail

need=(pipewire pipewire-bin pipewire-pulse wireplumber libpipewire-0.3-dev libspa-0.2-dev
      clang libclang-dev pkg-config dbus dbus-daemon pulseaudio-utils python3 gcc systemd valgrind)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

pw_version_ok() {
  # The pipewire crate 0.10 needs libpipewire >= 1.0.
  pkg-config --atleast-version=1.0 libpipewire-0.3 2>/dev/null
}

# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

wireplumber_04_listed() {
  apt-cache madison wireplumber 2>/dev/null | grep -q '| *0\.4\.'
}

# apt-get download needs the package lists (a fresh container has none; on
# Debian 12 they must include bookworm's own wireplumber 0.4.13).
lists_ok() {
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null &&
    { [ "$codename" != "bookworm" ] || wireplumber_04_listed; }
}

missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && pw_version_ok && command -v wpctl >/dev/null; then
  if ! lists_ok; then
    echo "setup: fetching the apt package lists (for WirePlumber 0.4 in the tests)" >&2
    "${sudo_cmd[@]}" apt-get update -q
  fi
  exit 0
fi

echo "setup: installing ${missing[*]:-newer PipeWire}" >&2
export DEBIAN_FRONTEND=noninteractive

if [ "$codename" = "bookworm" ]; then
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
"${sudo_cmd[@]}" apt-get install -y -q "${need[@]}"

pw_version_ok || { echo "setup: libpipewire >= 1.0 is required, found $(pkg-config --modversion libpipewire-0.3)" >&2; exit 1; }
