/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Monotonic time in seconds and a sleep that survives EINTR, shared by the
 * static guest tools (memhog, e2e-talker), which link nothing but libc.
 */
#pragma once

#include <errno.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps s seconds; a negative or zero s returns at once (callers pace
 * themselves against deadlines that may already have passed). */
static inline void sleep_s(double s)
{
    struct timespec ts;

    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}
