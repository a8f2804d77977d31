# Turns each line of `pvmctl watch --json` into what a Waybar custom module
# with "return-type": "json" expects: {text, tooltip, class, percentage}.
#
#   pvmctl watch --json | jq --unbuffered -c --arg sink game -f pvm-waybar.jq
#
# $sink is the sink to show (its node.name); "" shows the default sink.
# class: "muted", "unmuted", "disconnected" (PipeWire is down), "stopped"
# (the daemon is not running) or "missing" (no such sink).

def pct: (. * 100 | round);
def line: "\(.description) (\(.name)): \(.volume | pct)%\(if .muted then ", muted" else "" end)";

(if $sink == "" then (.default_sink // "") else $sink end) as $name
| . as $status
| (.sinks | map(select(.name == $name)) | .[0]) as $s
| if (.running | not) then
    {text: "off", tooltip: "pipewire-volume-mixer is not running", class: "stopped", percentage: 0}
  elif (.connected | not) then
    {text: "…", tooltip: "pipewire-volume-mixer: waiting for PipeWire", class: "disconnected", percentage: 0}
  elif $s == null then
    {text: "?", tooltip: "no sink named \"\($name)\"", class: "missing", percentage: 0}
  else
    {
      text: (if $s.muted then "muted" else "\($s.volume | pct)%" end),
      percentage: ($s.volume | pct),
      class: (if $s.muted then "muted" else "unmuted" end),
      tooltip: (
        [$s | line]
        + [$status.apps[] | select(.sink == $name) | "  \(.name)"]
        + ["", "other sinks:"]
        + [$status.sinks[] | select(.name != $name) | "  " + line]
        | join("\n")
      )
    }
  end
