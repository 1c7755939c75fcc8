/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Rules 8 and 9 of docs/policy.md, the policy's safety net around the
 * balloon calls, over the public types only; policy_decide() calls them.
 * Pure, like the rest of the policy.
 */
#pragma once

#include "policy.h"

/*
 * Rule 9, first for each VM: count a set-memory call that failed since the
 * last decision (vm->setmem_failed_us) and take back what remembering its
 * action changed in *m, so that a target that was never set is not waited
 * for. Returns TRUE while the back-off holds: no new call for this VM yet.
 */
gboolean policy_setmem_track(PolicyVmMemory *m, const PolicyVm *vm, const PolicyConfig *cfg,
                             GPtrArray *notes, const char *name, gint64 now_us);

/* Before an action is remembered in *m: keep what it changes (rule 9). */
void policy_setmem_save(PolicyVmMemory *m, gint64 now_us);

/*
 * Rule 8: a balloon below its floor is raised whatever else was decided, for
 * a VM the plan has no action for. floor and actual are the policy's (floor
 * within [min_floor, max], actual clamped to max). Fills *a (but a->vm) and
 * returns TRUE when an ask is due now.
 */
gboolean policy_floor_net(PolicyVmMemory *m, const PolicyVm *vm, const char *name, guint64 floor,
                          guint64 actual, const PolicyConfig *cfg, gint64 now_us, PolicyAction *a);
