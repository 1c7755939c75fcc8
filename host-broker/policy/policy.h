/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The balloon policy: plan = policy_decide(host, vms, config, now).
 *
 * Pure: no file, clock or libvirt call in here. The broker collects facts into
 * these structs, calls policy_decide(), applies the plan, stores each VM's
 * PolicyVmMemory from the plan and passes back what its set-memory calls did
 * (PolicyVm.applied_target_kib, setmem_failed_us) in the next cycle. Every
 * rule lives in here, the safety net included (policy-balloon.c): tests,
 * trace replays and simulators do the same with made-up data and get the
 * whole policy. docs/policy.md explains the rules.
 *
 * Units: memory in KiB, time in microseconds of a monotonic clock. Sizes above
 * 2^50 KiB (1 EiB) are taken as 2^50.
 */
#pragma once

#include <glib.h>

#include "backoff.h"
#include "protocol.h"
#include "types.h" /* PolicyMode, PolicyKsm, KIB_PER_MIB */

/* What to do with a VM that has never had an agent report. */
typedef enum {
    POLICY_AGENTLESS_LIBVIRT, /* decide from libvirt's balloon stats, wider margins */
    POLICY_AGENTLESS_LEAVE,   /* leave it alone */
} PolicyAgentless;

/*
 * Every field is a documented key of ballastd.conf, group [policy]
 * (docs/policy.md has the table, generated from host-broker/config-keys.c);
 * policy_config_init_defaults() sets the defaults. Sizes in KiB, times in ms,
 * percentages 0..100.
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

    /* guests whose reports contradict what the host sees */
    guint32 distrust_after; /* this many implausible reports within 60 s ... */
    guint32 distrust_ms;    /* ... and the agent is ignored this long; 0: never */
} PolicyConfig;

/* Facts about the host. */
typedef struct {
    guint64 mem_total_kib;
    guint64 mem_available_kib;
    gboolean has_psi;
    BlPsi psi; /* host /proc/pressure/memory */

    /* The broker's pressure path: only the VMs given (those that reported
     * pressure) are decided, against fleet figures from the last full
     * decision: the other VMs' targets, and each VM's entitlement. Reclaim
     * from VMs not given, and probing, wait for the next full decision.
     * All zero for a full decision. */
    gboolean pressure_only;
    guint64 fleet_committed_kib; /* targets in force of the managed VMs not given */
    guint64 fleet_unmanaged_kib; /* what the VMs in mode off not given hold */
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

    guint64 burst_step_kib;     /* the last raise while pressure persists; 0: not under pressure */
    guint64 answered_seq;       /* the report (seq, uptime) a planned raise last answered: */
    guint64 answered_uptime_ms; /* seen again, it asks for nothing more (rule 1) */

    gint64 last_probe_us;        /* last probe of this VM; 0: never */
    guint64 probe_floor_kib;     /* pressure followed a probe: not probed below this ... */
    gint64 probe_floor_until_us; /* ... until then */
    guint32 probe_streak;        /* probes in a row without pressure after them: the step grows */

    gint64 lv_prev_at_us; /* previous libvirt stats, for agent-less rates */
    guint64 lv_prev_major_faults;
    guint64 lv_prev_swap_in_kib;

    /* the floor net (rule 8): asks since the balloon was last at its floor */
    Backoff floor_asks;
    gboolean floor_asks_acted; /* ... made in mode auto (not only logged in observe) */

    /* set-memory calls that fail (rule 9): not remembered as applied, retried
     * with back-off */
    Backoff setmem;
    gint64 setmem_failed_seen_us; /* the failure (PolicyVm.setmem_failed_us) last counted */
    struct {
        gint64 at_us; /* when the last remembered action was planned; 0: none to undo */
        guint64 last_target_kib;
        gint64 target_set_us;
        gint64 last_inflate_us;
        guint64 reclaimed_from_kib;
        guint64 burst_step_kib;                   /* a raise that never happened doubles nothing */
        guint64 answered_seq, answered_uptime_ms; /* ... nor answered its report */
    } undo; /* what remembering that action changed, put back if its call failed */

    /* trust (docs/policy.md, rule 6): implausible reports in the current
     * 60 s window; past distrust_after the agent is ignored (the VM is
     * managed from libvirt's figures) until untrusted_until_us */
    guint32 lies_recent;
    gint64 lies_window_us;
    gboolean untrusted;
    gint64 untrusted_until_us;
    char untrusted_why[128];

    /* rule 6, the balloon as witness: an inflate above the entitlement that
     * went beyond what the guest's own figures allowed (their test), or that
     * followed a contradiction, and what those figures said then */
    guint64 claim_from_kib;     /* balloon size when it was asked; 0: none in flight */
    guint64 claim_kib;          /* the most it could give by its figures (slack included) */
    gboolean claim_test;        /* a test: given back if the balloon stops within the claim */
    guint64 claim_oom_kills;    /* the guest's OOM kill count then: a kill since excuses it */
    gint64 claim_held_until_us; /* its figures held at the last test: none before this */

    guint64 entitlement_kib;       /* rule 10: while the host is short; 0: it is not */
    guint64 fleet_entitlement_kib; /* rule 10 over the whole fleet at the last full
                                    * decision, short or not; 0: none yet */
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

    /* What the broker did with the balloon. Zero when nothing is known: a
     * simulator whose every call works may leave these alone. */
    guint64 applied_target_kib; /* target of the last set-memory call that worked; 0: none */
    gint64 applied_at_us;       /* ... when that call was made */
    gint64 setmem_failed_us;    /* when the last set-memory call failed; 0: it worked */

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
    guint32 attempt;    /* POLICY_REASON_FLOOR: the how-many-th ask since the balloon was
                         * last at its floor (2 and up: the earlier ones did not land);
                         * 0 for the other rules */
} PolicyAction;

typedef struct {
    GArray *actions;        /* of PolicyAction: deflates first, then reclaims, then
                             * raises of balloons below their floor (rule 8) */
    PolicyVmMemory *memory; /* n_vms entries: the memory to store for each VM */
    gsize n_vms;
    GPtrArray *notes;         /* char *: things a person should know, e.g.
                       * "host reserve unmet: 300 MiB short, all VMs at their floor" */
    guint64 *entitlement_kib; /* n_vms entries: what each VM may hold while the
                               * host is short (rule 10); 0: the host is not short */
} PolicyPlan;

/* Every key at its default. Defined by the configuration engine
 * (host-broker/config-keys.c holds the one table of keys and defaults). */
void policy_config_init_defaults(PolicyConfig *config);

/* "pressure", "oom", "host-short", ...: stable names for metrics and logs. */
const char *policy_reason_name(PolicyReason code);

/* The headroom (KiB) a guest with `total_kib` of RAM should keep available:
 * Hyper-V's balloon floor bands (docs/policy.md). */
guint64 policy_headroom_kib(guint64 total_kib);

/* The host MemAvailable the policy keeps free: host_reserve, or
 * host_reserve_pct of MemTotal if larger. Pure. */
guint64 policy_host_reserve_kib(const PolicyHost *host, const PolicyConfig *config);

PolicyPlan *policy_decide(const PolicyHost *host, const PolicyVm *vms, gsize n_vms,
                          const PolicyConfig *config, gint64 now_us);
void policy_plan_free(PolicyPlan *plan);

/* A VM's effective floor: its own (metadata, <min_guarantee>) or min_floor,
 * whichever is larger, but never above its maximum (0: unknown). */
guint64 policy_vm_floor(const PolicyConfig *config, guint64 floor_kib, guint64 max_kib);

/* How often the floor net asks again for a balloon that stays below its floor
 * (after the second ask), for messages. */
gint64 policy_floor_retry_us(const PolicyConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicyPlan, policy_plan_free)
