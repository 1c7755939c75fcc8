/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ballast-sim: a fleet of model guests on one host, driven by a trace, run
 * under a balloon policy. docs/simulator.md describes the model and cites its
 * constants. Units: MiB (double) and seconds; the step is one second.
 */
#pragma once

#include <glib.h>

#include "protocol.h"

/* ---- trace (sim-trace.c) ---- */

typedef struct {
    double t_s;
    double ws_mib;
} SimRow;

typedef struct {
    char *name;
    double max_mib;
    guint32 shares;
    gboolean liar;
    double start_s; /* first row */
    GArray *rows;   /* of SimRow, sorted by time */
} SimTraceVm;

typedef struct {
    GPtrArray *vms; /* of SimTraceVm*, in order of first appearance */
    double duration_s;
} SimTrace;

#define SIM_ERROR (sim_error_quark())
GQuark sim_error_quark(void);

/* Parse CSV text; errors name the file and line: "t.csv:12: ws_mib 900 above max_mib 512". */
SimTrace *sim_trace_parse(const char *text, const char *file, GError **error);
SimTrace *sim_trace_load(const char *path, GError **error);
void sim_trace_free(SimTrace *trace);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SimTrace, sim_trace_free)

/* The working set of vm at time t (the row in force), and its largest value in [t, t + ahead]. */
double sim_trace_ws_at(const SimTraceVm *vm, double t, guint *cursor);
double sim_trace_ws_peak(const SimTraceVm *vm, double t, double ahead, guint cursor);

/* ---- guest model (sim-guest.c) ---- */

typedef struct {
    const SimTraceVm *trace;
    guint cursor;
    gboolean alive; /* exists (t >= its first row) */

    double max_mib, footprint_mib, hidden_mib; /* hidden: outside MemTotal */
    double actual_mib;                         /* memory behind the balloon (libvirt "actual") */
    double target_mib;                         /* what the policy last asked for */
    double ws_mib;                             /* working set resident now */
    double demand_mib; /* working set wanted now (trace, cut after an OOM kill) */
    double cache_mib;  /* cold page cache */
    double deficit_mib;
    double stall;           /* fraction of the last second stalled (some) */
    double oom_short_s;     /* seconds the anonymous memory has not fitted */
    double oom_cut_until_s; /* after a kill the workload restarts later */
    double frozen_until_s;  /* balloon driver not moving (seeded episodes) */

    /* what the agent would read */
    double avg10[2], avg60[2], avg300[2]; /* [some, full], percent */
    guint64 total_us[2];
    guint64 refault_pages, majflt, oom_kills, liar_kills;
    guint64 seq;

    /* figures */
    double stall_s, sum_actual, moved_mib;
    guint oom_counted;
} SimGuest;

typedef struct {
    double host_mib, own_mib; /* host RAM and its own use */
    double freeze_per_s;      /* chance per VM per second of a balloon episode */
    double t;                 /* now, seconds */
    guint n;
    SimGuest *g;
    GRand *rand;
    GKeyFile *ballast_conf; /* [policy] keys over ballast's defaults; NULL: none */
} SimWorld;

void sim_guest_init(SimGuest *g, const SimTraceVm *vm);
/* One second: the balloon moves toward its target, the workload runs. */
void sim_guest_step(SimGuest *g, SimWorld *w);
/* The report the agent would send now (honest or, for a liar, claiming pressure). */
void sim_guest_report(const SimGuest *g, const SimWorld *w, BlReport *r);
/* libvirt's balloon statistics: MemFree ("unused") as the balloon driver gives it. */
double sim_guest_unused_mib(const SimGuest *g);
double sim_host_free_mib(const SimWorld *w);

/* ---- policies (sim-pol-*.c) ---- */

typedef struct {
    const char *name;
    const char *about;
    gpointer (*create)(SimWorld *w);
    /* Called every simulated second, after the guests reported; sets g[i].target_mib. */
    void (*step)(gpointer state, SimWorld *w);
    void (*destroy)(gpointer state);
} SimPolicy;

/* Reports through the codec, and repeats that needed no encoding (sim-pol-ballast.c). */
extern guint64 sim_ballast_encoded, sim_ballast_repeated;
/* Two reports alike but for seq and uptime_ms. */
gboolean sim_report_same(const BlReport *a, const BlReport *b);

extern const SimPolicy sim_policy_ballast, sim_policy_static, sim_policy_mom, sim_policy_proxmox,
    sim_policy_oracle;

/* For policies that keep no state of their own (static, oracle). */
gpointer sim_policy_no_state(SimWorld *w);
void sim_policy_no_free(gpointer state);

/* Every VM's floor, the same for all policies: ballast's min_floor default. */
#define SIM_FLOOR_MIB 256.0

/* ---- run and figures (sim-run.c) ---- */

typedef struct {
    char *name;
    double stall_s, mean_mib;
    guint oom_kills;
} SimVmResult;

typedef struct {
    const char *policy;
    double reclaimed_gib_h, stall_vm_s, host_short_s, moved_gib;
    double below_floor_s; /* VM-seconds below the floor: must stay 0 */
    guint oom_kills;
    guint n_vms;
    SimVmResult *vms;
    /* series for plots, one sample per plot_every seconds */
    guint n_samples, plot_every;
    GArray *host_free;               /* double, MiB */
    GArray *vm_actual[4], *vm_ws[4]; /* a few VMs */
    guint plot_vm[4], n_plot_vms;
    double wall_s;
} SimResult;

typedef struct {
    double host_mib;
    guint32 seed;
    gboolean no_freeze;     /* no balloon driver episodes (tests) */
    GKeyFile *ballast_conf; /* [policy] overrides for `ballast`; NULL: defaults */
} SimConfig;

/* Parse "KEY=VALUE" settings of ballastd.conf's [policy] group into kf, checked
 * by the policy's own loader; FALSE with a one-line error. */
gboolean sim_ballast_set(GKeyFile *kf, const char *setting, GError **error);

SimResult *sim_run(const SimTrace *trace, const SimPolicy *policy, const SimConfig *cfg);
void sim_result_free(SimResult *r);

/* ---- output (sim-out.c) ---- */

char *sim_out_json(const SimTrace *trace, double host_mib, SimResult **res, guint n);
char *sim_out_table(const SimTrace *trace, double host_mib, SimResult **res, guint n);
gboolean sim_out_plot(const char *dir, const SimTrace *trace, double host_mib, SimResult *r,
                      GError **error);
