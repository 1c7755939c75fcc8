/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "backoff.h"

gint64 backoff_delay(const BackoffSpec *spec, guint n)
{
    gint64 max = MAX(spec->max_us, spec->first_us);
    gint64 d = MAX(spec->first_us, 0);

    if (n == 0)
        return 0;
    if (spec->factor == 1)
        return MIN(d, max); /* a fixed wait: nothing to grow */
    for (guint i = 1; i < n && d < max; i++) {
        /* saturating: a long series never overflows into a short wait */
        if (spec->factor == 0 || d > max / spec->factor)
            d = max;
        else
            d *= spec->factor;
    }
    return MIN(d, max);
}

gint64 backoff_fail(Backoff *b, const BackoffSpec *spec, gint64 now_us)
{
    gint64 d;

    if (b->failures < G_MAXUINT)
        b->failures++;
    d = backoff_delay(spec, b->failures);
    b->next_us = now_us + d;
    return d;
}

void backoff_reset(Backoff *b)
{
    b->failures = 0;
    b->next_us = 0;
}

void backoff_retry_now(Backoff *b)
{
    b->next_us = 0;
}

gboolean backoff_ready(const Backoff *b, gint64 now_us)
{
    return b->next_us == 0 || now_us >= b->next_us;
}
