/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The balloon policy: plan = policy_decide(host, vms, config, now).
 *
 * Pure: no file, clock or libvirt call in here. The broker collects facts into
 * these structs, calls policy_decide(), applies the plan and stores each VM's
 * PolicyVmMemory from the plan for the next cycle. Tests and trace replays do
 * the same with made-up data. docs/policy.md explains the rules.
 *
 * Units: memory in KiB, time in microseconds of a monotonic clock.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

typedef enum {
    POLICY_MODE_AUTO,    /* decide and act */
    POLICY_MODE_OBSERVE, /* decide, log, do not act (per-VM dry run) */
    POLICY_MODE_OFF,     /* leave the VM alone */
} PolicyMode;

typedef enum {
    POLICY_KSM_AUTO,   /* merge while it pays */
    POLICY_KSM_NEVER,  /* never share this VM's pages (tenant isolation) */
    POLICY_KSM_ALWAYS, /* always allow sharing */
} PolicyKsm;

/* Every field is a documented key of ballastd.conf, group [policy]
 * (docs/configuration.md); policy_config_init_defaults() sets the defaults. */
typedef struct {
    guint32 default_shares;
    /* ... filled in by the policy module */
} PolicyConfig;

/* Facts about the host. */
typedef struct {
    guint64 mem_total_kib;
    guint64 mem_available_kib;
    gboolean has_psi;
    BlPsi psi; /* host /proc/pressure/memory */
} PolicyHost;

/* What the policy remembers about a VM between cycles. The broker stores it
 * by value without looking inside: zero-initialised for a new VM, replaced by
 * plan->memory[i] after each cycle. */
typedef struct {
    gint64 last_pressure_us; /* 0: never under pressure */
    /* ... filled in by the policy module */
} PolicyVmMemory;

/* One VM as the policy sees it. */
typedef struct {
    const char *name;
    PolicyMode mode;
    PolicyKsm ksm;
    guint64 floor_kib; /* from metadata min= or <min_guarantee>; 0 = none set */
    guint32 shares;    /* from metadata; 0 = broker default */

    /* libvirt's view */
    guint64 max_kib;    /* maximum memory: the balloon can give no more */
    guint64 actual_kib; /* balloon current size */
    gboolean has_balloon_stats;
    gint64 balloon_stats_at_us; /* when libvirt's stats were last updated */
    guint64 lv_available_kib;   /* libvirt "available" (guest MemTotal) */
    guint64 lv_usable_kib;      /* libvirt "usable" (~MemAvailable) */
    guint64 lv_unused_kib;      /* libvirt "unused" (MemFree) */
    guint64 lv_disk_caches_kib;
    guint64 lv_swap_in_kib; /* cumulative */
    guint64 lv_major_faults;

    /* the agent's view; absent when no agent or not yet reported */
    gboolean agent_connected;
    gboolean has_report;
    gint64 report_at_us; /* when the latest report arrived */
    BlReport report;
    gboolean has_prev_report; /* the report before it, for rates */
    gint64 prev_report_at_us;
    BlReport prev_report;
    guint64 agent_rejected; /* messages from this guest rejected so far */

    PolicyVmMemory memory; /* all zero for a VM seen for the first time */
} PolicyVm;

typedef enum {
    POLICY_ACTION_DEFLATE, /* give the guest memory: raise the balloon target */
    POLICY_ACTION_INFLATE, /* take memory from the guest: lower the target */
} PolicyActionKind;

typedef struct {
    gsize vm;               /* index into the vms[] given to policy_decide */
    PolicyActionKind kind;
    guint64 target_kib;     /* new balloon target, within [floor, max] */
    char reason[256];       /* "vm1: +256 MiB (psi some avg10 4.2% > 1.0%)" */
} PolicyAction;

typedef struct {
    GArray *actions;          /* of PolicyAction */
    PolicyVmMemory *memory;   /* n_vms entries: the memory to store for each VM */
    gsize n_vms;
    GPtrArray *notes;         /* char *: things a person should know, e.g.
                               * "host reserve unmet: 300 MiB short, all VMs at their floor" */
} PolicyPlan;

void policy_config_init_defaults(PolicyConfig *config);

/*
 * Read group `group` of kf over *config (keys absent keep their value). On a
 * bad value, returns FALSE, leaves *config unchanged, sets *bad_key to the
 * offending key (for the caller to locate its line) and error to a one-line
 * message naming key and allowed range. Unknown keys are an error too.
 */
gboolean policy_config_load(PolicyConfig *config, GKeyFile *kf, const char *group,
                            char **bad_key, GError **error);

PolicyPlan *policy_decide(const PolicyHost *host, const PolicyVm *vms, gsize n_vms,
                          const PolicyConfig *config, gint64 now_us);
void policy_plan_free(PolicyPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicyPlan, policy_plan_free)
