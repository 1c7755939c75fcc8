/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Trace replays of the balloon policy against a simulated guest and host: the
 * policy is called the way the broker calls it (on every report, with the
 * plan's memory stored back), and the simulation checks what matters to the
 * guest: that it never runs out of memory, and that the balloon settles.
 *
 * The guest model is the one measured in /work/shared/FACTS.md: a 1 GiB guest
 * at a 256 MiB balloon has MemTotal = balloon - 51 MiB, a footprint of
 * ~140 MiB, and needs the balloon at >= 735 MiB for a 600 MiB workload; a
 * balloon move lands ~300 ms after it is asked for; libvirt passes at most one
 * balloon event a second, so its view of the size can lag by a second.
 */
#include "policy.h"

#include <string.h>

#define MIB  ((guint64)1024)
#define GIB  (1024 * MIB)
#define MS   ((gint64)1000)
#define SEC  ((gint64)1000000)
#define TICK (10 * MS)

typedef struct {
    const char *name;
    gint64 report_every_us;
    gboolean libvirt_lag; /* libvirt's actual size updated once a second */
    gint64 balloon_delay_us;
    guint64 rate_kib_per_100ms;
    guint64 workload_kib;
} ReplayCase;

#define QUEUE 64

typedef struct {
    guint64 balloon; /* real size */
    guint n_pending; /* targets asked for, each lands `balloon_delay_us` after */
    guint64 pending[QUEUE];
    gint64 pending_at[QUEUE];
    guint64 libvirt_actual;
    guint64 workload;
} Guest;

#define OFFSET    (51 * MIB)
#define FOOTPRINT (140 * MIB)

static guint64 sub0(guint64 a, guint64 b)
{
    return a > b ? a - b : 0;
}

static gint64 guest_avail(const Guest *g)
{
    return (gint64)g->balloon - (gint64)OFFSET - (gint64)FOOTPRINT - (gint64)g->workload;
}

static void replay_growth(gconstpointer data)
{
    const ReplayCase *rc = data;
    PolicyConfig cfg;
    PolicyHost host = {.mem_total_kib = 24 * GIB, .mem_available_kib = 16 * GIB};
    PolicyVm vm = {0};
    Guest g = {.balloon = 256 * MIB, .libvirt_actual = 256 * MIB};
    gint64 min_avail = G_MAXINT64, start = 3 * SEC, end = 25 * SEC, t0 = 100 * SEC;
    gint64 last_action = 0, next_report = 0;
    guint64 last_target = 0, seq = 0;
    guint n_actions = 0, n_lower = 0;

    policy_config_init_defaults(&cfg);
    vm.name = "guest";
    vm.mode = POLICY_MODE_AUTO;
    vm.max_kib = GIB;
    vm.agent_connected = TRUE;

    for (gint64 t = 0; t <= end; t += TICK) {
        gint64 now = t0 + t;

        /* the workload: +rate every 100 ms from `start` */
        if (t >= start && (t - start) % (100 * MS) == 0)
            g.workload = MIN(rc->workload_kib, g.workload + rc->rate_kib_per_100ms);
        /* the balloon lands, target after target */
        while (g.n_pending > 0 && now >= g.pending_at[0] + rc->balloon_delay_us) {
            g.balloon = g.pending[0];
            g.n_pending--;
            memmove(g.pending, g.pending + 1, g.n_pending * sizeof(g.pending[0]));
            memmove(g.pending_at, g.pending_at + 1, g.n_pending * sizeof(g.pending_at[0]));
        }
        if (!rc->libvirt_lag || t % SEC == 0)
            g.libvirt_actual = g.balloon;

        min_avail = MIN(min_avail, guest_avail(&g));
        g_assert_cmpint(guest_avail(&g), >, 0); /* OOM */

        if (t < next_report)
            continue;
        next_report = t + rc->report_every_us;

        /* the agent reports; the broker keeps the previous report for rates */
        BlReport r = {0};
        r.seq = ++seq;
        r.uptime_ms = 60000 + (guint64)(t / MS);
        r.reason = guest_avail(&g) < 100 * (gint64)MIB ? BL_REPORT_PRESSURE : BL_REPORT_PERIODIC;
        r.mem.total_kib = g.balloon - OFFSET;
        r.mem.available_kib = (guint64)MAX(guest_avail(&g), 0);
        r.mem.free_kib = r.mem.available_kib;
        r.has_psi = TRUE; /* PSI 0: the balloon alone causes no stall (FACTS) */
        if (vm.has_report) {
            vm.has_prev_report = TRUE;
            vm.prev_report = vm.report;
            vm.prev_report_at_us = vm.report_at_us;
        }
        vm.has_report = TRUE;
        vm.report = r;
        vm.report_at_us = now;
        vm.actual_kib = g.libvirt_actual;

        g_autoptr(PolicyPlan) plan = policy_decide(&host, &vm, 1, &cfg, now);
        vm.memory = plan->memory[0];
        for (guint i = 0; i < plan->actions->len; i++) {
            const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, i);

            if (g_test_verbose())
                g_printerr("t=%5.2f s avail %4" G_GINT64_FORMAT " MiB: %s\n", t / 1e6,
                           guest_avail(&g) / (gint64)MIB, a->reason);
            g_assert_cmpuint(a->target_kib, <=, GIB);
            if (last_target != 0 && a->target_kib < last_target)
                n_lower++;
            last_target = a->target_kib;
            g_assert_cmpuint(g.n_pending, <, QUEUE);
            g.pending[g.n_pending] = a->target_kib;
            g.pending_at[g.n_pending++] = now;
            last_action = t;
            n_actions++;
        }
    }
    if (g_test_verbose())
        g_printerr("%s: min available %" G_GINT64_FORMAT
                   " MiB, %u actions, balloon %" G_GUINT64_FORMAT " MiB\n",
                   rc->name, min_avail / (gint64)MIB, n_actions, g.balloon / MIB);
    /* never out of memory, with some room to spare */
    g_assert_cmpint(min_avail, >=, 16 * (gint64)MIB);
    /* the guest got what the workload needs */
    g_assert_cmpuint(g.balloon, >=, OFFSET + FOOTPRINT + rc->workload_kib);
    /* no oscillation: targets only go up while the guest grows, in few steps,
     * and the balloon is left alone once the workload is stable */
    g_assert_cmpuint(n_lower, ==, 0);
    g_assert_cmpuint(n_actions, <=, 40);
    g_assert_cmpint(last_action, <, start + 10 * SEC);
}

/* The host needs memory from idle guests: reclaimed in bounded steps until the
 * reserve is met, never under the guests' headroom, then given back when the
 * host recovers; no VM is flipped back and forth. */
static void replay_reclaim(void)
{
    PolicyConfig cfg;
    enum { N = 4 };
    PolicyVm vms[N];
    guint64 balloon[N], used[N] = {1 * GIB, 512 * MIB, 2 * GIB, 3 * GIB};
    int last_dir[N] = {0}, flips[N] = {0};
    guint64 host_used; /* host memory not for guests, changes over time */
    gint64 t0 = 100 * SEC;
    guint64 reserve;

    policy_config_init_defaults(&cfg);
    cfg.probe_step_kib = 0; /* rules 2 and 3 alone: probed memory (rule 3b) is not given back */
    memset(vms, 0, sizeof(vms));
    for (int i = 0; i < N; i++) {
        static char names[N][8];

        g_snprintf(names[i], sizeof(names[i]), "vm%d", i);
        vms[i].name = names[i];
        vms[i].mode = POLICY_MODE_AUTO;
        vms[i].max_kib = 5 * GIB;
        vms[i].shares = 1000 * (guint32)(i + 1);
        balloon[i] = 5 * GIB;
    }
    reserve = (guint64)(24.0 * GIB * cfg.host_reserve_pct / 100);

    for (int step = 0; step < 240; step++) {
        gint64 now = t0 + step * SEC;
        guint64 guests = 0;
        PolicyHost host = {.mem_total_kib = 24 * GIB};

        /* the host's own use grows 128 MiB/s to 5 GiB, stays, and is gone at 180 s;
         * guests touch all their memory (page cache), so a balloon frees what it takes */
        host_used = step < 180 ? (guint64)MIN(step, 40) * 128 * MIB : 0;
        for (int i = 0; i < N; i++)
            guests += balloon[i];
        host.mem_available_kib = sub0(24 * GIB, host_used + guests);
        if (step == 170) {
            if (g_test_verbose())
                g_printerr("host available %" G_GUINT64_FORMAT " MiB, reserve %" G_GUINT64_FORMAT
                           " MiB\n",
                           host.mem_available_kib / MIB, reserve / MIB);
            g_assert_cmpuint(host.mem_available_kib, >=, reserve);
        }
        for (int i = 0; i < N; i++) {
            PolicyVm *vm = &vms[i];
            BlReport r = {0};

            r.seq = (guint64)step + 1;
            r.uptime_ms = (guint64)(step * 1000);
            r.mem.total_kib = balloon[i] - 50 * MIB;
            r.mem.available_kib = r.mem.total_kib - used[i];
            r.has_psi = TRUE;
            if (vm->has_report) {
                vm->has_prev_report = TRUE;
                vm->prev_report = vm->report;
                vm->prev_report_at_us = vm->report_at_us;
            }
            vm->has_report = TRUE;
            vm->report = r;
            vm->report_at_us = now;
            vm->actual_kib = balloon[i];
        }
        g_autoptr(PolicyPlan) plan = policy_decide(&host, vms, N, &cfg, now);
        for (int i = 0; i < N; i++)
            vms[i].memory = plan->memory[i];
        for (guint k = 0; k < plan->actions->len; k++) {
            const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, k);
            int dir = a->kind == POLICY_ACTION_INFLATE ? -1 : 1;

            if (g_test_verbose())
                g_printerr("t=%3d s host avail %5" G_GUINT64_FORMAT " MiB: %s\n", step,
                           host.mem_available_kib / MIB, a->reason);
            if (last_dir[a->vm] != 0 && dir != last_dir[a->vm])
                flips[a->vm]++;
            last_dir[a->vm] = dir;
            balloon[a->vm] = a->target_kib; /* lands before the next second */
            /* never squeezed under its use + headroom */
            g_assert_cmpuint(a->target_kib - 50 * MIB, >=,
                             used[a->vm] + policy_headroom_kib(a->target_kib - 50 * MIB));
        }
    }
    for (int i = 0; i < N; i++) {
        g_assert_cmpint(flips[i], <=, 1);          /* taken, then given back: once */
        g_assert_cmpuint(balloon[i], ==, 5 * GIB); /* all given back */
    }
}

int main(int argc, char **argv)
{
    static const ReplayCase cases[] = {
        {"100ms", 100 * MS, FALSE, 300 * MS, 10 * MIB, 600 * MIB},
        {"100ms-libvirt-lag", 100 * MS, TRUE, 300 * MS, 10 * MIB, 600 * MIB},
        {"200ms-libvirt-lag", 200 * MS, TRUE, 300 * MS, 10 * MIB, 600 * MIB},
        {"100ms-slow-balloon", 100 * MS, TRUE, 600 * MS, 10 * MIB, 600 * MIB},
        {"100ms-small", 100 * MS, TRUE, 300 * MS, 10 * MIB, 200 * MIB},
    };

    g_test_init(&argc, &argv, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/policy/replay/growth-100MiBps/%s", cases[i].name);

        g_test_add_data_func(path, &cases[i], replay_growth);
    }
    g_test_add_func("/policy/replay/reclaim-give-back", replay_reclaim);
    return g_test_run();
}
