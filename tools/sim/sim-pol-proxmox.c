/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `proxmox`: Proxmox VE's auto-ballooning, re-stated in C from
 * PVE/AutoBalloon.pm compute_alg1() and PVE/Service/pvestatd.pm
 * auto_ballooning() (github.com/proxmox/pve-manager); docs/simulator.md cites
 * the lines. Every 10 s (pvestatd's update time) the host aims at 80 % used:
 * goal = total * 0.8 - used. A positive goal is handed out, a negative one
 * taken, by shares over each VM's room above its minimum, at most 100 MiB per
 * VM per cycle; VMs with memory pressure (MemFree <= 1/4 of their minimum)
 * are served first when growing, VMs with spare memory first when shrinking.
 * freemem is the balloon driver's free memory (qemu-server vmstatus).
 */
#include "sim.h"

#include <math.h>

#define UPDATE_S   10
#define TARGET_PCT 80.0
#define MAX_CHANGE 100.0 /* MiB per VM per cycle */
#define GOAL_MIN   10.0  /* MiB: smaller goals are not acted on */

typedef struct {
    double *res; /* proposed balloon, < 0: none */
    gboolean *done;
    guint *all, *pressed, *spare;
} Proxmox;

static gpointer proxmox_create(SimWorld *w)
{
    Proxmox *p = g_new0(Proxmox, 1);

    p->res = g_new0(double, w->n);
    p->done = g_new0(gboolean, w->n);
    p->all = g_new0(guint, w->n);
    p->pressed = g_new0(guint, w->n);
    p->spare = g_new0(guint, w->n);
    return p;
}

static double shares_of(const SimGuest *g)
{
    return g->trace->shares ? g->trace->shares : 1000;
}

/* Spread `amount` (MiB, > 0 grow, < 0 shrink) over ids by shares, in
 * rounds, until none can move; returns what could not be placed. */
static double spread(Proxmox *p, SimWorld *w, const guint *ids, guint n, double amount)
{
    double rest = amount;
    gboolean repeat = TRUE;
    double progress = 1;

    for (guint k = 0; k < n; k++)
        p->done[ids[k]] = FALSE;
    while (rest != 0 && repeat && progress != 0) {
        double shares_total = 0, alloc_old = 0, changes = 0;
        repeat = FALSE;
        progress = 0;
        for (guint k = 0; k < n; k++) {
            guint i = ids[k];
            if (p->done[i])
                continue;
            double balloon = p->res[i] >= 0 ? p->res[i] : w->g[i].actual_mib;
            alloc_old += balloon - SIM_FLOOR_MIB;
            shares_total += shares_of(&w->g[i]);
        }
        double alloc_new = alloc_old + rest;
        for (guint k = 0; k < n; k++) {
            guint i = ids[k];
            const SimGuest *g = &w->g[i];
            if (p->done[i])
                continue;
            double desired = SIM_FLOOR_MIB + floor(alloc_new / shares_total * shares_of(g));
            if (desired > g->max_mib || desired < SIM_FLOOR_MIB) {
                desired = CLAMP(desired, SIM_FLOOR_MIB, g->max_mib);
                repeat = TRUE;
            }
            double balloon;
            if (amount > 0 && desired > g->actual_mib) {
                balloon = MIN(g->actual_mib + MAX_CHANGE, desired);
            } else if (desired < g->actual_mib) {
                balloon = MAX(g->actual_mib - MAX_CHANGE, desired);
            } else {
                p->done[i] = TRUE;
                continue;
            }
            double diff = balloon - g->actual_mib;
            if (diff != 0) {
                double old = p->res[i] >= 0 ? p->res[i] : g->actual_mib;
                p->res[i] = balloon;
                if (balloon != old) {
                    changes += balloon - old;
                    progress += fabs(diff);
                    repeat = TRUE;
                }
            }
        }
        rest -= changes;
    }
    return rest;
}

static void proxmox_step(gpointer state, SimWorld *w)
{
    Proxmox *p = state;
    guint n_all = 0, n_pressed = 0, n_spare = 0;

    if ((guint)w->t % UPDATE_S != 0)
        return;
    double used = w->host_mib - sim_host_free_mib(w);
    double goal = w->host_mib * TARGET_PCT / 100 - used;

    for (guint i = 0; i < w->n; i++) {
        const SimGuest *g = &w->g[i];
        p->res[i] = -1;
        if (!g->alive)
            continue;
        p->all[n_all++] = i;
        double freemem = sim_guest_unused_mib(g);
        if (freemem > 0 && freemem > SIM_FLOOR_MIB * 0.25 && g->actual_mib >= SIM_FLOOR_MIB)
            p->spare[n_spare++] = i;
        else
            p->pressed[n_pressed++] = i;
    }
    if (goal > GOAL_MIN) {
        double rest = spread(p, w, p->pressed, n_pressed, goal);
        if (rest >= goal)
            spread(p, w, p->all, n_all, rest);
    } else if (goal < -GOAL_MIN) {
        double rest = spread(p, w, p->spare, n_spare, goal);
        if (rest <= goal)
            spread(p, w, p->all, n_all, rest);
    }
    for (guint k = 0; k < n_all; k++) {
        guint i = p->all[k];
        if (p->res[i] > 0)
            w->g[i].target_mib = p->res[i];
    }
}

static void proxmox_destroy(gpointer state)
{
    Proxmox *p = state;

    g_free(p->res);
    g_free(p->done);
    g_free(p->all);
    g_free(p->pressed);
    g_free(p->spare);
    g_free(p);
}

const SimPolicy sim_policy_proxmox = {
    .name = "proxmox",
    .about = "PVE::AutoBalloon compute_alg1: host at 80% used, 100 MiB/VM/10 s, by shares",
    .create = proxmox_create,
    .step = proxmox_step,
    .destroy = proxmox_destroy,
};
