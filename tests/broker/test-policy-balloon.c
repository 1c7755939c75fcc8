/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the policy's balloon safety net (docs/policy.md rules 8 and
 * 9): a balloon below its floor is raised whatever else is decided, and asked
 * again only with back-off; a set-memory call that failed is not remembered
 * as applied and is retried with back-off. Driven like a simulator: only
 * policy_decide(), carrying the memory and reporting what the "calls" did.
 */
#include "policy-fixture.h"

#include <string.h>

#pragma GCC diagnostic ignored "-Wnull-dereference"

/* A VM nothing is known about (no agent, no guest stats): only the floor net
 * can act on it. Floor 3 GiB, balloon at 2 GiB, max 4 GiB. */
static PolicyVm vm_below_floor(PolicyMode mode)
{
    PolicyVm vm = {.name = "vm0",
                   .mode = mode,
                   .floor_kib = 3 * GIB,
                   .max_kib = 4 * GIB,
                   .actual_kib = 2 * GIB};

    return vm;
}

/* An AUTO VM with a fresh report and 20 MiB available: under pressure. */
static PolicyVm vm_pressured(void)
{
    PolicyVm vm = {
        .name = "vm0", .mode = POLICY_MODE_AUTO, .max_kib = 4 * GIB, .actual_kib = 1 * GIB};

    vm.agent_connected = TRUE;
    vm.has_report = TRUE;
    vm.report_at_us = NOW - 100 * MS;
    vm.report.seq = 100;
    vm.report.uptime_ms = 600000;
    vm.report.mem.total_kib = 1 * GIB - 50 * MIB;
    vm.report.mem.available_kib = 20 * MIB;
    vm.report.mem.free_kib = 10 * MIB;
    return vm;
}

static const PolicyAction *only_action(const PolicyPlan *plan)
{
    g_assert_cmpuint(plan->actions->len, <=, 1);
    return plan->actions->len == 1 ? &g_array_index(plan->actions, PolicyAction, 0) : NULL;
}

static gboolean has_note(const PolicyPlan *plan, const char *needle)
{
    for (guint i = 0; i < plan->notes->len; i++) {
        if (g_test_verbose())
            g_printerr("note: %s\n", (char *)g_ptr_array_index(plan->notes, i));
        if (strstr(g_ptr_array_index(plan->notes, i), needle) != NULL)
            return TRUE;
    }
    return FALSE;
}

/* One cycle as the broker runs it: decide, "call" set-memory for an applied
 * action (ok or not), carry the memory. Returns the action taken, or NULL. */
typedef struct {
    PolicyVm vm;
    PolicyConfig c;
    gboolean calls_fail;
    gboolean has;
    PolicyAction last;
} Sim;

static const PolicyAction *sim_tick(Sim *s, gint64 now)
{
    PolicyHost h = host_ok();
    g_autoptr(PolicyPlan) plan = policy_decide(&h, &s->vm, 1, &s->c, now);
    const PolicyAction *a = only_action(plan);

    s->vm.memory = plan->memory[0];
    s->has = a != NULL;
    if (a == NULL)
        return NULL;
    s->last = *a;
    g_assert_cmpuint(a->target_kib, >=, MIN(s->vm.floor_kib, s->vm.max_kib));
    g_assert_cmpuint(a->target_kib, <=, s->vm.max_kib);
    if (s->vm.mode == POLICY_MODE_AUTO) {
        if (s->calls_fail) {
            s->vm.setmem_failed_us = now + 1 * MS;
        } else {
            s->vm.setmem_failed_us = 0;
            s->vm.applied_target_kib = a->target_kib;
            s->vm.applied_at_us = now;
        }
    }
    return &s->last;
}

/* Rule 8 with a dead balloon: asked, asked again after the settle time, then
 * every balloon_backoff_ms with a repeat count, never every tick. */
static void test_floor_dead_balloon(void)
{
    Sim s = {.vm = vm_below_floor(POLICY_MODE_AUTO), .c = cfg()};
    const PolicyAction *a = sim_tick(&s, NOW);
    guint asks;

    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_FLOOR);
    g_assert_cmpint(a->kind, ==, POLICY_ACTION_DEFLATE);
    g_assert_cmpuint(a->target_kib, ==, 3 * GIB);
    g_assert_cmpuint(a->attempt, ==, 1);
    g_assert_cmpstr(a->reason, ==, "vm0: +1024 MiB (balloon 2048 MiB is below its floor 3072 MiB)");
    /* the floor net's asks are not targets the stuck rule (4) waits for */
    g_assert_cmpuint(s.vm.memory.last_target_kib, ==, 0);

    /* settling: the call worked, the balloon gets 5 s */
    for (gint64 t = NOW + SEC; t < NOW + 5 * SEC; t += SEC)
        g_assert_null(sim_tick(&s, t));
    a = sim_tick(&s, NOW + 5 * SEC);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->attempt, ==, 2);
    asks = 2;
    /* from then on every 60 s, however often it is called */
    for (gint64 t = NOW + 5 * SEC + 100 * MS; t <= NOW + 605 * SEC; t += 100 * MS) {
        if ((a = sim_tick(&s, t)) == NULL)
            continue;
        asks++;
        if (g_test_verbose())
            g_printerr("ask %u at %" G_GINT64_FORMAT " ms\n", asks, (t - NOW) / MS);
        g_assert_cmpuint(a->attempt, ==, asks);
        g_assert_cmpint(t - s.vm.applied_at_us, ==, 0);
    }
    g_assert_cmpuint(asks, ==, 12); /* at 0 and 5 s, then at 65, 125, ..., 605 s */
    g_assert_cmpuint(policy_floor_retry_us(&s.c), ==, 60 * SEC);

    /* the balloon gets there at last (within tolerance): no ask, count reset */
    s.vm.actual_kib = 3 * GIB - 8 * MIB;
    g_assert_null(sim_tick(&s, NOW + 700 * SEC));
    g_assert_cmpuint(s.vm.memory.floor_asks.failures, ==, 0);
    /* and if it falls below again, the series starts from the first ask */
    s.vm.actual_kib = 2 * GIB;
    a = sim_tick(&s, NOW + 701 * SEC);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->attempt, ==, 1);
}

/* A simulator that reports nothing about its calls gets the same rule. */
static void test_floor_without_call_facts(void)
{
    PolicyConfig c = cfg();
    PolicyHost h = host_ok();
    PolicyVm vm = vm_below_floor(POLICY_MODE_AUTO);
    guint asks = 0;

    for (gint64 t = NOW; t < NOW + 130 * SEC; t += SEC) {
        g_autoptr(PolicyPlan) plan = policy_decide(&h, &vm, 1, &c, t);
        const PolicyAction *a = only_action(plan);
        if (a != NULL) {
            asks++;
            g_assert_cmpint(a->code, ==, POLICY_REASON_FLOOR);
            g_assert_true(t == NOW || t == NOW + 5 * SEC || t == NOW + 65 * SEC ||
                          t == NOW + 125 * SEC);
        }
        vm.memory = plan->memory[0];
    }
    g_assert_cmpuint(asks, ==, 4);

    /* off: never, below its floor or not */
    vm = vm_below_floor(POLICY_MODE_OFF);
    g_autoptr(PolicyPlan) off = policy_decide(&h, &vm, 1, &c, NOW);
    g_assert_null(only_action(off));
    /* no floor at all (min_floor 0, none set): nothing to raise to */
    c.min_floor_kib = 0;
    vm = vm_below_floor(POLICY_MODE_AUTO);
    vm.floor_kib = 0;
    g_autoptr(PolicyPlan) none = policy_decide(&h, &vm, 1, &c, NOW);
    g_assert_null(only_action(none));
}

/* Rule 8 under --dry-run / mode observe: decided and said (the broker logs
 * "would"), never applied, and asked with the same back-off; nothing about
 * targets is remembered. */
static void test_floor_observe(void)
{
    Sim s = {.vm = vm_below_floor(POLICY_MODE_OBSERVE), .c = cfg()};
    guint asks = 0;

    for (gint64 t = NOW; t <= NOW + 125 * SEC; t += 500 * MS) {
        const PolicyAction *a = sim_tick(&s, t);
        if (a == NULL)
            continue;
        asks++;
        g_assert_cmpint(a->code, ==, POLICY_REASON_FLOOR);
        g_assert_cmpuint(a->target_kib, ==, 3 * GIB);
        g_assert_cmpuint(a->attempt, ==, asks);
        g_assert_true(t == NOW || t == NOW + 5 * SEC || t == NOW + 65 * SEC ||
                      t == NOW + 125 * SEC);
    }
    g_assert_cmpuint(asks, ==, 4);
    g_assert_cmpuint(s.vm.memory.last_target_kib, ==, 0);
    g_assert_cmpuint(s.vm.applied_target_kib, ==, 0);
}

/* Rule 8 after observe: the asks only logged in observe do not delay the
 * first real one when the VM is switched to auto; after that the back-off
 * holds as for any ask. */
static void test_floor_observe_then_auto(void)
{
    Sim s = {.vm = vm_below_floor(POLICY_MODE_OBSERVE), .c = cfg()};

    g_assert_nonnull(sim_tick(&s, NOW));
    g_assert_nonnull(sim_tick(&s, NOW + 5 * SEC));
    g_assert_null(sim_tick(&s, NOW + 6 * SEC)); /* observe: next ask in a minute */
    s.vm.mode = POLICY_MODE_AUTO;
    const PolicyAction *a = sim_tick(&s, NOW + 7 * SEC);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_FLOOR);
    g_assert_cmpuint(a->attempt, ==, 1);
    g_assert_cmpuint(s.vm.applied_target_kib, ==, 3 * GIB);
    /* The balloon does not move (dead driver): the next ask waits again. */
    g_assert_null(sim_tick(&s, NOW + 8 * SEC));
    g_assert_nonnull(sim_tick(&s, NOW + 12 * SEC));
    g_assert_null(sim_tick(&s, NOW + 13 * SEC));
}

/* Rule 8 with a failing call: the failure is not taken for an ask that
 * landed; a new ask comes after the set-memory back-off and the floor net's
 * own, and the policy says so. */
static void test_floor_failing_setmem(void)
{
    Sim s = {.vm = vm_below_floor(POLICY_MODE_AUTO), .c = cfg(), .calls_fail = TRUE};
    PolicyHost h = host_ok();

    g_assert_nonnull(sim_tick(&s, NOW));
    /* half a second later: held, and noted */
    g_autoptr(PolicyPlan) held = policy_decide(&h, &s.vm, 1, &s.c, NOW + 500 * MS);
    g_assert_null(only_action(held));
    g_assert_true(has_note(held, "vm0: setting the balloon failed 1 time(s) in a row"));
    s.vm.memory = held->memory[0];
    for (gint64 t = NOW + SEC; t < NOW + 5 * SEC; t += SEC)
        g_assert_null(sim_tick(&s, t));
    /* retried: the failed call did not count as the balloon settling */
    const PolicyAction *a = sim_tick(&s, NOW + 5 * SEC);
    g_assert_nonnull(a);
    g_assert_cmpuint(a->attempt, ==, 2);
    /* it works at last */
    s.calls_fail = FALSE;
    g_assert_null(sim_tick(&s, NOW + 6 * SEC));
    a = sim_tick(&s, NOW + 65 * SEC);
    g_assert_nonnull(a);
    g_assert_cmpuint(s.vm.setmem_failed_us, ==, 0);
    g_assert_null(sim_tick(&s, NOW + 66 * SEC));
    g_assert_cmpuint(s.vm.memory.setmem.failures, ==, 0);
}

/* Rule 9: a raise whose call failed is not remembered as the target in force
 * (the earlier one is), and it is asked again after 1 s, 2 s, 4 s, ... */
static void test_failed_raise_not_remembered(void)
{
    Sim s = {.vm = vm_pressured(), .c = cfg(), .calls_fail = TRUE};
    gint64 t = NOW;

    /* an earlier target, reached long ago */
    s.vm.memory.last_target_kib = 1 * GIB;
    s.vm.memory.target_set_us = NOW - 100 * SEC;
    s.vm.memory.seen_actual_kib = 1 * GIB;
    s.vm.memory.actual_moved_us = NOW - 100 * SEC;

    const PolicyAction *a = sim_tick(&s, t);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_PRESSURE);
    guint64 want = a->target_kib;
    g_assert_cmpuint(want, >, 1 * GIB);
    /* the plan remembers it, as for any action ... */
    g_assert_cmpuint(s.vm.memory.last_target_kib, ==, want);

    /* ... until the next decision learns the call failed: taken back */
    PolicyHost h = host_ok();
    s.vm.report_at_us = t + 100 * MS;
    g_autoptr(PolicyPlan) next = policy_decide(&h, &s.vm, 1, &s.c, t + 200 * MS);
    g_assert_null(only_action(next)); /* held: 1 s after the failure */
    g_assert_cmpuint(next->memory[0].last_target_kib, ==, 1 * GIB);
    g_assert_cmpint(next->memory[0].target_set_us, ==, NOW - 100 * SEC);
    g_assert_cmpuint(next->memory[0].setmem.failures, ==, 1);
    g_assert_true(has_note(next, "next try in 1.0 s"));
    s.vm.memory = next->memory[0];

    /* retried with back-off: 1 s, then 2 s, then 4 s after each failure */
    gint64 fails[] = {t + 1 * MS, 0, 0, 0};
    guint n = 1;
    for (t = NOW + 100 * MS; t < NOW + 8 * SEC && n < G_N_ELEMENTS(fails); t += 100 * MS) {
        s.vm.report_at_us = t - 50 * MS;
        if (sim_tick(&s, t) == NULL)
            continue;
        g_assert_cmpuint(s.last.target_kib, ==, want); /* the same need, asked again */
        g_assert_cmpint(t - fails[n - 1], >=, (gint64)(1u << (n - 1)) * SEC);
        g_assert_cmpint(t - fails[n - 1], <, (gint64)(1u << (n - 1)) * SEC + 100 * MS);
        fails[n++] = t + 1 * MS;
    }
    g_assert_cmpuint(n, ==, 4);

    /* held 8 s after the 4th failure; then the call works: remembered, and
     * the back-off is over */
    s.calls_fail = FALSE;
    t = fails[3] + 8 * SEC - 100 * MS;
    s.vm.report_at_us = t - 50 * MS;
    g_assert_null(sim_tick(&s, t));
    t += 100 * MS;
    s.vm.report_at_us = t - 50 * MS;
    g_assert_nonnull(sim_tick(&s, t));
    g_assert_cmpuint(s.vm.memory.last_target_kib, ==, want);
    s.vm.report_at_us = t + 50 * MS;
    g_autoptr(PolicyPlan) ok = policy_decide(&h, &s.vm, 1, &s.c, t + 100 * MS);
    g_assert_cmpuint(ok->memory[0].last_target_kib, ==, want);
    g_assert_cmpint(ok->memory[0].target_set_us, ==, t);
    g_assert_cmpuint(ok->memory[0].setmem.failures, ==, 0);
}

/* Rule 9 for a reclaim: a failed inflate leaves no "reclaimed from" size and
 * no reclaim time behind, and the VM is not reclaimed from while held. */
static void test_failed_reclaim_not_remembered(void)
{
    PolicyConfig c = cfg();
    /* a host 600 MiB short of its 1.2 GiB reserve */
    PolicyHost h = {.mem_total_kib = 24 * GIB, .mem_available_kib = 600 * MIB};
    PolicyVm vm = vm_pressured();

    vm.actual_kib = 4 * GIB;
    vm.report.mem.total_kib = 4 * GIB - 50 * MIB;
    vm.report.mem.available_kib = 3 * GIB;
    g_autoptr(PolicyPlan) plan = policy_decide(&h, &vm, 1, &c, NOW);
    const PolicyAction *a = only_action(plan);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_HOST_SHORT);
    g_assert_cmpuint(plan->memory[0].reclaimed_from_kib, ==, 4 * GIB);
    g_assert_cmpint(plan->memory[0].last_inflate_us, ==, NOW);

    vm.memory = plan->memory[0];
    vm.setmem_failed_us = NOW + 2 * MS;
    vm.report_at_us = NOW + 400 * MS;
    g_autoptr(PolicyPlan) next = policy_decide(&h, &vm, 1, &c, NOW + 500 * MS);
    g_assert_null(only_action(next));
    g_assert_cmpuint(next->memory[0].reclaimed_from_kib, ==, 0);
    g_assert_cmpint(next->memory[0].last_inflate_us, ==, 0);
    g_assert_cmpuint(next->memory[0].last_target_kib, ==, 0);
    g_assert_true(has_note(next, "1 protected"));

    /* after the back-off it is reclaimed from again (not blocked by a
     * reclaim interval that never started) */
    vm.memory = next->memory[0];
    vm.report_at_us = NOW + 1100 * MS;
    g_autoptr(PolicyPlan) again = policy_decide(&h, &vm, 1, &c, NOW + 1200 * MS);
    a = only_action(again);
    g_assert_nonnull(a);
    g_assert_cmpint(a->code, ==, POLICY_REASON_HOST_SHORT);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy/floor/dead-balloon", test_floor_dead_balloon);
    g_test_add_func("/policy/floor/no-call-facts", test_floor_without_call_facts);
    g_test_add_func("/policy/floor/observe-dry-run", test_floor_observe);
    g_test_add_func("/policy/floor/observe-then-auto", test_floor_observe_then_auto);
    g_test_add_func("/policy/floor/failing-setmem", test_floor_failing_setmem);
    g_test_add_func("/policy/setmem/failed-raise", test_failed_raise_not_remembered);
    g_test_add_func("/policy/setmem/failed-reclaim", test_failed_reclaim_not_remembered);
    return g_test_run();
}
