/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `static`: no ballooning; every VM keeps its maximum. The baseline for stall
 * and OOM kills (none from ballooning) and for host shortage (the most). */
#include "sim.h"

gpointer sim_policy_no_state(SimWorld *w)
{
    return w;
}

void sim_policy_no_free(gpointer state)
{
}

static void static_step(gpointer state, SimWorld *w)
{
    for (guint i = 0; i < w->n; i++)
        w->g[i].target_mib = w->g[i].max_mib;
}

const SimPolicy sim_policy_static = {
    .name = "static",
    .about = "no ballooning: every VM at its maximum",
    .create = sim_policy_no_state,
    .step = static_step,
    .destroy = sim_policy_no_free,
};
