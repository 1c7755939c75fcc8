/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Line framer: accepts arbitrary byte chunks, yields complete lines.
 *
 * Bounded: never buffers more than max_line bytes. An overlong line is
 * discarded through its next '\n' and counted. A 0xFF byte (never valid in
 * UTF-8) drops any partial line: a peer resyncs by sending it.
 */
#pragma once

#include <glib.h>

typedef struct BlFramer BlFramer;

typedef struct {
    guint64 lines;    /* complete lines delivered */
    guint64 overlong; /* lines discarded for exceeding max_line */
    guint64 resyncs;  /* partial lines flushed by 0xFF */
    guint64 bytes;    /* bytes fed */
} BlFramerStats;

/*
 * Called once per complete line. line is NUL-terminated, without '\n' (and
 * without a trailing '\r'); len excludes the NUL. Empty lines are not passed.
 * Returning FALSE stops the current feed right after this line's '\n'; the
 * rest of the input is not consumed (see bl_framer_feed). The callback must
 * not free or feed the framer; it may call bl_framer_reset().
 */
typedef gboolean (*BlFramerLineFunc)(const char *line, gsize len, gpointer user_data);

/* max_line counts the '\n'; BL_PROTO_MAX_LINE for the wire protocol. */
BlFramer *bl_framer_new(gsize max_line);
void bl_framer_free(BlFramer *framer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BlFramer, bl_framer_free)

/*
 * Feed len bytes. Calls func for each line completed. Returns the number of
 * input bytes consumed: all of them, unless func returned FALSE, in which case
 * the caller keeps the rest and feeds it again later.
 */
gsize bl_framer_feed(BlFramer *framer, const void *data, gsize len, BlFramerLineFunc func,
                     gpointer user_data);

/* Drop any partial line (e.g. on reconnect). */
void bl_framer_reset(BlFramer *framer);

const BlFramerStats *bl_framer_stats(const BlFramer *framer);
