/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `oracle`: reads each VM's working set from the trace ahead of time and
 * sets its balloon to footprint + the largest working set of the next
 * LOOKAHEAD_S seconds + MARGIN_MIB, never below the floor. The balloon moves
 * in well under a second, so it is never late: the upper bound of reclaim at
 * no stall. It knows the truth, so liars do not fool it.
 */
#include "sim.h"

#define LOOKAHEAD_S 5.0
#define MARGIN_MIB  16.0

static void oracle_step(gpointer state, SimWorld *w)
{
    for (guint i = 0; i < w->n; i++) {
        SimGuest *g = &w->g[i];
        if (!g->alive)
            continue;
        double peak = sim_trace_ws_peak(g->trace, w->t, LOOKAHEAD_S, g->cursor);
        double want = g->footprint_mib + peak + MARGIN_MIB;
        g->target_mib = CLAMP(want, MIN(SIM_FLOOR_MIB, g->max_mib), g->max_mib);
    }
}

const SimPolicy sim_policy_oracle = {
    .name = "oracle",
    .about = "knows the working set ahead: footprint + peak of the next 5 s + 16 MiB",
    .create = sim_policy_no_state,
    .step = oracle_step,
    .destroy = sim_policy_no_free,
};
