/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the balloon policy: every rule and its boundaries, with
 * made-up hosts and VMs (the policy is pure, so no fixture is needed).
 */
#include "policy-fixture.h"

#include <math.h>
#include <string.h>

/* g_assert_nonnull() may return (g_test_set_nonfatal_assertions()), so GCC
 * sees a dereference after it as possibly NULL. The tests run with fatal
 * assertions. */
#pragma GCC diagnostic ignored "-Wnull-dereference"

#define NAMES 64

static char names[NAMES][16];

/* A host short of its reserve (5 % of MemTotal) by `short_kib`: 24 GiB of
 * RAM, or 400 GiB when the shortfall is bigger than a 1.2 GiB reserve. */
static PolicyHost host_short(guint64 short_kib)
{
    PolicyHost h = host_ok();
    guint64 reserve;

    if (short_kib >= GIB)
        h.mem_total_kib = 400 * GIB;
    reserve = (guint64)((double)h.mem_total_kib * 0.05);
    g_assert_cmpuint(short_kib, <, reserve);
    h.mem_available_kib = reserve - short_kib;
    return h;
}

/* An AUTO VM with a fresh agent report: the balloon at `actual`, MemTotal
 * `actual - 50 MiB`, MemAvailable `avail`, no previous report, PSI zero. */
static PolicyVm vm_agent(gsize i, guint64 max, guint64 actual, guint64 avail)
{
    PolicyVm vm = {0};

    g_assert_cmpuint(i, <, NAMES);
    g_snprintf(names[i], sizeof(names[i]), "vm%zu", i);
    vm.name = names[i];
    vm.mode = POLICY_MODE_AUTO;
    vm.max_kib = max;
    vm.actual_kib = actual;
    vm.agent_connected = TRUE;
    vm.has_report = TRUE;
    vm.report_at_us = NOW - 100 * MS;
    vm.report.seq = 100;
    vm.report.uptime_ms = 600000;
    vm.report.mem.total_kib = actual - 50 * MIB;
    vm.report.mem.available_kib = avail;
    vm.report.mem.free_kib = avail / 2;
    vm.report.has_psi = TRUE;
    return vm;
}

/* Give the VM a previous report `dt_ms` earlier with MemAvailable `prev_avail`
 * (same MemTotal), seq and uptime consistent. */
static void with_prev(PolicyVm *vm, guint64 prev_avail, gint64 dt_ms)
{
    vm->has_prev_report = TRUE;
    vm->prev_report = vm->report;
    vm->prev_report.seq = vm->report.seq - 1;
    vm->prev_report.uptime_ms = vm->report.uptime_ms - (guint64)dt_ms;
    vm->prev_report.mem.available_kib = prev_avail;
    vm->prev_report_at_us = vm->report_at_us - dt_ms * MS;
}

static const PolicyAction *find_action(const PolicyPlan *plan, gsize vm)
{
    for (guint i = 0; i < plan->actions->len; i++) {
        const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, i);

        if (a->vm == vm)
            return a;
    }
    return NULL;
}

static gboolean has_note(const PolicyPlan *plan, const char *needle)
{
    if (g_test_verbose()) {
        for (guint i = 0; i < plan->notes->len; i++)
            g_printerr("note: %s\n", (char *)g_ptr_array_index(plan->notes, i));
        for (guint i = 0; i < plan->actions->len; i++)
            g_printerr("action: %s\n", g_array_index(plan->actions, PolicyAction, i).reason);
    }
    for (guint i = 0; i < plan->notes->len; i++) {
        if (strstr(g_ptr_array_index(plan->notes, i), needle) != NULL)
            return TRUE;
    }
    return FALSE;
}

/* Every plan must keep these, whatever the input. */
static void check_plan(const PolicyPlan *plan, const PolicyVm *vms, gsize n, const PolicyConfig *c)
{
    g_assert_cmpuint(plan->n_vms, ==, n);
    for (guint i = 0; i < plan->actions->len; i++) {
        const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, i);
        const PolicyVm *vm = &vms[a->vm];
        /* sizes beyond 1 EiB are clamped to it */
        guint64 max = MIN(vm->max_kib, (guint64)1 << 50);
        guint64 floor = MIN(MAX(vm->floor_kib, c->min_floor_kib), max);

        g_assert_cmpuint(a->vm, <, n);
        g_assert_cmpint(vm->mode, !=, POLICY_MODE_OFF);
        g_assert_cmpuint(a->target_kib, <=, vm->max_kib);
        g_assert_cmpuint(a->target_kib, >=, floor);
        g_assert_true(a->target_kib % MIB == 0 || a->target_kib == max || a->target_kib == floor);
        g_assert_nonnull(strstr(a->reason, vm->name));
        g_assert_nonnull(strchr(a->reason, '('));
        for (guint j = i + 1; j < plan->actions->len; j++)
            g_assert_cmpuint(g_array_index(plan->actions, PolicyAction, j).vm, !=, a->vm);
    }
}

static PolicyPlan *decide(const PolicyHost *h, const PolicyVm *vms, gsize n, const PolicyConfig *c,
                          gint64 now)
{
    PolicyPlan *plan = policy_decide(h, vms, n, c, now);

    check_plan(plan, vms, n, c);
    return plan;
}

/* ---- headroom, sizes ----------------------------------------------------------------------- */

static void test_headroom_bands(void)
{
    static const struct {
        guint64 total, want;
    } t[] = {
        {0, 8 * MIB},
        {64 * MIB, 40 * MIB},
        {128 * MIB - 2, 8 * MIB + 64 * MIB - 1},
        {128 * MIB, 72 * MIB},
        {256 * MIB, 104 * MIB},
        {512 * MIB - 4, 168 * MIB - 1},
        {512 * MIB, 168 * MIB},
        {1 * GIB, 232 * MIB},
        {2 * GIB - 8, 360 * MIB - 1},
        {2 * GIB, 360 * MIB},
        {8 * GIB - 16, 744 * MIB - 1},
        {8 * GIB, 744 * MIB},
        {32 * GIB, 1512 * MIB},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++)
        g_assert_cmpuint(policy_headroom_kib(t[i].total), ==, t[i].want);
    /* monotone: a bigger guest never needs less */
    for (guint64 k = 0; k < 10 * GIB; k += 4 * MIB + 3)
        g_assert_cmpuint(policy_headroom_kib(k), <=, policy_headroom_kib(k + 4 * MIB));
}

/* ---- configuration ------------------------------------------------------------------------- */

static void test_config_defaults(void)
{
    PolicyConfig c = cfg();

    g_assert_cmpuint(c.default_shares, ==, 1000);
    g_assert_cmpuint(c.min_floor_kib, ==, 256 * MIB);
    g_assert_cmpuint(c.min_step_kib, ==, 16 * MIB);
    g_assert_cmpuint(c.stale_after_ms, ==, 3000);
    g_assert_true(c.grow_to_headroom);
    g_assert_cmpfloat(c.psi_some_pct, ==, 1.0);
    g_assert_cmpfloat(c.psi_full_pct, ==, 0.5);
    g_assert_cmpuint(c.lead_time_ms, ==, 2000);
    g_assert_cmpuint(c.deflate_margin_kib, ==, 32 * MIB);
    g_assert_cmpuint(c.host_reserve_kib, ==, GIB);
    g_assert_cmpfloat(c.idle_tax_pct, ==, 75);
    g_assert_cmpint(c.agentless, ==, POLICY_AGENTLESS_LIBVIRT);
    g_assert_cmpuint(c.balloon_settle_ms, ==, 5000);
    g_assert_cmpuint(c.balloon_backoff_ms, ==, 60000);
}

/* ---- guest pressure ------------------------------------------------------------------------ */

/* A 4 GiB VM with plenty available (2 GiB) and the given PSI. */
typedef struct {
    const char *name;
    double some, full;
    gboolean deflate;
} PsiCase;

static void test_psi_thresholds(void)
{
    static const PsiCase t[] = {
        {"quiet", 0, 0, FALSE},          {"some below", 0.99, 0, FALSE},
        {"some at", 1.0, 0, FALSE},      {"some above", 1.01, 0, TRUE},
        {"some high", 42.0, 0, TRUE},    {"full below", 0.99, 0.49, FALSE},
        {"full above", 0.5, 0.51, TRUE}, {"both", 5, 2, TRUE},
    };
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, 2 * GIB);

        vm.report.psi.some.avg10 = t[i].some;
        vm.report.psi.full.avg10 = t[i].full;
        g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
        const PolicyAction *a = find_action(plan, 0);

        if (g_test_verbose())
            g_printerr("%s\n", t[i].name);
        g_assert_cmpint(a != NULL, ==, t[i].deflate);
        if (a != NULL) {
            g_assert_cmpint(a->kind, ==, POLICY_ACTION_DEFLATE);
            g_assert_cmpint(a->code, ==, POLICY_REASON_PRESSURE);
            /* PSI alone says "more", not how much: the pressure step */
            g_assert_cmpuint(a->target_kib, ==, 4 * GIB + c.pressure_step_kib);
            g_assert_nonnull(strstr(a->reason, "vm0: +128 MiB"));
            g_assert_nonnull(strstr(a->reason, "psi"));
            g_assert_cmpint(plan->memory[0].last_pressure_us, ==, NOW);
            g_assert_cmpuint(plan->memory[0].last_target_kib, ==, a->target_kib);
        } else {
            g_assert_cmpint(plan->memory[0].last_pressure_us, ==, 0);
        }
    }
}

/* avg10 decays over 10 s: with a previous report showing no new stall, the
 * old avg10 is not need. */
static void test_psi_stall_stopped(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, 2 * GIB);

    vm.report.psi.some.avg10 = 8.0;
    vm.report.psi.some.total_us = 5000000;
    with_prev(&vm, 2 * GIB, 100);
    vm.prev_report.psi.some.total_us = 5000000 - 500; /* 0.5 % of 100 ms */
    g_autoptr(PolicyPlan) quiet = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(quiet, 0));

    vm.prev_report.psi.some.total_us = 5000000 - 20000; /* 20 % */
    g_autoptr(PolicyPlan) stalling = decide(&h, &vm, 1, &c, NOW);
    g_assert_nonnull(find_action(stalling, 0));
}

/* Headroom: 4 GiB - 50 MiB of MemTotal -> 232 + 4046/16 = 484.875 MiB. */
static void test_low_available(void)
{
    static const struct {
        guint64 avail;
        gboolean grow, deflate;
    } t[] = {
        {485 * MIB, TRUE, FALSE},  {484 * MIB, TRUE, TRUE}, {100 * MIB, TRUE, TRUE},
        {100 * MIB, FALSE, FALSE}, {0, FALSE, FALSE},
    };
    PolicyHost h = host_ok();

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        PolicyConfig c = cfg();
        PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, t[i].avail);
        guint64 headroom = policy_headroom_kib(4 * GIB - 50 * MIB);

        c.grow_to_headroom = t[i].grow;
        g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
        const PolicyAction *a = find_action(plan, 0);

        if (a != NULL && g_test_verbose())
            g_printerr("%s\n", a->reason);
        g_assert_cmpint(a != NULL, ==, t[i].deflate);
        if (a != NULL) {
            /* shortfall + margin, rounded up to a MiB */
            guint64 want = 4 * GIB + headroom - t[i].avail + c.deflate_margin_kib;

            g_assert_cmpuint(a->target_kib, ==, (want + MIB - 1) / MIB * MIB);
            g_assert_nonnull(strstr(a->reason, "MemAvailable"));
            g_assert_nonnull(strstr(a->reason, "< headroom 485 MiB"));
        }
    }
}

/* Falling MemAvailable: the step covers what the lead time will eat. */
static void test_falling_available(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    guint64 headroom = policy_headroom_kib(4 * GIB - 50 * MIB);
    /* 1 GiB available, falling 100 MiB in 100 ms = 1000 MiB/s: in 2 s it would be gone */
    PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, GIB);

    with_prev(&vm, GIB + 100 * MIB, 100);
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    const PolicyAction *a = find_action(plan, 0);

    g_assert_nonnull(a);
    g_assert_nonnull(strstr(a->reason, "falling 1000 MiB/s"));
    guint64 want = 4 * GIB + headroom + 2000 * MIB + c.deflate_margin_kib - GIB;
    g_assert_cmpuint(a->target_kib, ==, (want + MIB - 1) / MIB * MIB);

    /* the same fall, slow enough not to reach headroom within the lead time */
    vm = vm_agent(0, 8 * GIB, 4 * GIB, GIB);
    with_prev(&vm, GIB + 10 * MIB, 100); /* 100 MiB/s: 200 MiB in 2 s, 1024-200 > 485 */
    g_autoptr(PolicyPlan) slow = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(slow, 0));

    /* a fall that is only the balloon giving memory back is no fall: MemTotal rose too */
    vm = vm_agent(0, 8 * GIB, 4 * GIB, GIB);
    with_prev(&vm, GIB + 300 * MIB, 100);
    vm.prev_report.mem.total_kib = vm.report.mem.total_kib + 300 * MIB;
    g_autoptr(PolicyPlan) balloon = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(balloon, 0));
}

/* Reports that arrive bunched up still give a rate: the guest's clock says
 * when they were taken. Without a usable interval there is no rate. */
static void test_rate_interval(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, GIB);

    with_prev(&vm, GIB + 100 * MIB, 100);
    vm.prev_report_at_us = vm.report_at_us - 2 * MS; /* arrived 2 ms apart */
    g_autoptr(PolicyPlan) bunched = decide(&h, &vm, 1, &c, NOW);
    g_assert_nonnull(find_action(bunched, 0));
    g_assert_nonnull(strstr(find_action(bunched, 0)->reason, "falling 1000 MiB/s"));

    /* taken 10 ms apart by the guest's clock too: under rate_min_interval_ms */
    vm.prev_report.uptime_ms = vm.report.uptime_ms - 10;
    g_autoptr(PolicyPlan) close = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(close, 0));

    /* the previous report arrived longer ago than stale_after_ms */
    with_prev(&vm, GIB + 100 * MIB, 100);
    vm.prev_report_at_us = vm.report_at_us - 4 * SEC;
    g_autoptr(PolicyPlan) old = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(old, 0));
}

static void test_deflate_capped_at_max(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 1 * GIB, 900 * MIB, 10 * MIB);

    vm.report.psi.some.avg10 = 50;
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    const PolicyAction *a = find_action(plan, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, ==, GIB);

    /* already at max: nothing to do, but the pressure is remembered */
    vm = vm_agent(0, 1 * GIB, 1 * GIB, 10 * MIB);
    g_autoptr(PolicyPlan) at_max = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(at_max, 0));
    g_assert_cmpint(at_max->memory[0].last_pressure_us, ==, NOW);
}

/* A raise already on its way is not lowered, and small increments are churn. */
static void test_deflate_ratchet_and_min_step(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, 2 * GIB);

    vm.report.psi.some.avg10 = 5;
    /* asked for 5 GiB a moment ago: 4 GiB + 128 MiB is less */
    vm.memory.last_target_kib = 5 * GIB;
    vm.memory.target_set_us = NOW - 200 * MS;
    vm.memory.actual_moved_us = NOW - 200 * MS;
    vm.memory.seen_actual_kib = 4 * GIB;
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(plan, 0));
    g_assert_cmpuint(plan->memory[0].last_target_kib, ==, 5 * GIB);

    /* 4 GiB + 128 MiB wanted, 4 GiB + 120 MiB asked: 8 MiB more is not worth it */
    vm.memory.last_target_kib = 4 * GIB + 120 * MIB;
    g_autoptr(PolicyPlan) small = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(small, 0));

    /* 4 GiB + 112 MiB asked: 16 MiB more is */
    vm.memory.last_target_kib = 4 * GIB + 112 * MIB;
    g_autoptr(PolicyPlan) step = decide(&h, &vm, 1, &c, NOW);
    const PolicyAction *a = find_action(step, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, ==, 4 * GIB + 128 * MIB);
    g_assert_nonnull(strstr(a->reason, "+16 MiB"));
}

typedef struct {
    const char *name;
    BlVmstatCounter counter;
    guint64 delta; /* over 1 s */
    gboolean deflate;
} FaultCase;

static void test_fault_rates(void)
{
    static const FaultCase t[] = {
        {"majfault below", BL_VMSTAT_PGMAJFAULT, 200, FALSE},
        {"majfault above", BL_VMSTAT_PGMAJFAULT, 201, TRUE},
        {"refault anon below", BL_VMSTAT_WORKINGSET_REFAULT_ANON, 2000, FALSE},
        {"refault anon above", BL_VMSTAT_WORKINGSET_REFAULT_ANON, 2001, TRUE},
        {"refault file above", BL_VMSTAT_WORKINGSET_REFAULT_FILE, 2500, TRUE},
        {"swapin below", BL_VMSTAT_PSWPIN, 100, FALSE},
        {"swapin above", BL_VMSTAT_PSWPIN, 101, TRUE},
        {"swapout is no need", BL_VMSTAT_PSWPOUT, 100000, FALSE},
        {"oom kill", BL_VMSTAT_OOM_KILL, 1, TRUE},
    };
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, 2 * GIB);

        vm.report.vmstat.present = (1u << BL_VMSTAT_N_COUNTERS) - 1;
        for (int k = 0; k < BL_VMSTAT_N_COUNTERS; k++)
            vm.report.vmstat.value[k] = 1000000;
        with_prev(&vm, 2 * GIB, 1000);
        vm.report.vmstat.value[t[i].counter] += t[i].delta;
        g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
        const PolicyAction *a = find_action(plan, 0);

        if (g_test_verbose())
            g_printerr("%s\n", t[i].name);
        g_assert_cmpint(a != NULL, ==, t[i].deflate);
        if (a != NULL && t[i].counter == BL_VMSTAT_OOM_KILL) {
            g_assert_cmpuint(a->target_kib, ==, 4 * GIB + c.oom_step_kib);
            g_assert_nonnull(strstr(a->reason, "OOM"));
        } else if (a != NULL) {
            g_assert_cmpuint(a->target_kib, ==, 4 * GIB + c.pressure_step_kib);
        }
    }
}

/* Counters that go backwards are a reset (reboot) or a lie, never a huge rate. */
static void test_counter_reset(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, 2 * GIB);

    vm.report.vmstat.present = 1u << BL_VMSTAT_PGMAJFAULT | 1u << BL_VMSTAT_OOM_KILL;
    vm.report.vmstat.value[BL_VMSTAT_PGMAJFAULT] = 10;
    with_prev(&vm, 2 * GIB, 1000);
    vm.prev_report.vmstat.value[BL_VMSTAT_PGMAJFAULT] = 5000000;
    vm.prev_report.vmstat.value[BL_VMSTAT_OOM_KILL] = 3;

    /* rebooted: uptime and seq start again; not a lie */
    vm.report.uptime_ms = 5000;
    vm.report.seq = 3;
    g_autoptr(PolicyPlan) reboot = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(reboot, 0));
    g_assert_cmpuint(reboot->memory[0].anomalies, ==, 0);

    /* same boot, counter fell: a lie, counted and noted, still no rate */
    vm = vm_agent(0, 8 * GIB, 4 * GIB, 2 * GIB);
    vm.report.vmstat.present = 1u << BL_VMSTAT_PGMAJFAULT;
    vm.report.vmstat.value[BL_VMSTAT_PGMAJFAULT] = 10;
    with_prev(&vm, 2 * GIB, 1000);
    vm.prev_report.vmstat.value[BL_VMSTAT_PGMAJFAULT] = 5000000;
    g_autoptr(PolicyPlan) lie = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(lie, 0));
    g_assert_cmpuint(lie->memory[0].anomalies, ==, 1);
    g_assert_true(has_note(lie, "counter went backwards"));
}

/* ---- lies ---------------------------------------------------------------------------------- */

static void test_lies_clamped_and_counted(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 2 * GIB, 2 * GIB, 2 * GIB);

    /* MemTotal 64 GiB in a 2 GiB VM, MemAvailable above MemTotal */
    vm.report.mem.total_kib = 64 * GIB;
    vm.report.mem.available_kib = 80 * GIB;
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    g_assert_cmpuint(plan->memory[0].anomalies, ==, 1);
    g_assert_true(has_note(plan, "implausible"));
    g_assert_true(has_note(plan, "MemTotal 65536 MiB > max 2048 MiB"));

    /* the same report again is not counted twice */
    vm.memory = plan->memory[0];
    g_autoptr(PolicyPlan) again = decide(&h, &vm, 1, &c, NOW + 50 * MS);
    g_assert_cmpuint(again->memory[0].anomalies, ==, 1);

    /* a guest lying in every report: counted each time, noted at 1, 2, 4, 8, ... */
    guint n_notes = 0;
    vm.memory = again->memory[0];
    for (guint k = 2; k <= 20; k++) {
        vm.report.seq++;
        g_autoptr(PolicyPlan) p = decide(&h, &vm, 1, &c, NOW + k * 100 * MS);
        vm.memory = p->memory[0];
        vm.report_at_us = NOW + k * 100 * MS;
        g_assert_cmpuint(p->memory[0].anomalies, ==, k);
        n_notes += has_note(p, "implausible");
    }
    g_assert_cmpuint(n_notes, ==, 4); /* 2, 4, 8, 16 */

    /* seq going backwards within a boot */
    vm = vm_agent(0, 2 * GIB, 2 * GIB, GIB);
    with_prev(&vm, GIB, 100);
    vm.prev_report.seq = vm.report.seq + 5;
    g_autoptr(PolicyPlan) seq = decide(&h, &vm, 1, &c, NOW);
    g_assert_cmpuint(seq->memory[0].anomalies, ==, 1);
    g_assert_true(has_note(seq, "seq went backwards"));

    /* PSI out of range (the protocol rejects it; the policy does not trust it either) */
    vm = vm_agent(0, 2 * GIB, 2 * GIB, GIB);
    vm.report.psi.some.avg10 = NAN;
    vm.report.psi.full.avg10 = 1e9;
    g_autoptr(PolicyPlan) psi = decide(&h, &vm, 1, &c, NOW);
    g_assert_cmpuint(psi->memory[0].anomalies, ==, 1);
    const PolicyAction *a = find_action(psi, 0);
    if (a != NULL)
        g_assert_cmpuint(a->target_kib, <=, 2 * GIB);
}

/* A guest claiming pressure gets at most its max, and its raise is funded
 * only by VMs with no more shares than itself. */
static void test_lying_guest_cannot_take_from_bigger_shares(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vms[3];

    h.mem_available_kib = (guint64)(24.0 * GIB * 0.05) + 100 * MIB; /* just above reserve */
    vms[0] = vm_agent(0, 4 * GIB, 2 * GIB, 100 * MIB);              /* the liar: shares 100 */
    vms[0].shares = 100;
    vms[0].report.psi.some.avg10 = 99;
    vms[0].report.psi.full.avg10 = 99;
    vms[1] = vm_agent(1, 8 * GIB, 8 * GIB, 6 * GIB); /* important, mostly idle */
    vms[1].shares = 10000;
    vms[2] = vm_agent(2, 8 * GIB, 8 * GIB, 6 * GIB); /* as unimportant as the liar */
    vms[2].shares = 100;
    g_autoptr(PolicyPlan) plan = decide(&h, vms, 3, &c, NOW);
    const PolicyAction *liar = find_action(plan, 0);

    g_assert_nonnull(liar);
    g_assert_cmpint(liar->kind, ==, POLICY_ACTION_DEFLATE);
    g_assert_cmpuint(liar->target_kib, <=, 4 * GIB);
    g_assert_null(find_action(plan, 1));
    const PolicyAction *payer = find_action(plan, 2);
    g_assert_nonnull(payer);
    g_assert_cmpint(payer->kind, ==, POLICY_ACTION_INFLATE);
    g_assert_nonnull(strstr(payer->reason, "after giving vm0"));

    /* without an equal-or-lower-shares VM to pay, the host stays short: said so */
    vms[2].shares = 5000;
    g_autoptr(PolicyPlan) unmet = decide(&h, vms, 3, &c, NOW);
    g_assert_null(find_action(unmet, 1));
    g_assert_null(find_action(unmet, 2));
    g_assert_true(has_note(unmet, "host reserve unmet"));
}

/* ---- host reclaim -------------------------------------------------------------------------- */

static void test_reclaim_only_when_host_needs(void)
{
    PolicyConfig c = cfg();
    guint64 reserve = (guint64)(24.0 * GIB * 0.05);
    static const struct {
        gint64 below; /* reserve - available, KiB; negative: above */
        gboolean reclaim;
    } t[] = {{-(gint64)GIB, FALSE}, {-1, FALSE}, {0, FALSE}, {1, TRUE}, {(gint64)GIB, TRUE}};

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        PolicyHost h = host_ok();
        PolicyVm vm = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);

        h.mem_available_kib = (guint64)((gint64)reserve - t[i].below);
        g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
        const PolicyAction *a = find_action(plan, 0);

        g_assert_cmpint(a != NULL, ==, t[i].reclaim);
        if (a != NULL) {
            g_assert_cmpint(a->kind, ==, POLICY_ACTION_INFLATE);
            g_assert_cmpint(a->code, ==, POLICY_REASON_HOST_SHORT);
            /* reserve deficit + hysteresis, at most one reclaim step */
            guint64 want = MIN((guint64)t[i].below + c.host_hysteresis_kib, c.reclaim_step_kib);
            g_assert_cmpuint(8 * GIB - a->target_kib, <=, want);
            g_assert_cmpuint(8 * GIB - a->target_kib, >=, want - MIB);
            g_assert_nonnull(strstr(a->reason, "host available"));
            g_assert_nonnull(strstr(a->reason, "idle 6144 MiB, shares 1000"));
            g_assert_cmpuint(plan->memory[0].reclaimed_from_kib, ==, 8 * GIB);
            g_assert_cmpint(plan->memory[0].last_inflate_us, ==, NOW);
        }
    }
}

static void test_reserve_pct_and_host_psi(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = {.mem_total_kib = 100 * GIB, .mem_available_kib = 4 * GIB};
    PolicyVm vm = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);

    /* 5 % of 100 GiB = 5 GiB > 1 GiB: 4 GiB available is short */
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    g_assert_nonnull(find_action(plan, 0));
    g_assert_nonnull(strstr(find_action(plan, 0)->reason, "reserve 5120 MiB"));

    /* plenty available but host PSI above threshold: one host PSI step */
    h.mem_available_kib = 50 * GIB;
    h.has_psi = TRUE;
    h.psi.some.avg10 = 5.01;
    g_autoptr(PolicyPlan) psi = decide(&h, &vm, 1, &c, NOW);
    const PolicyAction *a = find_action(psi, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(8 * GIB - a->target_kib, ==, c.host_psi_step_kib);
    g_assert_nonnull(strstr(a->reason, "host psi some avg10 5.0% > 5.0%"));

    h.psi.some.avg10 = 4.99;
    g_autoptr(PolicyPlan) calm = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(calm, 0));
}

/* Reclaim never goes below the floor, nor below what the guest uses + headroom. */
static void test_reclaim_floors(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(GIB);
    PolicyVm vms[2];

    /* floor 8 GiB - 100 MiB: at most 100 MiB from it */
    vms[0] = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    vms[0].floor_kib = 8 * GIB - 100 * MIB;
    /* idle memory minus headroom + margin: 2 GiB available, headroom 4 GiB... */
    vms[1] = vm_agent(1, 8 * GIB, 8 * GIB, 900 * MIB);
    g_autoptr(PolicyPlan) plan = decide(&h, vms, 2, &c, NOW);
    const PolicyAction *a0 = find_action(plan, 0), *a1 = find_action(plan, 1);

    g_assert_nonnull(a0);
    g_assert_cmpuint(a0->target_kib, ==, 8 * GIB - 100 * MIB);
    /* vm1: 900 MiB available, headroom 232 + 8142/16 = 740.9 MiB, margin 32 MiB */
    g_assert_nonnull(a1);
    guint64 headroom = policy_headroom_kib(8 * GIB - 50 * MIB);
    g_assert_cmpuint(8 * GIB - a1->target_kib, <=, 900 * MIB - headroom - c.deflate_margin_kib);
    g_assert_true(has_note(plan, "host reserve unmet"));

    /* every VM at its floor: nothing taken, the shortfall said in MiB */
    vms[0].floor_kib = 8 * GIB;
    vms[1].floor_kib = 8 * GIB;
    g_autoptr(PolicyPlan) floors = decide(&h, vms, 2, &c, NOW);
    g_assert_cmpuint(floors->actions->len, ==, 0);
    g_autofree char *want = g_strdup_printf("host reserve unmet: %" G_GUINT64_FORMAT " MiB short",
                                            (GIB + c.host_hysteresis_kib) / MIB);
    g_assert_true(has_note(floors, want));
    g_assert_true(has_note(floors, "2 VM(s) at their floor"));

    /* the global min_floor applies to VMs without a floor of their own */
    PolicyVm small = vm_agent(0, 2 * GIB, 300 * MIB, 250 * MIB);
    small.report.mem.total_kib = 300 * MIB;
    g_autoptr(PolicyPlan) minf = decide(&h, &small, 1, &c, NOW);
    const PolicyAction *s = find_action(minf, 0);
    if (s != NULL)
        g_assert_cmpuint(s->target_kib, >=, c.min_floor_kib);
}

static void test_shares_order(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(0); /* need = hysteresis = 256 MiB: one step */
    PolicyVm vms[3];

    for (gsize i = 0; i < 3; i++)
        vms[i] = vm_agent(i, 8 * GIB, 8 * GIB, 4 * GIB);
    h.mem_available_kib -= 1; /* just below */
    vms[0].shares = 2000;
    vms[1].shares = 500;
    vms[2].shares = 0; /* default 1000 */
    g_autoptr(PolicyPlan) plan = decide(&h, vms, 3, &c, NOW);
    g_assert_cmpuint(plan->actions->len, ==, 1);
    g_assert_nonnull(find_action(plan, 1));
    g_assert_nonnull(strstr(find_action(plan, 1)->reason, "shares 500"));

    /* a bigger need: the lowest shares pays first, then the next */
    PolicyHost big = host_short(200 * MIB); /* 456 MiB: two VMs */
    g_autoptr(PolicyPlan) more = decide(&big, vms, 3, &c, NOW);
    g_assert_nonnull(find_action(more, 1));
    g_assert_nonnull(find_action(more, 2));
    g_assert_null(find_action(more, 0));
    g_assert_nonnull(strstr(find_action(more, 2)->reason, "shares 1000"));
}

/* The idle tax: an idle page costs 4 active ones, so a smaller but idle VM pays
 * before a larger busy one; with no tax the larger one would. */
static void test_idle_tax(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(0);
    PolicyVm vms[2];

    h.mem_available_kib -= 1;
    vms[0] = vm_agent(0, 16 * GIB, 12 * GIB, 2 * GIB); /* big, busy */
    vms[1] = vm_agent(1, 16 * GIB, 6 * GIB, 4 * GIB);  /* smaller, mostly idle */
    g_autoptr(PolicyPlan) taxed = decide(&h, vms, 2, &c, NOW);
    g_assert_cmpuint(taxed->actions->len, ==, 1);
    g_assert_nonnull(find_action(taxed, 1));

    c.idle_tax_pct = 0;
    g_autoptr(PolicyPlan) flat = decide(&h, vms, 2, &c, NOW);
    g_assert_cmpuint(flat->actions->len, ==, 1);
    g_assert_nonnull(find_action(flat, 0));
}

static void test_cooldown_and_interval(void)
{
    static const struct {
        gint64 pressure_ago_ms, inflate_ago_ms;
        gboolean reclaim;
    } t[] = {
        {0, 0, TRUE},     {30000, 0, FALSE}, {59999, 0, FALSE}, {60000, 0, TRUE},
        {0, 2000, FALSE}, {0, 4999, FALSE},  {0, 5000, TRUE},   {61000, 6000, TRUE},
    };
    PolicyConfig c = cfg();
    PolicyHost h = host_short(GIB);

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        PolicyVm vm = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);

        if (t[i].pressure_ago_ms)
            vm.memory.last_pressure_us = NOW - t[i].pressure_ago_ms * MS;
        if (t[i].inflate_ago_ms) {
            vm.memory.last_inflate_us = NOW - t[i].inflate_ago_ms * MS;
            vm.memory.last_target_kib = 8 * GIB;
        }
        g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);

        g_assert_cmpint(find_action(plan, 0) != NULL, ==, t[i].reclaim);
        if (!t[i].reclaim)
            g_assert_true(has_note(plan, "1 protected"));
    }
}

/* Reclaim takes what the host needs, not more. */
static void test_reclaim_only_need(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(64 * MIB);
    PolicyVm vms[4];
    guint64 taken = 0;

    for (gsize i = 0; i < 4; i++)
        vms[i] = vm_agent(i, 8 * GIB, 8 * GIB, 6 * GIB);
    vms[0].shares = 10; /* cheapest: pays the whole 320 MiB in two VMs at most */
    g_autoptr(PolicyPlan) plan = decide(&h, vms, 4, &c, NOW);
    for (guint i = 0; i < plan->actions->len; i++)
        taken += 8 * GIB - g_array_index(plan->actions, PolicyAction, i).target_kib;
    g_assert_cmpuint(taken, >=, 64 * MIB + c.host_hysteresis_kib - MIB * plan->actions->len);
    g_assert_cmpuint(taken, <=, 64 * MIB + c.host_hysteresis_kib);
    g_assert_cmpuint(plan->actions->len, ==, 2);
    g_assert_cmpuint(8 * GIB - find_action(plan, 0)->target_kib, ==, c.reclaim_step_kib);
}

static void test_many_vms(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(8 * GIB);
    PolicyVm vms[50];
    guint64 taken = 0;

    for (gsize i = 0; i < 50; i++) {
        vms[i] = vm_agent(i, 4 * GIB, 2 * GIB + (i % 7) * 128 * MIB, (i % 5) * 256 * MIB + MIB);
        vms[i].shares = 100 + 37 * (guint32)i;
        vms[i].floor_kib = (i % 3) * 512 * MIB;
        if (i % 11 == 0)
            vms[i].report.psi.some.avg10 = 3;
        if (i % 13 == 0)
            vms[i].mode = POLICY_MODE_OFF;
    }
    g_autoptr(PolicyPlan) plan = decide(&h, vms, 50, &c, NOW);
    g_assert_cmpuint(plan->actions->len, >, 10);
    for (guint i = 0; i < plan->actions->len; i++) {
        const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, i);
        const PolicyVm *vm = &vms[a->vm];

        if (a->kind == POLICY_ACTION_INFLATE) {
            g_assert_cmpuint(vm->actual_kib - a->target_kib, <=, c.reclaim_step_kib);
            g_assert_cmpfloat(vm->report.psi.some.avg10, ==, 0);
            taken += vm->actual_kib - a->target_kib;
        } else {
            /* raised only on evidence: PSI, or MemAvailable under headroom */
            g_assert_true(a->vm % 11 == 0 || vm->report.mem.available_kib <
                                                 policy_headroom_kib(vm->report.mem.total_kib));
        }
        /* deflates come first */
        if (i > 0 && a->kind == POLICY_ACTION_DEFLATE)
            g_assert_cmpint(g_array_index(plan->actions, PolicyAction, i - 1).kind, ==,
                            POLICY_ACTION_DEFLATE);
    }
    g_assert_cmpuint(taken, >, 0);
    /* either the need is met or the plan says how short it is */
    if (taken < 8 * GIB + c.host_hysteresis_kib)
        g_assert_true(has_note(plan, "host reserve unmet"));
}

/* Balloons on their way count: no second reclaim (or give-back) before the
 * first has landed, however often the broker calls. */
static void test_pending_moves(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(100 * MIB); /* need 356 MiB */
    PolicyVm vms[2];

    vms[0] = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    vms[0].memory.last_target_kib = 8 * GIB - 512 * MIB; /* asked 100 ms ago */
    vms[0].memory.target_set_us = NOW - 100 * MS;
    vms[0].memory.seen_actual_kib = 8 * GIB;
    vms[0].memory.actual_moved_us = NOW - 100 * MS;
    vms[0].memory.last_inflate_us = NOW - 100 * MS;
    vms[1] = vm_agent(1, 8 * GIB, 8 * GIB, 6 * GIB);
    g_autoptr(PolicyPlan) plan = decide(&h, vms, 2, &c, NOW);
    g_assert_cmpuint(plan->actions->len, ==, 0);

    /* 64 MiB on its way, 100 MiB short: still short by 36 MiB, so it fills to
     * reserve + hysteresis from the other VM: 292 MiB, one step of 256 */
    vms[0].memory.last_target_kib = 8 * GIB - 64 * MIB;
    g_autoptr(PolicyPlan) more = decide(&h, vms, 2, &c, NOW);
    g_assert_nonnull(find_action(more, 1));
    g_assert_null(find_action(more, 0));
    g_assert_cmpuint(8 * GIB - find_action(more, 1)->target_kib, ==, c.reclaim_step_kib);
    g_assert_nonnull(strstr(find_action(more, 1)->reason, "on their way"));

    /* give-back: a raise on its way spends the surplus */
    PolicyHost ok = host_ok();
    guint64 reserve = (guint64)(24.0 * GIB * 0.05);
    ok.mem_available_kib = reserve + 2 * c.host_hysteresis_kib + 300 * MIB;
    vms[0] = vm_agent(0, 8 * GIB, 4 * GIB, 3 * GIB);
    vms[0].memory.reclaimed_from_kib = 6 * GIB;
    vms[0].memory.last_target_kib = 4 * GIB + 256 * MIB; /* given 10 s ago, not landed */
    vms[0].memory.target_set_us = NOW - 10 * SEC;
    vms[0].memory.seen_actual_kib = 4 * GIB;
    vms[0].memory.actual_moved_us = NOW - 100 * MS;
    vms[1] = vm_agent(1, 8 * GIB, 4 * GIB, 3 * GIB);
    vms[1].memory.reclaimed_from_kib = 6 * GIB;
    g_autoptr(PolicyPlan) back = decide(&ok, vms, 2, &c, NOW);
    g_assert_null(find_action(back, 0));
    g_assert_nonnull(find_action(back, 1));
    g_assert_cmpuint(find_action(back, 1)->target_kib, ==, 4 * GIB + 44 * MIB);

    /* and a VM given memory less than a reclaim interval ago waits */
    vms[1].memory.target_set_us = NOW - 2 * SEC;
    vms[1].memory.last_target_kib = 4 * GIB;
    g_autoptr(PolicyPlan) wait = decide(&ok, vms, 2, &c, NOW);
    g_assert_null(find_action(wait, 1));
}

/* ---- give back ----------------------------------------------------------------------------- */

static void test_give_back(void)
{
    PolicyConfig c = cfg();
    guint64 reserve = (guint64)(24.0 * GIB * 0.05);
    static const struct {
        guint64 avail;
        guint64 from;
        guint64 give;
    } t[] = {
        {0, 6 * GIB, 1 * GIB},               /* 16 GiB free: a full step */
        {1, 4 * GIB + 100 * MIB, 100 * MIB}, /* what was taken, no more */
        {2, 4 * GIB + 10 * MIB, 0},          /* under min step: done */
    };
    PolicyHost h = host_ok();

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, 3 * GIB);

        vm.memory.reclaimed_from_kib = t[i].from;
        g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
        const PolicyAction *a = find_action(plan, 0);

        if (t[i].give == 0) {
            g_assert_null(a);
            g_assert_cmpuint(plan->memory[0].reclaimed_from_kib, ==, 0);
            continue;
        }
        g_assert_nonnull(a);
        g_assert_cmpint(a->kind, ==, POLICY_ACTION_DEFLATE);
        g_assert_cmpuint(a->target_kib - 4 * GIB, ==, MIN(t[i].give, c.giveback_step_kib));
        g_assert_nonnull(strstr(a->reason, "giving back"));
        g_assert_cmpint(a->code, ==, POLICY_REASON_GIVEBACK);
        g_assert_cmpstr(policy_reason_name(a->code), ==, "give-back");
        /* completed: forgotten */
        g_assert_cmpuint(plan->memory[0].reclaimed_from_kib, ==,
                         a->target_kib >= t[i].from ? 0 : t[i].from);
    }

    /* within the dead band (reserve .. reserve + 2 x hysteresis): nothing */
    PolicyVm vm = vm_agent(0, 8 * GIB, 4 * GIB, 3 * GIB);
    vm.memory.reclaimed_from_kib = 6 * GIB;
    h.mem_available_kib = reserve + 2 * c.host_hysteresis_kib;
    g_autoptr(PolicyPlan) band = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(band, 0));
    /* just above: only the surplus is given */
    h.mem_available_kib = reserve + 2 * c.host_hysteresis_kib + 40 * MIB;
    g_autoptr(PolicyPlan) some = decide(&h, &vm, 1, &c, NOW);
    g_assert_nonnull(find_action(some, 0));
    g_assert_cmpuint(find_action(some, 0)->target_kib, ==, 4 * GIB + 40 * MIB);
}

/* Reclaim, then the host recovers: memory goes back, no oscillation. */
static void test_reclaim_then_give_back_cycle(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(100 * MIB);
    PolicyVm vm = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    gint64 now = NOW;

    g_autoptr(PolicyPlan) p1 = decide(&h, &vm, 1, &c, now);
    const PolicyAction *a = find_action(p1, 0);
    g_assert_nonnull(a);
    guint64 taken = 8 * GIB - a->target_kib;
    vm.memory = p1->memory[0];
    vm.actual_kib = a->target_kib;
    vm.report.mem.total_kib -= taken;
    vm.report.mem.available_kib -= taken;
    h.mem_available_kib += taken; /* in the dead band now */

    now += 10 * SEC;
    vm.report_at_us = now - 100 * MS;
    g_autoptr(PolicyPlan) p2 = decide(&h, &vm, 1, &c, now);
    g_assert_null(find_action(p2, 0));
    vm.memory = p2->memory[0];

    h = host_ok();
    now += 10 * SEC;
    vm.report_at_us = now - 100 * MS;
    g_autoptr(PolicyPlan) p3 = decide(&h, &vm, 1, &c, now);
    a = find_action(p3, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, ==, 8 * GIB);
    g_assert_cmpuint(p3->memory[0].reclaimed_from_kib, ==, 0);
}

/* ---- probe (rule 3b) ----------------------------------------------------------------------- */

/* One quiet, idle VM on a comfortable host, `now` later: its report fresh, its
 * balloon where the policy last put it. */
static PolicyPlan *probe_again(PolicyVm *vm, const PolicyPlan *last, const PolicyConfig *c,
                               gint64 now)
{
    PolicyHost h = host_ok();
    const PolicyAction *a = last != NULL ? find_action(last, 0) : NULL;

    if (last != NULL)
        vm->memory = last->memory[0];
    if (a != NULL) {
        guint64 moved = vm->actual_kib - a->target_kib;
        if (a->kind == POLICY_ACTION_DEFLATE)
            moved = 0, vm->actual_kib = a->target_kib;
        else
            vm->actual_kib = a->target_kib;
        vm->report.mem.total_kib -= moved;
        vm->report.mem.available_kib -= moved;
        /* landed 300 ms after it was set, and seen there */
        vm->memory.seen_actual_kib = vm->actual_kib;
        vm->memory.actual_moved_us = vm->memory.target_set_us + 300 * MS;
    }
    vm->report.seq++;
    vm->report.uptime_ms += 1000;
    vm->report_at_us = now - 100 * MS;
    if (vm->memory.actual_moved_us == 0) { /* there for a minute already: settled */
        vm->memory.seen_actual_kib = vm->actual_kib;
        vm->memory.actual_moved_us = now - 60 * SEC;
    }
    return decide(&h, vm, 1, c, now);
}

/* On by default, 64 MiB first step; probe_step = 0 turns it off. */
static void test_probe_default(void)
{
    PolicyConfig c;
    PolicyVm vm = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);

    policy_config_init_defaults(&c);
    g_assert_cmpuint(c.probe_step_kib, ==, 64 * MIB);
    g_autoptr(PolicyPlan) p1 = probe_again(&vm, NULL, &c, NOW);
    const PolicyAction *a = find_action(p1, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_PROBE);
    g_assert_cmpuint(a->target_kib, ==, 8 * GIB - 64 * MIB);
    g_assert_cmpstr(policy_reason_name(POLICY_REASON_PROBE), ==, "probe");

    PolicyVm off = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    c.probe_step_kib = 0;
    g_autoptr(PolicyPlan) p2 = probe_again(&off, NULL, &c, NOW);
    g_assert_null(find_action(p2, 0));
}

/* A quiet guest on a comfortable host loses probe_step per probe_interval,
 * and what a probe takes is not owed back (rule 3 leaves it). */
static void test_probe_steps(void)
{
    PolicyConfig c = cfg();
    PolicyVm vm = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    gint64 now = NOW;

    c.probe_step_kib = 64 * MIB;
    g_autoptr(PolicyPlan) p1 = probe_again(&vm, NULL, &c, now);
    const PolicyAction *a = find_action(p1, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->kind, ==, POLICY_ACTION_INFLATE);
    g_assert_cmpint(a->code, ==, POLICY_REASON_PROBE);
    g_assert_cmpuint(a->target_kib, ==, 8 * GIB - 64 * MIB);
    g_assert_nonnull(strstr(a->reason, "probe"));
    g_assert_cmpint(p1->memory[0].last_probe_us, ==, now);
    g_assert_cmpuint(p1->memory[0].reclaimed_from_kib, ==, 0);

    now += 10 * SEC; /* landed, but too soon for the next probe */
    g_autoptr(PolicyPlan) p2 = probe_again(&vm, p1, &c, now);
    g_assert_null(find_action(p2, 0));

    /* quiet after each probe: the step doubles, to 4 x probe_step */
    now += 21 * SEC;
    g_autoptr(PolicyPlan) p3 = probe_again(&vm, p2, &c, now);
    a = find_action(p3, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, ==, 8 * GIB - 192 * MIB);
    now += 31 * SEC;
    g_autoptr(PolicyPlan) p3b = probe_again(&vm, p3, &c, now);
    a = find_action(p3b, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, ==, 8 * GIB - 448 * MIB);
    now += 31 * SEC;
    g_autoptr(PolicyPlan) p3c = probe_again(&vm, p3b, &c, now);
    a = find_action(p3c, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, ==, 8 * GIB - 704 * MIB);
    g_assert_cmpuint(p3c->memory[0].probe_streak, ==, 4);

    /* owed from an earlier reclaim, host comfortable but the give-back
     * waits for its interval: the probe finds it idle and the debt is dropped */
    PolicyHost ok = host_ok();
    PolicyVm owed = vm_agent(0, 8 * GIB, 7 * GIB, 5 * GIB);
    owed.memory.reclaimed_from_kib = 8 * GIB;
    owed.memory.target_set_us = NOW - 2 * SEC;
    owed.memory.seen_actual_kib = owed.actual_kib;
    owed.memory.actual_moved_us = NOW - 60 * SEC;
    g_autoptr(PolicyPlan) p4 = decide(&ok, &owed, 1, &c, NOW);
    a = find_action(p4, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_PROBE);
    g_assert_cmpuint(p4->memory[0].reclaimed_from_kib, ==, 0);
}

/* The host just above its reserve (less than half a hysteresis): not short,
 * but about to be. No probe there: what a probe frees near the reserve is
 * spare only until the host is short again, and a guest claiming pressure
 * beyond its entitlement takes it first (rule 10). Half a hysteresis above,
 * where reclaim leaves the host, the same guest is probed, in the dead band
 * too; and only with its balloon settled (not moved for balloon_settle_ms,
 * seen before), whoever moved it. */
static void test_probe_near_reserve(void)
{
    PolicyConfig c = cfg();
    c.probe_step_kib = 64 * MIB;
    guint64 reserve = (guint64)(24.0 * GIB * 0.05);
    PolicyHost near = host_ok();
    PolicyVm vm = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);

    vm.memory.seen_actual_kib = vm.actual_kib;
    vm.memory.actual_moved_us = NOW - 60 * SEC;
    for (guint64 above = 0; above < c.host_hysteresis_kib / 2; above += 32 * MIB) {
        near.mem_available_kib = reserve + above;
        g_autoptr(PolicyPlan) p = decide(&near, &vm, 1, &c, NOW);
        g_assert_null(find_action(p, 0));
    }
    /* owed from an earlier reclaim: neither given back nor probed there */
    PolicyVm owed = vm_agent(0, 8 * GIB, 7 * GIB, 5 * GIB);
    owed.memory.reclaimed_from_kib = 8 * GIB;
    owed.memory.seen_actual_kib = owed.actual_kib;
    owed.memory.actual_moved_us = NOW - 60 * SEC;
    near.mem_available_kib = reserve + 64 * MIB;
    g_autoptr(PolicyPlan) p1 = decide(&near, &owed, 1, &c, NOW);
    g_assert_null(find_action(p1, 0));
    g_assert_cmpuint(p1->memory[0].reclaimed_from_kib, ==, 8 * GIB);

    /* where reclaim leaves the host (reserve + hysteresis), and above: probed */
    for (guint64 above = c.host_hysteresis_kib / 2; above <= 3 * c.host_hysteresis_kib;
         above += 128 * MIB) {
        near.mem_available_kib = reserve + above;
        g_autoptr(PolicyPlan) p = decide(&near, &vm, 1, &c, NOW);
        const PolicyAction *a = find_action(p, 0);
        g_assert_nonnull(a);
        g_assert_cmpint(a->code, ==, POLICY_REASON_PROBE);
    }

    /* a balloon moving on its own (a boot size on its way), or first seen now */
    PolicyVm moving = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    moving.memory.seen_actual_kib = 8 * GIB + 100 * MIB;
    moving.memory.actual_moved_us = NOW - 60 * SEC;
    g_autoptr(PolicyPlan) p2 = decide(&near, &moving, 1, &c, NOW);
    g_assert_null(find_action(p2, 0));
    PolicyVm fresh = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    g_autoptr(PolicyPlan) p3 = decide(&near, &fresh, 1, &c, NOW);
    g_assert_null(find_action(p3, 0));
}

/* Never more than the guest could give under rule 2, never while it is under
 * pressure, and rule 2 comes first when the host is short. */
static void test_probe_limits(void)
{
    PolicyConfig c = cfg();
    c.probe_step_kib = 512 * MIB;

    PolicyVm vm = vm_agent(0, 4 * GIB, 4 * GIB, GIB);
    guint64 give = GIB - policy_headroom_kib(4 * GIB - 50 * MIB) - c.deflate_margin_kib;
    g_autoptr(PolicyPlan) p1 = probe_again(&vm, NULL, &c, NOW);
    const PolicyAction *a = find_action(p1, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(4 * GIB - a->target_kib, <=, give);
    g_assert_cmpuint(4 * GIB - a->target_kib, >, give - MIB);

    PolicyVm hot = vm_agent(0, 4 * GIB, 4 * GIB, 3 * GIB);
    hot.report.psi.some.avg10 = 5.0;
    g_autoptr(PolicyPlan) p2 = probe_again(&hot, NULL, &c, NOW);
    a = find_action(p2, 0);
    g_assert_true(a == NULL || a->kind == POLICY_ACTION_DEFLATE);

    PolicyHost h = host_short(100 * MIB);
    PolicyVm idle = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    g_autoptr(PolicyPlan) p3 = decide(&h, &idle, 1, &c, NOW);
    a = find_action(p3, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_HOST_SHORT);
}

/* Pressure after a probe: memory back at once, and the size that was fine is
 * remembered: no probe below it for probe_memory_ms, then probing resumes. */
static void test_probe_backoff(void)
{
    PolicyConfig c = cfg();
    PolicyVm vm = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    gint64 now = NOW;

    c.probe_step_kib = 256 * MIB;
    g_autoptr(PolicyPlan) p1 = probe_again(&vm, NULL, &c, now);
    g_assert_nonnull(find_action(p1, 0));

    now += 5 * SEC; /* the guest stalls */
    vm.report.psi.some.avg10 = 5.0;
    g_autoptr(PolicyPlan) p2 = probe_again(&vm, p1, &c, now);
    const PolicyAction *a = find_action(p2, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->kind, ==, POLICY_ACTION_DEFLATE);
    g_assert_cmpint(a->code, ==, POLICY_REASON_PRESSURE);
    guint64 fine = a->target_kib;
    g_assert_cmpuint(p2->memory[0].probe_streak, ==, 0); /* the next probe starts small */
    g_assert_cmpuint(p2->memory[0].probe_floor_kib, ==, fine);
    g_assert_cmpint(p2->memory[0].probe_floor_until_us, ==, now + 600 * SEC);

    /* quiet again, after the cool-down: no probe below where it was fine */
    vm.report.psi.some.avg10 = 0;
    vm.report.mem.total_kib += fine - vm.actual_kib;
    vm.report.mem.available_kib += fine - vm.actual_kib;
    vm.actual_kib = fine;
    vm.memory = p2->memory[0];
    for (int i = 0; i < 15; i++) {
        now += 35 * SEC;
        g_autoptr(PolicyPlan) p = probe_again(&vm, NULL, &c, now);
        a = find_action(p, 0);
        if (a != NULL) {
            g_assert_cmpint(a->code, ==, POLICY_REASON_PROBE);
            g_assert_cmpuint(a->target_kib, >=, fine);
        }
        vm.memory = p->memory[0];
    }
    /* 525 s after the pressure: still nothing. After the memory ends: probes again */
    now += 100 * SEC;
    g_autoptr(PolicyPlan) p4 = probe_again(&vm, NULL, &c, now);
    a = find_action(p4, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_PROBE);
    g_assert_cmpuint(a->target_kib, <, fine);
}

/* ---- burst escalation ----------------------------------------------------------------------- */

/* Three reports a second apart, all under PSI pressure, each raise landed
 * before the next: the steps taken. */
static void burst_steps(const PolicyHost *h, guint64 *steps, PolicyVmMemory *last)
{
    PolicyConfig c = cfg();
    PolicyVm vm = vm_agent(0, 8 * GIB, 2 * GIB, GIB);
    gint64 now = NOW;

    vm.report.psi.some.avg10 = 5.0;
    for (int i = 0; i < 3; i++) {
        g_autoptr(PolicyPlan) p = decide(h, &vm, 1, &c, now);
        const PolicyAction *a = find_action(p, 0);
        g_assert_nonnull(a);
        g_assert_cmpint(a->kind, ==, POLICY_ACTION_DEFLATE);
        steps[i] = a->target_kib - vm.actual_kib;
        if (i > 0 && steps[i] > c.pressure_step_kib)
            g_assert_nonnull(strstr(a->reason, "burst"));
        vm.memory = p->memory[0];
        vm.actual_kib = a->target_kib;
        vm.report.mem.total_kib = vm.actual_kib - 50 * MIB;
        now += SEC;
        vm.report_at_us = now - 100 * MS;
        vm.report.seq++;
        vm.report.uptime_ms += 1000;
    }
    /* quiet again: the escalation is over */
    vm.report.psi.some.avg10 = 0;
    g_autoptr(PolicyPlan) p = decide(h, &vm, 1, &c, now);
    *last = p->memory[0];
}

/* A guest short of memory grows no faster than it is fed: while pressure
 * persists the step doubles, the extra taken only from what the host spares. */
static void test_burst_escalation(void)
{
    PolicyHost h = host_ok();
    guint64 steps[3];
    PolicyVmMemory m;

    burst_steps(&h, steps, &m);
    g_assert_cmpuint(steps[0], ==, 128 * MIB); /* pressure_step */
    g_assert_cmpuint(steps[1], ==, 256 * MIB);
    g_assert_cmpuint(steps[2], ==, 512 * MIB);
    g_assert_cmpuint(m.burst_step_kib, ==, 0);

    /* no spare: reserve (5 % of 24 GiB) + 2 x hysteresis available, not more */
    h.mem_available_kib = (guint64)(24.0 * GIB * 0.05) + 512 * MIB;
    burst_steps(&h, steps, &m);
    g_assert_cmpuint(steps[1], ==, 128 * MIB);
    g_assert_cmpuint(steps[2], ==, 128 * MIB);

    /* a little spare: the extra is half of it */
    h.mem_available_kib += 100 * MIB;
    burst_steps(&h, steps, &m);
    g_assert_cmpuint(steps[1], ==, 128 * MIB + 50 * MIB);
}

/* A report is answered once: decided again (another guest's pressure report
 * starts a call 10 ms later) after its raise was applied and the balloon
 * grew, the same report asks for nothing more; the next report may. */
static void test_report_answered_once(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 8 * GIB, 2 * GIB, 20 * MIB);

    vm.report.psi.some.avg10 = 30.0;
    g_autoptr(PolicyPlan) p1 = decide(&h, &vm, 1, &c, NOW);
    const PolicyAction *a = find_action(p1, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_PRESSURE);
    /* applied: the balloon is there 10 ms later, the report is the same */
    vm.memory = p1->memory[0];
    vm.actual_kib = a->target_kib;
    g_autoptr(PolicyPlan) p2 = decide(&h, &vm, 1, &c, NOW + 10 * MS);
    g_assert_null(find_action(p2, 0));
    /* the next report, still short: raised again */
    vm.memory = p2->memory[0];
    vm.report.seq++;
    vm.report.uptime_ms += 1000;
    vm.report.mem.total_kib = vm.actual_kib - 50 * MIB;
    vm.report_at_us = NOW + SEC - 100 * MS;
    g_autoptr(PolicyPlan) p3 = decide(&h, &vm, 1, &c, NOW + SEC);
    a = find_action(p3, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, >, vm.actual_kib);
}

/* Someone else lowers the balloon (virsh setmem) below the target ballast
 * set: that target is no longer in force, and a pressure report right after
 * is answered from the real size, not held back for balloon_settle_ms. */
static void test_balloon_set_by_someone_else(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 4 * GIB, GIB, 600 * MIB);

    /* ballast set 1 GiB long ago and the balloon is there */
    vm.memory.last_target_kib = GIB;
    vm.memory.target_set_us = NOW - 60 * SEC;
    vm.memory.seen_actual_kib = GIB;
    vm.memory.actual_moved_us = NOW - 50 * SEC;
    g_autoptr(PolicyPlan) p1 = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(p1, 0));
    vm.memory = p1->memory[0];
    /* now 256 MiB, set from outside, and the guest is squeezed */
    vm.actual_kib = 256 * MIB;
    vm.report.seq++;
    vm.report.uptime_ms += 1000;
    vm.report.mem.total_kib = 200 * MIB;
    vm.report.mem.available_kib = 8 * MIB;
    vm.report.psi.some.avg10 = 40.0;
    vm.report_at_us = NOW + SEC - 100 * MS;
    g_autoptr(PolicyPlan) p2 = decide(&h, &vm, 1, &c, NOW + SEC);
    const PolicyAction *a = find_action(p2, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->kind, ==, POLICY_ACTION_DEFLATE);
    g_assert_cmpuint(a->target_kib, >, 256 * MIB);
    g_assert_true(has_note(p2, "set by someone else"));
}

/* The broker's pressure path decides only the guest that reported: its raise
 * is the one a decision over the whole fleet gives (the others counted by
 * their targets in force). */
static void test_pressure_only_subset(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vms[3] = {
        vm_agent(0, 8 * GIB, 2 * GIB, 20 * MIB),
        vm_agent(1, 8 * GIB, 6 * GIB, 5 * GIB),
        vm_agent(2, 8 * GIB, 6 * GIB, 5 * GIB),
    };

    vms[0].report.psi.some.avg10 = 30.0;
    g_autoptr(PolicyPlan) full = decide(&h, vms, 3, &c, NOW);
    const PolicyAction *a = find_action(full, 0);
    g_assert_nonnull(a);
    guint64 want = a->target_kib;

    PolicyHost fast = h;
    fast.pressure_only = TRUE;
    fast.fleet_committed_kib = vms[1].actual_kib + vms[2].actual_kib;
    g_autoptr(PolicyPlan) one = decide(&fast, vms, 1, &c, NOW);
    a = find_action(one, 0);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, ==, want);
}

/* ---- stale, silent, agent-less ------------------------------------------------------------- */

static void test_stale_report(void)
{
    static const struct {
        gint64 age_ms;
        gboolean fresh;
    } t[] = {{0, TRUE}, {2999, TRUE}, {3000, FALSE}, {60000, FALSE}};
    PolicyConfig c = cfg();
    PolicyHost h = host_short(GIB);

    for (gsize i = 0; i < G_N_ELEMENTS(t); i++) {
        /* idle and big: reclaimable if the report is believed */
        PolicyVm vm = vm_agent(0, 8 * GIB, 6 * GIB, 5 * GIB);

        vm.report_at_us = NOW - t[i].age_ms * MS;
        g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
        const PolicyAction *a = find_action(plan, 0);

        if (t[i].fresh) {
            g_assert_nonnull(a);
            g_assert_cmpint(a->kind, ==, POLICY_ACTION_INFLATE);
        } else {
            /* unknown: not squeezed; 6 GiB is above the safe size, so not raised either */
            g_assert_null(a);
            g_assert_true(has_note(plan, "agent silent"));
            g_assert_true(has_note(plan, "1 protected"));
        }
    }
}

static void test_silent_agent(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(GIB); /* even while the host is short */
    PolicyVm vm = vm_agent(0, 8 * GIB, 2 * GIB, GIB);

    vm.report_at_us = NOW - 10 * SEC;
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    const PolicyAction *a = find_action(plan, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->kind, ==, POLICY_ACTION_DEFLATE);
    g_assert_cmpuint(a->target_kib, ==, 4 * GIB); /* 50 % of max */
    g_assert_cmpint(a->code, ==, POLICY_REASON_SILENT);
    g_assert_nonnull(strstr(a->reason, "agent silent for 10 s"));
    g_assert_true(has_note(plan, "vm0: agent silent"));
    g_assert_true(plan->memory[0].silent);

    /* noted once; above the safe size: not squeezed, not raised */
    vm.memory = plan->memory[0];
    vm.actual_kib = 6 * GIB;
    vm.memory.last_target_kib = 0;
    g_autoptr(PolicyPlan) later = decide(&h, &vm, 1, &c, NOW + SEC);
    g_assert_null(find_action(later, 0));
    g_assert_false(has_note(later, "agent silent"));
    g_assert_true(has_note(later, "1 protected"));

    /* the agent was connected but its report is gone from the struct */
    PolicyVm gone = vm_agent(0, 8 * GIB, 2 * GIB, GIB);
    gone.has_report = FALSE;
    gone.memory.last_report_us = NOW - 30 * SEC;
    g_autoptr(PolicyPlan) g = decide(&h, &gone, 1, &c, NOW);
    g_assert_nonnull(find_action(g, 0));
    g_assert_cmpuint(find_action(g, 0)->target_kib, ==, 4 * GIB);

    /* it speaks again */
    vm = vm_agent(0, 8 * GIB, 6 * GIB, 5 * GIB);
    vm.memory = plan->memory[0];
    g_autoptr(PolicyPlan) back = decide(&h, &vm, 1, &c, NOW + 2 * SEC);
    g_assert_true(has_note(back, "reporting again"));
    g_assert_false(back->memory[0].silent);

    /* the safe size never goes under the floor */
    PolicyVm fl = vm_agent(0, 8 * GIB, 2 * GIB, GIB);
    fl.report_at_us = NOW - 10 * SEC;
    fl.floor_kib = 6 * GIB;
    fl.actual_kib = 2 * GIB;
    g_autoptr(PolicyPlan) f = decide(&h, &fl, 1, &c, NOW);
    g_assert_cmpuint(find_action(f, 0)->target_kib, ==, 6 * GIB);
}

static PolicyVm vm_libvirt(gsize i, guint64 max, guint64 actual, guint64 usable)
{
    PolicyVm vm = vm_agent(i, max, actual, 0);

    vm.agent_connected = FALSE;
    vm.has_report = FALSE;
    vm.has_balloon_stats = TRUE;
    vm.balloon_stats_at_us = NOW - SEC;
    vm.lv_available_kib = actual - 50 * MIB;
    vm.lv_usable_kib = usable;
    return vm;
}

static void test_agentless_libvirt(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    /* 4 GiB - 50 MiB: headroom 484.9 MiB x 1.5 = 727 MiB */
    PolicyVm vm = vm_libvirt(0, 8 * GIB, 4 * GIB, 700 * MIB);

    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    const PolicyAction *a = find_action(plan, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->kind, ==, POLICY_ACTION_DEFLATE);
    g_assert_nonnull(strstr(a->reason, "libvirt usable 700 MiB < headroom 727 MiB"));
    g_assert_cmpint(a->code, ==, POLICY_REASON_AGENTLESS);

    vm.lv_usable_kib = 730 * MIB; /* above the wider headroom */
    g_autoptr(PolicyPlan) fine = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(fine, 0));

    /* reclaim from it leaves the wider headroom */
    PolicyHost hs = host_short(GIB);
    vm.lv_usable_kib = 3 * GIB;
    g_autoptr(PolicyPlan) rec = decide(&hs, &vm, 1, &c, NOW);
    a = find_action(rec, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->kind, ==, POLICY_ACTION_INFLATE);

    /* stale libvirt stats: unknown, left alone */
    vm.balloon_stats_at_us = NOW - 11 * SEC;
    g_autoptr(PolicyPlan) stale = decide(&hs, &vm, 1, &c, NOW);
    g_assert_null(find_action(stale, 0));

    /* configured to leave agent-less VMs alone */
    vm.balloon_stats_at_us = NOW - SEC;
    c.agentless = POLICY_AGENTLESS_LEAVE;
    g_autoptr(PolicyPlan) leave = decide(&hs, &vm, 1, &c, NOW);
    g_assert_null(find_action(leave, 0));
    vm.lv_usable_kib = 10 * MIB;
    g_autoptr(PolicyPlan) leave2 = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(leave2, 0));
}

static void test_agentless_fault_rates(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_libvirt(0, 8 * GIB, 4 * GIB, 2 * GIB);

    vm.lv_major_faults = 1000;
    vm.lv_swap_in_kib = 4000;
    g_autoptr(PolicyPlan) p1 = decide(&h, &vm, 1, &c, NOW);
    g_assert_null(find_action(p1, 0)); /* no rate from one sample */
    vm.memory = p1->memory[0];
    vm.balloon_stats_at_us += 2 * SEC;
    vm.lv_major_faults += 1000; /* 500/s */
    g_autoptr(PolicyPlan) p2 = decide(&h, &vm, 1, &c, NOW + 2 * SEC);
    g_assert_nonnull(find_action(p2, 0));
    g_assert_nonnull(strstr(find_action(p2, 0)->reason, "libvirt major faults 500/s"));
}

/* ---- stuck balloons ------------------------------------------------------------------------ */

static void test_stuck_balloon(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(GIB);
    /* FACTS: target 160 MiB, the balloon stopped at 376 MiB */
    /* (with 150 MiB available: not pressure, so only the stuck rule acts) */
    PolicyVm vm = vm_agent(0, 1 * GIB, 376 * MIB, 150 * MIB);

    c.min_floor_kib = 128 * MIB;
    vm.memory.last_target_kib = 160 * MIB;
    vm.memory.seen_actual_kib = 376 * MIB;
    vm.memory.target_set_us = NOW - 4 * SEC;
    vm.memory.actual_moved_us = NOW - 4 * SEC;
    vm.memory.last_inflate_us = NOW - 4 * SEC;
    g_autoptr(PolicyPlan) early = decide(&h, &vm, 1, &c, NOW);
    g_assert_false(has_note(early, "balloon stuck"));
    g_assert_cmpint(early->memory[0].stuck_until_us, ==, 0);

    /* settled 5 s and not moving: stuck; the target goes back to where it is */
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW + SEC);
    const PolicyAction *a = find_action(plan, 0);
    g_assert_true(has_note(plan, "vm0: balloon stuck at 376 MiB, target 160 MiB"));
    g_assert_nonnull(a);
    g_assert_cmpuint(a->target_kib, ==, 376 * MIB);
    g_assert_nonnull(strstr(a->reason, "stuck"));
    g_assert_cmpint(plan->memory[0].stuck_until_us, ==, NOW + SEC + 60 * SEC);
    g_assert_cmpuint(plan->memory[0].stuck_count, ==, 1);
    g_assert_cmpuint(plan->memory[0].last_target_kib, ==, 376 * MIB);

    /* during the back-off it is not pushed lower, even with memory to spare */
    vm.memory = plan->memory[0];
    vm.report.mem.available_kib = 300 * MIB;
    vm.report_at_us = NOW + 30 * SEC - 100 * MS;
    g_autoptr(PolicyPlan) backoff = decide(&h, &vm, 1, &c, NOW + 30 * SEC);
    if (g_test_verbose())
        has_note(backoff, "");
    g_assert_null(find_action(backoff, 0));
    g_assert_false(has_note(backoff, "stuck at 376 MiB, target"));

    /* after it, the VM may be tried again */
    vm.report_at_us = NOW + 62 * SEC - 100 * MS;
    g_autoptr(PolicyPlan) after = decide(&h, &vm, 1, &c, NOW + 62 * SEC);
    g_assert_true(has_note(after, "back-off over"));
    g_assert_cmpint(after->memory[0].stuck_until_us, ==, 0);
    a = find_action(after, 0);
    g_assert_nonnull(a);
    g_assert_cmpint(a->kind, ==, POLICY_ACTION_INFLATE);

    /* still moving (the balloon is slow): not stuck */
    vm = vm_agent(0, 1 * GIB, 376 * MIB, 150 * MIB);
    vm.memory.last_target_kib = 160 * MIB;
    vm.memory.target_set_us = NOW - 20 * SEC;
    vm.memory.seen_actual_kib = 500 * MIB;
    vm.memory.actual_moved_us = NOW - 20 * SEC;
    g_autoptr(PolicyPlan) moving = decide(&h, &vm, 1, &c, NOW);
    g_assert_false(has_note(moving, "balloon stuck"));
    g_assert_cmpint(moving->memory[0].actual_moved_us, ==, NOW);

    /* reached within tolerance: fine */
    vm.memory.seen_actual_kib = 170 * MIB;
    vm.actual_kib = 170 * MIB;
    vm.report.mem.total_kib = 120 * MIB;
    vm.report.mem.available_kib = 60 * MIB;
    g_autoptr(PolicyPlan) reached = decide(&h, &vm, 1, &c, NOW);
    g_assert_false(has_note(reached, "balloon stuck"));
}

static void test_stuck_short_of_raise(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 8 * GIB, 2 * GIB, GIB);

    vm.memory.last_target_kib = 6 * GIB;
    vm.memory.target_set_us = NOW - 10 * SEC;
    vm.memory.seen_actual_kib = 2 * GIB;
    vm.memory.actual_moved_us = NOW - 10 * SEC;
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    g_assert_true(has_note(plan, "below target 6144 MiB"));
    g_assert_cmpuint(plan->memory[0].last_target_kib, ==, 0);

    /* now a raise is computed from the real size again */
    vm.memory = plan->memory[0];
    vm.report.psi.some.avg10 = 10;
    g_autoptr(PolicyPlan) raise = decide(&h, &vm, 1, &c, NOW + SEC);
    g_assert_nonnull(find_action(raise, 0));
    g_assert_cmpuint(find_action(raise, 0)->target_kib, ==, 2 * GIB + c.pressure_step_kib);
}

/* ---- modes --------------------------------------------------------------------------------- */

static void test_mode_off(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(4 * GIB);
    PolicyVm vms[2];

    vms[0] = vm_agent(0, 8 * GIB, 2 * GIB, MIB);
    vms[0].report.psi.some.avg10 = 90;
    vms[0].mode = POLICY_MODE_OFF;
    vms[0].memory.last_pressure_us = 7;
    vms[0].memory.anomalies = 3;
    vms[1] = vm_agent(1, 8 * GIB, 8 * GIB, 7 * GIB);
    vms[1].mode = POLICY_MODE_OFF;
    vms[1].report_at_us = 0; /* silent too */
    g_autoptr(PolicyPlan) plan = decide(&h, vms, 2, &c, NOW);
    g_assert_cmpuint(plan->actions->len, ==, 0);
    g_assert_cmpmem(&plan->memory[0], sizeof(PolicyVmMemory), &vms[0].memory,
                    sizeof(PolicyVmMemory));
    g_assert_cmpmem(&plan->memory[1], sizeof(PolicyVmMemory), &vms[1].memory,
                    sizeof(PolicyVmMemory));
}

static void test_mode_observe(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(0);
    PolicyVm vms[2];

    h.mem_available_kib -= 1; /* need: 256 MiB */
    vms[0] = vm_agent(0, 8 * GIB, 8 * GIB, 6 * GIB);
    vms[0].mode = POLICY_MODE_OBSERVE;
    vms[0].shares = 10; /* the first to pay */
    vms[1] = vm_agent(1, 8 * GIB, 8 * GIB, 6 * GIB);
    g_autoptr(PolicyPlan) plan = decide(&h, vms, 2, &c, NOW);

    /* decided like AUTO ... */
    g_assert_nonnull(find_action(plan, 0));
    /* ... but its memory never reaches the host: vm1 still pays */
    g_assert_nonnull(find_action(plan, 1));
    /* nothing remembered for a target that is not applied */
    g_assert_cmpuint(plan->memory[0].last_target_kib, ==, 0);
    g_assert_cmpuint(plan->memory[0].reclaimed_from_kib, ==, 0);
    g_assert_cmpuint(plan->memory[1].last_target_kib, ==, find_action(plan, 1)->target_kib);

    /* an OBSERVE VM under pressure is decided, and its raise costs the host nothing */
    PolicyVm obs = vm_agent(0, 8 * GIB, 2 * GIB, MIB);
    obs.mode = POLICY_MODE_OBSERVE;
    obs.report.psi.some.avg10 = 20;
    PolicyHost tight = host_short(0);
    g_autoptr(PolicyPlan) p2 = decide(&tight, &obs, 1, &c, NOW);
    g_assert_nonnull(find_action(p2, 0));
    g_assert_false(has_note(p2, "unmet"));
}

/* ---- deflate while the host is short, the balloon offset ----------------------------------- */

static void test_pressure_beats_host_need(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(2 * GIB);
    PolicyVm vm = vm_agent(0, 8 * GIB, 2 * GIB, 100 * MIB);

    vm.report.psi.some.avg10 = 30;
    g_autoptr(PolicyPlan) plan = decide(&h, &vm, 1, &c, NOW);
    g_assert_nonnull(find_action(plan, 0));
    g_assert_cmpint(find_action(plan, 0)->kind, ==, POLICY_ACTION_DEFLATE);
    g_assert_true(has_note(plan, "host reserve unmet"));
}

/* libvirt's balloon size lags (one event a second); MemTotal is fresher. Once
 * the offset is learned, a raise counts from what the guest has now. */
static void test_balloon_offset(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_agent(0, 8 * GIB, 2 * GIB, 3 * GIB);

    vm.memory.seen_actual_kib = 2 * GIB;
    vm.memory.actual_moved_us = NOW - 10 * SEC;
    g_autoptr(PolicyPlan) p1 = decide(&h, &vm, 1, &c, NOW);
    g_assert_true(p1->memory[0].has_offset);
    g_assert_cmpuint(p1->memory[0].offset_kib, ==, 50 * MIB);

    /* the guest now has 3 GiB (MemTotal), libvirt still says 2 GiB */
    vm.memory = p1->memory[0];
    vm.memory.actual_moved_us = NOW; /* moving: do not relearn */
    vm.report.mem.total_kib = 3 * GIB - 50 * MIB;
    vm.report.mem.available_kib = 10 * MIB;
    vm.report.psi.some.avg10 = 0;
    g_autoptr(PolicyPlan) p2 = decide(&h, &vm, 1, &c, NOW + 100 * MS);
    const PolicyAction *a = find_action(p2, 0);
    g_assert_nonnull(a);
    guint64 headroom = policy_headroom_kib(3 * GIB - 50 * MIB);
    guint64 want = 3 * GIB + headroom + c.deflate_margin_kib - 10 * MIB;
    g_assert_cmpuint(a->target_kib, ==, (want + MIB - 1) / MIB * MIB);
}

static void test_empty_and_zero_max(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_short(GIB);
    g_autoptr(PolicyPlan) none = decide(&h, NULL, 0, &c, NOW);
    g_assert_cmpuint(none->actions->len, ==, 0);
    g_assert_true(has_note(none, "host reserve unmet"));

    PolicyVm vm = vm_agent(0, 8 * GIB, 2 * GIB, MIB);
    vm.max_kib = 0; /* libvirt gave nothing: never touched */
    vm.report.psi.some.avg10 = 50;
    g_autoptr(PolicyPlan) zero = decide(&h, &vm, 1, &c, NOW);
    g_assert_cmpuint(zero->actions->len, ==, 0);
}

/* ---- hostile and random input -------------------------------------------------------------- */

static guint64 rand_kib(void)
{
    switch (g_test_rand_int_range(0, 8)) {
    case 0:
        return 0;
    case 1:
        return G_MAXUINT64;
    case 2:
        return (guint64)g_test_rand_int_range(0, 4096);
    default:
        return (guint64)g_test_rand_int_range(0, 16 * 1024) * MIB;
    }
}

static double rand_pct(void)
{
    switch (g_test_rand_int_range(0, 10)) {
    case 0:
        return NAN;
    case 1:
        return -5;
    case 2:
        return 1e300;
    default:
        return g_test_rand_double_range(0, 100);
    }
}

static void rand_report(BlReport *r)
{
    r->seq = (guint64)g_test_rand_int_range(0, 5);
    r->uptime_ms = (guint64)g_test_rand_int_range(0, 5) * 100;
    r->mem.total_kib = rand_kib();
    r->mem.available_kib = rand_kib();
    r->has_psi = g_test_rand_bit();
    r->psi.some.avg10 = rand_pct();
    r->psi.full.avg10 = rand_pct();
    r->psi.some.total_us = (guint64)g_test_rand_int();
    r->psi.full.total_us = (guint64)g_test_rand_int();
    r->vmstat.present = (guint32)g_test_rand_int();
    for (int k = 0; k < BL_VMSTAT_N_COUNTERS; k++)
        r->vmstat.value[k] = g_test_rand_bit() ? G_MAXUINT64 : (guint64)g_test_rand_int();
}

/* Whatever comes in, plans keep their invariants (check_plan), and memory is
 * only taken while the host needs it. */
static void test_random_invariants(void)
{
    PolicyConfig c = cfg();
    c.probe_step_kib = 64 * MIB; /* the default: probes among the rest */
    PolicyVm vms[12];
    gint64 now = NOW;

    memset(vms, 0, sizeof(vms));
    for (int iter = 0; iter < 3000; iter++) {
        gsize n = (gsize)g_test_rand_int_range(0, 13);
        PolicyHost h = {.mem_total_kib = rand_kib(), .mem_available_kib = rand_kib()};
        guint64 reserve;
        gboolean host_needs, any_raise = FALSE;

        h.has_psi = g_test_rand_bit();
        h.psi.some.avg10 = rand_pct();
        now += g_test_rand_int_range(0, 3000) * MS;
        for (gsize i = 0; i < n; i++) {
            PolicyVm *vm = &vms[i];

            g_snprintf(names[i], sizeof(names[i]), "vm%zu", i);
            vm->name = names[i];
            vm->mode = (PolicyMode)g_test_rand_int_range(0, 3);
            vm->floor_kib = rand_kib();
            vm->shares = (guint32)g_test_rand_int_range(0, 3) * 500;
            vm->max_kib = rand_kib();
            vm->actual_kib = g_test_rand_bit() ? vm->actual_kib : rand_kib();
            vm->has_balloon_stats = g_test_rand_bit();
            vm->balloon_stats_at_us = now - g_test_rand_int_range(-1000, 20000) * MS;
            vm->lv_available_kib = rand_kib();
            vm->lv_usable_kib = rand_kib();
            vm->lv_major_faults = (guint64)g_test_rand_int();
            vm->lv_swap_in_kib = rand_kib();
            vm->has_report = g_test_rand_int_range(0, 4) != 0;
            vm->report_at_us = now - g_test_rand_int_range(-1000, 5000) * MS;
            vm->has_prev_report = g_test_rand_bit();
            vm->prev_report_at_us = vm->report_at_us - g_test_rand_int_range(-100, 2000) * MS;
            vm->prev_report = vm->report;
            rand_report(&vm->report);
        }
        g_autoptr(PolicyPlan) plan = decide(&h, vms, n, &c, now);
        reserve = MAX(c.host_reserve_kib, (guint64)((double)h.mem_total_kib * 0.05));
        host_needs = h.mem_available_kib < reserve ||
                     (h.has_psi && isfinite(h.psi.some.avg10) && h.psi.some.avg10 > 5);
        for (guint i = 0; i < plan->actions->len; i++) {
            const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, i);

            if (a->kind == POLICY_ACTION_DEFLATE && vms[a->vm].mode == POLICY_MODE_AUTO)
                any_raise = TRUE;
        }
        for (guint i = 0; i < plan->actions->len; i++) {
            const PolicyAction *a = &g_array_index(plan->actions, PolicyAction, i);

            if (a->kind == POLICY_ACTION_INFLATE && !host_needs && !any_raise)
                g_assert_not_reached();
        }
        for (gsize i = 0; i < n; i++)
            vms[i].memory = plan->memory[i]; /* carried like the broker does */
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy/headroom-bands", test_headroom_bands);
    g_test_add_func("/policy/config/defaults", test_config_defaults);
    g_test_add_func("/policy/deflate/psi-thresholds", test_psi_thresholds);
    g_test_add_func("/policy/deflate/psi-stall-stopped", test_psi_stall_stopped);
    g_test_add_func("/policy/deflate/low-available", test_low_available);
    g_test_add_func("/policy/deflate/falling-available", test_falling_available);
    g_test_add_func("/policy/deflate/capped-at-max", test_deflate_capped_at_max);
    g_test_add_func("/policy/deflate/rate-interval", test_rate_interval);
    g_test_add_func("/policy/deflate/ratchet-min-step", test_deflate_ratchet_and_min_step);
    g_test_add_func("/policy/deflate/fault-rates", test_fault_rates);
    g_test_add_func("/policy/deflate/counter-reset", test_counter_reset);
    g_test_add_func("/policy/deflate/beats-host-need", test_pressure_beats_host_need);
    g_test_add_func("/policy/deflate/balloon-offset", test_balloon_offset);
    g_test_add_func("/policy/lies/clamped", test_lies_clamped_and_counted);
    g_test_add_func("/policy/lies/shares", test_lying_guest_cannot_take_from_bigger_shares);
    g_test_add_func("/policy/reclaim/host-need", test_reclaim_only_when_host_needs);
    g_test_add_func("/policy/reclaim/reserve-pct-psi", test_reserve_pct_and_host_psi);
    g_test_add_func("/policy/reclaim/floors", test_reclaim_floors);
    g_test_add_func("/policy/reclaim/shares-order", test_shares_order);
    g_test_add_func("/policy/reclaim/idle-tax", test_idle_tax);
    g_test_add_func("/policy/reclaim/cooldown-interval", test_cooldown_and_interval);
    g_test_add_func("/policy/reclaim/only-need", test_reclaim_only_need);
    g_test_add_func("/policy/reclaim/many-vms", test_many_vms);
    g_test_add_func("/policy/reclaim/pending-moves", test_pending_moves);
    g_test_add_func("/policy/giveback/steps", test_give_back);
    g_test_add_func("/policy/giveback/cycle", test_reclaim_then_give_back_cycle);
    g_test_add_func("/policy/burst/escalation", test_burst_escalation);
    g_test_add_func("/policy/report-answered-once", test_report_answered_once);
    g_test_add_func("/policy/balloon-set-by-someone-else", test_balloon_set_by_someone_else);
    g_test_add_func("/policy/pressure-only-subset", test_pressure_only_subset);
    g_test_add_func("/policy/probe/default", test_probe_default);
    g_test_add_func("/policy/probe/steps", test_probe_steps);
    g_test_add_func("/policy/probe/limits", test_probe_limits);
    g_test_add_func("/policy/probe/near-reserve", test_probe_near_reserve);
    g_test_add_func("/policy/probe/backoff", test_probe_backoff);
    g_test_add_func("/policy/unknown/stale-report", test_stale_report);
    g_test_add_func("/policy/unknown/silent-agent", test_silent_agent);
    g_test_add_func("/policy/unknown/agentless-libvirt", test_agentless_libvirt);
    g_test_add_func("/policy/unknown/agentless-faults", test_agentless_fault_rates);
    g_test_add_func("/policy/stuck/inflate", test_stuck_balloon);
    g_test_add_func("/policy/stuck/deflate", test_stuck_short_of_raise);
    g_test_add_func("/policy/mode/off", test_mode_off);
    g_test_add_func("/policy/mode/observe", test_mode_observe);
    g_test_add_func("/policy/empty", test_empty_and_zero_max);
    g_test_add_func("/policy/random-invariants", test_random_invariants);
    return g_test_run();
}
