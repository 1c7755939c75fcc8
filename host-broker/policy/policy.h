/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The balloon policy: plan = policy_decide(host, vms, config, now).
 *
 * Pure: no file, clock or libvirt call in here. The broker collects facts into
 * these structs, calls policy_decide(), applies the plan and stores each VM's
 * PolicyVmMemory from the plan for the next cycle. Tests and trace replays do
 * the same with made-up data. docs/policy.md explains the rules.
 *
 * Units: memory in KiB, time in microseconds of a monotonic clock. Sizes above
 * 2^50 KiB (1 EiB) are taken as 2^50.
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

/* What to do with a VM that has never had an agent report. */
typedef enum {
    POLICY_AGENTLESS_LIBVIRT, /* decide from libvirt's balloon stats, wider margins */
    POLICY_AGENTLESS_LEAVE,   /* leave it alone */
} PolicyAgentless;

/*
 * Every field is a documented key of ballastd.conf, group [policy]
 * (docs/policy.md has the table); policy_config_init_defaults() sets the
 * defaults. Sizes in KiB, times in ms, percentages 0..100.
 */
typedef struct {
    guint32 default_shares; /* shares of a VM whose metadata sets none */
    guint64 min_floor_kib;  /* no VM is ever ballooned below this */
    guint64 min_step_kib;   /* smaller changes are not worth making */

    /* guest pressure: deflate at once */
    guint32 stale_after_ms;       /* an agent report older than this is unknown */
    gboolean grow_to_headroom;    /* MemAvailable < headroom alone is evidence */
    double psi_some_pct;          /* guest PSI some avg10 above this: pressure */
    double psi_full_pct;          /* guest PSI full avg10 above this: pressure */
    double major_faults_per_s;    /* pgmajfault rate above this: pressure */
    double refaults_per_s;        /* workingset refaults (pages/s) above this */
    double swapins_per_s;         /* pswpin (pages/s) above this */
    guint32 lead_time_ms;         /* project the fall of MemAvailable this far */
    guint32 rate_min_interval_ms; /* two reports closer than this give no rate */
    guint64 deflate_margin_kib;   /* added to every deflate step */
    guint64 pressure_step_kib;    /* least step on PSI / fault evidence */
    guint64 oom_step_kib;         /* least step after a new OOM kill */
    guint32 pressure_cooldown_ms; /* no reclaim this long after pressure */

    /* host need: reclaim */
    guint64 host_reserve_kib; /* host MemAvailable wanted at least ... */
    double host_reserve_pct;  /* ... or this share of host MemTotal if larger */
    guint64 host_hysteresis_kib;
    double host_psi_some_pct;    /* host PSI some avg10 above this: host needs memory */
    guint64 host_psi_step_kib;   /* reclaimed per cycle on host PSI alone */
    guint64 reclaim_step_kib;    /* most taken from one VM per cycle */
    guint32 reclaim_interval_ms; /* least time between two reclaims of one VM */
    double idle_tax_pct;         /* Waldspurger's tau, in percent */
    guint64 giveback_step_kib;   /* most given back to one VM per cycle */

    /* probing: reclaim idle memory from quiet guests while the host is not short */
    guint64 probe_step_kib;    /* most taken per probe; 0: never probe */
    guint32 probe_interval_ms; /* least time between two probes of one VM */
    guint32 probe_memory_ms;   /* pressure after a probe: not probed below it this long */

    /* unknown data */
    double silent_safe_pct; /* a silent agent's VM gets at least this share of max */
    PolicyAgentless agentless;
    guint32 libvirt_stale_after_ms;
    double libvirt_headroom_pct; /* headroom scale for libvirt-only VMs (>= 100) */

    /* balloons that do not reach their target */
    guint32 balloon_settle_ms;
    guint64 balloon_tolerance_kib;
    guint32 balloon_backoff_ms;
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
 * plan->memory[i] after each cycle. Only AUTO VMs remember targets: an
 * OBSERVE VM's targets are never applied. */
typedef struct {
    gint64 last_pressure_us; /* 0: never under pressure */
    gint64 last_report_us;   /* arrival of the latest fresh agent report; 0: never */
    guint64 last_seq;        /* seq of the report last checked for lies */
    guint64 last_uptime_ms;
    guint32 anomalies; /* implausible reports seen so far */
    gboolean silent;   /* the agent had reported and then fell silent */

    guint64 last_target_kib; /* the last target set by the policy; 0: none pending */
    gint64 target_set_us;
    guint64 seen_actual_kib; /* balloon size when it last moved ... */
    gint64 actual_moved_us;  /* ... and when */
    gint64 stuck_until_us;   /* no reclaim before this; 0: not stuck */
    guint64 stuck_at_kib;
    guint32 stuck_count;

    gint64 last_inflate_us;     /* last reclaim from this VM */
    guint64 reclaimed_from_kib; /* balloon size before the first reclaim; 0: none */

    gboolean has_offset;
    guint64 offset_kib; /* balloon size - guest MemTotal, learned while still */

    guint64 burst_step_kib; /* the last raise while pressure persists; 0: not under pressure */

    gint64 last_probe_us;        /* last probe of this VM; 0: never */
    guint64 probe_floor_kib;     /* pressure followed a probe: not probed below this ... */
    gint64 probe_floor_until_us; /* ... until then */

    gint64 lv_prev_at_us; /* previous libvirt stats, for agent-less rates */
    guint64 lv_prev_major_faults;
    guint64 lv_prev_swap_in_kib;
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

/* Why an action is taken, as a code (metrics labels, tests, decisions that
 * depend on an earlier one); the text beside it is for people. */
typedef enum {
    POLICY_REASON_PRESSURE,    /* guest PSI, faults, refaults, swap-in or MemAvailable */
    POLICY_REASON_OOM,         /* a new OOM kill in the guest */
    POLICY_REASON_SILENT,      /* the agent fell silent: raised to a safe size */
    POLICY_REASON_AGENTLESS,   /* no agent: libvirt's balloon statistics */
    POLICY_REASON_FLOOR,       /* the balloon is below the VM's floor */
    POLICY_REASON_STUCK,       /* the balloon did not reach its target */
    POLICY_REASON_HOST_SHORT,  /* reclaimed because the host needs memory */
    POLICY_REASON_GIVEBACK,    /* given back once the host has memory again */
    POLICY_REASON_ENTITLEMENT, /* above its entitlement while the host is short */
    POLICY_REASON_RELEASE,     /* an operator released the VM (ballastctl release) */
    POLICY_REASON_PROBE,       /* idle memory of a quiet guest, while the host is not short */
    POLICY_REASON_N
} PolicyReason;

typedef struct {
    gsize vm; /* index into the vms[] given to policy_decide */
    PolicyActionKind kind;
    PolicyReason code;
    guint64 target_kib; /* new balloon target, within [floor, max] */
    char reason[256];   /* "vm1: +256 MiB (psi some avg10 4.2% > 1.0%)" */
} PolicyAction;

typedef struct {
    GArray *actions;        /* of PolicyAction: deflates first, then reclaims */
    PolicyVmMemory *memory; /* n_vms entries: the memory to store for each VM */
    gsize n_vms;
    GPtrArray *notes; /* char *: things a person should know, e.g.
                       * "host reserve unmet: 300 MiB short, all VMs at their floor" */
} PolicyPlan;

void policy_config_init_defaults(PolicyConfig *config);

/* "pressure", "oom", "host-short", ...: stable names for metrics and logs. */
const char *policy_reason_name(PolicyReason code);

/*
 * Read group `group` of kf over *config (keys absent keep their value). On a
 * bad value, returns FALSE, leaves *config unchanged, sets *bad_key to the
 * offending key (for the caller to locate its line) and error to a one-line
 * message naming key and allowed range. Unknown keys are an error too.
 * A missing group is not an error.
 */
gboolean policy_config_load(PolicyConfig *config, GKeyFile *kf, const char *group, char **bad_key,
                            GError **error);

/* The names of the [policy] keys, NULL-terminated (for tools and doc checks). */
const char *const *policy_config_keys(void);

/* The headroom (KiB) a guest with `total_kib` of RAM should keep available:
 * Hyper-V's balloon floor bands (docs/policy.md). */
guint64 policy_headroom_kib(guint64 total_kib);

/* Parse a size: plain KiB, or a number with K/KiB, M/MiB, G/GiB, T/TiB
 * (binary units, case-insensitive). FALSE on garbage or overflow. */
gboolean policy_parse_size(const char *text, guint64 *kib);

/* Parse a boolean: true/yes/1 or false/no/0 (case-insensitive), the one
 * spelling every ballastd.conf group accepts. FALSE on anything else. */
gboolean policy_parse_bool(const char *text, gboolean *value);

PolicyPlan *policy_decide(const PolicyHost *host, const PolicyVm *vms, gsize n_vms,
                          const PolicyConfig *config, gint64 now_us);
void policy_plan_free(PolicyPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicyPlan, policy_plan_free)
