/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Host KSM controller: pure decisions (see ksm.h, docs/ksm.md).
 *
 * ksmtuned runs KSM whenever the host looks short and never asks whether
 * merging pays. Here KSM runs only while the host is short of memory *and*,
 * once ksmd has scanned everything a few times, merging saves more than the
 * rmap_items it costs. Stopping writes run=0, never 2: merged pages stay
 * merged, so stopping never makes the host need memory at once.
 */
#include "ksm.h"

#include <string.h>

#include "types.h" /* BYTES_PER_MIB */

void ksm_config_clear(KsmConfig *config)
{
    g_clear_pointer(&config->latency_sensitive, g_strfreev);
}

guint64 ksm_sleep_for_ram(guint64 mem_total_kib, guint sleep_base_ms)
{
    /* ksmtuned: sleep = KSM_SLEEP_MSEC * 16 * 1024 * 1024 / total (kB), at least 10 */
    guint64 sleep;

    if (mem_total_kib == 0)
        return MAX(KSM_SLEEP_FLOOR_MS, sleep_base_ms);
    sleep = (guint64)sleep_base_ms * 16 * 1024 * 1024 / mem_total_kib;
    return MAX(sleep, KSM_SLEEP_FLOOR_MS);
}

gint64 ksm_general_profit(const KsmSysfs *ksm, guint64 page_size)
{
    guint64 rmap_items;
    guint64 saved;

    if (ksm->has_general_profit)
        return ksm->general_profit;
    if (page_size == 0)
        page_size = 4096;
    /* Documentation/admin-guide/mm/ksm.rst: pages_sharing * sizeof(page) -
     * all_rmap_items * sizeof(rmap_item), all_rmap_items being the sum of the
     * four page counters. Counters are clamped so the sum cannot wrap. */
    rmap_items = MIN(ksm->pages_shared, G_MAXUINT32) + MIN(ksm->pages_sharing, G_MAXUINT32) +
                 MIN(ksm->pages_unshared, G_MAXUINT32) + MIN(ksm->pages_volatile, G_MAXUINT32);
    saved = MIN(ksm->pages_sharing, G_MAXUINT32) +
            (ksm->has_zero_pages ? MIN(ksm->ksm_zero_pages, G_MAXUINT32) : 0);
    return (gint64)(saved * MIN(page_size, 1u << 30)) - (gint64)(rmap_items * KSM_RMAP_ITEM_BYTES);
}

gboolean ksm_host_plan_changes(const KsmHostPlan *plan)
{
    return plan->set_advisor || plan->set_smart_scan || plan->set_pages || plan->set_sleep ||
           plan->set_run;
}

const char *ksm_advisor_to_string(KsmAdvisor mode)
{
    switch (mode) {
    case KSM_ADVISOR_ABSENT:
        return "absent";
    case KSM_ADVISOR_NONE:
        return "none";
    case KSM_ADVISOR_SCAN_TIME:
        return "scan-time";
    case KSM_ADVISOR_OTHER:
        return "other";
    }
    return "other";
}

/* Does merging pay? reason gets why not. */
static gboolean ksm_pays(const KsmSysfs *ksm, gint64 profit, const KsmConfig *config, char *why,
                         gsize why_len)
{
    guint64 churn = ksm->pages_unshared + ksm->pages_volatile;

    if (profit <= (gint64)config->min_profit_mib * 1024 * 1024) {
        g_snprintf(why, why_len, "profit %.1f MiB <= %u MiB", profit / (double)BYTES_PER_MIB,
                   config->min_profit_mib);
        return FALSE;
    }
    if (config->max_unshared_ratio > 0 &&
        churn > (guint64)config->max_unshared_ratio * MAX(ksm->pages_sharing, 1)) {
        g_snprintf(why, why_len,
                   "%" G_GUINT64_FORMAT " unshared+volatile pages > %u x %" G_GUINT64_FORMAT
                   " sharing",
                   churn, config->max_unshared_ratio, ksm->pages_sharing);
        return FALSE;
    }
    return TRUE;
}

static guint64 ksm_next_pages(guint64 cur, gboolean boost, const KsmConfig *config)
{
    guint64 next;

    if (boost)
        next = cur + config->pages_boost;
    else
        next = cur > config->pages_decay ? cur - config->pages_decay : 0;
    return CLAMP(next, config->pages_min, config->pages_max);
}

void ksm_host_decide(const KsmHostFacts *facts, const KsmHostState *state, const KsmConfig *config,
                     gint64 now_us, KsmHostPlan *plan)
{
    const KsmSysfs *ksm = &facts->ksm;
    guint64 total = facts->mem_total_kib;
    guint64 avail = MIN(facts->mem_available_kib, total);
    double pct = total ? 100.0 * (double)avail / (double)total : 100.0;
    gboolean below_start, below_stop, need, advisor, running;
    guint64 sleep;
    char why[160];

    memset(plan, 0, sizeof(*plan));
    plan->state = *state;
    plan->profit_bytes = ksm_general_profit(ksm, facts->page_size);

    /* The advisor sizes pages_to_scan itself and makes writing it fail with
     * EINVAL; a kernel that has one gets it (or gets it switched off when the
     * configuration says so, so that ballast can size pages_to_scan). */
    advisor = config->use_advisor && ksm->advisor_mode != KSM_ADVISOR_ABSENT;
    if (ksm->advisor_mode != KSM_ADVISOR_ABSENT) {
        KsmAdvisor want = config->use_advisor ? KSM_ADVISOR_SCAN_TIME : KSM_ADVISOR_NONE;

        if (ksm->advisor_mode != want) {
            plan->set_advisor = TRUE;
            plan->advisor_mode = want;
        }
    }
    if (advisor && ksm->has_smart_scan && !ksm->smart_scan) {
        plan->set_smart_scan = TRUE;
        plan->smart_scan = TRUE;
    }
    sleep = ksm_sleep_for_ram(total, config->sleep_base_ms);
    if (sleep != ksm->sleep_millisecs) {
        plan->set_sleep = TRUE;
        plan->sleep_millisecs = sleep;
    }

    /* Hysteresis: short below start_below_percent, and still short until
     * MemAvailable is back at stop_above_percent. */
    below_start = total > 0 && avail * 100 < total * config->start_below_percent;
    below_stop = total > 0 && avail * 100 < total * config->stop_above_percent;
    need = below_start || (below_stop && state->short_of_memory);
    plan->state.short_of_memory = need;
    running = ksm->run == 1;

    if (!need) {
        plan->state.running = FALSE;
        if (running) {
            plan->set_run = TRUE;
            plan->run = 0;
            g_snprintf(plan->reason, sizeof(plan->reason),
                       "host has memory (MemAvailable %.1f%% >= %u%%): stop KSM, merged pages "
                       "kept",
                       pct, below_stop ? config->start_below_percent : config->stop_above_percent);
        } else {
            g_snprintf(plan->reason, sizeof(plan->reason),
                       "host has memory (MemAvailable %.1f%%): KSM stays stopped", pct);
        }
        return;
    }

    if (state->unprofitable_at_us != 0 && config->retry_after_s > 0 &&
        now_us - state->unprofitable_at_us < (gint64)config->retry_after_s * G_USEC_PER_SEC) {
        gint64 left =
            (state->unprofitable_at_us + (gint64)config->retry_after_s * G_USEC_PER_SEC - now_us) /
            G_USEC_PER_SEC;

        plan->state.running = FALSE;
        if (running) {
            plan->set_run = TRUE;
            plan->run = 0;
        }
        g_snprintf(plan->reason, sizeof(plan->reason),
                   "host short of memory (MemAvailable %.1f%%) but KSM did not pay: stopped, "
                   "retry in %" G_GINT64_FORMAT " s",
                   pct, left);
        return;
    }

    if (!running) {
        plan->set_run = TRUE;
        plan->run = 1;
        plan->state.running = TRUE;
        plan->state.scans_at_start = ksm->full_scans;
        plan->state.unprofitable_at_us = 0;
        g_snprintf(plan->reason, sizeof(plan->reason),
                   "host short of memory (MemAvailable %.1f%% < %u%%): start KSM", pct,
                   config->start_below_percent);
    } else {
        guint64 scans;

        /* Found running (started before ballastd, or by hand), or the counter
         * went back: count the warm-up from now. */
        if (!state->running || ksm->full_scans < state->scans_at_start) {
            plan->state.running = TRUE;
            plan->state.scans_at_start = ksm->full_scans;
        }
        plan->state.unprofitable_at_us = 0;
        scans = ksm->full_scans - plan->state.scans_at_start;
        if (scans >= config->warmup_full_scans &&
            !ksm_pays(ksm, plan->profit_bytes, config, why, sizeof(why))) {
            plan->set_run = TRUE;
            plan->run = 0;
            plan->set_pages = FALSE;
            plan->state.running = FALSE;
            plan->state.unprofitable_at_us = MAX(now_us, 1);
            g_snprintf(plan->reason, sizeof(plan->reason),
                       "KSM does not pay after %" G_GUINT64_FORMAT
                       " full scans (%s): stop, merged pages kept, retry in %u s",
                       scans, why, config->retry_after_s);
            return;
        }
        if (scans >= config->warmup_full_scans)
            g_snprintf(why, sizeof(why), "profit %.1f MiB",
                       plan->profit_bytes / (double)BYTES_PER_MIB);
        else
            g_snprintf(why, sizeof(why), "warming up, %" G_GUINT64_FORMAT "/%u full scans", scans,
                       config->warmup_full_scans);
        g_snprintf(plan->reason, sizeof(plan->reason), "%s (MemAvailable %.1f%% %s %u%%): %s%s",
                   below_start ? "host short of memory" : "host memory recovering", pct,
                   below_start ? "<" : ">=", config->start_below_percent,
                   advisor ? "KSM runs with the scan-time advisor, " : "KSM runs, ", why);
    }

    /* ksmtuned: boost while short, decay while recovering. Not with the
     * advisor: it owns pages_to_scan. */
    if (!advisor) {
        guint64 next = ksm_next_pages(ksm->pages_to_scan, below_start, config);

        if (next != ksm->pages_to_scan) {
            plan->set_pages = TRUE;
            plan->pages_to_scan = next;
        }
    }
}

void ksm_host_restore(const KsmSysfs *original, const KsmSysfs *current, KsmHostPlan *plan)
{
    guint run = original->run == 1 ? 1 : 0;

    memset(plan, 0, sizeof(*plan));
    plan->profit_bytes = ksm_general_profit(current, 0);
    if (original->advisor_mode != KSM_ADVISOR_ABSENT &&
        original->advisor_mode != KSM_ADVISOR_OTHER &&
        current->advisor_mode != original->advisor_mode) {
        plan->set_advisor = TRUE;
        plan->advisor_mode = original->advisor_mode;
    }
    if (original->has_smart_scan && current->has_smart_scan &&
        original->smart_scan != current->smart_scan) {
        plan->set_smart_scan = TRUE;
        plan->smart_scan = original->smart_scan;
    }
    /* Changing advisor_mode resets pages_to_scan, and with the advisor on the
     * kernel refuses it: write it whenever the original had no advisor. */
    if ((plan->set_advisor || current->pages_to_scan != original->pages_to_scan) &&
        original->advisor_mode != KSM_ADVISOR_SCAN_TIME) {
        plan->set_pages = TRUE;
        plan->pages_to_scan = original->pages_to_scan;
    }
    if (current->sleep_millisecs != original->sleep_millisecs) {
        plan->set_sleep = TRUE;
        plan->sleep_millisecs = original->sleep_millisecs;
    }
    if (current->run != run && !(run == 0 && current->run == 2)) {
        plan->set_run = TRUE;
        plan->run = run;
    }
    g_snprintf(plan->reason, sizeof(plan->reason),
               "ballastd exits: KSM settings restored (run=%u pages_to_scan=%" G_GUINT64_FORMAT
               " sleep_millisecs=%" G_GUINT64_FORMAT ")",
               run, original->pages_to_scan, original->sleep_millisecs);
}

#define KSM_SAVED_GROUP "ksm-original"

static KsmAdvisor ksm_advisor_from_string(const char *s)
{
    if (g_strcmp0(s, "none") == 0)
        return KSM_ADVISOR_NONE;
    if (g_strcmp0(s, "scan-time") == 0)
        return KSM_ADVISOR_SCAN_TIME;
    if (g_strcmp0(s, "absent") == 0)
        return KSM_ADVISOR_ABSENT;
    return KSM_ADVISOR_OTHER;
}

char *ksm_saved_to_text(const KsmSysfs *original, const char *boot_id)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();

    g_key_file_set_string(kf, KSM_SAVED_GROUP, "boot_id", boot_id ? boot_id : "");
    g_key_file_set_uint64(kf, KSM_SAVED_GROUP, "run", original->run);
    g_key_file_set_uint64(kf, KSM_SAVED_GROUP, "pages_to_scan", original->pages_to_scan);
    g_key_file_set_uint64(kf, KSM_SAVED_GROUP, "sleep_millisecs", original->sleep_millisecs);
    g_key_file_set_string(kf, KSM_SAVED_GROUP, "advisor_mode",
                          ksm_advisor_to_string(original->advisor_mode));
    g_key_file_set_string(kf, KSM_SAVED_GROUP, "smart_scan",
                          !original->has_smart_scan ? "absent"
                          : original->smart_scan    ? "1"
                                                    : "0");
    return g_key_file_to_data(kf, NULL, NULL);
}

gboolean ksm_saved_from_text(const char *text, const char *boot_id, KsmSysfs *original,
                             GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *saved_boot = NULL;
    g_autofree char *advisor = NULL;
    g_autofree char *smart = NULL;
    KsmSysfs o = {0};
    GError *e = NULL;
    guint64 run;

    if (!g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, error))
        return FALSE;
    saved_boot = g_key_file_get_string(kf, KSM_SAVED_GROUP, "boot_id", &e);
    if (!e && g_strcmp0(saved_boot, boot_id ? boot_id : "") != 0) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "saved during another boot (%s)", saved_boot);
        return FALSE;
    }
    if (!e)
        run = g_key_file_get_uint64(kf, KSM_SAVED_GROUP, "run", &e);
    if (!e)
        o.pages_to_scan = g_key_file_get_uint64(kf, KSM_SAVED_GROUP, "pages_to_scan", &e);
    if (!e)
        o.sleep_millisecs = g_key_file_get_uint64(kf, KSM_SAVED_GROUP, "sleep_millisecs", &e);
    if (!e)
        advisor = g_key_file_get_string(kf, KSM_SAVED_GROUP, "advisor_mode", &e);
    if (!e)
        smart = g_key_file_get_string(kf, KSM_SAVED_GROUP, "smart_scan", &e);
    if (e) {
        g_propagate_error(error, e);
        return FALSE;
    }
    if (run > 2 || o.pages_to_scan == 0 || o.sleep_millisecs == 0 ||
        ksm_advisor_from_string(advisor) == KSM_ADVISOR_OTHER ||
        (!g_str_equal(smart, "absent") && !g_str_equal(smart, "0") && !g_str_equal(smart, "1"))) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "saved KSM settings out of range");
        return FALSE;
    }
    o.run = (guint)run;
    o.advisor_mode = ksm_advisor_from_string(advisor);
    o.has_smart_scan = !g_str_equal(smart, "absent");
    o.smart_scan = g_str_equal(smart, "1");
    *original = o;
    return TRUE;
}

double ksm_cpu_percent(guint64 prev_ticks, guint64 now_ticks, guint64 ticks_per_s,
                       gint64 interval_us)
{
    if (interval_us <= 0 || ticks_per_s == 0 || now_ticks < prev_ticks)
        return 0.0;
    return 100.0 * ((double)(now_ticks - prev_ticks) / (double)ticks_per_s) /
           ((double)interval_us / G_USEC_PER_SEC);
}
