/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One policy over one trace, second by second: the guests run (their
 * balloons move toward the targets set in the second before), their agents
 * report, the policy sets new targets; the figures add up.
 */
#include "sim.h"

#include <math.h>

/* The host's own use: kernel, QEMU processes, libvirt (docs/simulator.md). */
#define HOST_OWN_BASE  1024.0
#define HOST_OWN_SHARE 0.02
#define PLOT_POINTS    720
#define FREEZE_PER_S   (1.0 / 7200) /* balloon driver episodes per VM: one in 2 h */

SimResult *sim_run(const SimTrace *trace, const SimPolicy *policy, const SimConfig *cfg)
{
    double host_mib = cfg->host_mib;
    SimResult *r = g_new0(SimResult, 1);
    SimWorld w = {0};
    gint64 t0 = g_get_monotonic_time();
    guint duration = (guint)ceil(trace->duration_s);
    double reclaimed = 0;

    w.host_mib = host_mib;
    w.ballast_conf = cfg->ballast_conf;
    w.own_mib = HOST_OWN_BASE + HOST_OWN_SHARE * host_mib;
    w.n = trace->vms->len;
    w.g = g_new0(SimGuest, w.n);
    w.freeze_per_s = cfg->no_freeze ? 0 : FREEZE_PER_S;
    w.rand = g_rand_new_with_seed(cfg->seed);
    for (guint i = 0; i < w.n; i++)
        sim_guest_init(&w.g[i], trace->vms->pdata[i]);

    r->policy = policy->name;
    r->plot_every = MAX(1, duration / PLOT_POINTS);
    r->host_free = g_array_new(FALSE, FALSE, sizeof(double));
    r->n_plot_vms = MIN(4, w.n);
    for (guint k = 0; k < r->n_plot_vms; k++) {
        r->plot_vm[k] = k * w.n / r->n_plot_vms;
        r->vm_actual[k] = g_array_new(FALSE, FALSE, sizeof(double));
        r->vm_ws[k] = g_array_new(FALSE, FALSE, sizeof(double));
    }

    gpointer state = policy->create(&w);
    for (guint t = 0; t < duration; t++) {
        w.t = t;
        for (guint i = 0; i < w.n; i++) {
            SimGuest *g = &w.g[i];
            g->alive = t >= g->trace->start_s;
            if (g->alive)
                sim_guest_step(g, &w);
        }
        policy->step(state, &w);
        for (guint i = 0; i < w.n; i++) {
            const SimGuest *g = &w.g[i];
            if (!g->alive)
                continue;
            reclaimed += g->max_mib - g->actual_mib;
            if (g->actual_mib < MIN(SIM_FLOOR_MIB, g->max_mib) - 0.5)
                r->below_floor_s += 1;
        }
        double free_mib = sim_host_free_mib(&w);
        if (free_mib < 0)
            r->host_short_s += 1;
        if (t % r->plot_every == 0) {
            g_array_append_val(r->host_free, free_mib);
            for (guint k = 0; k < r->n_plot_vms; k++) {
                const SimGuest *g = &w.g[r->plot_vm[k]];
                double need = g->alive ? g->footprint_mib + g->demand_mib : 0;
                g_array_append_val(r->vm_actual[k], g->actual_mib);
                g_array_append_val(r->vm_ws[k], need);
            }
            r->n_samples++;
        }
    }
    policy->destroy(state);

    r->reclaimed_gib_h = reclaimed / 1024 / 3600;
    r->n_vms = w.n;
    r->vms = g_new0(SimVmResult, w.n);
    double moved = 0;
    for (guint i = 0; i < w.n; i++) {
        const SimGuest *g = &w.g[i];
        double lived = duration - g->trace->start_s;
        r->vms[i].name = g_strdup(g->trace->name);
        r->vms[i].stall_s = g->stall_s;
        r->vms[i].oom_kills = (guint)g->oom_kills;
        r->vms[i].mean_mib = lived > 0 ? g->sum_actual / lived : g->actual_mib;
        r->stall_vm_s += g->stall_s;
        r->oom_kills += (guint)g->oom_kills;
        moved += g->moved_mib;
    }
    r->moved_gib = moved / 1024;
    g_free(w.g);
    g_rand_free(w.rand);
    r->wall_s = (g_get_monotonic_time() - t0) / 1e6;
    return r;
}

void sim_result_free(SimResult *r)
{
    if (r == NULL)
        return;
    for (guint i = 0; i < r->n_vms; i++)
        g_free(r->vms[i].name);
    g_free(r->vms);
    g_array_unref(r->host_free);
    for (guint k = 0; k < r->n_plot_vms; k++) {
        g_array_unref(r->vm_actual[k]);
        g_array_unref(r->vm_ws[k]);
    }
    g_free(r);
}
