/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Policy throughput: policy_decide() over 1000 VMs (a mix of idle, growing,
 * PSI-stalled, silent and agent-less guests), on a host that is comfortable
 * and on one that is short of its reserve (reclaim ranks every VM), each
 * next to a baseline run in the same process: a loop that only copies the
 * inputs the policy reads and the memory it writes back. Figures only: there
 * is no pass/fail on timing.
 */
#include "policy.h"

#include <stdio.h>
#include <string.h>

#define N_VMS       1000
#define MIN_SECONDS 0.5
#define MIB         ((guint64)1024)
#define GIB         (1024 * MIB)
#define NOW         ((gint64)1000 * G_USEC_PER_SEC)

typedef struct {
    PolicyHost host;
    PolicyVm *vms;
    PolicyConfig config;
    PolicyVmMemory *out;
} Bench;

static volatile guint64 sink;

static void fill(PolicyVm *vms, char (*names)[16])
{
    for (int i = 0; i < N_VMS; i++) {
        PolicyVm *vm = &vms[i];
        guint64 actual = (guint64)(1 + i % 8) * GIB;

        memset(vm, 0, sizeof(*vm));
        g_snprintf(names[i], 16, "vm%d", i);
        vm->name = names[i];
        vm->mode = i % 50 == 0 ? POLICY_MODE_OBSERVE : POLICY_MODE_AUTO;
        vm->shares = (guint32)(100 + (i * 37) % 2000);
        vm->floor_kib = (guint64)(i % 3) * 256 * MIB;
        vm->max_kib = 8 * GIB;
        vm->actual_kib = actual;
        if (i % 10 == 9) { /* agent-less: libvirt stats */
            vm->has_balloon_stats = TRUE;
            vm->balloon_stats_at_us = NOW - G_USEC_PER_SEC;
            vm->lv_available_kib = actual - 50 * MIB;
            vm->lv_usable_kib = actual / 2;
            continue;
        }
        vm->agent_connected = TRUE;
        vm->has_report = TRUE;
        vm->report_at_us = i % 10 == 8 ? NOW - 60 * G_USEC_PER_SEC : NOW - 50000; /* silent */
        vm->report.seq = 1000;
        vm->report.uptime_ms = 3600000;
        vm->report.mem.total_kib = actual - 50 * MIB;
        vm->report.mem.available_kib = (actual - 50 * MIB) * (guint64)(1 + i % 7) / 8;
        vm->report.has_psi = TRUE;
        vm->report.psi.some.avg10 = i % 13 == 0 ? 4.2 : 0;
        vm->report.vmstat.present = (1u << BL_VMSTAT_N_COUNTERS) - 1;
        vm->has_prev_report = TRUE;
        vm->prev_report = vm->report;
        vm->prev_report.seq = 999;
        vm->prev_report.uptime_ms -= 100;
        vm->prev_report_at_us = vm->report_at_us - 100000;
        if (i % 7 == 0) /* growing */
            vm->prev_report.mem.available_kib += 20 * MIB;
    }
}

static void op_decide(Bench *b)
{
    g_autoptr(PolicyPlan) plan = policy_decide(&b->host, b->vms, N_VMS, &b->config, NOW);

    sink += plan->actions->len;
}

/* The baseline: read what the policy reads, write what it writes. */
static void op_copy(Bench *b)
{
    guint64 acc = 0;

    for (int i = 0; i < N_VMS; i++) {
        const PolicyVm *vm = &b->vms[i];

        b->out[i] = vm->memory;
        acc += vm->actual_kib + vm->report.mem.available_kib + vm->prev_report.mem.available_kib +
               vm->report.seq + vm->shares;
    }
    sink += acc;
}

static double rate(void (*op)(Bench *), Bench *b)
{
    gint64 start = g_get_monotonic_time(), now;
    guint64 n = 0;

    do {
        op(b);
        n++;
        now = g_get_monotonic_time();
    } while (now - start < (gint64)(MIN_SECONDS * G_USEC_PER_SEC));
    return (double)n * G_USEC_PER_SEC / (double)(now - start);
}

int main(void)
{
    static char names[N_VMS][16];
    Bench b = {0};
    struct {
        const char *name;
        guint64 host_available;
    } cases[] = {
        {"host comfortable", 16 * GIB},
        {"host short      ", 512 * MIB},
    };
    g_autofree PolicyVm *vms = g_new0(PolicyVm, N_VMS);
    g_autofree PolicyVmMemory *out = g_new0(PolicyVmMemory, N_VMS);

    b.vms = vms;
    b.out = out;
    policy_config_init_defaults(&b.config);
    fill(vms, names);
    b.host.mem_total_kib = 24 * GIB;

    double base = rate(op_copy, &b);
    printf("bench-policy: %d VMs per call\n", N_VMS);
    printf("  baseline (copy inputs): %10.0f calls/s %12.0f VMs/s\n", base, base * N_VMS);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        b.host.mem_available_kib = cases[i].host_available;
        g_autoptr(PolicyPlan) plan = policy_decide(&b.host, vms, N_VMS, &b.config, NOW);
        double r = rate(op_decide, &b);

        printf("  decide, %s: %10.0f calls/s %12.0f VMs/s  %7.1f us/call  %3u actions  "
               "%.1fx the baseline's time\n",
               cases[i].name, r, r * N_VMS, 1e6 / r, plan->actions->len, base / r);
    }
    return 0;
}
