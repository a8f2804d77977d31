#!/usr/bin/env bash
# Installs pipewire-volume-mixer for the current user, or removes it again.
#
#   scripts/install.sh              build (release), install, print how to start it
#   scripts/install.sh --enable     ... and start it now and at every login
#   scripts/install.sh --no-build   install binaries already in target/release
#   scripts/install.sh --uninstall  stop it and remove everything it installed
#
# Where things go (nothing needs root):
#   ${PREFIX:-~/.local}/bin/           pipewire-volume-mixer-daemon, pvmctl, pvm-mixer
#   ${PREFIX:-~/.local}/share/man/man1 pvmctl.1, pvm-mixer.1
#   ~/.config/systemd/user/            pipewire-volume-mixer.service
#   bash: ~/.local/share/bash-completion/completions/{pvmctl,pvm-mixer}
#   zsh:  ~/.local/share/zsh/site-functions/{_pvmctl,_pvm-mixer}
#   fish: ~/.config/fish/completions/{pvmctl,pvm-mixer}.fish
#   the WirePlumber hook (`pvmctl setup wireplumber`):
#         ~/.local/share/wireplumber/scripts/pipewire-volume-mixer-hold.lua
#         ~/.config/wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf
# ($XDG_CONFIG_HOME and $XDG_DATA_HOME are honoured.) WirePlumber loads the
# hook when it starts: restart it once (systemctl --user restart wireplumber).
#
# The config file (~/.config/pipewire-volume-mixer/config.toml) and the
# persisted routes are yours: install never writes them, uninstall keeps them.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
unit_name=pipewire-volume-mixer.service
binaries=(pipewire-volume-mixer-daemon pvmctl pvm-mixer)
# The binaries with a man page and completions of their own.
tools=(pvmctl pvm-mixer)

prefix=${PREFIX:-$HOME/.local}
bindir=$prefix/bin
mandir=$prefix/share/man/man1
config_home=${XDG_CONFIG_HOME:-$HOME/.config}
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
unit_dir=$config_home/systemd/user
bash_completions=$data_home/bash-completion/completions
zsh_completions=$data_home/zsh/site-functions
fish_completions=$config_home/fish/completions
# The files of `pvmctl setup wireplumber`, for removal without pvmctl.
hook_files=("$data_home/wireplumber/scripts/pipewire-volume-mixer-hold.lua"
            "$config_home/wireplumber/wireplumber.conf.d/90-pipewire-volume-mixer.conf")

usage() {
  sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

say() { printf 'install: %s\n' "$*" >&2; }

have_user_systemd() {
  command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1
}

# Writes the unit with ExecStart= pointing at the installed daemon. `%` is a
# specifier character for systemd and a blank would split the command line,
# so the path is escaped and quoted.
write_unit() {
  local daemon=$bindir/pipewire-volume-mixer-daemon
  local escaped=${daemon//%/%%}
  escaped=${escaped//\\/\\\\}
  escaped=${escaped//\"/\\\"}
  local line found=0
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line == ExecStart=* ]]; then
      local rest=${line#ExecStart=}
      rest=${rest#* }   # drop the executable, keep the arguments
      [ "$rest" = "${line#ExecStart=}" ] && rest=""
      line="ExecStart=\"$escaped\"${rest:+ $rest}"
      found=1
    fi
    printf '%s\n' "$line"
  done <"$repo/contrib/systemd/$unit_name" >"$unit_dir/$unit_name.tmp"
  [ "$found" -eq 1 ] || { say "no ExecStart= in contrib/systemd/$unit_name"; exit 1; }
  chmod 644 "$unit_dir/$unit_name.tmp"
  mv -f "$unit_dir/$unit_name.tmp" "$unit_dir/$unit_name"
}

install_all() {
  local build=$1 enable=$2
  if [ "$build" -eq 1 ]; then
    say "building (cargo build --release --locked)"
    (cd "$repo" && cargo build --release --locked -p pipewire-volume-mixer-daemon -p pvmctl -p pvm-mixer)
  fi
  local target_dir=${CARGO_TARGET_DIR:-$repo/target}
  for b in "${binaries[@]}"; do
    [ -x "$target_dir/release/$b" ] || { say "$target_dir/release/$b is missing; run without --no-build"; exit 1; }
  done

  mkdir -p "$bindir" "$mandir" "$unit_dir" "$bash_completions" "$zsh_completions" "$fish_completions"
  for b in "${binaries[@]}"; do
    # Copy, then rename: replacing a running binary in place would fail (ETXTBSY).
    install -m 755 "$target_dir/release/$b" "$bindir/.$b.new"
    mv -f "$bindir/.$b.new" "$bindir/$b"
    say "installed $bindir/$b"
  done
  local tool
  for tool in "${tools[@]}"; do
    "$bindir/$tool" man >"$mandir/$tool.1"
    "$bindir/$tool" completions bash >"$bash_completions/$tool"
    "$bindir/$tool" completions zsh >"$zsh_completions/_$tool"
    "$bindir/$tool" completions fish >"$fish_completions/$tool.fish"
  done
  say "installed the man pages and bash, zsh and fish completions of ${tools[*]}"
  local pvmctl=$bindir/pvmctl
  # The environment is passed on as it is: pvmctl resolves the same
  # $XDG_DATA_HOME / $XDG_CONFIG_HOME defaults as this script.
  "$pvmctl" setup wireplumber | sed 's/^/install: /' >&2
  write_unit
  say "installed $unit_dir/$unit_name"

  case ":$PATH:" in
    *":$bindir:"*) ;;
    *) say "note: $bindir is not in \$PATH" ;;
  esac
  [ -e "$config_home/pipewire-volume-mixer/config.toml" ] ||
    say "no config yet: copy $repo/examples/config.toml to $config_home/pipewire-volume-mixer/config.toml and edit it"

  local start="systemctl --user daemon-reload && systemctl --user enable --now pipewire-volume-mixer"
  if [ "$enable" -eq 1 ]; then
    have_user_systemd || { say "no systemd user manager reachable; run this in your session: $start"; exit 1; }
    systemctl --user daemon-reload
    systemctl --user enable --now pipewire-volume-mixer
    # A running daemon keeps the old binary: restart it onto the new one.
    systemctl --user try-restart pipewire-volume-mixer
    say "started; check with: pvmctl status"
  else
    say "to start it now and at every login, run:"
    printf '  %s\n' "$start"
  fi
}

uninstall_all() {
  if have_user_systemd; then
    systemctl --user disable --now pipewire-volume-mixer 2>/dev/null || true
  fi
  local removed=0 hook_removed=0 h
  # The channels outlive the daemon on purpose; take them away with it.
  if [ -x "$bindir/pipewire-volume-mixer-daemon" ] && [ -n "${XDG_RUNTIME_DIR:-}" ] &&
    [ -S "$XDG_RUNTIME_DIR/pipewire-0" ]; then
    "$bindir/pipewire-volume-mixer-daemon" --remove-channels || say "could not remove the channels (see above)"
  fi
  local installed=("$unit_dir/$unit_name") tool
  for tool in "${binaries[@]}"; do installed+=("$bindir/$tool"); done
  for tool in "${tools[@]}"; do
    installed+=("$mandir/$tool.1" "$bash_completions/$tool" "$zsh_completions/_$tool" "$fish_completions/$tool.fish")
  done
  for f in "${installed[@]}" "${hook_files[@]}"; do
    if [ -e "$f" ] || [ -L "$f" ]; then
      rm -f "$f"
      say "removed $f"
      removed=$((removed + 1))
      for h in "${hook_files[@]}"; do [ "$f" != "$h" ] || hook_removed=1; done
    fi
  done
  if have_user_systemd; then
    systemctl --user daemon-reload
    systemctl --user reset-failed pipewire-volume-mixer 2>/dev/null || true
  fi
  [ "$removed" -gt 0 ] || say "nothing was installed under $prefix"
  [ "$hook_removed" -eq 0 ] ||
    say "restart WirePlumber to unload the hook: systemctl --user restart wireplumber"
  say "kept your config and routes ($config_home/pipewire-volume-mixer, ${XDG_STATE_HOME:-$HOME/.local/state}/pipewire-volume-mixer); delete them by hand if you want"
}

build=1 enable=0 uninstall=0
for arg in "$@"; do
  case $arg in
    --enable) enable=1 ;;
    --no-build) build=0 ;;
    --uninstall) uninstall=1 ;;
    -h | --help) usage; exit 0 ;;
    *) say "unknown option: $arg"; usage >&2; exit 2 ;;
  esac
done

if [ "$uninstall" -eq 1 ]; then
  uninstall_all
else
  install_all "$build" "$enable"
fi
