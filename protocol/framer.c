/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Line framer (PROTOCOL.md section 2). One buffer of max_line bytes is
 * allocated up front and never grows: a line whose content reaches max_line
 * bytes without a '\n' is overlong, counted once, and skipped through its
 * '\n' without buffering any of it.
 */
#include "framer.h"

#include <string.h>

#define RESYNC_BYTE 0xFF

struct BlFramer {
    gsize max_line; /* counts the '\n', so content is at most max_line - 1 */
    gsize len;      /* bytes of the current partial line in buf */
    gboolean discarding;
    BlFramerStats stats;
    char *buf; /* max_line bytes: content plus the NUL handed to the callback */
};

BlFramer *bl_framer_new(gsize max_line)
{
    BlFramer *f;

    g_return_val_if_fail(max_line >= 2, NULL);
    f = g_new0(BlFramer, 1);
    f->max_line = max_line;
    f->buf = g_malloc(max_line);
    return f;
}

void bl_framer_free(BlFramer *framer)
{
    if (!framer)
        return;
    g_free(framer->buf);
    g_free(framer);
}

void bl_framer_reset(BlFramer *framer)
{
    framer->len = 0;
    framer->discarding = FALSE;
}

const BlFramerStats *bl_framer_stats(const BlFramer *framer)
{
    return &framer->stats;
}

/* Append n bytes of the current line, or start discarding when it gets too long. */
static void append(BlFramer *f, const guchar *p, gsize n)
{
    if (f->discarding)
        return;
    if (n > f->max_line - 1 - f->len) {
        f->stats.overlong++;
        f->discarding = TRUE;
        f->len = 0;
        return;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
}

/* A '\n' arrived: deliver the buffered line. Returns the callback's verdict. */
static gboolean end_line(BlFramer *f, BlFramerLineFunc func, gpointer user_data)
{
    gsize n = f->len;

    f->len = 0;
    if (f->discarding) {
        f->discarding = FALSE;
        return TRUE;
    }
    if (n > 0 && f->buf[n - 1] == '\r')
        n--;
    if (n == 0)
        return TRUE;
    f->buf[n] = '\0';
    f->stats.lines++;
    return func(f->buf, n, user_data);
}

gsize bl_framer_feed(BlFramer *framer, const void *data, gsize len, BlFramerLineFunc func,
                     gpointer user_data)
{
    const guchar *p = data, *end = p + len;

    g_return_val_if_fail(framer != NULL && (data != NULL || len == 0) && func != NULL, 0);

    while (p < end) {
        const guchar *nl = memchr(p, '\n', (gsize)(end - p));
        const guchar *stop = nl ? nl : end;
        const guchar *ff = memchr(p, RESYNC_BYTE, (gsize)(stop - p));

        if (ff) {
            /*
             * Resync: whatever came before the 0xFF belongs to a broken line.
             * It is appended first so that the stats do not depend on how the
             * stream was split into chunks.
             */
            append(framer, p, (gsize)(ff - p));
            if (framer->len > 0 || framer->discarding)
                framer->stats.resyncs++;
            bl_framer_reset(framer);
            p = ff + 1;
            continue;
        }
        append(framer, p, (gsize)(stop - p));
        p = stop;
        if (!nl)
            break;
        p = nl + 1;
        if (!end_line(framer, func, user_data))
            break;
    }
    framer->stats.bytes += (guint64)(p - (const guchar *)data);
    return (gsize)(p - (const guchar *)data);
}
