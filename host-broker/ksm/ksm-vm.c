/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-VM KSM exclusion decisions (see ksm-vm.h, docs/ksm.md).
 *
 * ksm="never" and latency-sensitive VMs are excluded at once. ksm="auto" VMs
 * are sampled once per full scan of ksmd (a sample between two scans says
 * nothing new) and excluded only after vm_full_scans consecutive samples below
 * vm_min_profit_mib, so one bad moment does not flap the VM. An excluded VM
 * has no merging left to measure, so re-inclusion is by time
 * (vm_retry_after_s), not by profit.
 */
#include "ksm-vm.h"

#include <string.h>

#include "types.h" /* BYTES_PER_MIB */

gboolean ksm_vm_in_list(const KsmConfig *config, const char *name)
{
    if (!name || !config->latency_sensitive)
        return FALSE;
    return g_strv_contains((const char *const *)config->latency_sensitive, name);
}

const char *ksm_vm_why_to_string(KsmVmWhy why)
{
    switch (why) {
    case KSM_VM_WHY_NONE:
        return "none";
    case KSM_VM_WHY_NEVER:
        return "never";
    case KSM_VM_WHY_ALWAYS:
        return "always";
    case KSM_VM_WHY_LATENCY:
        return "latency-sensitive";
    case KSM_VM_WHY_LOW_PROFIT:
        return "low-profit";
    case KSM_VM_WHY_PAYS:
        return "pays";
    case KSM_VM_WHY_NO_DATA:
        return "no-data";
    case KSM_VM_WHY_RETRY:
        return "retry";
    }
    return "none";
}

/* ksm="auto", not latency-sensitive, not held out for low profit: sample. */
static void ksm_vm_sample(const KsmVmFacts *f, const KsmConfig *config, gint64 now_us,
                          KsmVmDecision *d)
{
    KsmVmState *s = &d->state;
    gint64 min = (gint64)config->vm_min_profit_mib * 1024 * 1024;

    if (!d->has_profit) {
        d->why = KSM_VM_WHY_NO_DATA;
        g_snprintf(d->reason, sizeof(d->reason), "ksm=auto: %s, sharing allowed",
                   f->has_stat ? "kernel reports no merging pages for its QEMU"
                               : "no ksm_stat for its QEMU");
        return;
    }
    if (f->stat.rmap_items == 0) {
        /* nothing registered or not reached by ksmd yet: nothing to judge */
        d->why = KSM_VM_WHY_NO_DATA;
        g_snprintf(d->reason, sizeof(d->reason),
                   "ksm=auto: not scanned by ksmd yet, sharing allowed");
        return;
    }
    d->why = KSM_VM_WHY_PAYS;
    if (!s->measuring || f->full_scans < s->scans_seen) {
        s->measuring = TRUE;
        s->scans_seen = f->full_scans;
        s->low_scans = 0;
    } else if (f->full_scans > s->scans_seen) {
        s->scans_seen = f->full_scans;
        if (d->profit_bytes < min)
            s->low_scans++;
        else
            s->low_scans = 0;
    }
    if (s->low_scans >= config->vm_full_scans) {
        d->exclude = TRUE;
        d->why = KSM_VM_WHY_LOW_PROFIT;
        g_snprintf(d->reason, sizeof(d->reason),
                   "ksm=auto: sharing does not pay, profit %.1f MiB < %u MiB over %u full scans "
                   "(%" G_GUINT64_FORMAT " merging pages, %" G_GUINT64_FORMAT " rmap items)",
                   d->profit_bytes / (double)BYTES_PER_MIB, config->vm_min_profit_mib, s->low_scans,
                   f->stat.has_merging_pages ? f->stat.merging_pages : 0, f->stat.rmap_items);
        return;
    }
    g_snprintf(d->reason, sizeof(d->reason),
               "ksm=auto: profit %.1f MiB, %u/%u full scans below %u MiB, sharing allowed",
               d->profit_bytes / (double)BYTES_PER_MIB, s->low_scans, config->vm_full_scans,
               config->vm_min_profit_mib);
}

void ksm_vm_decide(const KsmVmFacts *facts, const KsmVmState *state, const KsmConfig *config,
                   gint64 now_us, KsmVmDecision *d)
{
    gboolean in_list = ksm_vm_in_list(config, facts->name);
    KsmVmState *s = &d->state;

    memset(d, 0, sizeof(*d));
    *s = *state;
    d->has_profit =
        facts->has_stat && ksm_proc_profit(&facts->stat, facts->page_size, &d->profit_bytes);

    switch (facts->ksm) {
    case POLICY_KSM_NEVER:
        d->exclude = TRUE;
        d->why = KSM_VM_WHY_NEVER;
        g_snprintf(d->reason, sizeof(d->reason),
                   "ksm=never in metadata: tenant isolation, cross-VM page sharing is a side "
                   "channel (CVE-2015-2877, Flip Feng Shui)");
        break;
    case POLICY_KSM_ALWAYS:
        d->exclude = FALSE;
        d->why = KSM_VM_WHY_ALWAYS;
        g_snprintf(d->reason, sizeof(d->reason), "ksm=always in metadata: sharing allowed");
        break;
    case POLICY_KSM_AUTO:
    default:
        if (facts->latency_sensitive || in_list) {
            d->exclude = TRUE;
            d->why = KSM_VM_WHY_LATENCY;
            g_snprintf(d->reason, sizeof(d->reason),
                       "latency-sensitive (%s): KSM's copy-on-write breaks and ksmd scanning "
                       "add latency",
                       facts->latency_sensitive ? "metadata" : "configuration");
        } else if (state->excluded && state->why == KSM_VM_WHY_LOW_PROFIT) {
            gint64 held = (now_us - state->excluded_at_us) / G_USEC_PER_SEC;

            if (state->reconsider) {
                d->exclude = FALSE;
                d->why = KSM_VM_WHY_RETRY;
                g_snprintf(d->reason, sizeof(d->reason),
                           "ksm=auto: an exclusion for low profit is reconsidered (the facts it "
                           "was made on changed), sharing allowed again to measure");
            } else if (config->vm_retry_after_s > 0 && held >= (gint64)config->vm_retry_after_s) {
                d->exclude = FALSE;
                d->why = KSM_VM_WHY_RETRY;
                g_snprintf(d->reason, sizeof(d->reason),
                           "ksm=auto: excluded for low profit %" G_GINT64_FORMAT
                           " s ago, sharing allowed again to measure",
                           held);
            } else {
                d->exclude = TRUE;
                d->why = KSM_VM_WHY_LOW_PROFIT;
                if (config->vm_retry_after_s > 0)
                    g_snprintf(d->reason, sizeof(d->reason),
                               "ksm=auto: sharing did not pay, excluded; measured again in "
                               "%" G_GINT64_FORMAT " s",
                               (gint64)config->vm_retry_after_s - MAX(held, 0));
                else
                    g_snprintf(d->reason, sizeof(d->reason),
                               "ksm=auto: sharing did not pay, excluded");
            }
        } else {
            ksm_vm_sample(facts, config, now_us, d);
        }
        break;
    }

    /* At first sight an exclusion is enforced (it is idempotent, and the
     * previous ballastd may have been killed half-way); an inclusion is not:
     * ballast only undoes exclusions it made. */
    d->changed = state->decided ? d->exclude != state->excluded : d->exclude;
    if (!d->exclude && state->excluded) {
        s->measuring = FALSE;
        s->low_scans = 0;
    }
    if (d->exclude && !state->excluded)
        s->excluded_at_us = now_us;
    s->reconsider = FALSE;
    s->decided = TRUE;
    s->excluded = d->exclude;
    s->why = d->why;
}
