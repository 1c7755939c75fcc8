/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Water-filling of the host's memory over its guests by shares (max-min
 * fairness with demands): see entitlement.h and docs/policy.md, rule 10.
 */
#include "entitlement.h"

#include <stdlib.h>

typedef struct {
    gsize i;
    guint64 room;     /* what this round may still add */
    double per_share; /* room / shares: who is filled first */
} FillSlot;

static int cmp_slot(const void *a, const void *b)
{
    const FillSlot *x = a, *y = b;

    if (x->per_share != y->per_share)
        return x->per_share < y->per_share ? -1 : 1;
    return x->i < y->i ? -1 : (x->i > y->i);
}

/* One round: add up to `rest` KiB over the VMs, each at most up to cap[i],
 * in proportion to shares. The VM with the least room per share is filled
 * first; if its share of what is left covers its room it takes only that, and
 * the rest is divided among the others. Returns what is left. */
static guint64 fill_round(const EntitlementVm *vms, gsize n, const guint64 *cap, guint64 rest,
                          guint64 *out, FillSlot *slots)
{
    gsize m = 0;
    double weight = 0;

    for (gsize i = 0; i < n; i++) {
        double s = vms[i].shares != 0 ? vms[i].shares : 1;

        if (cap[i] <= out[i])
            continue;
        slots[m].i = i;
        slots[m].room = cap[i] - out[i];
        slots[m].per_share = (double)slots[m].room / s;
        weight += s;
        m++;
    }
    qsort(slots, m, sizeof(*slots), cmp_slot);
    for (gsize k = 0; k < m && rest > 0; k++) {
        gsize i = slots[k].i;
        double s = vms[i].shares != 0 ? vms[i].shares : 1;
        /* rounded down: the parts never add up to more than the pool */
        guint64 part = (guint64)((double)rest * (s / weight));

        if (part > slots[k].room || k + 1 == m)
            part = MIN(slots[k].room, rest);
        out[i] += part;
        rest -= part;
        weight -= s;
    }
    return rest;
}

guint64 entitlement_fill(const EntitlementVm *vms, gsize n, guint64 pool_kib, guint64 *out_kib)
{
    g_autofree guint64 *cap = g_new0(guint64, MAX(n, 1));
    g_autofree FillSlot *slots = g_new0(FillSlot, MAX(n, 1));
    guint64 floors = 0, rest;

    for (gsize i = 0; i < n; i++) {
        out_kib[i] = MIN(vms[i].floor_kib, vms[i].max_kib);
        floors += out_kib[i];
    }
    if (floors >= pool_kib)
        return 0; /* floors are never broken: everyone gets exactly its floor */
    rest = pool_kib - floors;

    /* round one: up to each VM's need */
    for (gsize i = 0; i < n; i++)
        cap[i] = MIN(MAX(vms[i].need_kib, out_kib[i]), vms[i].max_kib);
    rest = fill_round(vms, n, cap, rest, out_kib, slots);
    /* round two: what nobody needs, up to each maximum */
    for (gsize i = 0; i < n; i++)
        cap[i] = vms[i].max_kib;
    return fill_round(vms, n, cap, rest, out_kib, slots);
}

guint64 entitlement_pool(guint64 host_total_kib, guint64 reserve_kib, guint64 others_kib)
{
    guint64 keep = reserve_kib + others_kib;

    return host_total_kib > keep ? host_total_kib - keep : 0;
}
