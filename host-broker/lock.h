/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One ballastd per host: an flock(2) on a file under /run/ballast/. Two
 * brokers would fight over every balloon and over /sys/kernel/mm/ksm, and the
 * second would take over the first one's control socket; the lock is taken
 * before anything else is touched. The kernel drops it when the process dies,
 * so a killed ballastd leaves no stale lock behind.
 */
#pragma once

#include <glib.h>

/* The default lock file (BALLAST_RUNSTATEDIR/ballast/ballastd.lock). */
const char *lock_default_path(void);

/*
 * Take the lock on path (its directory is created, 0755). Returns the open
 * descriptor that holds it (keep it open for the life of the process), or -1
 * with a one-line error: "another ballastd (pid N) is running: PATH is locked".
 */
int lock_acquire(const char *path, GError **error);

/* Give it up (close the descriptor); -1 is ignored. */
void lock_release(int fd);
