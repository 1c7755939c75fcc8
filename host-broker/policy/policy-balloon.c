/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The balloon safety net (docs/policy.md rules 8 and 9): never leave a guest
 * below its floor, and never take a set-memory call that failed for one that
 * worked. Both retry with the one back-off type (common/backoff.h).
 */
#include "policy-balloon.h"

#define US_MS ((gint64)1000)
/* First wait after a set-memory call failed; it doubles up to
 * balloon_backoff_ms. One tick: a libvirt hiccup costs a second, a call that
 * keeps failing is not made 10 times a second by pressure reports. */
#define SETMEM_RETRY_FIRST_US (1000 * US_MS)

static BackoffSpec setmem_spec(const PolicyConfig *cfg)
{
    BackoffSpec s = {SETMEM_RETRY_FIRST_US, (gint64)cfg->balloon_backoff_ms * US_MS, 2};
    return s;
}

/* Ask, ask again after the settle time, then every balloon_backoff_ms. */
static BackoffSpec floor_spec(const PolicyConfig *cfg)
{
    gint64 settle = (gint64)cfg->balloon_settle_ms * US_MS;
    BackoffSpec s = {settle, MAX(settle, (gint64)cfg->balloon_backoff_ms * US_MS), 0};
    return s;
}

gint64 policy_floor_retry_us(const PolicyConfig *config)
{
    BackoffSpec s = floor_spec(config);
    return backoff_delay(&s, 2);
}

gboolean policy_setmem_track(PolicyVmMemory *m, const PolicyVm *vm, const PolicyConfig *cfg,
                             GPtrArray *notes, const char *name, gint64 now_us)
{
    BackoffSpec spec = setmem_spec(cfg);

    if (vm->setmem_failed_us == 0) {
        backoff_reset(&m->setmem); /* the last call worked (or none failed) */
    } else if (vm->setmem_failed_us != m->setmem_failed_seen_us) {
        gint64 wait;

        m->setmem_failed_seen_us = vm->setmem_failed_us;
        /* The call that failed was the last remembered action's (made after it
         * was planned): that target was never set. */
        if (m->undo.at_us != 0 && vm->setmem_failed_us >= m->undo.at_us) {
            m->last_target_kib = m->undo.last_target_kib;
            m->target_set_us = m->undo.target_set_us;
            m->last_inflate_us = m->undo.last_inflate_us;
            m->reclaimed_from_kib = m->undo.reclaimed_from_kib;
            m->burst_step_kib = m->undo.burst_step_kib;
            m->answered_seq = m->undo.answered_seq;
            m->answered_uptime_ms = m->undo.answered_uptime_ms;
        }
        wait = backoff_fail(&m->setmem, &spec, vm->setmem_failed_us);
        g_ptr_array_add(notes, g_strdup_printf("%s: setting the balloon failed %u time(s) in a "
                                               "row: next try in %.1f s",
                                               name, m->setmem.failures, (double)wait / 1e6));
    }
    /* What to undo belongs to the plan just applied, whose outcome is now known. */
    m->undo.at_us = 0;
    return !backoff_ready(&m->setmem, now_us);
}

void policy_setmem_save(PolicyVmMemory *m, gint64 now_us)
{
    m->undo.at_us = now_us;
    m->undo.last_target_kib = m->last_target_kib;
    m->undo.target_set_us = m->target_set_us;
    m->undo.last_inflate_us = m->last_inflate_us;
    m->undo.reclaimed_from_kib = m->reclaimed_from_kib;
    m->undo.burst_step_kib = m->burst_step_kib; /* the caller puts the one before its plan */
    m->undo.answered_seq = m->answered_seq;
    m->undo.answered_uptime_ms = m->answered_uptime_ms;
}

gboolean policy_floor_net(PolicyVmMemory *m, const PolicyVm *vm, const char *name, guint64 floor,
                          guint64 actual, const PolicyConfig *cfg, gint64 now_us, PolicyAction *a)
{
    BackoffSpec spec = floor_spec(cfg);

    if (floor == 0)
        return FALSE;
    if (actual + cfg->balloon_tolerance_kib >= floor) {
        backoff_reset(&m->floor_asks);
        return FALSE;
    }
    /* Asks only logged (observe) do not hold back the first one that acts:
     * a VM switched to auto (ballastctl set, metadata) is raised at once. */
    if (vm->mode == POLICY_MODE_AUTO && !m->floor_asks_acted)
        backoff_reset(&m->floor_asks);
    m->floor_asks_acted = vm->mode == POLICY_MODE_AUTO;
    /* Already set at or above the floor: give the balloon time to get there. */
    if (vm->applied_target_kib >= floor && now_us - vm->applied_at_us < spec.first_us)
        return FALSE;
    /* Asked before and still short (a dead balloon driver, a failing call,
     * dry-run or observe): ask again after the settle time once, then only
     * every balloon_backoff_ms, not every tick forever. */
    if (!backoff_ready(&m->floor_asks, now_us))
        return FALSE;
    backoff_fail(&m->floor_asks, &spec, now_us);
    a->kind = POLICY_ACTION_DEFLATE;
    a->code = POLICY_REASON_FLOOR;
    a->target_kib = floor;
    a->attempt = m->floor_asks.failures;
    /* Whole MiB, rounded down: the text the broker always wrote. */
    g_snprintf(a->reason, sizeof(a->reason),
               "%s: +%" G_GUINT64_FORMAT " MiB (balloon %" G_GUINT64_FORMAT
               " MiB is below its floor %" G_GUINT64_FORMAT " MiB)",
               name, (floor - actual) / KIB_PER_MIB, actual / KIB_PER_MIB, floor / KIB_PER_MIB);
    return TRUE;
}
