/*
 * pipewire-volume-mixer.h - the shared-memory snapshot, layout version 1.
 *
 * The daemon publishes the whole mixer state to one file,
 * /dev/shm/pipewire-volume-mixer-<uid> (or $PVM_SHM). Map it read-only
 * (PVM_SNAPSHOT_SIZE bytes) and read it with the seqlock algorithm below;
 * never write to it. The same layout is defined in Rust in
 * crates/pvm-ipc/src/layout.rs; a test compiles this header against the Rust
 * offsets.
 *
 * Layout rules: little-endian, naturally aligned, no padding, no pointers.
 * Strings are UTF-8 padded with NUL bytes to the size of their field; a
 * string that fills its field has no NUL (use strnlen). Names too long for a
 * field are cut on a character boundary and flagged.
 *
 * Reading a consistent copy (seqlock):
 *
 *   1. g1 = atomic load (acquire) of header.generation;
 *      if g1 is odd a publish is in progress: wait a little, start again.
 *   2. copy the snapshot with relaxed atomic 64-bit loads (every field is
 *      inside one aligned 8-byte word), e.g. __atomic_load_n(word, __ATOMIC_RELAXED);
 *   3. acquire fence, then g2 = load of header.generation;
 *   4. if g1 != g2 the copy may be torn: start again. Otherwise check
 *      magic == PVM_MAGIC and version == PVM_LAYOUT_VERSION (version 0 means
 *      the daemon is still initialising the file).
 *
 * Waiting for a change without polling: futex(FUTEX_WAIT) on the low 32
 * bits of header.generation (byte offset 8; the mapping is shared, so not
 * FUTEX_PRIVATE) with the last value read; the daemon wakes all waiters after
 * every publish.
 *
 * Whether the daemon is alive: PVM_HEADER_RUNNING is set and
 * kill(header.daemon_pid, 0) succeeds (or fails with EPERM).
 */
#ifndef PIPEWIRE_VOLUME_MIXER_H
#define PIPEWIRE_VOLUME_MIXER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- constants ----------------------------------------------------------- */

/* header.magic: the bytes "PVMS" read as a little-endian uint32_t. */
#define PVM_MAGIC 0x534D5650u
/* header.version of this layout. */
#define PVM_LAYOUT_VERSION 2u

#define PVM_MAX_SINKS 8
#define PVM_MAX_APPS 128
#define PVM_MAX_STREAMS_PER_APP 8
#define PVM_SINK_NAME_LEN 64
#define PVM_SINK_DESCRIPTION_LEN 112
#define PVM_APP_NAME_LEN 80
#define PVM_APP_SINK_LEN 64
#define PVM_SINK_OUTPUT_LEN 48

/* A node id meaning "none" (unused entries of pvm_app.stream_ids). */
#define PVM_NO_ID 0xFFFFFFFFu

/* Default file: printf format taking the uid (overridden by $PVM_SHM). */
#define PVM_SHM_PATH_FORMAT "/dev/shm/pipewire-volume-mixer-%u"
#define PVM_SHM_ENV "PVM_SHM"

/* ---- pvm_header.flags ---------------------------------------------------- */

/* A daemon owns the file and is publishing. */
#define PVM_HEADER_RUNNING (1u << 0)
/* The daemon is connected to PipeWire (the state is live). */
#define PVM_HEADER_CONNECTED (1u << 1)
/* More sinks exist than PVM_MAX_SINKS; the first ones are shown. */
#define PVM_HEADER_SINKS_OVERFLOW (1u << 2)
/* More apps exist than PVM_MAX_APPS; the first ones are shown. */
#define PVM_HEADER_APPS_OVERFLOW (1u << 3)
/* At least one string in the snapshot was truncated. */
#define PVM_HEADER_TRUNCATED (1u << 4)
/* The session manager's routing hold is active: new streams wait for the
 * daemon's decision before they are linked. */
#define PVM_HEADER_HOLD_ACTIVE (1u << 5)

/* ---- pvm_sink.flags ------------------------------------------------------ */

#define PVM_SINK_MUTED (1u << 0)
/* The default sink (default.audio.sink). */
#define PVM_SINK_DEFAULT (1u << 1)
#define PVM_SINK_NAME_TRUNCATED (1u << 2)
#define PVM_SINK_DESCRIPTION_TRUNCATED (1u << 3)
/* Volume and mute live in the device's Route param. */
#define PVM_SINK_DEVICE_BACKED (1u << 4)
/* output was truncated. */
#define PVM_SINK_OUTPUT_TRUNCATED (1u << 5)

/* ---- pvm_sink.kind ------------------------------------------------------- */

/* Any sink the daemon did not make (sound card, headset, other virtual sink). */
#define PVM_SINK_KIND_DEVICE 0u
/* A channel the daemon made from a [[channel]] of its config. */
#define PVM_SINK_KIND_CHANNEL 1u

/* ---- pvm_app.flags ------------------------------------------------------- */

/* At least one of the app's streams is running. */
#define PVM_APP_ACTIVE (1u << 0)
/* The streams may be moved (no node.dont-move / node.dont-reconnect). */
#define PVM_APP_MOVABLE (1u << 1)
/* All of the app's streams are muted. */
#define PVM_APP_MUTED (1u << 2)
#define PVM_APP_NAME_TRUNCATED (1u << 3)
/* The app has more streams than PVM_MAX_STREAMS_PER_APP. */
#define PVM_APP_STREAMS_OVERFLOW (1u << 4)
/* sink or target was truncated. */
#define PVM_APP_SINK_TRUNCATED (1u << 5)

/* ---- pvm_app.target_source ----------------------------------------------- */

/* No target of ours: the session manager decides ("session-manager"). */
#define PVM_TARGET_SESSION_MANAGER 0u
/* A rule in the config file ("rule"). */
#define PVM_TARGET_RULE 1u
/* A ROUTE command, persisted ("route"). */
#define PVM_TARGET_ROUTE 2u
/* Moved by the user in another tool after it started ("other-tool"). */
#define PVM_TARGET_OTHER_TOOL 3u

/* ---- structures ---------------------------------------------------------- */

/* The 64-byte header. */
struct pvm_header {
	uint32_t magic;          /*  0: PVM_MAGIC */
	uint32_t version;        /*  4: PVM_LAYOUT_VERSION; 0 while initialising */
	uint64_t generation;     /*  8: seqlock counter, odd during a publish */
	uint64_t last_update_ns; /* 16: CLOCK_MONOTONIC time of the last publish */
	uint32_t flags;          /* 24: PVM_HEADER_* */
	uint32_t sink_count;     /* 28: valid entries of sinks[] (<= PVM_MAX_SINKS) */
	uint32_t app_count;      /* 32: valid entries of apps[] (<= PVM_MAX_APPS) */
	uint32_t total_sinks;    /* 36: sinks the daemon knows (may exceed sink_count) */
	uint32_t total_apps;     /* 40: apps the daemon knows (may exceed app_count) */
	uint32_t daemon_pid;     /* 44: pid of the daemon owning the file */
	uint32_t file_size;      /* 48: PVM_SNAPSHOT_SIZE */
	uint32_t reserved[3];    /* 52: zero */
};

/* One sink (256 bytes). */
struct pvm_sink {
	uint32_t id;       /*  0: PipeWire node id */
	uint32_t flags;    /*  4: PVM_SINK_* */
	float volume;      /*  8: cubic scale as wpctl shows it (0.0-1.0, may exceed 1.0) */
	uint32_t channels; /* 12: number of channels */
	uint64_t serial;   /* 16: object.serial */
	char name[PVM_SINK_NAME_LEN];               /*  24: node.name */
	char description[PVM_SINK_DESCRIPTION_LEN]; /*  88: node.description */
	uint32_t kind;      /* 200: PVM_SINK_KIND_* */
	uint32_t output_id; /* 204: a channel's output sink (node id); PVM_NO_ID if none */
	char output[PVM_SINK_OUTPUT_LEN];           /* 208: its node.name; empty if none */
};

/* One application: all its output streams (256 bytes). */
struct pvm_app {
	uint32_t flags;         /*  0: PVM_APP_* */
	uint32_t stream_count;  /*  4: streams of the app (may exceed PVM_MAX_STREAMS_PER_APP) */
	float volume;           /*  8: volume of the first stream, cubic scale */
	uint32_t target_source; /* 12: PVM_TARGET_* */
	uint32_t stream_ids[PVM_MAX_STREAMS_PER_APP]; /*  16: node ids; unused = PVM_NO_ID */
	char name[PVM_APP_NAME_LEN];                  /*  48: application name */
	char sink[PVM_APP_SINK_LEN];   /* 128: node.name of the sink it plays to; empty if none */
	char target[PVM_APP_SINK_LEN]; /* 192: node.name of the sink we route it to; empty if none */
};

/* The whole file. */
struct pvm_snapshot {
	struct pvm_header header;              /*    0 */
	struct pvm_sink sinks[PVM_MAX_SINKS];  /*   64 */
	struct pvm_app apps[PVM_MAX_APPS];     /* 2112 */
};

/* Size of the file in bytes (34880). */
#define PVM_SNAPSHOT_SIZE 34880u

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct pvm_header) == 64, "pvm_header is 64 bytes");
_Static_assert(sizeof(struct pvm_sink) == 256, "pvm_sink is 256 bytes");
_Static_assert(sizeof(struct pvm_app) == 256, "pvm_app is 256 bytes");
_Static_assert(sizeof(struct pvm_snapshot) == PVM_SNAPSHOT_SIZE, "pvm_snapshot size");
#endif

#ifdef __cplusplus
}
#endif

#endif /* PIPEWIRE_VOLUME_MIXER_H */
