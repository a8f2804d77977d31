-- pipewire-volume-mixer: hold new playback streams until the daemon has decided
--
-- SPDX-License-Identifier: MIT OR Apache-2.0
--
-- For WirePlumber 0.5. The pipewire-volume-mixer daemon routes a stream by
-- writing `target.object` / `target.node` into the `default` metadata. Without
-- this script WirePlumber may link a new stream before that pin arrives, and
-- the stream plays a few milliseconds on the wrong sink (or stays on a target
-- WirePlumber remembered). This script closes that window:
--
--  * While the daemon is connected to PipeWire (a client whose
--    `application.name` is `pipewire-volume-mixer-daemon`), a new movable
--    playback stream is not linked until the daemon has written its decision
--    into the `default` metadata: subject = the stream's node id, key
--    `pvm.decision`, value = the stream's `object.serial` (node ids are
--    reused at once, the serial is not). When the daemon pins the stream to a sink it also writes
--    `pvm.target` (the sink's `object.serial`) for it, and the stream waits
--    until the `default` metadata's `target.object` says the same: a target
--    WirePlumber restored from its memory, or a pin still on its way, does
--    not get the stream linked elsewhere. So the stream is linked once, to
--    the right sink.
--  * A decision or a pin for a held stream schedules a linking rescan;
--    WirePlumber then selects the target again and finds the pin.
--  * A held stream is released after a time limit if no decision comes (the
--    daemon is stuck), and at once when the daemon's client disappears (the
--    daemon exited or crashed).
--  * The script announces itself in the `default` metadata: subject 0, key
--    `pvm.hold`, type `Spa:String:JSON`, value
--    `{"version":1,"timeout_ms":<limit>}`.
--
-- Everything lives in WirePlumber's own `default` metadata: a metadata
-- object exported by the daemon would make every client that binds it wait
-- for the daemon to answer (PipeWire holds a binding client busy until the
-- exporter answers a ping), and a daemon that died at that moment would
-- leave that client, WirePlumber included, waiting for good.
--
-- The time limit is the setting `pipewire-volume-mixer.hold-timeout-ms`
-- (milliseconds, default 200, 0 turns holding off), declared by the
-- `wireplumber.conf.d` fragment that loads this script; change it with
-- `wpctl settings pipewire-volume-mixer.hold-timeout-ms 500` or in a
-- `wireplumber.settings` section.
--
-- Not held: streams with `node.dont-move` or `node.dont-reconnect`, streams
-- that are already linked, loopback and filter streams (`node.link-group`),
-- capture streams. Should this script fail, WirePlumber links as usual.

-- WirePlumber 0.4 reads the same wireplumber.conf.d and loads this script
-- too, but has no event hooks: do nothing there.
if SimpleEventHook == nil then
  return
end

local cutils = require ("common-utils")
local lutils = require ("linking-utils")
local log = Log.open_topic ("s-pvm-hold")

local DAEMON_NAME = "pipewire-volume-mixer-daemon"
local DECISION_KEY = "pvm.decision"
local TARGET_KEY = "pvm.target"
local HOLD_KEY = "pvm.hold"
local TIMEOUT_SETTING = "pipewire-volume-mixer.hold-timeout-ms"
local DEFAULT_TIMEOUT_MS = 200

-- Streams held now: `object.serial` -> the time limit's timer.
local held = {}
-- Streams whose time limit passed without a decision: `object.serial` -> true.
local expired = {}

local function timeout_ms ()
  local json = Settings.get (TIMEOUT_SETTING)
  local ms = json and tonumber (json:parse ())
  if ms == nil or ms < 0 then
    return DEFAULT_TIMEOUT_MS
  end
  return math.floor (ms)
end

local function default_metadata (source)
  return source:call ("get-object-manager", "metadata"):lookup {
    Constraint { "metadata.name", "=", "default" },
  }
end

local function daemon_running (source)
  return source:call ("get-object-manager", "client"):lookup {
    Constraint { "application.name", "=", DAEMON_NAME },
  } ~= nil
end

local function announce (metadata)
  metadata:set (0, HOLD_KEY, "Spa:String:JSON",
      string.format ('{"version":1,"timeout_ms":%d}', timeout_ms ()))
end

local function forget (serial)
  if held [serial] then
    held [serial]:destroy ()
  end
  held [serial] = nil
  expired [serial] = nil
end

local function release_all (source)
  for serial in pairs (held) do
    held [serial]:destroy ()
  end
  held = {}
  expired = {}
  source:call ("schedule-rescan", "linking")
end

-- Whether this stream is one the daemon decides about and has not linked yet.
local function holdable (si_props, si_flags)
  return si_props ["item.node.type"] == "stream"
      and si_props ["media.class"] == "Stream/Output/Audio"
      and not cutils.parseBool (si_props ["node.dont-move"])
      and not cutils.parseBool (si_props ["node.dont-reconnect"])
      and si_props ["node.link-group"] == nil
      and si_flags.peer_id == nil
end

-- Whether the `default` metadata holds the daemon's pin for this stream (or
-- the daemon has none: the session manager places it).
local function pin_in_place (metadata, node_id)
  local pinned = tonumber ((metadata:find (node_id, TARGET_KEY)))
  return pinned == nil or tonumber ((metadata:find (node_id, "target.object"))) == pinned
end

-- True when the stream must wait; arms the time limit the first time.
local function must_wait (event)
  local source, _, si, si_props, si_flags, target =
      lutils:unwrap_select_target_event (event)
  local serial = si_props ["object.serial"]
  if target or serial == nil or not holdable (si_props, si_flags) then
    return false
  end

  local metadata = default_metadata (source)
  if metadata == nil or not daemon_running (source) then
    forget (serial)
    return false
  end

  -- find() returns value and type: keep only the value.
  local node_id = tonumber (si_props ["node.id"])
  local decided = tonumber ((metadata:find (node_id, DECISION_KEY)))
  if decided == tonumber (serial) and pin_in_place (metadata, node_id) then
    forget (serial)
    return false
  end

  if expired [serial] then
    return false
  end
  if held [serial] == nil then
    local limit = timeout_ms ()
    if limit == 0 then
      return false
    end
    held [serial] = Core.timeout_add (limit, function ()
      log:info (si, "no decision within " .. limit .. " ms; linking as usual")
      held [serial] = nil
      expired [serial] = true
      source:call ("schedule-rescan", "linking")
      return false
    end)
  end
  log:debug (si, "holding stream " .. serial .. " until the daemon decides")
  return true
end

SimpleEventHook {
  name = "linking/pipewire-volume-mixer-hold",
  -- Every hook that picks or links a target, by name: a name that does not
  -- exist counts as satisfied, and a wildcard would match only one hook.
  before = {
    "linking/find-defined-target",
    "linking/find-filter-target",
    "linking/find-media-role-target",
    "linking/find-default-target",
    "linking/find-best-target",
    "linking/get-filter-from-target",
    "linking/prepare-link",
    "linking/link-target",
  },
  interests = {
    EventInterest {
      Constraint { "event.type", "=", "select-target" },
    },
  },
  execute = function (event)
    -- Fail open: on any error the stream is linked as if this script did not exist.
    local ok, wait = pcall (must_wait, event)
    if not ok then
      log:warning ("hold check failed, not holding: " .. tostring (wait))
    elseif wait then
      event:stop_processing ()
    end
  end
}:register ()

-- A decision or a pin for a held stream: select again. A removed `pvm.hold`
-- is written again.
SimpleEventHook {
  name = "linking/pipewire-volume-mixer-decided",
  interests = {
    EventInterest {
      Constraint { "event.type", "=", "metadata-changed" },
      Constraint { "metadata.name", "=", "default" },
      Constraint { "event.subject.key", "c", DECISION_KEY, TARGET_KEY, "target.object", HOLD_KEY },
    },
  },
  execute = function (event)
    local props = event:get_properties ()
    if props ["event.subject.key"] == HOLD_KEY then
      if props ["event.subject.value"] == nil then
        announce (event:get_subject ())
      end
    elseif next (held) ~= nil then
      event:get_source ():call ("schedule-rescan", "linking")
    end
  end
}:register ()

-- The `default` metadata appeared (also the one that existed when this script
-- was loaded): say that streams are held and for how long at most.
SimpleEventHook {
  name = "linking/pipewire-volume-mixer-announce",
  interests = {
    EventInterest {
      Constraint { "event.type", "=", "metadata-added" },
      Constraint { "metadata.name", "=", "default" },
    },
  },
  execute = function (event)
    announce (event:get_subject ())
  end
}:register ()

-- The daemon is gone: it will not decide, link now.
SimpleEventHook {
  name = "linking/pipewire-volume-mixer-gone",
  interests = {
    EventInterest {
      Constraint { "event.type", "=", "client-removed" },
      Constraint { "application.name", "=", DAEMON_NAME },
    },
  },
  execute = function (event)
    release_all (event:get_source ())
  end
}:register ()

-- A changed time limit is announced again.
Settings.subscribe (TIMEOUT_SETTING, function ()
  local source = Plugin.find ("standard-event-source")
  local metadata = source and default_metadata (source)
  if metadata then
    announce (metadata)
  end
end)

-- A held stream went away: drop its timer.
SimpleEventHook {
  name = "linking/pipewire-volume-mixer-forget",
  interests = {
    EventInterest {
      Constraint { "event.type", "=", "session-item-removed" },
      Constraint { "event.session-item.interface", "=", "linkable" },
    },
  },
  execute = function (event)
    local serial = event:get_subject ().properties ["object.serial"]
    if serial then
      forget (serial)
    end
  end
}:register ()
