/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Saying a repeated log line once: the bookkeeping behind "logged when it
 * first appears, then once a minute while it lasts" and "once per distinct
 * error". Pure: the caller passes the time and does the saying.
 */
#pragma once

#include <glib.h>

typedef struct EvlogOnce EvlogOnce;

/* Lines keyed by a string (a note's shape, an error): due when first seen,
 * then at most once per repeat_us while they keep coming. */
EvlogOnce *evlog_once_new(gint64 repeat_us);
void evlog_once_free(EvlogOnce *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EvlogOnce, evlog_once_free)

/* key was seen at now_us: TRUE when it should be said now. */
gboolean evlog_once_due(EvlogOnce *o, const char *key, gint64 now_us);

/* Forget keys not seen for repeat_us, so that a line that comes back after a
 * while is said at once. */
void evlog_once_expire(EvlogOnce *o, gint64 now_us);

/* One slot, for "say it once per distinct text": TRUE when text differs from
 * *last (NULL and "" are the same: nothing), which then holds a copy of it. */
gboolean evlog_once_changed(char **last, const char *text);
