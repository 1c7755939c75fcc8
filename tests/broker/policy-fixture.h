/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the policy tests: units, a fixed "now", the default
 * configuration and a host with plenty of memory. */
#pragma once

#include "policy.h"

#define MIB KIB_PER_MIB
#define GIB KIB_PER_GIB
#define MS  ((gint64)1000)
#define SEC ((gint64)1000000)
#define NOW (1000 * SEC)

static inline PolicyConfig cfg(void)
{
    PolicyConfig c;

    policy_config_init_defaults(&c);
    /* The rules one at a time: on a comfortable host every quiet guest would
     * be probed (rule 3b, on by default). The probe tests and the random
     * invariants turn it on; /policy/probe/default checks the default. */
    c.probe_step_kib = 0;
    return c;
}

/* A host with plenty: 24 GiB, 16 GiB available, no PSI. */
static inline PolicyHost host_ok(void)
{
    PolicyHost h = {.mem_total_kib = 24 * GIB, .mem_available_kib = 16 * GIB};

    return h;
}
