/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `static`: no ballooning; every VM keeps its maximum. The baseline for stall
 * and OOM kills (none from ballooning) and for host shortage (the most). */
#include "sim.h"

static gpointer static_create(SimWorld *w)
{
    return w;
}

static void static_step(gpointer state, SimWorld *w)
{
    for (guint i = 0; i < w->n; i++)
        w->g[i].target_mib = w->g[i].max_mib;
}

static void static_destroy(gpointer state)
{
}

const SimPolicy sim_policy_static = {
    .name = "static",
    .about = "no ballooning: every VM at its maximum",
    .create = static_create,
    .step = static_step,
    .destroy = static_destroy,
};
