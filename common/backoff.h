/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One back-off for everything that retries: a channel that will not open, a
 * libvirt connection, a balloon below its floor that does not move, a
 * set-memory call that fails.
 *
 * Pure: the caller passes the time (monotonic microseconds) and keeps the
 * Backoff by value; nothing here sleeps, arms a timer or reads a clock.
 */
#pragma once

#include <glib.h>

/* How the waits grow: first_us after the first failure, then times factor
 * after each further one, never above max_us. factor 0 jumps straight from
 * first_us to max_us (ask once more soon, then only now and then). */
typedef struct {
    gint64 first_us;
    gint64 max_us;
    guint factor;
} BackoffSpec;

/* Zero-initialised: no failure yet, an attempt may be made at once. */
typedef struct {
    guint failures; /* failures since the last success */
    gint64 next_us; /* no attempt before this; 0: any time */
} Backoff;

/* The wait after the n-th failure in a row (n >= 1); 0 for n == 0. */
gint64 backoff_delay(const BackoffSpec *spec, guint n);

/* An attempt failed at now_us: count it and return the wait before the next. */
gint64 backoff_fail(Backoff *b, const BackoffSpec *spec, gint64 now_us);

/* An attempt worked: the next failure starts from first_us again. */
void backoff_reset(Backoff *b);

/* The reason to wait is gone (the resource came back): the next attempt may
 * be made at once; the count of failures stays. */
void backoff_retry_now(Backoff *b);

/* May an attempt be made at now_us? */
gboolean backoff_ready(const Backoff *b, gint64 now_us);
