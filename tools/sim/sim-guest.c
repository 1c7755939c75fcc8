/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The model guest (docs/simulator.md, "Guest model", has the why of every
 * constant here). Memory A behind the balloon holds the guest's footprint F,
 * its resident working set W (anonymous part ANON_SHARE, the rest hot page
 * cache) and cold page cache. Short of memory, the hot cache goes first
 * (refaults, stall); anonymous memory that does not fit for OOM_GRACE_S
 * seconds is an OOM kill. The workload never holds more than A - F: a guest
 * short of memory allocates no faster than it is given memory.
 */
#include "sim.h"

#include <math.h>
#include <string.h>

#define HIDDEN_SHARE    0.05   /* of max, outside MemTotal: 1 GiB at 256 MiB -> MemTotal 205 */
#define FOOTPRINT_BASE  64.0   /* MiB: kernel, initramfs ... */
#define FOOTPRINT_SHARE 0.08   /* ... and reserves sized for the maximum: 1 GiB -> 146 MiB */
#define ANON_SHARE      0.7    /* of the working set; the rest is hot page cache */
#define CACHE_GROWTH    4.0    /* MiB/s of cold page cache read in while memory is free */
#define DEFLATE_RATE    1280.0 /* MiB/s: 256 MiB in 0.2 s (FACTS.md, Balloon) */
#define INFLATE_RATE    850.0  /* MiB/s: 256 MiB in 0.3 s */
#define INFLATE_SLACK   16.0   /* the balloon stops this far above what cannot be freed */
#define STALL_SPAN      0.25   /* hot-set shortfall (share of the working set) that stalls fully */
#define STALL_SPAN_MIN  32.0   /* MiB, for small working sets */
#define REFAULT_TOUCH   0.5    /* share of missing hot pages touched again per second */
#define OOM_GRACE_S     2.0    /* anonymous memory short this long: OOM kill */
#define OOM_KEEP        0.3    /* share of the working set left after a kill ... */
#define OOM_RESTART_S   120.0  /* ... until the workload restarts */
#define FREEZE_S        60.0   /* a balloon driver episode (how often: sim-run.c) */
#define PAGES_PER_MIB   256.0

void sim_guest_init(SimGuest *g, const SimTraceVm *vm)
{
    memset(g, 0, sizeof(*g));
    g->trace = vm;
    g->max_mib = vm->max_mib;
    g->hidden_mib = HIDDEN_SHARE * vm->max_mib;
    g->footprint_mib = MIN(FOOTPRINT_BASE + FOOTPRINT_SHARE * vm->max_mib, 0.9 * vm->max_mib);
    g->actual_mib = vm->max_mib; /* booted with the balloon empty */
    g->target_mib = vm->max_mib;
    g->oom_cut_until_s = -1;
}

static void ewma(double *avg, double window_s, double value)
{
    double k = exp(-1.0 / window_s);
    *avg = *avg * k + value * (1 - k);
}

static void move_balloon(SimGuest *g, SimWorld *w)
{
    double before = g->actual_mib;

    if (g_rand_double(w->rand) < w->freeze_per_s)
        g->frozen_until_s = w->t + FREEZE_S;
    if (w->t < g->frozen_until_s)
        return;
    if (g->target_mib > g->actual_mib) {
        g->actual_mib = MIN(g->target_mib, g->actual_mib + DEFLATE_RATE);
    } else if (g->target_mib < g->actual_mib) {
        /* The balloon takes free and cache pages, hot ones too, never
         * anonymous memory (no swap in the guests): there it sticks. */
        double hard = g->footprint_mib + ANON_SHARE * g->ws_mib + INFLATE_SLACK;
        double to = MAX(g->target_mib, MIN(hard, g->actual_mib));
        g->actual_mib = MAX(to, g->actual_mib - INFLATE_RATE);
    }
    g->moved_mib += fabs(g->actual_mib - before);
}

void sim_guest_step(SimGuest *g, SimWorld *w)
{
    double want = sim_trace_ws_at(g->trace, w->t, &g->cursor);

    g->seq++;
    move_balloon(g, w);
    if (w->t < g->oom_cut_until_s)
        want = MIN(want, OOM_KEEP * g->demand_mib);
    else
        g->demand_mib = want;
    double room = MAX(0, g->actual_mib - g->footprint_mib);
    double anon_need = ANON_SHARE * want;

    g->ws_mib = MIN(want, room);
    g->deficit_mib = want - g->ws_mib;
    g->cache_mib = MIN(g->cache_mib + CACHE_GROWTH, room - g->ws_mib);

    if (anon_need > room + 0.5) {
        g->oom_short_s += 1;
        if (g->oom_short_s >= OOM_GRACE_S) {
            g->oom_kills++;
            g->oom_short_s = 0;
            g->oom_cut_until_s = w->t + OOM_RESTART_S;
            g->ws_mib = MIN(g->ws_mib, OOM_KEEP * want);
            g->deficit_mib = 0;
        }
    } else {
        g->oom_short_s = 0;
    }

    double span = MAX(STALL_SPAN * want, STALL_SPAN_MIN);
    g->stall = CLAMP(g->deficit_mib / span, 0, 1);
    double stall[2] = {g->stall, g->stall / 2};
    for (int k = 0; k < 2; k++) {
        ewma(&g->avg10[k], 10, 100 * stall[k]);
        ewma(&g->avg60[k], 60, 100 * stall[k]);
        ewma(&g->avg300[k], 300, 100 * stall[k]);
        g->total_us[k] += (guint64)(stall[k] * G_USEC_PER_SEC);
    }
    guint64 refaults = (guint64)(g->deficit_mib * PAGES_PER_MIB * REFAULT_TOUCH);
    g->refault_pages += refaults;
    g->majflt += refaults;
    if (g->stall > 0.10)
        g->stall_s += 1;
    g->sum_actual += g->actual_mib;
}

static guint64 kib(double mib)
{
    return mib <= 0 ? 0 : (guint64)(mib * 1024);
}

/* The kernel prints PSI averages with two decimals; the agent reads that text. */
static double psi_text(double v)
{
    return round(CLAMP(v, 0, 100) * 100) / 100;
}

static void psi_line(BlPsiLine *l, double a10, double a60, double a300, guint64 total)
{
    l->avg10 = psi_text(a10);
    l->avg60 = psi_text(a60);
    l->avg300 = psi_text(a300);
    l->total_us = total;
}

void sim_guest_report(const SimGuest *g, const SimWorld *w, BlReport *r)
{
    double total = g->actual_mib - g->hidden_mib;
    double anon = ANON_SHARE * g->ws_mib;
    double cached = g->ws_mib - anon + g->cache_mib;
    double free_mib = MAX(0, g->actual_mib - g->footprint_mib - g->ws_mib - g->cache_mib);
    double wmark = 0.01 * g->max_mib;
    double avail = free_mib + cached - MIN(cached / 2, wmark);

    memset(r, 0, sizeof(*r));
    r->seq = g->seq;
    r->uptime_ms = (guint64)(w->t * 1000) + 60000;
    r->reason = BL_REPORT_PERIODIC;
    r->mem.total_kib = kib(total);
    r->mem.available_kib = MIN(kib(avail), r->mem.total_kib);
    r->mem.free_kib = MIN(kib(free_mib), r->mem.total_kib);
    r->mem.cached_kib = kib(cached);
    r->mem.committed_as_kib = kib(g->footprint_mib - g->hidden_mib + 1.2 * anon);
    r->has_psi = TRUE;
    psi_line(&r->psi.some, g->avg10[0], g->avg60[0], g->avg300[0], g->total_us[0]);
    psi_line(&r->psi.full, g->avg10[1], g->avg60[1], g->avg300[1], g->total_us[1]);
    r->vmstat.present = (1u << BL_VMSTAT_N_COUNTERS) - 1;
    r->vmstat.value[BL_VMSTAT_PGMAJFAULT] = g->majflt;
    r->vmstat.value[BL_VMSTAT_WORKINGSET_REFAULT_FILE] = g->refault_pages;
    r->vmstat.value[BL_VMSTAT_OOM_KILL] = g->oom_kills;
    if (g->trace->liar) {
        /* Claims pressure whatever it needs: nearly nothing available, a
         * steady 40 % stall, refaults and an OOM kill every 30 s. */
        double up = w->t + 60;
        r->reason = BL_REPORT_PRESSURE;
        r->mem.available_kib = kib(0.01 * total);
        r->mem.free_kib = MIN(r->mem.free_kib, r->mem.available_kib);
        psi_line(&r->psi.some, 40, 40, 40, (guint64)(up * 0.4 * G_USEC_PER_SEC));
        psi_line(&r->psi.full, 20, 20, 20, (guint64)(up * 0.2 * G_USEC_PER_SEC));
        r->vmstat.value[BL_VMSTAT_WORKINGSET_REFAULT_FILE] = (guint64)(up * 5000);
        r->vmstat.value[BL_VMSTAT_PGMAJFAULT] = (guint64)(up * 1000);
        r->vmstat.value[BL_VMSTAT_OOM_KILL] = g->oom_kills + (guint64)(up / 30);
    }
}

double sim_guest_unused_mib(const SimGuest *g)
{
    if (g->trace->liar)
        return 0.01 * (g->actual_mib - g->hidden_mib);
    return MAX(0, g->actual_mib - g->footprint_mib - g->ws_mib - g->cache_mib);
}

double sim_host_free_mib(const SimWorld *w)
{
    double used = w->own_mib;

    for (guint i = 0; i < w->n; i++) {
        if (w->g[i].alive)
            used += w->g[i].actual_mib;
    }
    return w->host_mib - used;
}
