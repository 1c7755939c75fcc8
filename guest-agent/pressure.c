/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sampling and reporting decisions: see pressure.h for the reasoning. */
#include "pressure.h"

#include <string.h>

/* Lower bound on any delay, so a due-time computation never busy-loops. */
#define PRESSURE_MIN_DELAY_MS 10

/* Sizes are capped at the protocol's largest integer (2^53-1) before any
 * "* 1000": a /proc value near 2^64 would otherwise wrap into a small one. */
static guint64 pressure_cap(guint64 v)
{
    return MIN(v, (guint64)BL_PROTO_MAX_INT);
}

void pressure_reset(PressureState *st)
{
    memset(st, 0, sizeof(*st));
}

guint32 pressure_headroom_period(guint64 available_kib, guint32 interval_ms)
{
    /* ms until exhaustion at the reference rate, divided */
    guint64 period =
        pressure_cap(available_kib) / PRESSURE_HEADROOM_DIVISOR * 1000 / PRESSURE_REF_KIB_S;

    return (guint32)CLAMP(period, (guint64)PRESSURE_FAST_MS, (guint64)MAX(interval_ms, 1));
}

/* Per-second rate of a cumulative counter, 0 when absent or reset. */
static guint64 pressure_counter_rate(const BlVmstat *prev, const BlVmstat *cur, int k,
                                     guint64 dt_ms)
{
    guint32 bit = 1u << k;

    if (!(prev->present & bit) || !(cur->present & bit) || cur->value[k] < prev->value[k])
        return 0;
    return pressure_cap(cur->value[k] - prev->value[k]) * 1000 / dt_ms;
}

static gboolean pressure_counter_grew(const BlVmstat *prev, const BlVmstat *cur, int k)
{
    guint32 bit = 1u << k;

    return (prev->present & bit) && (cur->present & bit) && cur->value[k] > prev->value[k];
}

/* The signals that compare this sample with the previous one. */
static const char *pressure_compare(PressureState *st, guint64 now_ms, const BlReport *s)
{
    guint64 dt = now_ms - st->prev_ms;
    guint64 avail = pressure_cap(s->mem.available_kib);
    const char *why = NULL;

    /* Only a fall the guest itself caused counts: when the balloon inflates,
     * MemTotal and MemAvailable drop together, and reporting that as
     * pressure would make the broker undo its own inflation. */
    guint64 total = pressure_cap(s->mem.total_kib);
    guint64 avail_drop = avail < st->prev_available_kib ? st->prev_available_kib - avail : 0;
    guint64 total_drop = total < st->prev_total_kib ? st->prev_total_kib - total : 0;

    if (avail_drop > total_drop) {
        guint64 fall = avail_drop - total_drop;
        guint64 rate = fall * 1000 / dt; /* KiB/s; fall < 2^53 */

        if (fall >= PRESSURE_NOISE_KIB && rate >= PRESSURE_WATCH_KIB_S)
            st->fast_until_ms = MAX(st->fast_until_ms, now_ms + PRESSURE_HOLD_MS);
        /* time to exhaustion avail / rate < horizon, without dividing */
        if (fall >= PRESSURE_NOISE_KIB && rate > 0 && avail / rate < PRESSURE_HORIZON_MS / 1000 &&
            avail * 1000 / rate < PRESSURE_HORIZON_MS)
            why = "MemAvailable falling fast";
    }
    if (why == NULL && pressure_counter_grew(&st->prev_vmstat, &s->vmstat, BL_VMSTAT_OOM_KILL))
        why = "OOM kill";
    if (why == NULL && pressure_counter_rate(&st->prev_vmstat, &s->vmstat, BL_VMSTAT_PSWPIN, dt) >=
                           PRESSURE_SWAPIN_PAGES_S)
        why = "swap-in burst";
    if (why == NULL) {
        guint64 refault = pressure_counter_rate(&st->prev_vmstat, &s->vmstat,
                                                BL_VMSTAT_WORKINGSET_REFAULT_ANON, dt) +
                          pressure_counter_rate(&st->prev_vmstat, &s->vmstat,
                                                BL_VMSTAT_WORKINGSET_REFAULT_FILE, dt);
        if (refault >= PRESSURE_REFAULT_PAGES_S)
            why = "refault burst";
    }
    if (why == NULL && st->prev_has_psi && s->has_psi &&
        s->psi.some.total_us >= st->prev_some_total_us) {
        guint64 stall_us = s->psi.some.total_us - st->prev_some_total_us;

        /* stall / (dt in us) >= percent / 100 */
        if (stall_us / 10 >= dt * PRESSURE_PSI_STALL_PERCENT)
            why = "memory stalls (PSI)";
    }
    return why;
}

void pressure_step(PressureState *st, guint64 now_ms, const BlReport *sample, guint32 interval_ms,
                   gboolean event, PressureVerdict *verdict)
{
    const char *why = event ? "PSI trigger" : NULL;
    guint32 period;

    memset(verdict, 0, sizeof(*verdict));
    verdict->reason = BL_REPORT_PERIODIC;
    interval_ms = MAX(interval_ms, 1);

    if (st->have_prev && now_ms > st->prev_ms) {
        const char *cmp = pressure_compare(st, now_ms, sample);

        if (why == NULL)
            why = cmp;
    }
    if (why != NULL)
        st->fast_until_ms = MAX(st->fast_until_ms, now_ms + PRESSURE_HOLD_MS);

    st->have_prev = TRUE;
    st->prev_ms = now_ms;
    st->prev_available_kib = pressure_cap(sample->mem.available_kib);
    st->prev_total_kib = pressure_cap(sample->mem.total_kib);
    st->prev_vmstat = sample->vmstat;
    st->prev_has_psi = sample->has_psi;
    st->prev_some_total_us = sample->psi.some.total_us;

    if (why != NULL &&
        (!st->have_pressure || now_ms >= st->last_pressure_ms + PRESSURE_MIN_GAP_MS)) {
        verdict->send = TRUE;
        verdict->reason = BL_REPORT_PRESSURE;
        verdict->why = why;
        st->have_pressure = TRUE;
        st->last_pressure_ms = now_ms;
    } else if (!st->have_report || now_ms + PRESSURE_SLACK_MS >= st->last_report_ms + interval_ms) {
        verdict->send = TRUE;
    }
    if (verdict->send) {
        st->have_report = TRUE;
        st->last_report_ms = now_ms;
    }

    if (now_ms < st->fast_until_ms)
        period = PRESSURE_FAST_MS;
    else
        period = pressure_headroom_period(sample->mem.available_kib, interval_ms);
    /* never sleep past the next periodic report */
    if (st->last_report_ms + interval_ms > now_ms)
        period = (guint32)MIN((guint64)period, st->last_report_ms + interval_ms - now_ms);
    else
        period = PRESSURE_MIN_DELAY_MS;
    verdict->next_ms = MAX(period, PRESSURE_MIN_DELAY_MS);
}
