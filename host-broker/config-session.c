/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The session's view of the configuration: sessions take scalars, not a Config. */
#include "config.h"

#include <string.h>

void config_session(const Config *cfg, SessionConfig *out)
{
    memset(out, 0, sizeof(*out));
    out->interval_ms = cfg->interval_ms;
    out->has_psi_trigger = cfg->psi_trigger != CONFIG_PSI_TRIGGER_NONE;
    out->psi_trigger.kind = cfg->psi_trigger == CONFIG_PSI_TRIGGER_FULL ? BL_PSI_FULL : BL_PSI_SOME;
    out->psi_trigger.stall_us = cfg->psi_trigger_stall_us;
    out->psi_trigger.window_us = cfg->psi_trigger_window_us;
    out->rate_limit_per_s = cfg->rate_limit_per_s;
    out->rate_limit_burst = cfg->rate_limit_burst;
    out->read_budget_bytes = cfg->read_budget_bytes;
    out->stale_ms = cfg->policy.stale_after_ms;
}
