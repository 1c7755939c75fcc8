/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "evlog-once.h"

struct EvlogOnce {
    gint64 repeat_us;
    GHashTable *seen; /* key -> EvlogOnceKey */
};

typedef struct {
    gint64 said_us, seen_us;
} EvlogOnceKey;

EvlogOnce *evlog_once_new(gint64 repeat_us)
{
    EvlogOnce *o = g_new0(EvlogOnce, 1);

    o->repeat_us = repeat_us;
    o->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return o;
}

void evlog_once_free(EvlogOnce *o)
{
    if (o == NULL)
        return;
    g_hash_table_destroy(o->seen);
    g_free(o);
}

gboolean evlog_once_due(EvlogOnce *o, const char *key, gint64 now_us)
{
    EvlogOnceKey *k = g_hash_table_lookup(o->seen, key);

    if (k == NULL) {
        k = g_new0(EvlogOnceKey, 1);
        g_hash_table_insert(o->seen, g_strdup(key), k);
    }
    k->seen_us = now_us;
    if (k->said_us != 0 && now_us - k->said_us < o->repeat_us)
        return FALSE;
    k->said_us = now_us;
    return TRUE;
}

void evlog_once_expire(EvlogOnce *o, gint64 now_us)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, o->seen);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        if (now_us - ((EvlogOnceKey *)v)->seen_us > o->repeat_us)
            g_hash_table_iter_remove(&it);
    }
}

gboolean evlog_once_changed(char **last, const char *text)
{
    if (g_strcmp0(*last ? *last : "", text ? text : "") == 0)
        return FALSE;
    g_free(*last);
    *last = text && *text ? g_strdup(text) : NULL;
    return TRUE;
}
