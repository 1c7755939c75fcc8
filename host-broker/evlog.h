/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The event log: one JSON object per line (docs in /tmp/ballast-broker-iface.md,
 * mirrored in docs/configuration.md), plus a short ring of recent decisions
 * and notes for `ballastctl watch`, plus human lines on stderr.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

typedef struct Evlog Evlog;

#define EVLOG_RECENT_MAX 16

/* A guest must not fill the host's disk through the event log. Per VM and
 * event kind, a token bucket: EVLOG_VM_RATE_PER_S events a second with
 * bursts of EVLOG_VM_BURST (an honest agent reports once a second); the
 * events held back are counted, and the next one let through carries
 * "suppressed": N. And a size cap: past max_bytes (EVLOG_MAX_BYTES by
 * default) one "event-log-full" line is written and nothing more until the
 * file is reopened (SIGHUP, after logrotate moved it). Host-wide events
 * (vm NULL) are not rate-limited. */
#define EVLOG_VM_RATE_PER_S 5.0
#define EVLOG_VM_BURST      20.0
#define EVLOG_MAX_BYTES     (512ull << 20)

/* path NULL: no file, only the ring and stderr. */
Evlog *evlog_new(const char *path, GError **error);
void evlog_free(Evlog *log);

/* Reopen the file (after logrotate moved it; SIGHUP). On error the old
 * stream is kept. */
gboolean evlog_reopen(Evlog *log, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Evlog, evlog_free)

/* The size cap (0: none); the bytes of the open file count. */
void evlog_set_max_bytes(Evlog *log, guint64 max_bytes);

/* Bytes written to the file since it was opened, and events held back
 * (rate limit or size cap) since start. */
guint64 evlog_bytes_written(const Evlog *log);
guint64 evlog_suppressed(const Evlog *log);

/* Also echo every event as JSON on stderr (--verbose). */
void evlog_set_verbose(Evlog *log, gboolean verbose);
gboolean evlog_verbose(const Evlog *log);

/*
 * Emit event (name) about vm (NULL for host-wide events). Takes ownership of
 * fields (a JSON object or NULL); "ts", "mono_us", "event" and "vm" are added.
 * With nowhere to write it (no file, not verbose) the event is dropped
 * unbuilt, and counts neither as written nor as suppressed.
 */
void evlog_emit(Evlog *log, const char *event, const char *vm, json_object *fields);

/* Whether events go anywhere (an event log file, or --verbose): a caller on
 * a hot path (one event per agent report) builds its fields only then. */
gboolean evlog_emits(const Evlog *log);

/* Human log line on stderr, also kept in the ring shown by `ballastctl watch`
 * when recent is TRUE. */
void evlog_say(Evlog *log, gboolean recent, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* What a human line is about, for the journal: its syslog priority
 * (LOG_ERR ... LOG_DEBUG; 0 = the default: LOG_NOTICE for lines kept in the
 * ring, LOG_INFO for others) and the fields BALLAST_DOMAIN=, BALLAST_ACTION=,
 * BALLAST_REASON= (NULL: not set). */
typedef struct {
    int priority;
    const char *domain; /* libvirt domain name */
    const char *action; /* "deflate", "inflate", "set-memory", "balloon-stuck", ... */
    const char *reason; /* a stable reason name (policy_reason_name), never free text */
} EvlogTags;

/* evlog_say with tags (NULL: none). When stderr is the journal
 * (JOURNAL_STREAM names it, as systemd sets it), lines go through GLib's
 * structured logging with PRIORITY= and the tags' fields; otherwise they are
 * plain "ballastd: text" lines. */
void evlog_say_tagged(Evlog *log, gboolean recent, const EvlogTags *tags, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

/* TRUE when human lines go to the journal (decided at evlog_new). */
gboolean evlog_to_journal(const Evlog *log);

/* The ring of recent lines, oldest first: a JSON array of {mono_us, text}. */
json_object *evlog_recent(const Evlog *log);

/* Small helpers for building fields. */
json_object *evlog_str_or_null(const char *s);
