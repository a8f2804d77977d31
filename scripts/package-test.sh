#!/usr/bin/env bash
# The Debian package's install/remove test (scripts/test.sh runs it; needs
# root and the workspace's debug build):
#   1. scripts/package.sh builds target/debian/pipewire-volume-mixer_*.deb;
#   2. lintian finds nothing that is not overridden with a reason;
#   3. `apt-get install ./<deb>`, then `dpkg -L` of the package;
#   4. the packaged daemon and pvmctl against the test bed: the pvmctl
#      end-to-end suite and the system-wide hook tests (crates/testbed/tests/
#      system_hook.rs: WirePlumber 0.5 loads the packaged hook, the daemon
#      sees the hold, a user's file of the same name replaces it);
#   5. `systemd-analyze verify --user` of the installed unit;
#   6. `apt-get purge`, and the list of files under /usr, /etc, /var/lib and
#      /opt is the same as before the install.
# The package is purged also when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
name=pipewire-volume-mixer
say() { printf 'package-test: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { say "needs root (apt-get install)"; exit 1; }
if dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q installed; then
  say "$name is installed already; purge it first (apt-get purge $name)"
  exit 1
fi

deb=$(scripts/package.sh | tail -1)
say "lintian $deb"
lintian --fail-on error,warning,info --info --pedantic "$deb"

# Every path under these trees, except caches and logs that apt and dpkg
# triggers (man-db) rewrite whatever is installed.
snapshot() {
  find /usr /etc /var/lib /opt -xdev \
    \( -path /var/lib/apt/lists -o -path /var/cache -o -path /var/lib/dpkg/updates \
       -o -path /var/lib/dpkg/triggers -o -path /var/lib/man-db \) -prune -o -print 2>/dev/null | LC_ALL=C sort
}
work=$(mktemp -d)
before=$work/before after=$work/after
snapshot >"$before"

installed=0
cleanup() {
  if [ "$installed" -eq 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$name" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

say "apt-get install $deb"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$deb"
echo "== dpkg -L $name"
dpkg -L "$name"
dpkg-query -W -f='== Depends: ${Depends}\n' "$name"

say "the packaged daemon and pvmctl against the test bed"
export PVM_DAEMON_BIN=/usr/bin/pipewire-volume-mixer-daemon PVM_PVMCTL_BIN=/usr/bin/pvmctl
/usr/bin/pvmctl --version
cargo test --locked -p pvmctl --test e2e
cargo test --locked -p testbed --test system_hook -- --include-ignored
unset PVM_DAEMON_BIN PVM_PVMCTL_BIN

say "systemd-analyze verify --user /usr/lib/systemd/user/$name.service"
mkdir -p "$work/home" "$work/run"
chmod 700 "$work/run"
verify=$(env -i PATH=/usr/bin:/bin HOME="$work/home" XDG_RUNTIME_DIR="$work/run" \
  systemd-analyze verify --user "/usr/lib/systemd/user/$name.service" 2>&1) || {
  printf '%s\n' "$verify"
  say "systemd-analyze verify failed"
  exit 1
}
# Lines about other units (a distribution's pipewire.service) are not ours.
if grep "$name" <<<"$verify"; then
  say "systemd-analyze verify complained about the unit"
  exit 1
fi

say "apt-get purge $name"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$name"
installed=0
snapshot >"$after"
if ! diff -u "$before" "$after"; then
  say "the purge left the file list changed (above)"
  exit 1
fi
say "nothing left behind: $(wc -l <"$before") paths before the install, the same after the purge"
