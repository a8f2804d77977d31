#!/usr/bin/env python3
"""Read the pipewire-volume-mixer shared-memory snapshot (standard library only).

    pvm_snapshot.py [--json] [--shm PATH]

--json prints the same JSON object as `pvmctl status --json`; without it, a
short summary. Exit status: 0, 1 on error, 3 when the snapshot is from a
stopped daemon.

As a module:

    from pvm_snapshot import read_status
    status = read_status()            # a dict shaped like `pvmctl status --json`
    print(status["sinks"][0]["volume"])

The layout (version 2) is described in include/pipewire-volume-mixer.h and
crates/pvm-ipc/src/layout.rs. The seqlock read: read the generation; if it is
odd a publish is in progress, retry; copy the file; read the generation again;
if it changed the copy may be torn, retry. CPython has no atomic loads or
memory fences, so this reader relies on the CPU not reordering the copy with
the generation reads (true on x86-64); where that matters, use the C or Rust
reader.
"""

import argparse
import json
import math
import mmap
import os
import struct
import sys
import time

MAGIC = 0x534D5650  # b"PVMS" as a little-endian u32
LAYOUT_VERSION = 2
MAX_SINKS = 8
MAX_APPS = 128
MAX_STREAMS_PER_APP = 8
NO_ID = 0xFFFFFFFF

HEADER_SIZE = 64
SINK_SIZE = 256
APP_SIZE = 256
SINKS_OFFSET = HEADER_SIZE
APPS_OFFSET = SINKS_OFFSET + MAX_SINKS * SINK_SIZE
SNAPSHOT_SIZE = APPS_OFFSET + MAX_APPS * APP_SIZE  # 34880
GENERATION_OFFSET = 8

# magic, version, generation, last_update_ns, flags, sink_count, app_count,
# total_sinks, total_apps, daemon_pid, file_size, reserved[3]
HEADER = struct.Struct("<IIQQIIIIIII12x")
# id, flags, volume, channels, serial, name[64], description[112], kind, output_id, output[48]
SINK = struct.Struct("<IIfIQ64s112sII48s")
# flags, stream_count, volume, target_source, stream_ids[8], name[80], sink[64], target[64]
APP = struct.Struct("<IIfI8I80s64s64s")
GENERATION = struct.Struct("<Q")

# Header flags.
RUNNING = 1 << 0
CONNECTED = 1 << 1
SINKS_OVERFLOW = 1 << 2
APPS_OVERFLOW = 1 << 3
TRUNCATED = 1 << 4
HOLD_ACTIVE = 1 << 5
# Sink flags.
SINK_MUTED = 1 << 0
SINK_DEFAULT = 1 << 1
# Sink kinds.
SINK_KIND_CHANNEL = 1
# App flags.
APP_ACTIVE = 1 << 0
APP_MOVABLE = 1 << 1
APP_MUTED = 1 << 2

TARGET_SOURCES = {1: "rule", 2: "route", 3: "other-tool"}  # anything else: "session-manager"

# How long to retry while a publish is in progress.
SETTLE_LIMIT_S = 0.2


class SnapshotError(Exception):
    """The file is missing, not a snapshot, or never settled."""


def default_path():
    """$PVM_SHM, or /dev/shm/pipewire-volume-mixer-<uid>."""
    return os.environ.get("PVM_SHM") or f"/dev/shm/pipewire-volume-mixer-{os.geteuid()}"


def read_bytes(path):
    """A consistent copy of the snapshot file (the seqlock read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise SnapshotError(f"{path}: {e.strerror}") from e
    try:
        if os.fstat(fd).st_size < SNAPSHOT_SIZE:
            raise SnapshotError(f"{path}: too small for a snapshot")
        with mmap.mmap(fd, SNAPSHOT_SIZE, mmap.MAP_SHARED, mmap.PROT_READ) as shared:
            deadline = time.monotonic() + SETTLE_LIMIT_S
            while True:
                (before,) = GENERATION.unpack_from(shared, GENERATION_OFFSET)
                if before % 2 == 0:
                    copy = shared[:SNAPSHOT_SIZE]
                    (after,) = GENERATION.unpack_from(shared, GENERATION_OFFSET)
                    if before == after:
                        return copy
                if time.monotonic() > deadline:
                    raise SnapshotError(f"{path}: the snapshot never settled")
                time.sleep(0.0005)
    finally:
        os.close(fd)


def process_exists(pid):
    """Whether the daemon's process is alive (a crashed one leaves RUNNING set)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def text(field):
    """A NUL-padded UTF-8 field as a string."""
    return field.split(b"\0", 1)[0].decode("utf-8", "replace")


def rounded_volume(volume):
    """Rounded to 4 decimals, halves away from zero (as pvmctl does)."""
    if not math.isfinite(volume):
        return None
    scaled = abs(volume) * 10000.0
    whole = float(int(scaled + 0.5)) if scaled < 2**52 else scaled
    return (whole if volume >= 0 else -whole) / 10000.0


def parse(data):
    """The snapshot bytes as a dict shaped like `pvmctl status --json`."""
    (magic, version, generation, _last_update, flags, sink_count, app_count, total_sinks,
     total_apps, pid, _size) = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise SnapshotError("not a pipewire-volume-mixer snapshot (bad magic)")
    if version == 0:
        raise SnapshotError("the daemon is still initialising the snapshot")
    if version != LAYOUT_VERSION:
        raise SnapshotError(f"layout version {version} is not supported (this reader knows {LAYOUT_VERSION})")

    sinks = []
    for i in range(min(sink_count, MAX_SINKS)):
        sid, sflags, volume, channels, _serial, name, description, kind, output_id, output = SINK.unpack_from(
            data, SINKS_OFFSET + i * SINK_SIZE)
        channel = kind == SINK_KIND_CHANNEL
        sinks.append({
            "id": sid,
            "name": text(name),
            "description": text(description),
            "volume": rounded_volume(volume),
            "muted": bool(sflags & SINK_MUTED),
            "default": bool(sflags & SINK_DEFAULT),
            "channels": channels,
            "kind": "channel" if channel else "device",
            "output": text(output) if channel and output_id != NO_ID else None,
        })

    apps = []
    for i in range(min(app_count, MAX_APPS)):
        fields = APP.unpack_from(data, APPS_OFFSET + i * APP_SIZE)
        aflags, _stream_count, volume, target_source = fields[:4]
        stream_ids = fields[4:4 + MAX_STREAMS_PER_APP]
        name, sink, target = fields[4 + MAX_STREAMS_PER_APP:]
        apps.append({
            "name": text(name),
            "sink": text(sink) or None,
            "streams": [s for s in stream_ids if s != NO_ID],
            "active": bool(aflags & APP_ACTIVE),
            "volume": rounded_volume(volume),
            "muted": bool(aflags & APP_MUTED),
            "target": text(target) or None,
            "target_source": TARGET_SOURCES.get(target_source, "session-manager"),
            "movable": bool(aflags & APP_MOVABLE),
        })

    return {
        "generation": generation,
        "running": bool(flags & RUNNING) and process_exists(pid),
        "connected": bool(flags & CONNECTED),
        "overflow": bool(flags & (SINKS_OVERFLOW | APPS_OVERFLOW)),
        "truncated": bool(flags & TRUNCATED),
        "hold_active": bool(flags & HOLD_ACTIVE),
        "default_sink": next((s["name"] for s in sinks if s["default"]), None),
        "total_sinks": total_sinks,
        "total_apps": total_apps,
        "sinks": sinks,
        "apps": apps,
    }


def read_status(path=None):
    """Reads and parses the snapshot at `path` (default: see default_path)."""
    return parse(read_bytes(path or default_path()))


def summary(status):
    """A few human-readable lines."""
    lines = [
        "daemon: {}, PipeWire: {}, generation {}".format(
            "running" if status["running"] else "stopped",
            "connected" if status["connected"] else "disconnected",
            status["generation"]),
        f"sinks ({status['total_sinks']}):",
    ]
    for s in status["sinks"]:
        mark = "*" if s["default"] else " "
        muted = " (muted)" if s["muted"] else ""
        lines.append(f"  {mark} {s['name']:<24} {s['volume'] * 100:3.0f}%{muted}")
    lines.append(f"apps ({status['total_apps']}):")
    for a in status["apps"]:
        why = "" if a["target_source"] == "session-manager" else f" ({a['target_source']})"
        lines.append(f"    {a['name']:<24} -> {a['sink'] or '-'}{why}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print the pipewire-volume-mixer state.")
    parser.add_argument("--json", action="store_true", help="print the JSON of `pvmctl status --json`")
    parser.add_argument("--shm", metavar="PATH", help="snapshot file (default: $PVM_SHM or /dev/shm/...)")
    args = parser.parse_args(argv)
    try:
        status = read_status(args.shm)
    except SnapshotError as e:
        print(f"pvm_snapshot: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, separators=(",", ":"), ensure_ascii=False, allow_nan=False))
    else:
        print(summary(status))
    return 0 if status["running"] else 3


if __name__ == "__main__":
    sys.exit(main())
