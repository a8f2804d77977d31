/*
 * pvm-status: prints the pipewire-volume-mixer state from the shared-memory
 * snapshot, with no library beyond libc and without waking the daemon.
 *
 *   pvm-status [--json] [--shm PATH]
 *
 * --json prints the same JSON object as `pvmctl status --json`.
 * Exit status: 0, 1 on error, 3 when the snapshot is from a stopped daemon.
 *
 * Build (from the repository root):
 *   cc -std=c11 -O2 -Wall -Wextra -Iinclude examples/c/pvm-status.c -o pvm-status -lm
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipewire-volume-mixer.h"

/* Give up when a publish never finishes (a daemon killed mid-publish). */
#define MAX_ATTEMPTS 100000

/* Maps the snapshot read-only, never through a symlink. */
static const struct pvm_snapshot *map_snapshot(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "pvm-status: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < PVM_SNAPSHOT_SIZE) {
		fprintf(stderr, "pvm-status: %s: not a snapshot file\n", path);
		close(fd);
		return NULL;
	}
	void *map = mmap(NULL, PVM_SNAPSHOT_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		fprintf(stderr, "pvm-status: %s: mmap: %s\n", path, strerror(errno));
		return NULL;
	}
	return map;
}

/*
 * Copies a consistent snapshot (the seqlock read of the header comment).
 * Every word is read with an atomic load: the daemon writes concurrently.
 */
static int read_snapshot(const struct pvm_snapshot *shared, struct pvm_snapshot *out)
{
	const uint64_t *src = (const uint64_t *)shared;
	uint64_t *dst = (uint64_t *)out;
	const size_t words = PVM_SNAPSHOT_SIZE / sizeof(uint64_t);
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		uint64_t before = __atomic_load_n(&shared->header.generation, __ATOMIC_ACQUIRE);
		if ((before & 1) == 0) {
			for (size_t i = 0; i < words; i++)
				dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			uint64_t after = __atomic_load_n(&shared->header.generation, __ATOMIC_RELAXED);
			if (before == after)
				break;
		}
		if (attempt == MAX_ATTEMPTS - 1) {
			fprintf(stderr, "pvm-status: the snapshot never settled\n");
			return -1;
		}
		sched_yield();
	}
	if (out->header.magic != PVM_MAGIC) {
		fprintf(stderr, "pvm-status: not a pipewire-volume-mixer snapshot (bad magic)\n");
		return -1;
	}
	if (out->header.version != PVM_LAYOUT_VERSION) {
		if (out->header.version == 0)
			fprintf(stderr, "pvm-status: the daemon is still initialising the snapshot\n");
		else
			fprintf(stderr, "pvm-status: layout version %u is not supported (this reader knows %u)\n",
				out->header.version, PVM_LAYOUT_VERSION);
		return -1;
	}
	return 0;
}

/* Length of a NUL-padded field. */
static size_t field_len(const char *s, size_t size)
{
	return strnlen(s, size);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min;
	unsigned cp;
	if (s[0] < 0x80)
		return 1;
	else if ((s[0] & 0xE0) == 0xC0)
		len = 2, min = 0x80, cp = s[0] & 0x1F;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, min = 0x800, cp = s[0] & 0x0F;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* Prints a field as a JSON string; invalid UTF-8 becomes U+FFFD. */
static void json_string(const char *field, size_t size)
{
	const unsigned char *s = (const unsigned char *)field;
	size_t n = field_len(field, size);
	putchar('"');
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = utf8_seq(s + i, n - i);
		if (len == 0) {
			fputs("\xEF\xBF\xBD", stdout);
			i++;
			continue;
		}
		if (len > 1) {
			fwrite(s + i, 1, len, stdout);
		} else if (c == '"' || c == '\\') {
			printf("\\%c", c);
		} else if (c == '\n') {
			fputs("\\n", stdout);
		} else if (c == '\t') {
			fputs("\\t", stdout);
		} else if (c == '\r') {
			fputs("\\r", stdout);
		} else if (c == '\b') {
			fputs("\\b", stdout);
		} else if (c == '\f') {
			fputs("\\f", stdout);
		} else if (c < 0x20) {
			printf("\\u%04x", c);
		} else {
			putchar(c);
		}
		i += len;
	}
	putchar('"');
}

/* A field as a JSON string, or null when it is empty. */
static void json_string_or_null(const char *field, size_t size)
{
	if (field_len(field, size) == 0)
		fputs("null", stdout);
	else
		json_string(field, size);
}

/* The volume rounded to 4 decimals, as pvmctl shows it. */
static double rounded_volume(float volume)
{
	return round((double)volume * 10000.0) / 10000.0;
}

/* Prints a number in the shortest form that reads back exactly, e.g. 0.5, 1.0. */
static void json_number(double v)
{
	if (!isfinite(v)) {
		fputs("null", stdout);
		return;
	}
	char buf[40];
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(buf, sizeof buf, "%.*g", precision, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, stdout);
	if (!strpbrk(buf, ".eE"))
		fputs(".0", stdout);
}

/* RUNNING is set and the daemon's process exists (a crashed one leaves the flag). */
static int daemon_running(const struct pvm_header *h)
{
	if (!(h->flags & PVM_HEADER_RUNNING) || h->daemon_pid == 0 || h->daemon_pid > INT32_MAX)
		return 0;
	return kill((pid_t)h->daemon_pid, 0) == 0 || errno == EPERM;
}

static const char *bool_str(int b)
{
	return b ? "true" : "false";
}

static const char *target_source_name(uint32_t source)
{
	switch (source) {
	case PVM_TARGET_RULE:
		return "rule";
	case PVM_TARGET_ROUTE:
		return "route";
	case PVM_TARGET_OTHER_TOOL:
		return "other-tool";
	default:
		return "session-manager";
	}
}

static unsigned sink_count(const struct pvm_snapshot *s)
{
	return s->header.sink_count < PVM_MAX_SINKS ? s->header.sink_count : PVM_MAX_SINKS;
}

static unsigned app_count(const struct pvm_snapshot *s)
{
	return s->header.app_count < PVM_MAX_APPS ? s->header.app_count : PVM_MAX_APPS;
}

static void print_json(const struct pvm_snapshot *s)
{
	const struct pvm_header *h = &s->header;
	const struct pvm_sink *default_sink = NULL;
	for (unsigned i = 0; i < sink_count(s); i++) {
		if (s->sinks[i].flags & PVM_SINK_DEFAULT) {
			default_sink = &s->sinks[i];
			break;
		}
	}
	printf("{\"generation\":%llu,\"running\":%s,\"connected\":%s,\"overflow\":%s,\"truncated\":%s,"
	       "\"hold_active\":%s,\"default_sink\":",
	       (unsigned long long)h->generation, bool_str(daemon_running(h)),
	       bool_str(h->flags & PVM_HEADER_CONNECTED),
	       bool_str(h->flags & (PVM_HEADER_SINKS_OVERFLOW | PVM_HEADER_APPS_OVERFLOW)),
	       bool_str(h->flags & PVM_HEADER_TRUNCATED), bool_str(h->flags & PVM_HEADER_HOLD_ACTIVE));
	if (default_sink)
		json_string(default_sink->name, sizeof default_sink->name);
	else
		fputs("null", stdout);
	printf(",\"total_sinks\":%u,\"total_apps\":%u,\"sinks\":[", h->total_sinks, h->total_apps);
	for (unsigned i = 0; i < sink_count(s); i++) {
		const struct pvm_sink *k = &s->sinks[i];
		printf("%s{\"id\":%u,\"name\":", i ? "," : "", k->id);
		json_string(k->name, sizeof k->name);
		fputs(",\"description\":", stdout);
		json_string(k->description, sizeof k->description);
		fputs(",\"volume\":", stdout);
		json_number(rounded_volume(k->volume));
		printf(",\"muted\":%s,\"default\":%s,\"channels\":%u", bool_str(k->flags & PVM_SINK_MUTED),
		       bool_str(k->flags & PVM_SINK_DEFAULT), k->channels);
		bool channel = k->kind == PVM_SINK_KIND_CHANNEL;
		printf(",\"kind\":\"%s\",\"output\":", channel ? "channel" : "device");
		if (channel && k->output_id != PVM_NO_ID)
			json_string(k->output, sizeof k->output);
		else
			fputs("null", stdout);
		fputs("}", stdout);
	}
	fputs("],\"apps\":[", stdout);
	for (unsigned i = 0; i < app_count(s); i++) {
		const struct pvm_app *a = &s->apps[i];
		printf("%s{\"name\":", i ? "," : "");
		json_string(a->name, sizeof a->name);
		fputs(",\"sink\":", stdout);
		json_string_or_null(a->sink, sizeof a->sink);
		fputs(",\"streams\":[", stdout);
		int first = 1;
		for (unsigned j = 0; j < PVM_MAX_STREAMS_PER_APP; j++) {
			if (a->stream_ids[j] == PVM_NO_ID)
				continue;
			printf("%s%u", first ? "" : ",", a->stream_ids[j]);
			first = 0;
		}
		printf("],\"active\":%s,\"volume\":", bool_str(a->flags & PVM_APP_ACTIVE));
		json_number(rounded_volume(a->volume));
		printf(",\"muted\":%s,\"target\":", bool_str(a->flags & PVM_APP_MUTED));
		json_string_or_null(a->target, sizeof a->target);
		printf(",\"target_source\":\"%s\",\"movable\":%s}", target_source_name(a->target_source),
		       bool_str(a->flags & PVM_APP_MOVABLE));
	}
	fputs("]}\n", stdout);
}

static void print_text(const struct pvm_snapshot *s)
{
	const struct pvm_header *h = &s->header;
	printf("daemon: %s, PipeWire: %s, generation %llu\n",
	       daemon_running(h) ? "running" : "stopped",
	       h->flags & PVM_HEADER_CONNECTED ? "connected" : "disconnected",
	       (unsigned long long)h->generation);
	printf("sinks (%u):\n", h->total_sinks);
	for (unsigned i = 0; i < sink_count(s); i++) {
		const struct pvm_sink *k = &s->sinks[i];
		printf("  %c %-24.*s %3.0f%%%s\n", k->flags & PVM_SINK_DEFAULT ? '*' : ' ',
		       (int)field_len(k->name, sizeof k->name), k->name, rounded_volume(k->volume) * 100.0,
		       k->flags & PVM_SINK_MUTED ? " (muted)" : "");
	}
	printf("apps (%u):\n", h->total_apps);
	for (unsigned i = 0; i < app_count(s); i++) {
		const struct pvm_app *a = &s->apps[i];
		size_t sink_len = field_len(a->sink, sizeof a->sink);
		printf("    %-24.*s -> %.*s%s\n", (int)field_len(a->name, sizeof a->name), a->name,
		       (int)(sink_len ? sink_len : 1), sink_len ? a->sink : "-",
		       a->target_source == PVM_TARGET_SESSION_MANAGER ? "" :
		       a->target_source == PVM_TARGET_RULE ? " (rule)" : " (route)");
	}
}

static void usage(FILE *to)
{
	fputs("usage: pvm-status [--json] [--shm PATH]\n", to);
}

int main(int argc, char **argv)
{
	int json = 0;
	const char *path = getenv(PVM_SHM_ENV);
	char default_path[64];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--shm") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!path || !*path) {
		snprintf(default_path, sizeof default_path, PVM_SHM_PATH_FORMAT, (unsigned)geteuid());
		path = default_path;
	}

	const struct pvm_snapshot *shared = map_snapshot(path);
	if (!shared)
		return 1;
	/* 34 KiB: keep it off the stack. */
	struct pvm_snapshot *snap = malloc(sizeof *snap);
	if (!snap || read_snapshot(shared, snap) < 0)
		return 1;
	if (json)
		print_json(snap);
	else
		print_text(snap);
	if (fflush(stdout) != 0)
		return 1;
	int running = daemon_running(&snap->header);
	free(snap);
	munmap((void *)shared, PVM_SNAPSHOT_SIZE);
	return running ? 0 : 3;
}
