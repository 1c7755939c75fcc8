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

/* path NULL: no file, only the ring and stderr. */
Evlog *evlog_new(const char *path, GError **error);
void evlog_free(Evlog *log);

/* Reopen the file (after logrotate moved it; SIGHUP). On error the old
 * stream is kept. */
gboolean evlog_reopen(Evlog *log, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Evlog, evlog_free)

/* Also echo every event as JSON on stderr (--verbose). */
void evlog_set_verbose(Evlog *log, gboolean verbose);
gboolean evlog_verbose(const Evlog *log);

/*
 * Emit event (name) about vm (NULL for host-wide events). Takes ownership of
 * fields (a JSON object or NULL); "ts", "mono_us", "event" and "vm" are added.
 */
void evlog_emit(Evlog *log, const char *event, const char *vm, json_object *fields);

/* Human log line on stderr, also kept in the ring shown by `ballastctl watch`
 * when recent is TRUE. */
void evlog_say(Evlog *log, gboolean recent, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* The ring of recent lines, oldest first: a JSON array of {mono_us, text}. */
json_object *evlog_recent(const Evlog *log);

/* Small helpers for building fields. */
json_object *evlog_str_or_null(const char *s);
