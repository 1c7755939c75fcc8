/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Entitlements: what each VM may hold while the host is short of memory
 * (docs/policy.md, rule 8).
 *
 * Pure arithmetic over numbers the policy gathered: no clock, no I/O. Units
 * are KiB; sizes are expected below 2^50 (the policy clamps them).
 */
#pragma once

#include <glib.h>

typedef struct {
    guint64 floor_kib; /* never less, even when the floors exceed the pool */
    guint64 max_kib;   /* never more */
    guint64 need_kib;  /* what it would use now (policy.c: entitle_need) */
    guint32 shares;    /* weight; 0 counts as 1 */
} EntitlementVm;

/*
 * Share `pool_kib` among n VMs, water-filled: each VM gets its floor, then the
 * rest is divided by shares in two rounds. Round one fills each VM up to its
 * need: a VM that needs less than its part leaves the rest to the others.
 * Round two shares what nobody needs, by shares again, up to each maximum: a
 * VM is only over its entitlement when the others need the memory.
 * out_kib[i] is within [min(floor, max), max]. Returns what is left of the
 * pool (every VM at its maximum, or nothing left).
 */
guint64 entitlement_fill(const EntitlementVm *vms, gsize n, guint64 pool_kib, guint64 *out_kib);

/* The memory the host can give to its guests together: MemTotal minus the
 * reserve it keeps free minus what others use (the host itself, VMs the
 * policy does not manage). */
guint64 entitlement_pool(guint64 host_total_kib, guint64 reserve_kib, guint64 others_kib);
