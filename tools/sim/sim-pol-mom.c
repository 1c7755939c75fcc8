/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `mom`: oVirt MOM's default balloon policy as vdsm ships it
 * (github.com/oVirt/vdsm static/etc/vdsm/mom.d/02-balloon.policy, which
 * extends MOM's doc/balloon.rules: growth too keeps a guest free share scaled
 * by host free memory, and a guest below its minimum is raised to it),
 * re-stated in C; docs/simulator.md cites it line by line. Statistics as
 * MOM's libvirt interface collects them every 5 s (balloon_cur = libvirt
 * "actual", mem_unused = "unused", balloon_min = <min_guarantee>, here the
 * floor), averaged over MOM's sample history of 10 (StatAvg); the host's
 * mem_free (MemFree + Buffers + Cached) likewise. The policy runs every 10 s.
 */
#include "sim.h"

#include <math.h>

#define COLLECT_S      5  /* guest-monitor-interval, host-monitor-interval */
#define POLICY_S       10 /* policy-engine-interval */
#define HISTORY        10 /* sample-history-length */
#define PRESSURE       0.20
#define CRITICAL       0.05
#define MIN_GUEST_FREE 0.20
#define MAX_CHANGE     0.05
#define MIN_CHANGE     0.0025

typedef struct {
    double v[HISTORY];
    guint n, next;
} Ring;

typedef struct {
    Ring host_free;
    Ring *cur, *unused;
} Mom;

static void ring_add(Ring *r, double v)
{
    r->v[r->next] = v;
    r->next = (r->next + 1) % HISTORY;
    r->n = MIN(r->n + 1, HISTORY);
}

static double ring_avg(const Ring *r)
{
    double sum = 0;

    for (guint i = 0; i < r->n; i++)
        sum += r->v[i];
    return r->n ? sum / r->n : 0;
}

static gpointer mom_create(SimWorld *w)
{
    Mom *m = g_new0(Mom, 1);

    m->cur = g_new0(Ring, w->n);
    m->unused = g_new0(Ring, w->n);
    return m;
}

static gboolean big_enough(double cur, double next)
{
    return fabs(next - cur) > MIN_CHANGE * cur;
}

static double guest_free_pct(double host_free_pct)
{
    return host_free_pct <= CRITICAL ? -0.05 + host_free_pct
                                     : MIN_GUEST_FREE * host_free_pct / PRESSURE;
}

static void shrink(SimGuest *g, const Ring *cur, const Ring *unused, double host_free_pct)
{
    double used = ring_avg(cur) - ring_avg(unused);
    double balloon_min = MAX(SIM_FLOOR_MIB, used + guest_free_pct(host_free_pct) * g->actual_mib);
    double size = MAX(g->actual_mib * (1 - MAX_CHANGE), balloon_min);

    if (size <= g->actual_mib && big_enough(g->actual_mib, size))
        g->target_mib = size;
}

static void grow(SimGuest *g, const Ring *cur, const Ring *unused, double host_free_pct)
{
    if (g->actual_mib >= g->max_mib)
        return;
    double used = ring_avg(cur) - ring_avg(unused);
    double balloon_min = MAX(SIM_FLOOR_MIB, used + guest_free_pct(host_free_pct) * g->actual_mib);
    double size = MAX(g->actual_mib * (1 + MAX_CHANGE), balloon_min);

    size = MIN(size, g->max_mib);
    if (big_enough(g->actual_mib, size))
        g->target_mib = size;
}

static void mom_step(gpointer state, SimWorld *w)
{
    Mom *m = state;
    guint t = (guint)w->t;

    if (t % COLLECT_S == 0) {
        ring_add(&m->host_free, MAX(0, sim_host_free_mib(w)));
        for (guint i = 0; i < w->n; i++) {
            if (!w->g[i].alive)
                continue;
            ring_add(&m->cur[i], w->g[i].actual_mib);
            ring_add(&m->unused[i], sim_guest_unused_mib(&w->g[i]));
        }
    }
    if (t % POLICY_S != 0)
        return;
    double host_free_pct = ring_avg(&m->host_free) / w->host_mib;
    for (guint i = 0; i < w->n; i++) {
        if (!w->g[i].alive || m->cur[i].n == 0)
            continue;
        if (host_free_pct < PRESSURE)
            shrink(&w->g[i], &m->cur[i], &m->unused[i], host_free_pct);
        else
            grow(&w->g[i], &m->cur[i], &m->unused[i], host_free_pct);
        /* guest_qos: never below the guaranteed minimum */
        if (w->g[i].actual_mib < SIM_FLOOR_MIB)
            w->g[i].target_mib = SIM_FLOOR_MIB;
    }
}

static void mom_destroy(gpointer state)
{
    Mom *m = state;

    g_free(m->cur);
    g_free(m->unused);
    g_free(m);
}

const SimPolicy sim_policy_mom = {
    .name = "mom",
    .about = "vdsm 02-balloon.policy (MOM): host free < 20%: shrink 5%, else grow",
    .create = mom_create,
    .step = mom_step,
    .destroy = mom_destroy,
};
