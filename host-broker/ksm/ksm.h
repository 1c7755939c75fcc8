/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host KSM controller, ballast's replacement for ksmtuned: pure decisions.
 *
 * plan = ksm_host_decide(facts, state, config, now). The caller reads the facts
 * (ksm-sysfs.h, /proc/meminfo), applies the plan through ksm-sysfs.h and keeps
 * plan.state for the next cycle. Nothing in here touches a file or a clock, so
 * tests feed it made-up hosts. docs/ksm.md explains the rules.
 *
 * Units: memory in KiB unless the name says bytes, time in microseconds.
 */
#pragma once

#include <glib.h>

/* ksmtuned's reference values (ksmtuned.conf KSM_NPAGES_*, KSM_SLEEP_MSEC). */
#define KSM_PAGES_BOOST_DEFAULT 300
#define KSM_PAGES_DECAY_DEFAULT 50
#define KSM_PAGES_MIN_DEFAULT   64
#define KSM_PAGES_MAX_DEFAULT   1250
#define KSM_SLEEP_BASE_DEFAULT  10 /* ms for a host with 16 GiB */
#define KSM_SLEEP_FLOOR_MS      10

/* The kernel's struct ksm_rmap_item on 64-bit: the cost of tracking one page. */
#define KSM_RMAP_ITEM_BYTES 64

typedef enum {
    KSM_ADVISOR_ABSENT,    /* kernel < 6.8: no advisor_mode file */
    KSM_ADVISOR_NONE,      /* "[none] scan-time" */
    KSM_ADVISOR_SCAN_TIME, /* "none [scan-time]" */
    KSM_ADVISOR_OTHER,     /* a mode this ballast does not know */
} KsmAdvisor;

/* /sys/kernel/mm/ksm as read at one moment. */
typedef struct {
    guint run; /* 0 stopped, 1 merging, 2 stopped and unmerged */
    guint64 pages_to_scan;
    guint64 sleep_millisecs;
    guint64 pages_shared;
    guint64 pages_sharing;
    guint64 pages_unshared;
    guint64 pages_volatile;
    guint64 full_scans;
    gboolean has_general_profit; /* kernel >= 6.4 */
    gint64 general_profit;       /* bytes; negative when KSM costs more than it saves */
    gboolean has_zero_pages;     /* kernel >= 6.10 */
    guint64 ksm_zero_pages;
    KsmAdvisor advisor_mode;
    gboolean has_smart_scan; /* kernel >= 6.7 */
    gboolean smart_scan;
} KsmSysfs;

/* Keys of ballastd.conf group [ksm]; ksm_config_init_defaults() sets the
 * defaults. Loading them is the configuration engine's (host-broker/config.h),
 * which also defines ksm_config_init_defaults() from its key table. */
typedef struct {
    gboolean manage;           /* ballastd owns /sys/kernel/mm/ksm (ksmtuned must not run) */
    guint interval_s;          /* seconds between two controller cycles */
    guint start_below_percent; /* short of memory: MemAvailable below this % of RAM */
    guint stop_above_percent;  /* no longer short: MemAvailable at or above this % */
    guint pages_boost;         /* pages_to_scan += boost while short */
    guint pages_decay;         /* pages_to_scan -= decay while running but not short */
    guint pages_min;           /* clamp of pages_to_scan */
    guint pages_max;
    guint sleep_base_ms;      /* sleep_millisecs = max(10, base x 16 GiB / RAM) */
    gboolean use_advisor;     /* advisor_mode=scan-time and smart_scan=1 where present */
    guint warmup_full_scans;  /* full scans before profit is judged */
    guint min_profit_mib;     /* KSM pays when general_profit exceeds this */
    guint max_unshared_ratio; /* and (unshared + volatile) <= ratio x sharing */
    guint retry_after_s;      /* after "does not pay", try again this much later */
    guint vm_min_profit_mib;  /* ksm="auto": a VM pays when its profit reaches this */
    guint vm_full_scans;      /* ... judged over this many full scans */
    guint vm_retry_after_s;   /* re-include a VM excluded for low profit (0 = never) */
    gboolean live_exclusion;  /* exclude running VMs live (also needs [broker]
                                   * allow_qemu_monitor=true: QMP taints the domain) */
    char **latency_sensitive; /* VM names treated as latency-sensitive */
} KsmConfig;

void ksm_config_init_defaults(KsmConfig *config);
void ksm_config_clear(KsmConfig *config);

/* Facts for one cycle. */
typedef struct {
    KsmSysfs ksm;
    guint64 mem_total_kib;
    guint64 mem_available_kib;
    guint64 page_size; /* bytes; 0 means 4096 */
} KsmHostFacts;

/* What the controller remembers between cycles; zero-initialise before the first. */
typedef struct {
    gboolean short_of_memory;  /* the last verdict, for hysteresis */
    gboolean running;          /* ballast has KSM running */
    guint64 scans_at_start;    /* full_scans when ballast last started KSM */
    gint64 unprofitable_at_us; /* when KSM was judged not to pay; 0 = not */
} KsmHostState;

typedef struct {
    /* what to write; only fields whose set_* is TRUE, in this order:
     * advisor_mode, smart_scan, pages_to_scan, sleep_millisecs, run (the
     * kernel resets pages_to_scan when advisor_mode changes) */
    gboolean set_advisor;
    KsmAdvisor advisor_mode;
    gboolean set_smart_scan;
    gboolean smart_scan;
    gboolean set_pages;
    guint64 pages_to_scan;
    gboolean set_sleep;
    guint64 sleep_millisecs;
    gboolean set_run;
    guint run;

    gint64 profit_bytes; /* general_profit, or the documented estimate on old kernels */
    char reason[256];    /* "host short of memory (MemAvailable 12.0% < 20%): run KSM" */
    KsmHostState state;  /* to keep for the next cycle */
} KsmHostPlan;

/* sleep_millisecs for a host with mem_total_kib of RAM (ksmtuned's formula). */
guint64 ksm_sleep_for_ram(guint64 mem_total_kib, guint sleep_base_ms);

/* KSM's system-wide profit in bytes: general_profit where the kernel has it,
 * else Documentation/admin-guide/mm/ksm.rst's approximation. */
gint64 ksm_general_profit(const KsmSysfs *ksm, guint64 page_size);

/* TRUE when the plan writes anything. */
gboolean ksm_host_plan_changes(const KsmHostPlan *plan);

void ksm_host_decide(const KsmHostFacts *facts, const KsmHostState *state, const KsmConfig *config,
                     gint64 now_us, KsmHostPlan *plan);

/*
 * The writes that put back what ballastd found at start (original) given the
 * knobs now (current). run=2 found at start is put back as 0: writing 2 would
 * unmerge every page at once, which can push a host that relies on merging
 * into OOM.
 */
void ksm_host_restore(const KsmSysfs *original, const KsmSysfs *current, KsmHostPlan *plan);

/*
 * The settings found at start, kept in a file while ballastd owns KSM so that
 * a ballastd killed without restoring them (SIGKILL, crash) is followed by one
 * that restores the real originals rather than its predecessor's tuning.
 * boot_id ties the file to one boot: a file from an earlier boot is refused.
 */
char *ksm_saved_to_text(const KsmSysfs *original, const char *boot_id);
gboolean ksm_saved_from_text(const char *text, const char *boot_id, KsmSysfs *original,
                             GError **error);

/* ksmd's CPU use in percent of one CPU between two samples of its
 * utime+stime (clock ticks); 0 when the interval is empty or ticks went back. */
double ksm_cpu_percent(guint64 prev_ticks, guint64 now_ticks, guint64 ticks_per_s,
                       gint64 interval_us);

const char *ksm_advisor_to_string(KsmAdvisor mode);
